package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/embed"
)

// clusterPortOffsets place members as etcd's local-cluster Procfile does:
// 2379/2380, 22379/22380, 32379/32380, then on.
var clusterPortOffsets = []int{0, 20000, 30000, 40000, 50000, 60000, 10000}

type clusterFlags struct {
	size     int
	dataDir  string
	host     string
	fresh    bool
	logLevel string
	basePort int
}

func init() {
	var f clusterFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster of raftkv members in this process (Ctrl-C stops it)",
		Long: `Run a whole cluster on this machine, one member per goroutine, each with its own
data directory, listening on loopback ports as etcd's local cluster does:
member 1 on 2379 (clients) and 2380 (peers), member 2 on 22379/22380, member 3
on 32379/32380. It prints the endpoints and how to talk to them, and runs until
Ctrl-C, which stops every member cleanly. The data stays, so the next run
resumes the same cluster; --fresh starts a new one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCluster(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.size, "size", 3, "number of members (1 to 7)")
	fl.StringVar(&f.dataDir, "data-dir", "raftkv.cluster", "directory for the members' data (one subdirectory each)")
	fl.StringVar(&f.host, "host", "127.0.0.1", "address to listen at")
	fl.IntVar(&f.basePort, "port", 2379, "client port of the first member (its peer port is the next one)")
	fl.BoolVar(&f.fresh, "fresh", false, "delete the data of a previous run first")
	fl.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	rootCmd.AddCommand(cmd)
}

func runCluster(stdout, stderr io.Writer, f clusterFlags) error {
	if f.size < 1 || f.size > len(clusterPortOffsets) {
		return fmt.Errorf("--size %d: a local cluster has 1 to %d members", f.size, len(clusterPortOffsets))
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	if f.fresh {
		if err := os.RemoveAll(f.dataDir); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	type spec struct{ name, client, peer, dir string }
	var specs []spec
	var initial []string
	for i := range f.size {
		port := f.basePort + clusterPortOffsets[i]
		s := spec{
			name:   fmt.Sprintf("m%d", i+1),
			client: fmt.Sprintf("http://%s:%d", f.host, port),
			peer:   fmt.Sprintf("http://%s:%d", f.host, port+1),
		}
		s.dir = filepath.Join(f.dataDir, s.name)
		specs = append(specs, s)
		initial = append(initial, s.name+"="+s.peer)
	}
	var members []*embed.Member
	stopAll := func() error {
		var errs []error
		for _, m := range members {
			errs = append(errs, m.Stop())
		}
		return errors.Join(errs...)
	}
	for _, s := range specs {
		m, err := embed.Start(embed.Config{
			Name: s.name, DataDir: s.dir,
			ListenClientURLs: []string{s.client}, ListenPeerURLs: []string{s.peer},
			InitialCluster: strings.Join(initial, ","), Logger: logger.With("member", s.name),
		})
		if err != nil {
			_ = stopAll()
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		members = append(members, m)
	}
	// Wait for a leader before saying the cluster is up.
	deadline := time.Now().Add(15 * time.Second)
	for members[0].Runtime().Status().Leader == 0 {
		if time.Now().After(deadline) {
			_ = stopAll()
			return errors.New("no leader was elected within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "raftkv: a %d-member cluster is up on %s (leader elected)\n\n", f.size, f.host)
	for _, s := range specs {
		fmt.Fprintf(stdout, "  %-3s client %-24s peer %-24s data %s\n", s.name, s.client, s.peer, s.dir)
	}
	var endpoints []string
	for _, s := range specs {
		endpoints = append(endpoints, s.client)
	}
	fmt.Fprintf(stdout, `
Talk to it with curl, any etcd v2 client, or raftkv itself:
  curl -L %[1]s/v2/keys/message -XPUT -d value="Hello"
  curl -L %[2]s/v2/keys/message
  curl -L %[1]s/v2/members
  raftkv get /message --endpoints %[3]s
  raftkv bench --endpoints %[3]s --clients 64 --duration 10s

Ctrl-C stops the cluster; its data stays in %[4]s (--fresh starts over).
`, specs[0].client, specs[len(specs)-1].client, strings.Join(endpoints, ","), f.dataDir)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	select {
	case <-signals:
		fmt.Fprintln(stdout, "\nraftkv: stopping the cluster")
		return stopAll()
	case <-members[0].Done():
	}
	for _, m := range members {
		if err := m.Err(); err != nil {
			_ = stopAll()
			return err
		}
	}
	return stopAll()
}
