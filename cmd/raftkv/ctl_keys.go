package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
)

// ctlKeyCommands are the key commands: get, set, mk, mkdir, rm, rmdir,
// update, updatedir, ls.
func ctlKeyCommands(g *ctlGlobals, env *ctlEnv) []*cobra.Command {
	return []*cobra.Command{
		ctlGetCommand(g, env), ctlSetCommand(g, env), ctlMkCommand(g, env), ctlMkdirCommand(g, env),
		ctlRmCommand(g, env), ctlRmdirCommand(g, env), ctlUpdateCommand(g, env), ctlUpdatedirCommand(g, env),
		ctlLsCommand(g, env),
	}
}

func ctlGetCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var sorted, quorum bool
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Example: `  raftkv get /message
  raftkv get /message -o extended --endpoints http://127.0.0.1:2379,http://127.0.0.1:22379`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				resp, err := c.Get(ctx, key, &client.GetOptions{Sort: sorted, Quorum: quorum})
				if err != nil {
					return err
				}
				if resp.Node.Dir {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: is a directory\n", resp.Node.Key)
					return &ctlPrinted{code: ctlExitBadArgs, msg: resp.Node.Key + ": is a directory"}
				}
				printResponse(out, resp, g.output)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&sorted, "sort", false, "sort the answer by key")
	cmd.Flags().BoolVarP(&quorum, "quorum", "q", false, "ask for a linearizable read (raftkv's reads are by default)")
	return cmd
}

func ctlSetCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	var prevValue string
	var prevIndex uint64
	cmd := &cobra.Command{
		Use:   "set KEY [VALUE]",
		Short: "Set the value of a key (the value is read from stdin if not given)",
		Long: `Set the value of a key, creating it or replacing it. With --swap-with-value or
--swap-with-index the write is a compare-and-swap. A value that starts with '-'
follows '--': raftkv set -- /key -value.`,
		Example: `  raftkv set /message Hello
  raftkv set /message World --swap-with-value Hello
  echo -n blue | raftkv set /colour --ttl 60`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, value, d, err := keyValueTTL(args, env, ttl)
				if err != nil {
					return err
				}
				resp, err := c.Set(ctx, key, value, &client.SetOptions{TTL: d, PrevValue: prevValue, PrevIndex: prevIndex})
				if err != nil {
					return err
				}
				printResponse(out, resp, g.output)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", 0, "time to live in seconds (0: permanent)")
	cmd.Flags().StringVar(&prevValue, "swap-with-value", "", "set only if the current value is this")
	cmd.Flags().Uint64Var(&prevIndex, "swap-with-index", 0, "set only if the current modified index is this")
	return cmd
}

// keyValueTTL reads the KEY [VALUE] arguments and a --ttl.
func keyValueTTL(args []string, env *ctlEnv, ttl int) (key, value string, d time.Duration, err error) {
	if key, err = keyArg(args); err != nil {
		return "", "", 0, err
	}
	if value, err = valueArg(args, 1, env.stdin); err != nil {
		return "", "", 0, err
	}
	d, err = ttlOf(ttl)
	return key, value, d, err
}

func ctlMkCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	var inOrder bool
	cmd := &cobra.Command{
		Use:   "mk KEY [VALUE]",
		Short: "Create a key that must not exist yet (or, with --in-order, a new key in directory KEY)",
		Example: `  raftkv mk /lock me --ttl 30
  raftkv mk /queue job-1 --in-order`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, value, d, err := keyValueTTL(args, env, ttl)
				if err != nil {
					return err
				}
				var resp *client.Response
				if inOrder {
					resp, err = c.CreateInOrder(ctx, key, value, &client.CreateInOrderOptions{TTL: d})
				} else {
					resp, err = c.Create(ctx, key, value, &client.SetOptions{TTL: d})
				}
				if err != nil {
					return err
				}
				printResponse(out, resp, g.output)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", 0, "time to live in seconds (0: permanent)")
	cmd.Flags().BoolVar(&inOrder, "in-order", false, "create a key with a unique increasing name in directory KEY")
	return cmd
}

func ctlMkdirCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	cmd := &cobra.Command{
		Use:     "mkdir KEY",
		Short:   "Create a directory that must not exist yet",
		Example: `  raftkv mkdir /services --ttl 300`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, _ io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				d, err := ttlOf(ttl)
				if err != nil {
					return err
				}
				_, err = c.Create(ctx, key, "", &client.SetOptions{Dir: true, TTL: d})
				return err
			})
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", 0, "time to live in seconds (0: permanent)")
	return cmd
}

func ctlRmCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var dir, recursive bool
	var prevValue string
	var prevIndex uint64
	cmd := &cobra.Command{
		Use:   "rm KEY",
		Short: "Remove a key, or a directory with --dir (empty) or --recursive",
		Example: `  raftkv rm /message
  raftkv rm /lock --with-value me
  raftkv rm /services --recursive`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				resp, err := c.Delete(ctx, key, &client.DeleteOptions{Dir: dir, Recursive: recursive, PrevValue: prevValue, PrevIndex: prevIndex})
				if err != nil {
					return err
				}
				if !resp.Node.Dir {
					printResponse(out, resp, g.output)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dir, "dir", false, "remove the key if it is an empty directory or a key")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove the key and everything below it")
	cmd.Flags().StringVar(&prevValue, "with-value", "", "remove only if the current value is this")
	cmd.Flags().Uint64Var(&prevIndex, "with-index", 0, "remove only if the current modified index is this")
	return cmd
}

func ctlRmdirCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "rmdir KEY",
		Short:   "Remove an empty directory (or a key)",
		Example: `  raftkv rmdir /services`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				resp, err := c.Delete(ctx, key, &client.DeleteOptions{Dir: true})
				if err != nil {
					return err
				}
				if !resp.Node.Dir {
					printResponse(out, resp, g.output)
				}
				return nil
			})
		},
	}
}

func ctlUpdateCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	cmd := &cobra.Command{
		Use:     "update KEY [VALUE]",
		Short:   "Update a key that must exist (without --ttl its TTL is removed)",
		Example: `  raftkv update /message Hi`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, value, d, err := keyValueTTL(args, env, ttl)
				if err != nil {
					return err
				}
				resp, err := c.Update(ctx, key, value, &client.SetOptions{TTL: d})
				if err != nil {
					return err
				}
				printResponse(out, resp, g.output)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", 0, "time to live in seconds (0: permanent)")
	return cmd
}

func ctlUpdatedirCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	cmd := &cobra.Command{
		Use:     "updatedir KEY",
		Short:   "Update a directory that must exist: set its TTL, or with none remove it",
		Example: `  raftkv updatedir /services --ttl 300`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, _ io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				d, err := ttlOf(ttl)
				if err != nil {
					return err
				}
				_, err = c.Update(ctx, key, "", &client.SetOptions{Dir: true, TTL: d})
				return err
			})
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", 0, "time to live in seconds (0: permanent)")
	return cmd
}

func ctlLsCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var sorted, recursive, slash, quorum bool
	cmd := &cobra.Command{
		Use:   "ls [KEY]",
		Short: "List a directory (the root by default)",
		Example: `  raftkv ls
  raftkv ls /services --recursive --sort -p`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key := "/"
				if len(args) > 0 {
					key = args[0]
				}
				resp, err := c.Get(ctx, key, &client.GetOptions{Sort: sorted, Recursive: recursive, Quorum: quorum})
				if err != nil {
					return err
				}
				if g.output == "json" {
					printResponse(out, resp, g.output)
					return nil
				}
				if !resp.Node.Dir {
					fmt.Fprintln(out, resp.Node.Key)
				}
				for _, n := range resp.Node.Nodes {
					printTree(out, n, slash)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&sorted, "sort", false, "list in key order")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "list everything below the directory")
	cmd.Flags().BoolVarP(&slash, "dir-slash", "p", false, "append / to directories")
	cmd.Flags().BoolVarP(&quorum, "quorum", "q", false, "ask for a linearizable read (raftkv's reads are by default)")
	return cmd
}

// printTree prints a node's key and, depth first, its children's.
func printTree(w io.Writer, n *client.Node, slash bool) {
	if n.Dir && slash {
		fmt.Fprintf(w, "%s/\n", n.Key)
	} else {
		fmt.Fprintln(w, n.Key)
	}
	for _, child := range n.Nodes {
		printTree(w, child, slash)
	}
}
