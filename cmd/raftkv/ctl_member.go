package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
)

// ctlMemberCommand is member list|add|remove|update|promote.
func ctlMemberCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add, remove, update and promote the members of the cluster",
		Long: `Change the cluster's membership as etcdctl's member commands do, one member at
a time. raftkv adds a member as a learner (it receives the log but does not
vote) and makes it a voter once it has caught up with the leader; 'member
promote' does that at once.`,
	}
	cmd.AddCommand(ctlMemberListCommand(g, env), ctlMemberAddCommand(g, env), ctlMemberRemoveCommand(g, env),
		ctlMemberUpdateCommand(g, env), ctlMemberPromoteCommand(g, env))
	return cmd
}

// preferLeader puts the leader's client URL first among c's endpoints:
// membership changes go to the leader, which knows whether another change is
// still pending (a follower forwards a change that the leader may drop, and
// then answers 500 only after its request timeout). If the leader cannot be
// found, the endpoints stay as they are.
func preferLeader(ctx context.Context, c *client.Client) {
	leader, err := c.LeaderEndpoint(ctx)
	if err != nil {
		return
	}
	eps := []string{leader}
	for _, ep := range c.Endpoints() {
		if ep != leader {
			eps = append(eps, ep)
		}
	}
	_ = c.SetEndpoints(eps)
}

// memberFailed prints err as etcdctl's member commands do (the message
// alone, after what was being done) and ends the command with exit code 1.
func memberFailed(cmd *cobra.Command, doing string, err error) error {
	msg := err.Error()
	if doing != "" {
		msg = doing + ": " + msg
	}
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	return &ctlPrinted{code: ctlExitBadArgs, msg: msg}
}

func ctlMemberListCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the members, marking the leader",
		Example: `  raftkv member list`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) != 0 {
					return badArgsf("no arguments accepted")
				}
				members, err := c.Members().List(ctx)
				if err != nil {
					return memberFailed(cmd, "", err)
				}
				leader, err := c.Members().Leader(ctx)
				if err != nil {
					return memberFailed(cmd, "Failed to get leader", err)
				}
				if g.output == "json" {
					return printMembersJSON(out, members, leader.ID)
				}
				for _, m := range members {
					if m.Name == "" {
						fmt.Fprintf(out, "%s[unstarted]: peerURLs=%s\n", m.ID, strings.Join(m.PeerURLs, ","))
						continue
					}
					fmt.Fprintf(out, "%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n",
						m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.ID == leader.ID)
				}
				return nil
			})
		},
	}
}

func printMembersJSON(out io.Writer, members []client.Member, leaderID string) error {
	type member struct {
		client.Member
		IsLeader bool `json:"isLeader"`
	}
	list := make([]member, 0, len(members))
	for _, m := range members {
		list = append(list, member{Member: m, IsLeader: m.ID == leaderID})
	}
	b, err := json.Marshal(struct {
		Members []member `json:"members"`
	}{list})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, string(b))
	return nil
}

func ctlMemberAddCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME PEER_URLS",
		Short: "Add a member and print the environment it must start with",
		Long: `Add a member that will be reached at PEER_URLS (comma-separated) and print,
as etcdctl does, the ETCD_* environment with which 'raftkv serve' (which reads
ETCD_* as well as RAFTKV_* variables) must start it to join the cluster. The
new member asks the members in ETCD_INITIAL_CLUSTER for the cluster's ID and
its own, so it needs no --initial-cluster-token. It joins as a learner and
becomes a voter once it has caught up.`,
		Example: `  raftkv member add m4 http://127.0.0.1:42380`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) != 2 {
					return badArgsf("provide a name and the member's peer URLs (comma-separated)")
				}
				name, peerURLs := args[0], splitList(args[1])
				preferLeader(ctx, c)
				added, err := c.Members().Add(ctx, peerURLs...)
				if err != nil {
					return memberFailed(cmd, "", err)
				}
				fmt.Fprintf(out, "Added member named %s with ID %s to cluster\n", name, added.ID)
				members, err := c.Members().List(ctx)
				if err != nil {
					return memberFailed(cmd, "", err)
				}
				printJoinEnv(out, name, added, members)
				return nil
			})
		},
	}
	// Older raftkv printed the token for the new member to derive its ID;
	// it now learns it from the cluster.
	cmd.Flags().String("initial-cluster-token", "", "accepted for compatibility; ignored (the new member learns the cluster's IDs from its peers)")
	return cmd
}

