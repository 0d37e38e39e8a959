package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Cluster is a raftkv cluster of member processes on the test network.
type Cluster struct {
	Net     *Network
	Members []*Member
	opts    startOptions
	// diskMember is the member whose data directory is a small tmpfs of
	// its own, for the disk-full fault (-1: none); ballast fills it.
	diskMember int
	ballast    string
	logf       func(string, ...any)
	// notes are what the faults brought about that is worth telling but
	// is no violation.
	notesMu sync.Mutex
	notes   []string
}

// note records a note and logs it.
func (c *Cluster) note(s string) {
	c.logf("nemesis: %s", s)
	c.notesMu.Lock()
	defer c.notesMu.Unlock()
	c.notes = append(c.notes, s)
}

// Notes returns the notes so far.
func (c *Cluster) Notes() []string {
	c.notesMu.Lock()
	defer c.notesMu.Unlock()
	return append([]string(nil), c.notes...)
}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Binary is the raftkv binary to run.
	Binary string
	// Members is the cluster's size.
	Members int
	// HeartbeatMs and ElectionMs are raft's timing (etcd's defaults, 100
	// and 1000, when 0).
	HeartbeatMs, ElectionMs int
	// SnapshotCount is the entries between snapshots (0: 500, so that runs
	// take snapshots and members catch up from them).
	SnapshotCount int
	// Token is the cluster token.
	Token string
	// LogDir receives the members' logs.
	LogDir string
	// DiskMB, if > 0, gives the last member a tmpfs of that size as its
	// data directory, for the disk-full fault.
	DiskMB int
	// PlantedBug is passed to every member as --planted-bug (tests of the
	// tests only).
	PlantedBug string
	// Logf receives the harness's messages.
	Logf func(string, ...any)
}

// StartCluster builds the test network and starts one member per test
// host. On error everything is torn down.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.HeartbeatMs == 0 {
		o.HeartbeatMs = 100
	}
	if o.ElectionMs == 0 {
		o.ElectionMs = 1000
	}
	if o.SnapshotCount == 0 {
		o.SnapshotCount = 500
	}
	nw, err := NewNetwork(o.Members, o.Logf)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Net: nw, diskMember: -1, logf: o.Logf}
	c.opts = startOptions{bin: o.Binary, token: o.Token, heartbeatMs: o.HeartbeatMs, electionMs: o.ElectionMs,
		snapshotCount: o.SnapshotCount, plantedBug: o.PlantedBug}
	if err := c.start(o); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(o ClusterOptions) error {
	var initial []string
	for i := range o.Members {
		m := &Member{Index: i, Name: fmt.Sprintf("m%d", i+1), Namespace: c.Net.Namespace(i), Addr: c.Net.Addr(i),
			DataDir: filepath.Join(c.Net.Dir(), fmt.Sprintf("m%d.data", i+1)),
			LogPath: filepath.Join(o.LogDir, fmt.Sprintf("m%d.log", i+1))}
		if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
			return err
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL())
	}
	if o.DiskMB > 0 {
		last := c.Members[len(c.Members)-1]
		if err := syscall.Mount("tmpfs", last.DataDir, "tmpfs", 0, fmt.Sprintf("size=%dm", o.DiskMB)); err != nil {
			return fmt.Errorf("mount a %d MiB tmpfs at %s: %w", o.DiskMB, last.DataDir, err)
		}
		c.diskMember, c.ballast = last.Index, filepath.Join(last.DataDir, "nemesis-ballast")
	}
	c.opts.initialCluster = strings.Join(initial, ",")
	for _, m := range c.Members {
		if err := m.start(c.opts, 20*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every member and removes the test network, mounts and data.
func (c *Cluster) Close() error {
	for _, m := range c.Members {
		m.Kill()
	}
	return c.Net.Close()
}

// Endpoints returns every member's client URL.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL())
	}
	return eps
}

// selfStats is what /v2/stats/self says of a member's role.
type selfStats struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	LeaderInfo struct {
		Leader string `json:"leader"`
	} `json:"leaderInfo"`
}

func (c *Cluster) self(ctx context.Context, m *Member) (selfStats, error) {
	var s selfStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL()+"/v2/stats/self", nil)
	resp, err := (&http.Client{Timeout: 500 * time.Millisecond}).Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Leader returns the member that says it leads, or -1 when none does
