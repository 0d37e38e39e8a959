package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftkv/raftkv/embed"
)

// serveFlags are the flags of raftkv serve, named as etcd names them.
type serveFlags struct {
	cfg                             embed.Config
	listenClient, advertiseClient   string
	listenPeer, advertisePeer       string
	heartbeatMillis, electionMillis int
	logLevel                        string
	debug                           bool
	log                             logFlags
	cors                            string
	clientCert, clientKey, clientCA string
	clientCertAuth                  bool
	peerCert, peerKey, peerCA       string
	peerCertAuth                    bool
	// plantedBug is the hidden --planted-bug (tests of the tests only).
	plantedBug string
}

func init() {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a raftkv member (etcd's flags; RAFTKV_* environment variables)",
		Long: `Run one member of a raftkv cluster, serving the etcd v2 API to clients and the
raft protocol to its peers. The flags are etcd's, so a script that starts an
etcd v2 cluster starts raftkv by changing the binary's name. Every flag can also
be set in the environment: --initial-cluster is RAFTKV_INITIAL_CLUSTER or, as
etcd spells it, ETCD_INITIAL_CLUSTER, and so on (a flag on the command line
wins, then RAFTKV_*, then ETCD_*).

A bare 'raftkv serve' runs a one-member cluster on 127.0.0.1:2379 with its
data in ./raftkv.data.

Examples:
  raftkv serve
  raftkv serve --name m1 --data-dir m1.data \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster m1=http://127.0.0.1:2380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380`,
		Args: cobra.NoArgs,
		// etcd scripts pass flags raftkv has no use for (--logger zap,
		// --quota-backend-bytes, --experimental-*...): they are ignored with
		// a warning rather than refused.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// RAFTKV_* first, then etcd's ETCD_* (what 'member add' prints).
			for _, prefix := range []string{"RAFTKV_", "ETCD_"} {
				if err := applyEnv(cmd.Flags(), prefix); err != nil {
					return err
				}
			}
			warnUnknownFlags(cmd, os.Args[1:])
			return runServe(cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Name, "name", embed.DefaultName, "human-readable name of this member")
	fl.StringVar(&f.cfg.DataDir, "data-dir", "raftkv.data", "directory for the WAL and snapshots")
	fl.StringVar(&f.listenClient, "listen-client-urls", embed.DefaultClientURL, "comma-separated URLs to serve clients at")
	fl.StringVar(&f.advertiseClient, "advertise-client-urls", "", "comma-separated client URLs to tell the cluster (default: the listen URLs)")
	fl.StringVar(&f.listenPeer, "listen-peer-urls", embed.DefaultPeerURL, "comma-separated URLs to serve peers at")
	fl.StringVar(&f.advertisePeer, "initial-advertise-peer-urls", "", "comma-separated peer URLs to tell the cluster (default: the listen URLs)")
	fl.StringVar(&f.cfg.InitialCluster, "initial-cluster", "", "founding members as name=peerURL,... (default: this member alone)")
	fl.StringVar(&f.cfg.InitialClusterState, "initial-cluster-state", embed.ClusterStateNew, `"new" to found a cluster, "existing" to join one (after 'raftkv member add')`)
	fl.StringVar(&f.cfg.InitialClusterToken, "initial-cluster-token", embed.DefaultClusterToken, "a token that distinguishes this cluster from others")
	fl.BoolVar(&f.cfg.ForceNewCluster, "force-new-cluster", false, "make the data dir (a backup put in place) a new one-member cluster with new IDs, keeping the keys; remove after the first start")
	fl.IntVar(&f.heartbeatMillis, "heartbeat-interval", 100, "milliseconds between a leader's heartbeats")
	fl.IntVar(&f.electionMillis, "election-timeout", 1000, "milliseconds without a leader before an election")
	fl.Uint64Var(&f.cfg.SnapshotCount, "snapshot-count", embed.DefaultSnapshotCount, "applied entries between snapshots")
	fl.BoolVar(&f.cfg.SerializableReads, "serializable-reads", false, "answer plain GETs from the local copy, as etcd does by default (faster, possibly stale); quorum=true stays linearizable")
	fl.BoolVar(&f.cfg.LeaseReads, "lease-reads", false, "confirm linearizable reads with the leader's lease instead of a round of heartbeats (relies on bounded clock drift)")
	fl.Int64Var(&f.cfg.MaxRequestBytes, "max-request-bytes", 0, "largest request body accepted (0: 10 MiB, as etcd)")
	fl.IntVar(&f.cfg.MaxInflightAppends, "max-inflight-appends", 0, "appends a leader keeps in flight to each follower (0: 4, for a LAN; more for links whose round trip exceeds a few fsyncs)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.debug, "debug", false, "log at debug level (etcd's --debug)")
	addLogFlags(fl, &f.log)
	fl.StringVar(&f.cors, "cors", "", "comma-separated origins allowed cross-origin requests (default: all, as etcd)")
	// etcd flags accepted for compatibility and ignored: raftkv has no
	// use for them (always the v2 API, always pre-vote, its own logger...).
	for _, name := range []string{"enable-v2", "pre-vote", "strict-reconfig-check"} {
		fl.Bool(name, true, "accepted for compatibility with etcd; ignored")
	}
	for _, name := range []string{"quota-backend-bytes", "auto-compaction-retention",
		"auto-compaction-mode", "max-snapshots", "max-wals", "listen-metrics-urls", "auth-token"} {
		fl.String(name, "", "accepted for compatibility with etcd; ignored")
	}
	fl.BoolVar(&f.cfg.EnablePprof, "enable-pprof", false, "serve Go's profiler under /debug/pprof/ on the client URLs")
	fl.StringVar(&f.clientCert, "cert-file", "", "client TLS certificate")
	fl.StringVar(&f.clientKey, "key-file", "", "client TLS key")
	fl.StringVar(&f.clientCA, "trusted-ca-file", "", "CA bundle for client certificates")
	fl.BoolVar(&f.clientCertAuth, "client-cert-auth", false, "require client certificates signed by --trusted-ca-file")
	fl.StringVar(&f.peerCert, "peer-cert-file", "", "peer TLS certificate")
	fl.StringVar(&f.peerKey, "peer-key-file", "", "peer TLS key")
	fl.StringVar(&f.peerCA, "peer-trusted-ca-file", "", "CA bundle for peer certificates")
	fl.BoolVar(&f.peerCertAuth, "peer-client-cert-auth", false, "require peer certificates signed by --peer-trusted-ca-file")
	addPlantedBugFlag(fl, &f.plantedBug)
	rootCmd.AddCommand(cmd)
}

// applyEnv sets every flag not given on the command line from the
// environment variable prefix+NAME (dashes as underscores, upper case).
func applyEnv(fs *pflag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		name := prefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(fl.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func (f serveFlags) config(logOut io.Writer) (embed.Config, error) {
	cfg := f.cfg
	cfg.ListenClientURLs = splitList(f.listenClient)
	cfg.AdvertiseClientURLs = splitList(f.advertiseClient)
	cfg.ListenPeerURLs = splitList(f.listenPeer)
	cfg.InitialAdvertisePeerURLs = splitList(f.advertisePeer)
	if f.heartbeatMillis <= 0 || f.electionMillis <= 0 {
		return cfg, fmt.Errorf("--heartbeat-interval and --election-timeout must be positive")
	}
	cfg.HeartbeatInterval = time.Duration(f.heartbeatMillis) * time.Millisecond
	cfg.ElectionTimeout = time.Duration(f.electionMillis) * time.Millisecond
	cfg.ClientTLS.CertFile, cfg.ClientTLS.KeyFile, cfg.ClientTLS.TrustedCAFile = f.clientCert, f.clientKey, f.clientCA
	cfg.ClientTLS.ClientCertAuth = f.clientCertAuth
	cfg.PeerTLS.CertFile, cfg.PeerTLS.KeyFile, cfg.PeerTLS.TrustedCAFile = f.peerCert, f.peerKey, f.peerCA
	cfg.PeerTLS.ClientCertAuth = f.peerCertAuth
	if f.debug {
		f.logLevel = "debug"
	}
	cfg.CORSOrigins = splitList(f.cors)
	// The log files stay open as long as the process runs.
	logger, _, err := f.log.newLogger(logOut, f.logLevel)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = logger
	if cfg.TuneRaft, err = plantedBugTune(f.plantedBug); err != nil {
		return cfg, err
	}
	if cfg.TuneRaft != nil {
		logger.Warn("PLANTED BUG: this member breaks the rules on purpose (tests only)", "planted-bug", f.plantedBug)
	}
	return cfg, nil
}

func runServe(stderr io.Writer, f serveFlags) error {
	cfg, err := f.config(stderr)
	if err != nil {
		return err
	}
	m, err := embed.Start(cfg)
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	select {
	case sig := <-signals:
		m.Logger().Info("stopping", "signal", sig.String())
		return m.Stop()
	case <-m.Done():
		err := m.Err()
		_ = m.Stop()
		if err == nil {
			err = fmt.Errorf("member %s stopped", cfg.Name)
		}
		return err
	}
}

// warnUnknownFlags tells, on stderr, which flags of the command line raftkv
// does not know (and ignores). A known flag's value is not a flag, even when
// it starts with a dash (--max-request-bytes -1).
func warnUnknownFlags(cmd *cobra.Command, args []string) {
	fs := cmd.Flags()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		fl := fs.Lookup(name)
		if fl == nil && len(name) == 1 {
			fl = fs.ShorthandLookup(name)
		}
		switch {
		case fl == nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "raftkv: ignoring flag %s (unknown to raftkv)\n", a)
		case !inline && fl.NoOptDefVal == "":
			i++ // the next argument is this flag's value
		}
	}
}
