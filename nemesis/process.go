package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Member is one `raftkv serve` process on its test host: a real binary
// with a real data directory (fsync and all) on its own address.
type Member struct {
	// Index is the member's position (0-based); Name is "m<Index+1>".
	Index int
	Name  string
	// Namespace and Addr are its test host.
	Namespace, Addr string
	// DataDir is its data directory; LogPath collects its output across
	// restarts.
	DataDir, LogPath string

	mu sync.Mutex
	// cmd is the running process, nil when stopped. Guarded by mu.
	cmd *exec.Cmd
	// exited is closed when the running process exits; exitErr is then
	// its error. Guarded by mu.
	exited  chan struct{}
	exitErr error
	// incarnation counts the process's starts (1 for the first): reads of
	// one incarnation must never go back in time. Guarded by mu.
	incarnation int
	// paused says the process is stopped with SIGSTOP. Guarded by mu.
	paused bool
	// expectExit says the process may exit now (it is being stopped, it
	// was removed from the cluster, it is expected to refuse to start);
	// crashes lists the exits nobody expected. Guarded by mu.
	expectExit bool
	crashes    []string
	// rejoined says the member was removed and added back as a new member
	// (no longer a founder). Used by the fault loop only.
	rejoined bool
}

// spawn is a request to start a process, answered on done.
type spawn struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnerOnce sync.Once
	spawns      chan spawn
)

// startLocked starts cmd from one goroutine locked to its OS thread for
// the life of the process. PR_SET_PDEATHSIG fires when the thread that
// started the child ends, not the process (go.dev/issue/27505), and the
// runtime ends the thread of a goroutine that exits while locked to it: a
// member started from an ordinary goroutine can be killed in the middle
// of a run. The spawner's thread never ends before the process does.
func startLocked(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		spawns = make(chan spawn)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for s := range spawns {
				s.done <- s.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawns <- spawn{cmd: cmd, done: done}
	return <-done
}

// pid is the running process's id (0: none).
func (m *Member) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// ClientURL is where clients reach the member.
func (m *Member) ClientURL() string { return fmt.Sprintf("http://%s:%d", m.Addr, ClientPort) }

// PeerURL is where its peers reach it.
func (m *Member) PeerURL() string { return fmt.Sprintf("http://%s:%d", m.Addr, PeerPort) }

// Incarnation returns the number of the running (or last) process.
func (m *Member) Incarnation() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.incarnation
}

// Running reports whether the process runs (paused or not).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// startOptions say how a member process starts.
type startOptions struct {
	// bin is the raftkv binary.
	bin string
	// initialCluster is --initial-cluster; existing joins a running
	// cluster (--initial-cluster-state existing).
	initialCluster string
	existing       bool
	// token is --initial-cluster-token.
	token string
	// heartbeatMs and electionMs are raft's timing; snapshotCount the
	// entries between snapshots.
	heartbeatMs, electionMs, snapshotCount int
	// plantedBug, if set, is passed as the hidden --planted-bug flag.
	plantedBug string
	// mayExit says the process is expected to exit by itself (to refuse
	// to start).
	mayExit bool
}

// start starts the member's process in its namespace and waits until it
// serves clients (or exits, or ready passes).
func (m *Member) start(o startOptions, ready time.Duration) error {
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		return fmt.Errorf("nemesis: %s is already running", m.Name)
	}
	log, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	state := "new"
	if o.existing {
		state = "existing"
	}
	args := []string{"netns", "exec", m.Namespace, o.bin, "serve",
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL(), "--listen-peer-urls", m.PeerURL(),
		"--initial-cluster", o.initialCluster, "--initial-cluster-state", state,
		"--initial-cluster-token", o.token,
		"--heartbeat-interval", fmt.Sprint(o.heartbeatMs), "--election-timeout", fmt.Sprint(o.electionMs),
		"--snapshot-count", fmt.Sprint(o.snapshotCount),
		// Plain GETs are served from the member's copy, as etcd does by
		// default, so that the clients can ask for both kinds of read:
		// quorum=true is linearizable, a plain GET serializable.
		"--serializable-reads",
	}
	if o.plantedBug != "" {
		args = append(args, "--planted-bug", o.plantedBug)
	}
	m.incarnation++
	fmt.Fprintf(log, "=== nemesis: %s start #%d (%s) at %s\n", m.Name, m.incarnation, state, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = log, log
	// The member dies with the harness even if it is killed without a
	// chance to clean up (the next run's cleanup is the second line of
	// defence), and a Ctrl-C at the terminal reaches the harness alone,
	// which stops the members itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := startLocked(cmd); err != nil {
		log.Close()
		m.mu.Unlock()
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited, m.exitErr, m.paused, m.expectExit = cmd, exited, nil, false, o.mayExit
	incarnation := m.incarnation
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		log.Close()
		m.mu.Lock()
		m.exitErr = err
		if !m.expectExit {
			m.crashes = append(m.crashes, fmt.Sprintf("%s (start #%d) exited unexpectedly: %v", m.Name, incarnation, err))
		}
		m.mu.Unlock()
		close(exited)
	}()
	return m.waitServing(exited, ready)
}

