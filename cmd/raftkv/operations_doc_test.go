package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// docStep is one step of docs/operations.md: a command block marked
// <!-- test: run NAME -->, <!-- test: background NAME --> (a member that
// keeps running; NAME is the prefix of its $NAME_CLIENT), <!-- test: fails
// NAME --> (a command that must end in an error), or the bare <!-- test:
// stop NAME --> and <!-- test: stop-all --> (stop that member, or every
// member started so far).
type docStep struct {
	kind, name, script string
	line               int
}

var docDirective = regexp.MustCompile(`^<!-- test: (run|fails|background|stop-all|stop) ?(\S*) -->$`)

// parseOperationsDoc reads the steps of the doc at path, in order.
func parseOperationsDoc(t *testing.T, path string) []docStep {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []docStep
	var pending *docStep
	var block []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case inBlock && line == "```":
			inBlock = false
			if pending != nil {
				pending.script = strings.Join(block, "\n") + "\n"
				steps = append(steps, *pending)
				pending = nil
			}
		case inBlock:
			block = append(block, line)
		case strings.HasPrefix(line, "```"):
			inBlock, block = true, nil
			if pending != nil && line != "```sh" {
				t.Fatalf("%s:%d: the block after the test directive is not a sh block", path, n)
			}
		default:
			m := docDirective.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if pending != nil {
				t.Fatalf("%s:%d: a test directive without its command block (line %d)", path, n, pending.line)
			}
			step := docStep{kind: m[1], name: m[2], line: n}
			if step.kind == "stop-all" || step.kind == "stop" {
				steps = append(steps, step)
			} else {
				pending = &step
			}
		}
	}
	if pending != nil {
		t.Fatalf("%s:%d: a test directive without its command block", path, pending.line)
	}
	return steps
}

// docRun runs the doc's steps in a directory of their own.
type docRun struct {
	t          *testing.T
	dir        string
	env        []string
	urls       map[string]string
	background map[string]*exec.Cmd
	logs       map[string]*lockedBuffer
}