// printJoinEnv prints the environment of a new member: etcdctl's lines.
func printJoinEnv(out io.Writer, name string, added *client.Member, members []client.Member) {
	var initial []string
	seen := false
	for _, m := range members {
		n := m.Name
		if m.ID == added.ID {
			n, seen = name, true
		}
		if n == "" {
			// A member added but not started yet has no name, and
			// "=URL" is no name=peerURL pair (etcdctl prints it all
			// the same): the new member learns the cluster from the
			// others.
			continue
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	if !seen {
		// The list came from a member that has not applied the change yet.
		for _, u := range added.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "ETCD_NAME=%q\n", name)
	fmt.Fprintf(out, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(initial, ","))
	fmt.Fprintf(out, "ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", strings.Join(added.PeerURLs, ","))
	fmt.Fprintf(out, "ETCD_INITIAL_CLUSTER_STATE=%q\n", "existing")
}

func ctlMemberRemoveCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a member (by its hex ID, as member list shows it)",
		Example: `  raftkv member remove 8e9e05c52164694d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) != 1 {
					return badArgsf("provide a single member ID")
				}
				id := args[0]
				preferLeader(ctx, c)
				members, err := c.Members().List(ctx)
				if err != nil {
					return memberFailed(cmd, "Error while verifying ID against known members", err)
				}
				found := false
				for _, m := range members {
					found = found || m.ID == id
					if m.Name == id {
						fmt.Fprintf(cmd.ErrOrStderr(), "Found a member named %s; if this is correct, please use its ID, eg:\n\traftkv member remove %s\n", m.Name, m.ID)
					}
				}
				if !found {
					msg := fmt.Sprintf("Couldn't find a member in the cluster with an ID of %s.", id)
					fmt.Fprintln(cmd.ErrOrStderr(), msg)
					return &ctlPrinted{code: ctlExitBadArgs, msg: msg}
				}
				if err := c.Members().Remove(ctx, id); err != nil {
					return memberFailed(cmd, "Received an error trying to remove member "+id, err)
				}
				fmt.Fprintf(out, "Removed member %s from cluster\n", id)
				return nil
			})
		},
	}
}

func ctlMemberUpdateCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "update ID PEER_URLS",
		Short:   "Change the peer URLs (comma-separated) of a member",
		Example: `  raftkv member update 8e9e05c52164694d http://10.0.0.7:2380`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) != 2 {
					return badArgsf("provide an ID and a list of comma separated peer URLs (8e9e05c52164694d http://example.com,http://example1.com)")
				}
				preferLeader(ctx, c)
				if err := c.Members().Update(ctx, args[0], splitList(args[1])); err != nil {
					return memberFailed(cmd, "", err)
				}
				fmt.Fprintf(out, "Updated member with ID %s in cluster\n", args[0])
				return nil
			})
		},
	}
}

func ctlMemberPromoteCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "promote ID",
		Short:   "Make a learner a voter now, without waiting for it to catch up (raftkv only)",
		Example: `  raftkv member promote 8e9e05c52164694d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, false, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) != 1 {
					return badArgsf("provide a single member ID")
				}
				preferLeader(ctx, c)
				if err := c.Members().Promote(ctx, args[0]); err != nil {
					return memberFailed(cmd, "", err)
				}
				fmt.Fprintf(out, "Promoted member %s to voter in cluster\n", args[0])
				return nil
			})
		},
	}
}

// healthCheckTimeout bounds one member's health check.
const healthCheckTimeout = 2 * time.Second

// healthInterval is the pause between two checks of cluster-health
// --forever, as etcdctl's.
const healthInterval = 10 * time.Second

func ctlClusterHealthCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var forever bool
	cmd := &cobra.Command{
		Use:   "cluster-health",
		Short: "Check the health of every member and of the cluster",
		Long: `Ask every member's /health whether it knows a leader and can read through it.
The cluster is healthy when a majority of its members are (etcdctl says healthy
as soon as one is). The exit code is 5 when the cluster is unhealthy.`,
		Example: `  raftkv cluster-health --endpoints http://127.0.0.1:2379`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, forever, func(ctx context.Context, c *client.Client, out io.Writer) error {
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				members, err := c.Members().List(ctx)
				if err != nil {
					fmt.Fprintln(out, "cluster may be unhealthy: failed to list members")
					return err
				}
				for {
					healthy := checkMembers(ctx, c, members, out)
					if !forever {
						if !healthy {
							return &ctlPrinted{code: ctlExitClusterUnhealthy, msg: "cluster is unhealthy"}
						}
						return nil
					}
					fmt.Fprintf(out, "\nnext check after %v...\n\n", healthInterval)
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(healthInterval):
					}
				}
			})
		},
	}
	cmd.Flags().BoolVarP(&forever, "forever", "f", false, "check every 10 seconds until Ctrl-C")
	return cmd
}

// checkMembers prints each member's health and the cluster's, and reports
// whether a majority of the members is healthy.
func checkMembers(ctx context.Context, c *client.Client, members []client.Member, out io.Writer) bool {
	healthy := 0
	for _, m := range members {
		if len(m.ClientURLs) == 0 {
			fmt.Fprintf(out, "member %s is unreachable: no available published client urls\n", m.ID)
			continue
		}
		checked := false
		for _, u := range m.ClientURLs {
			checkCtx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
			h, err := c.EndpointHealth(checkCtx, u)
			cancel()
			if err != nil {
				fmt.Fprintf(out, "failed to check the health of member %s on %s: %v\n", m.ID, u, err)
				continue
			}
			checked = true
			if h.Healthy {
				healthy++
				fmt.Fprintf(out, "member %s is healthy: got healthy result from %s\n", m.ID, u)
			} else {
				fmt.Fprintf(out, "member %s is unhealthy: got unhealthy result from %s (%s)\n", m.ID, u, h.Reason)
			}
			break
		}
		if !checked {
			fmt.Fprintf(out, "member %s is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
		}
	}
	ok := healthy > len(members)/2
	if ok {
		fmt.Fprintln(out, "cluster is healthy")
	} else {
		fmt.Fprintln(out, "cluster is unhealthy")
	}
	return ok
}
