package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
)

// The client commands (get, set, mk, mkdir, rm, rmdir, update, updatedir,
// ls, watch, exec-watch, member, cluster-health) behave as etcdctl v2's:
// same arguments, same output formats, same error lines and exit codes.
// They talk to any etcd-v2-compatible endpoint through package client.

// Exit codes of the client commands, as etcdctl v2's.
const (
	ctlExitBadArgs          = 1
	ctlExitBadConnection    = 2
	ctlExitServerError      = 4
	ctlExitClusterUnhealthy = 5
)

// ctlEnv is where the client commands read and write, and how they end.
type ctlEnv struct {
	// stdin supplies a value not given as an argument.
	stdin io.Reader
	// exit ends the process with a code after a failure was printed
	// (os.Exit in the binary); nil returns an *exitError instead (tests).
	exit func(code int)
}

// ctlGlobals are the flags every client command takes.
type ctlGlobals struct {
	endpoints   string
	timeout     time.Duration
	dialTimeout time.Duration
	cacert      string
	cert, key   string
	output      string
}

// ctlEnvVars maps the global flags to the environment variables that set
// them when they are not given.
var ctlEnvVars = map[string]string{
	"endpoints": "RAFTKV_ENDPOINTS",
	"cacert":    "RAFTKV_CACERT",
	"cert":      "RAFTKV_CERT",
	"key":       "RAFTKV_KEY",
}

func init() {
	addCtlCommands(rootCmd, &ctlEnv{stdin: os.Stdin, exit: os.Exit})
}

// addCtlCommands adds the client commands to parent.
func addCtlCommands(parent *cobra.Command, env *ctlEnv) {
	g := &ctlGlobals{}
	cmds := append(ctlKeyCommands(g, env), ctlWatchCommands(g, env)...)
	cmds = append(cmds, ctlMemberCommand(g, env), ctlClusterHealthCommand(g, env))
	for _, cmd := range cmds {
		addClientFlags(cmd, g)
		parent.AddCommand(cmd)
	}
}

// addClientFlags adds the global flags to cmd (persistent, so that member's
// subcommands take them too).
func addClientFlags(cmd *cobra.Command, g *ctlGlobals) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&g.endpoints, "endpoints", "http://127.0.0.1:2379", "comma-separated client URLs of the cluster (env RAFTKV_ENDPOINTS)")
	fl.DurationVar(&g.timeout, "timeout", 5*time.Second, "time a command may take in all (watches excepted)")
	fl.DurationVar(&g.dialTimeout, "dial-timeout", 2*time.Second, "time to set up a connection before trying the next endpoint")
	fl.StringVar(&g.cacert, "cacert", "", "verify https endpoints with this CA bundle (env RAFTKV_CACERT)")
	fl.StringVar(&g.cert, "cert", "", "client certificate for https endpoints (env RAFTKV_CERT)")
	fl.StringVar(&g.key, "key", "", "key of the client certificate (env RAFTKV_KEY)")
	fl.StringVarP(&g.output, "output", "o", "simple", "output format: simple, extended or json")
}

// etcdctlEnvVars are etcdctl's names for the same variables (v3's, then
// v2's), read when the RAFTKV_ one is not set, so that a script written
// for etcdctl runs unchanged.
var etcdctlEnvVars = map[string][]string{
	"endpoints": {"ETCDCTL_ENDPOINTS", "ETCDCTL_ENDPOINT"},
	"cacert":    {"ETCDCTL_CACERT", "ETCDCTL_CA_FILE"},
	"cert":      {"ETCDCTL_CERT", "ETCDCTL_CERT_FILE"},
	"key":       {"ETCDCTL_KEY", "ETCDCTL_KEY_FILE"},
}