// within wait. When several say so (one of them cut off and not yet
// aware), the one the others follow wins.
func (c *Cluster) Leader(ctx context.Context, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		leaders, followed := map[int]bool{}, map[string]int{}
		ids := map[string]int{}
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			s, err := c.self(ctx, m)
			if err != nil {
				continue
			}
			ids[s.ID] = m.Index
			if s.State == "StateLeader" {
				leaders[m.Index] = true
			} else if s.LeaderInfo.Leader != "" {
				followed[s.LeaderInfo.Leader]++
			}
		}
		best, votes := -1, -1
		for i := range leaders {
			n := 0
			for id, k := range followed {
				if ids[id] == i {
					n += k
				}
			}
			if n > votes {
				best, votes = i, n
			}
		}
		if best >= 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return best
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminClient returns a client of every member but skip (-1: none), the
// leader first when known.
func (c *Cluster) adminClient(ctx context.Context, skip int) (*client.Client, error) {
	var eps []string
	for _, m := range c.Members {
		if m.Index != skip {
			eps = append(eps, m.ClientURL())
		}
	}
	cl, err := client.New(client.Config{Endpoints: eps, DialTimeout: time.Second, HeaderTimeoutPerRequest: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	if lead, err := cl.LeaderEndpoint(ctx); err == nil {
		_ = cl.SetEndpoints(append([]string{lead}, eps...))
	}
	return cl, nil
}

// memberID returns the ID the cluster knows member m by (its peer URL).
func (c *Cluster) memberID(ctx context.Context, cl *client.Client, m *Member) (string, error) {
	list, err := cl.Members().List(ctx)
	if err != nil {
		return "", err
	}
	for _, e := range list {
		for _, u := range e.PeerURLs {
			if u == m.PeerURL() {
				return e.ID, nil
			}
		}
	}
	return "", fmt.Errorf("%s (%s) is not a member", m.Name, m.PeerURL())
}

// retry runs f until it succeeds or ctx ends, pausing between attempts.
func retry(ctx context.Context, f func() error) error {
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RemoveMember removes member i from the cluster as an operator would
// (`raftkv member remove`, through the others) and stops its process.
func (c *Cluster) RemoveMember(ctx context.Context, i int) error {
	m := c.Members[i]
	// A removed member stops by itself.
	m.expectExitNow()
	err := retry(ctx, func() error {
		cl, err := c.adminClient(ctx, i)
		if err != nil {
			return err
		}
		defer cl.Close()
		id, err := c.memberID(ctx, cl, m)
		if err != nil {
			if strings.Contains(err.Error(), "is not a member") {
				return nil // an earlier attempt went through
			}
			return err
		}
		return cl.Members().Remove(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("member remove %s: %w", m.Name, err)
	}
	// A removed member stops by itself once it learns of its removal;
	// one cut off from the cluster may never learn it.
	if !m.waitExit(3 * time.Second) {
		m.Stop(2 * time.Second)
	}
	return nil
}

// AddMember adds member i back as a new member with an empty data
// directory, following the operator's steps: `raftkv member add` with its
// peer URL, then `raftkv serve --initial-cluster-state existing` with the
// cluster as the add answered it.
func (c *Cluster) AddMember(ctx context.Context, i int) error {
	m := c.Members[i]
	m.reap()
	if m.Running() {
		return fmt.Errorf("nemesis: add %s: it is still running", m.Name)
	}
	if err := m.Wipe(); err != nil {
		return err
	}
	err := retry(ctx, func() error {
		cl, err := c.adminClient(ctx, i)
		if err != nil {
			return err
		}
		defer cl.Close()
		if _, err := c.memberID(ctx, cl, m); err == nil {
			return nil // an earlier attempt went through
		}
		_, err = cl.Members().Add(ctx, m.PeerURL())
		return err
	})
	if err != nil {
		return fmt.Errorf("member add %s: %w", m.Name, err)
	}
	o := c.opts
	o.existing = true
	m.rejoined = true
	return m.start(o, 20*time.Second)
}

// restartWiped starts member i, its data directory wiped, as it first
// started — under its old identity — and expects it to refuse: with an
// empty log it could vote for a candidate that lacks acknowledged writes.
// A member that was added back since has no founder's identity to come
// back under, and is not tried.
func (c *Cluster) restartWiped(i int) error {
	m := c.Members[i]
	if m.rejoined {
		return nil
	}
	m.reap()
	from := m.logSize()
	o := c.opts
	o.mayExit = true
	err := m.start(o, 15*time.Second)
	if err == nil {
		m.Kill()
		return fmt.Errorf("%s came back under its old identity with a wiped data directory (it must refuse)", m.Name)
	}
	m.reap()
	if !strings.Contains(err.Error(), "exited at start") {
		return fmt.Errorf("%s restarted with a wiped data directory: %w", m.Name, err)
	}
	c.logf("nemesis: %s, its data wiped, refused to come back under its old identity (%d lines say it lost its data)", m.Name, m.countLog(from, "lost its data"))
	return nil
}

// Restart starts a stopped member again on its data directory.
func (c *Cluster) Restart(i int) error {
	c.Members[i].reap()
	return c.Members[i].start(c.opts, 20*time.Second)
}

// FillDisk fills the disk member's file system (disk-full fault).
func (c *Cluster) FillDisk() error {
	if c.diskMember < 0 {
		return errors.New("nemesis: no member has a small disk")
	}
	f, err := os.OpenFile(c.ballast, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// FreeDisk removes the ballast again.
func (c *Cluster) FreeDisk() error {
	if c.diskMember < 0 {
		return nil
	}
	err := os.Remove(c.ballast)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