// waitServing waits until the member answers /version.
func (m *Member) waitServing(exited chan struct{}, within time.Duration) error {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(within)
	for {
		resp, err := hc.Get(m.ClientURL() + "/version")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start: %v; its log ends:\n%s", m.Name, m.exitError(), m.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not serve clients within %v: %v", m.Name, within, err)
		}
	}
}

func (m *Member) exitError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exitErr
}

// signal sends sig to the running process.
func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("nemesis: %s is not running", m.Name)
	}
	if sig == syscall.SIGSTOP {
		m.paused = true
	}
	if sig == syscall.SIGCONT {
		m.paused = false
	}
	return m.cmd.Process.Signal(sig)
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (m *Member) Pause() error  { return m.signal(syscall.SIGSTOP) }
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT) }

// Kill SIGKILLs the process (no chance to flush or sync anything) and
// waits for it to be gone. A member that is not running is left alone.
func (m *Member) Kill() {
	m.stop(syscall.SIGKILL, 0)
}

// Stop asks the process to stop (SIGTERM), killing it after grace.
func (m *Member) Stop(grace time.Duration) {
	m.stop(syscall.SIGTERM, grace)
}

func (m *Member) stop(sig syscall.Signal, grace time.Duration) {
	m.mu.Lock()
	cmd, exited, paused := m.cmd, m.exited, m.paused
	m.expectExit = true
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	m.mu.Lock()
	m.cmd, m.paused = nil, false
	m.mu.Unlock()
}

// expectExitNow says the process may now exit by itself.
func (m *Member) expectExitNow() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expectExit = true
}

// expectExitOff says the process must not exit by itself any more.
func (m *Member) expectExitOff() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expectExit = false
}

// Crashes lists the exits of the member's processes that nobody caused.
func (m *Member) Crashes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.crashes...)
}

// reap forgets a process that exited by itself (a removed member stops),
// so that it can be started again.
func (m *Member) reap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	select {
	case <-m.exited:
		m.cmd = nil
	default:
	}
}

// waitExit waits up to d for the process to exit by itself.
func (m *Member) waitExit(d time.Duration) bool {
	m.mu.Lock()
	exited, running := m.exited, m.cmd != nil
	m.mu.Unlock()
	if !running {
		return true
	}
	select {
	case <-exited:
		m.reap()
		return true
	case <-time.After(d):
		return false
	}
}

// Wipe removes the member's data directory's contents (the process must
// not run). The directory itself stays: it may be a mount point.
func (m *Member) Wipe() error {
	entries, err := os.ReadDir(m.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(m.DataDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// logSize is the length of the member's log so far.
func (m *Member) logSize() int64 {
	st, err := os.Stat(m.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// countLog counts the lines of the log after offset from that contain any
// of words (case-insensitive).
func (m *Member) countLog(from int64, words ...string) int {
	data, err := os.ReadFile(m.LogPath)
	if err != nil || int64(len(data)) < from {
		return 0
	}
	n := 0
	for _, line := range strings.Split(strings.ToLower(string(data[from:])), "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				n++
				break
			}
		}
	}
	return n
}

// LogTail returns the last n lines of the member's log.
func (m *Member) LogTail(n int) string {
	data, err := os.ReadFile(m.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stats returns the member's /v2/stats/self and /v2/stats/leader bodies
// (or why not), for a liveness failure's report.
func (m *Member) Stats(ctx context.Context) string {
	var b strings.Builder
	hc := &http.Client{Timeout: time.Second}
	for _, p := range []string{"/v2/stats/self", "/v2/stats/leader"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL()+p, nil)
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		resp.Body.Close()
		fmt.Fprintf(&b, "%s: %s %s\n", p, resp.Status, strings.TrimSpace(string(body)))
	}
	return b.String()
}