// applyEnv fills the global flags not given from the environment.
func (g *ctlGlobals) applyEnv(cmd *cobra.Command) error {
	for flag, name := range ctlEnvVars {
		f := cmd.Flags().Lookup(flag)
		if f == nil || f.Changed {
			continue
		}
		for _, n := range append([]string{name}, etcdctlEnvVars[flag]...) {
			v, ok := os.LookupEnv(n)
			if !ok {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("environment variable %s=%q: %w", n, v, err)
			}
			break
		}
	}
	switch g.output {
	case "simple", "extended", "json":
		return nil
	}
	return fmt.Errorf("unsupported output format %q: want simple, extended or json", g.output)
}

// newClient builds the client the flags describe.
func (g *ctlGlobals) newClient() (*client.Client, error) {
	cfg := client.Config{Endpoints: splitList(g.endpoints), DialTimeout: g.dialTimeout}
	if g.cacert != "" || g.cert != "" || g.key != "" {
		tlsConfig, err := client.NewTLSConfig(g.cacert, g.cert, g.key)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tlsConfig
	}
	return client.New(cfg)
}

// ctlCall is the body of a client command: it gets a client and the
// command's context (bounded by --timeout unless the command watches).
type ctlCall func(ctx context.Context, c *client.Client, out io.Writer) error

// badArgs marks an error in the command's arguments (exit code 1).
type badArgs struct{ error }

func badArgsf(format string, args ...any) error { return badArgs{fmt.Errorf(format, args...)} }