func (r *docRun) command(script string) *exec.Cmd {
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func (r *docRun) step(s docStep) string {
	r.t.Helper()
	switch s.kind {
	case "stop-all":
		r.stopAll()
		return ""
	case "stop":
		cmd := r.background[s.name]
		if cmd == nil {
			r.t.Fatalf("docs/operations.md:%d: no member %s runs", s.line, s.name)
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		delete(r.background, s.name)
		return ""
	case "background":
		cmd := r.command(s.script)
		logs := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			r.t.Fatalf("docs/operations.md:%d: %v", s.line, err)
		}
		r.background[s.name], r.logs[s.name] = cmd, logs
		client := r.urls[s.name+"_CLIENT"]
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(client + "/version")
			if err == nil {
				resp.Body.Close()
				return ""
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("docs/operations.md:%d: %s does not serve clients at %s: %v\n%s", s.line, s.name, client, err, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := r.command(s.script)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	if s.kind == "fails" {
		if err == nil {
			r.t.Fatalf("docs/operations.md:%d: step %s succeeded, the doc says it fails:\n%s", s.line, s.name, out.String())
		}
		return out.String()
	}
	if err != nil {
		r.t.Fatalf("docs/operations.md:%d: step %s failed: %v\n%s\n%s", s.line, s.name, err, s.script, out.String())
	}
	return out.String()
}

func (r *docRun) stopAll() {
	for name, cmd := range r.background {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		delete(r.background, name)
	}
}

// keyState is a key as GET answers it.
type keyState struct {
	Value             string
	Modified, Created uint64
}

// readKeys lists every key (recursively) at endpoint and the X-Etcd-Index.
func readKeys(endpoint string) (map[string]keyState, uint64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(endpoint + "/v2/keys/?recursive=true&quorum=true")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET /v2/keys/: %s: %s", resp.Status, body)
	}
	type node struct {
		Key           string  `json:"key"`
		Value         string  `json:"value"`
		Dir           bool    `json:"dir"`
		ModifiedIndex uint64  `json:"modifiedIndex"`
		CreatedIndex  uint64  `json:"createdIndex"`
		Nodes         []*node `json:"nodes"`
	}
	var ev struct{ Node node }
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, 0, err
	}
	out := map[string]keyState{}
	var walk func(n *node)
	walk = func(n *node) {
		if n.Key != "" {
			v := n.Value
			if n.Dir {
				v = "<dir>"
			}
			out[n.Key] = keyState{Value: v, Modified: n.ModifiedIndex, Created: n.CreatedIndex}
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(&ev.Node)
	index, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	return out, index, nil
}

// TestOperationsDoc runs docs/operations.md: a cluster with a token of its
// own, a member joined with what `member add` printed, a backup taken
// while clients write, every member and data dir lost, a new cluster
// forced from the backup and grown back to three members — and checks
// that every key the backup holds comes back on every member with its
// value, createdIndex and modifiedIndex, and X-Etcd-Index with them.
func TestOperationsDoc(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := raftkvBinary(t)
	steps := parseOperationsDoc(t, filepath.Join("..", "..", "docs", "operations.md"))
	r := &docRun{t: t, dir: t.TempDir(), urls: map[string]string{}, background: map[string]*exec.Cmd{}, logs: map[string]*lockedBuffer{}}
	t.Cleanup(func() {
		r.stopAll()
		if t.Failed() {
			for name, l := range r.logs {
				t.Logf("--- %s output:\n%s", name, l.String())
			}
		}
	})
	for _, m := range []string{"M1", "M2", "M3", "M4", "R1", "R2", "R3"} {
		r.urls[m+"_CLIENT"], r.urls[m+"_PEER"] = "http://"+loopbackAddr(t), "http://"+loopbackAddr(t)
	}
	r.urls["CLUSTER"] = fmt.Sprintf("m1=%s,m2=%s,m3=%s", r.urls["M1_PEER"], r.urls["M2_PEER"], r.urls["M3_PEER"])
	r.urls["ENDPOINTS"] = strings.Join([]string{r.urls["M1_CLIENT"], r.urls["M2_CLIENT"], r.urls["M3_CLIENT"]}, ",")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAFTKV_") && !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "PATH=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		// Faster elections, and snapshots (and WAL segments released)
		// every few entries, so that the backup needs a snapshot.
		"RAFTKV_HEARTBEAT_INTERVAL=50", "RAFTKV_ELECTION_TIMEOUT=500", "RAFTKV_SNAPSHOT_COUNT=25")
	for k, v := range r.urls {
		r.env = append(r.env, k+"="+v)
	}

	var before map[string]keyState
	var during *docWriter
	var backupIndex uint64
	oldIDs := map[string]bool{}
	replaced := false
	for _, s := range steps {
		if s.name == "backup" {
			before, _ = readAllEventually(t, r.urls["M1_CLIENT"])
			during = startDocWriter(strings.Split(r.urls["ENDPOINTS"], ","))
			time.Sleep(300 * time.Millisecond)
		}
		out := r.step(s)
		if s.kind == "background" && s.name == "M2" && replaced {
			want, _ := readAllEventually(t, r.urls["M1_CLIENT"])
			waitSame(t, r.urls["M2_CLIENT"], want, false)
			waitNamed(t, r.urls["M1_CLIENT"], "m2")
		}
		switch s.name {
		case "replace-m2":
			replaced = true
		case "write":
			bulkWrites(t, r.urls["M1_CLIENT"])
		case "check-m4":
			if !strings.Contains(out, "postgres://db1.internal/orders") || !strings.Contains(out, r.urls["M4_PEER"]) {
				t.Fatalf("m4 does not serve /config/db or list itself:\n%s", out)
			}
			waitNamed(t, r.urls["M1_CLIENT"], "m4")
			want, _ := readAllEventually(t, r.urls["M1_CLIENT"])
			waitSame(t, r.urls["M4_CLIENT"], want, false)
			for _, m := range listMembersAt(t, r.urls["M1_CLIENT"]) {
				oldIDs[m.ID] = true
			}
		case "backup":
			time.Sleep(300 * time.Millisecond)
			during.stop()
			m := regexp.MustCompile(`etcd index (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("backup printed %q", out)
			}
			backupIndex, _ = strconv.ParseUint(m[1], 10, 64)
			for _, m := range listMembersAt(t, r.urls["M1_CLIENT"]) {
				oldIDs[m.ID] = true
			}
			t.Logf("backup: %s(%d writes during the backup)", out, len(during.written()))
		case "wipe-m2":
			// A leader among the live members before the next steps (m2
			// may have led).
			waitLeader(t, r.urls["M1_CLIENT"])
		case "wiped-m2":
			for _, want := range []string{"member m2 (ID ", "has already been started", "raftkv member remove ",
				"raftkv member add m2", "--initial-cluster-state existing"} {
				if !strings.Contains(out, want) {
					t.Fatalf("the wiped m2 did not refuse with %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(filepath.Join(r.dir, "m2.data", "wal")); err == nil {
				t.Fatal("the refused m2 wrote a WAL")
			}
		case "disaster":
			for _, d := range []string{"m1.data", "m2.data", "m3.data", "m4.data"} {
				if _, err := os.Stat(filepath.Join(r.dir, d)); err == nil {
					t.Fatalf("%s survived the disaster", d)
				}
			}
		case "check-restored":
			checkRestored(t, r, before, during.written(), backupIndex, oldIDs)
		}
	}
	if backupIndex == 0 {
		t.Fatal("the doc has no backup step")
	}
}

func readAllEventually(t *testing.T, endpoint string) (map[string]keyState, uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		keys, index, err := readKeys(endpoint)
		if err == nil {
			return keys, index
		}
		if time.Now().After(deadline) {
			t.Fatalf("read every key at %s: %v", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSame waits until endpoint holds every key of want as want has it
// (and, if exact, nothing else).
func waitSame(t *testing.T, endpoint string, want map[string]keyState, exact bool) map[string]keyState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _, err := readKeys(endpoint)
		diff := ""
		if err != nil {
			diff = err.Error()
		} else {
			for k, w := range want {
				if got[k] != w {
					diff = fmt.Sprintf("%s is %+v, want %+v", k, got[k], w)
					break
				}
			}
			if diff == "" && exact && len(got) != len(want) {
				diff = fmt.Sprintf("%d keys, want %d", len(got), len(want))
			}
		}
		if diff == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", endpoint, diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bulkWrites adds keys enough for several snapshots, updates, a delete and
// a key with a TTL, so that the backup holds every kind of history.
func bulkWrites(t *testing.T, endpoint string) {
	t.Helper()
	do := func(method, key, form string) {
		req, _ := http.NewRequest(method, endpoint+"/v2/keys"+key, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, key, resp.Status)
		}
	}
	for i := range 60 {
		do(http.MethodPut, fmt.Sprintf("/bulk/k%02d", i), fmt.Sprintf("value=v%d", i))
	}
	do(http.MethodPut, "/bulk/k00", "value=updated")
	do(http.MethodPut, "/bulk/k02", "value=cas&prevValue=v2")
	do(http.MethodDelete, "/bulk/k01", "")
	do(http.MethodPut, "/ttl", "value=long-lived&ttl=3600")
	do(http.MethodPost, "/queue", "value=first")
}

// docWriter writes /during/NNNN keys, one after another, until stopped,
// remembering what each write answered.
type docWriter struct {
	mu    sync.Mutex
	keys  map[string]keyState
	order []string
	quit  chan struct{}
	done  chan struct{}
}

func startDocWriter(endpoints []string) *docWriter {
	w := &docWriter{keys: map[string]keyState{}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		hc := &http.Client{Timeout: 3 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-w.quit:
				return
			default:
			}
			key, value := fmt.Sprintf("/during/%04d", i), fmt.Sprintf("d%d", i)
			req, _ := http.NewRequest(http.MethodPut, endpoints[i%len(endpoints)]+"/v2/keys"+key, strings.NewReader("value="+value))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := hc.Do(req)
			if err != nil {
				continue
			}
			var ev struct {
				Node struct{ ModifiedIndex, CreatedIndex uint64 }
			}
			err = json.NewDecoder(resp.Body).Decode(&ev)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusCreated {
				w.mu.Lock()
				w.keys[key] = keyState{Value: value, Modified: ev.Node.ModifiedIndex, Created: ev.Node.CreatedIndex}
				w.order = append(w.order, key)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *docWriter) stop() { close(w.quit); <-w.done }

func (w *docWriter) written() map[string]keyState {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]keyState{}
	for k, v := range w.keys {
		out[k] = v
	}
	return out
}

func listMembersAt(t *testing.T, endpoint string) []memberEntry {
	t.Helper()
	resp, err := http.Get(endpoint + "/v2/members")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Members []memberEntry }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Members
}

// checkRestored checks the restored cluster: every key from before the
// backup on every member with its indexes; of the keys written during
// the backup, those it holds are a prefix of the writes, as written;
// X-Etcd-Index where the backup left it; three new members.
func checkRestored(t *testing.T, r *docRun, before, during map[string]keyState, backupIndex uint64, oldIDs map[string]bool) {
	t.Helper()
	got := waitSame(t, r.urls["R1_CLIENT"], before, false)
	var kept []string
	for k, v := range got {
		if _, ok := before[k]; ok {
			continue
		}
		if k == "/during" && v.Value == "<dir>" {
			kept = append(kept, k)
			continue
		}
		w, ok := during[k]
		if !ok {
			// A write whose answer was lost: its value, whatever its index.
			w = v
			w.Value = "d" + strings.TrimLeft(strings.TrimPrefix(k, "/during/"), "0")
			if w.Value == "d" {
				w.Value = "d0"
			}
		}
		if w != v {
			t.Fatalf("restored %s is %+v; it was never written so (written: %+v)", k, v, during[k])
		}
		kept = append(kept, k)
	}
	sort.Strings(kept)
	for i, k := range kept[min(1, len(kept)):] {
		if want := fmt.Sprintf("/during/%04d", i); k != want {
			t.Fatalf("the keys written during the backup that it holds are not a prefix of the writes: %s where %s should be (%v)", k, want, kept)
		}
	}
	want := got
	for _, m := range []string{"R1", "R2", "R3"} {
		waitSame(t, r.urls[m+"_CLIENT"], want, true)
		_, index, err := readKeys(r.urls[m+"_CLIENT"])
		if err != nil || index != backupIndex {
			t.Fatalf("%s answers X-Etcd-Index %d (%v), the backup's etcd index is %d", m, index, err, backupIndex)
		}
	}
	members := listMembersAt(t, r.urls["R1_CLIENT"])
	if len(members) != 3 {
		t.Fatalf("the restored cluster has %d members, want 3: %+v", len(members), members)
	}
	for _, m := range members {
		if oldIDs[m.ID] {
			t.Fatalf("restored member %s kept an old ID %s", m.Name, m.ID)
		}
	}
	// A write after the restore takes the next index.
	code, body := putValue(r.urls["R2_CLIENT"]+"/v2/keys/after-restore", "x")
	if code != http.StatusCreated {
		t.Fatalf("write after the restore: %d %s", code, body)
	}
	var ev struct {
		Node struct{ ModifiedIndex uint64 }
	}
	_ = json.Unmarshal([]byte(body), &ev)
	if ev.Node.ModifiedIndex <= backupIndex {
		t.Fatalf("a write after the restore got index %d, not after the backup's %d", ev.Node.ModifiedIndex, backupIndex)
	}
	t.Logf("restored %d keys (%d written during the backup) on 3 new members; etcd index %d", len(want), len(kept), backupIndex)
}

// waitNamed waits until the member named name has published its name.
func waitNamed(t *testing.T, endpoint, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range listMembersAt(t, endpoint) {
			if m.Name == name {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no member named %s at %s", name, endpoint)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLeader waits until endpoint knows a leader that answers.
func waitLeader(t *testing.T, endpoint string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := putValue(endpoint+"/v2/keys/leader-check", "x")
		if code == http.StatusOK || code == http.StatusCreated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader answers through %s", endpoint)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
