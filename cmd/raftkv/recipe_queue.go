package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe"
)

func recipeQueueCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var priority int
	queue := &cobra.Command{
		Use:   "queue",
		Short: "A distributed FIFO queue: push, pop, list",
		Long: `A FIFO queue whose items are in-order keys of /_recipes/queues/NAME (or of
NAME itself when it starts with "/"). pop hands each item to exactly one
consumer, however many pop at once. With --priority the queue is a priority
queue: lower numbers first, FIFO within a priority (use --priority with
every command on that queue).`,
	}
	priorityFlag := func(cmd *cobra.Command) {
		cmd.Flags().IntVar(&priority, "priority", -1, "priority of the item (0 = first; 0 to 65535); makes the queue a priority queue")
	}
	open := func(c *client.Client, name string) (*recipe.Queue, *recipe.PriorityQueue, error) {
		if priority < 0 {
			q, err := recipe.NewQueue(c, name)
			return q, nil, err
		}
		if priority > 65535 {
			return nil, nil, fmt.Errorf("--priority %d: want 0 to 65535", priority)
		}
		pq, err := recipe.NewPriorityQueue(c, name)
		if err != nil {
			return nil, nil, err
		}
		return &pq.Queue, pq, nil
	}
	push := &cobra.Command{
		Use:     "push NAME VALUE",
		Short:   "Append VALUE to the queue and print its key",
		Example: `  raftkv queue push jobs 'resize a.png'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				q, pq, err := open(c, args[0])
				if err != nil {
					return badArgs{err}
				}
				var item recipe.Item
				if pq != nil {
					item, err = pq.EnqueuePriority(ctx, args[1], uint16(priority))
				} else {
					item, err = q.Enqueue(ctx, args[1])
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(out, item.Key)
				return nil
			})
		},
	}
	pop := &cobra.Command{
		Use:     "pop NAME",
		Short:   "Remove the first item and print its value (waiting for one if the queue is empty)",
		Example: `  raftkv queue pop jobs`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				q, _, err := open(c, args[0])
				if err != nil {
					return badArgs{err}
				}
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				item, err := q.Dequeue(ctx)
				if err != nil {
					return endOfWatch(ctx, err)
				}
				fmt.Fprintln(out, item.Value)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "Print the queue's items in order, one key and value a line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				q, _, err := open(c, args[0])
				if err != nil {
					return badArgs{err}
				}
				resp, err := c.Get(ctx, q.Dir(), &client.GetOptions{Recursive: true, Sort: true})
				if client.IsKeyNotFound(err) {
					return nil
				}
				if err != nil {
					return err
				}
				printQueue(out, resp.Node)
				return nil
			})
		},
	}
	for _, sub := range []*cobra.Command{push, pop, list} {
		priorityFlag(sub)
		queue.AddCommand(sub)
	}
	return queue
}

// printQueue prints the files of a queue's listing in order.
func printQueue(out io.Writer, n *client.Node) {
	for _, child := range n.Nodes {
		if child.Dir {
			printQueue(out, child)
			continue
		}
		fmt.Fprintf(out, "%s %s\n", path.Base(child.Key), child.Value)
	}
}

func recipeRegistryCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	registry := &cobra.Command{
		Use:   "registry",
		Short: "Service discovery: register an instance, list or watch a service's instances",
		Long: `Instances register as /_recipes/registry/SERVICE/INSTANCE = ADDRESS with a TTL
kept alive while the registering process runs; they disappear when it stops
(at once on Ctrl-C, after --ttl seconds if it dies).`,
	}
	register := &cobra.Command{
		Use:     "register SERVICE INSTANCE ADDRESS",
		Short:   "Register an instance and keep it registered until Ctrl-C",
		Example: `  raftkv registry register api a 10.0.0.1:8080 --ttl 5`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if ttl < 1 {
					return badArgsf("--ttl %d: a registration's TTL is at least 1 second", ttl)
				}
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				reg, err := recipe.NewRegistry(c, "").Register(ctx, args[0], args[1], args[2], secondsOf(ttl))
				if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
					return nil // Ctrl-C before the registration was confirmed: it was taken back
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(out, reg.Key())
				<-ctx.Done()
				closeCtx, cancel := context.WithTimeout(context.Background(), g.timeout)
				defer cancel()
				return reg.Close(closeCtx)
			})
		},
	}
	addTTLFlag(register, &ttl)
	list := &cobra.Command{
		Use:   "list SERVICE",
		Short: "Print the service's instances, one name and address a line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				instances, err := recipe.NewRegistry(c, "").List(ctx, args[0])
				if err != nil {
					return err
				}
				for _, in := range instances {
					fmt.Fprintln(out, in.Name, in.Addr)
				}
				return nil
			})
		},
	}
	watch := &cobra.Command{
		Use:   "watch SERVICE",
		Short: "Print the service's instances, then each change (+ name address, - name), until Ctrl-C",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				d, err := recipe.NewRegistry(c, "").Discover(ctx, args[0], func(ch recipe.Change) {
					name := path.Base(ch.Key)
					if ch.Removed() {
						fmt.Fprintln(out, "-", name)
					} else {
						fmt.Fprintln(out, "+", name, ch.Value)
					}
				})
				if err != nil {
					return badArgs{err}
				}
				<-ctx.Done()
				_ = d
				return nil
			})
		},
	}
	registry.AddCommand(register, list, watch)
	return registry
}