// run runs call for cmd with the global flags; watch exempts it from
// --timeout. A failure is printed as etcdctl prints it and ends the
// command with etcdctl's exit code.
func (g *ctlGlobals) run(cmd *cobra.Command, env *ctlEnv, watch bool, call ctlCall) error {
	if err := g.applyEnv(cmd); err != nil {
		return g.fail(cmd, env, badArgs{err})
	}
	c, err := g.newClient()
	if err != nil {
		return g.fail(cmd, env, badArgs{err})
	}
	defer c.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if !watch {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	if err := call(ctx, c, cmd.OutOrStdout()); err != nil {
		return g.fail(cmd, env, err)
	}
	return nil
}

// fail prints err as etcdctl does ("Error:  100: Key not found (/a) [7]";
// a cluster error with each endpoint's error after it) and ends the
// command. etcdctl prints errors this way with --output json too.
func (g *ctlGlobals) fail(cmd *cobra.Command, env *ctlEnv, err error) error {
	stderr := cmd.ErrOrStderr()
	code := ctlExitCode(err)
	var cerr *client.ClusterError
	var already *ctlPrinted
	switch {
	case errors.As(err, &already):
		code = already.code
	case errors.As(err, &cerr):
		// etcd's ClusterError ends each attempt's error with a newline.
		var b strings.Builder
		b.WriteString(client.ErrClusterUnavailable.Error())
		for i, e := range cerr.Errors {
			fmt.Fprintf(&b, "; error #%d: %s\n", i, e)
		}
		fmt.Fprintln(stderr, "Error: ", b.String())
		fmt.Fprintln(stderr, cerr.Detail())
	default:
		fmt.Fprintln(stderr, "Error: ", err)
	}
	if env.exit != nil {
		env.exit(code)
	}
	return &exitError{code: code, msg: err.Error()}
}

// ctlPrinted is a failure the command has already told the user about
// in its own words; it ends the command with code.
type ctlPrinted struct {
	code int
	msg  string
}

func (e *ctlPrinted) Error() string { return e.msg }

// ctlExitCode is etcdctl's exit code for err: 1 for bad arguments, 2 when
// no endpoint could be reached, 4 for every other failure.
func ctlExitCode(err error) int {
	var bad badArgs
	if errors.As(err, &bad) {
		return ctlExitBadArgs
	}
	if isConnectionError(err) {
		return ctlExitBadConnection
	}
	return ctlExitServerError
}

// isConnectionError reports whether err means that no endpoint answered at
// all: every attempt failed to connect, was refused, or timed out.
func isConnectionError(err error) bool {
	var cerr *client.ClusterError
	if errors.As(err, &cerr) {
		for _, e := range cerr.Errors {
			if !isConnectionError(e) {
				return false
			}
		}
		return len(cerr.Errors) > 0
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "read") {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// printResponse prints a key response in the output format, as etcdctl's
// printResponseKey does: simple is the value alone (the previous value for
// a delete), extended adds the node's fields, json is the response as
// etcdctl encodes it.
func printResponse(w io.Writer, resp *client.Response, format string) {
	deleted := resp.Action == "delete" || resp.Action == "compareAndDelete"
	switch format {
	case "simple":
		if !deleted {
			fmt.Fprintln(w, resp.Node.Value)
		} else {
			fmt.Fprintln(w, "PrevNode.Value:", prevValue(resp))
		}
	case "extended":
		fmt.Fprintln(w, "Key:", resp.Node.Key)
		fmt.Fprintln(w, "Created-Index:", resp.Node.CreatedIndex)
		fmt.Fprintln(w, "Modified-Index:", resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintln(w, "PrevNode.Value:", resp.PrevNode.Value)
		}
		fmt.Fprintln(w, "TTL:", resp.Node.TTL)
		fmt.Fprintln(w, "Index:", resp.Index)
		if !deleted {
			fmt.Fprintln(w)
			fmt.Fprintln(w, resp.Node.Value)
		}
	case "json":
		b, err := json.Marshal(etcdctlResponse{Action: resp.Action, Node: toEtcdctlNode(resp.Node), PrevNode: toEtcdctlNode(resp.PrevNode)})
		if err != nil {
			panic("raftkv: marshal a response: " + err.Error()) // plain data
		}
		fmt.Fprintln(w, string(b))
	}
}

// etcdctlResponse and etcdctlNode are a response as etcdctl prints it with
// --output json: the official client's types, whose JSON differs from the
// server's ("value" and "nodes" always there, "prevNode": null).
type etcdctlResponse struct {
	Action   string       `json:"action"`
	Node     *etcdctlNode `json:"node"`
	PrevNode *etcdctlNode `json:"prevNode"`
}

type etcdctlNode struct {
	Key           string         `json:"key"`
	Dir           bool           `json:"dir,omitempty"`
	Value         string         `json:"value"`
	Nodes         []*etcdctlNode `json:"nodes"`
	CreatedIndex  uint64         `json:"createdIndex"`
	ModifiedIndex uint64         `json:"modifiedIndex"`
	Expiration    *time.Time     `json:"expiration,omitempty"`
	TTL           int64          `json:"ttl,omitempty"`
}

func toEtcdctlNode(n *client.Node) *etcdctlNode {
	if n == nil {
		return nil
	}
	out := &etcdctlNode{
		Key: n.Key, Dir: n.Dir, Value: n.Value, CreatedIndex: n.CreatedIndex, ModifiedIndex: n.ModifiedIndex,
		Expiration: n.Expiration, TTL: n.TTL,
	}
	for _, child := range n.Nodes {
		out.Nodes = append(out.Nodes, toEtcdctlNode(child))
	}
	return out
}

func prevValue(resp *client.Response) string {
	if resp.PrevNode == nil {
		return ""
	}
	return resp.PrevNode.Value
}

// valueArg is argument i, or else all of stdin, as it is (etcdctl keeps a
// trailing newline too).
func valueArg(args []string, i int, stdin io.Reader) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	if stdin == nil {
		return "", badArgsf("value required")
	}
	b, err := io.ReadAll(stdin)
	if err != nil || len(b) == 0 {
		return "", badArgsf("value required")
	}
	return string(b), nil
}

// keyArg is the first argument, which a command requires.
func keyArg(args []string) (string, error) {
	if len(args) == 0 {
		return "", badArgsf("key required")
	}
	return args[0], nil
}

// ttlOf turns a --ttl in seconds into a duration (0: none).
func ttlOf(seconds int) (time.Duration, error) {
	if seconds < 0 {
		return 0, badArgsf("--ttl %d: a TTL is a positive number of seconds", seconds)
	}
	return time.Duration(seconds) * time.Second, nil
}
