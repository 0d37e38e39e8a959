package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// startLocalCluster runs n members on real event loops, connected in
// process, on memory file systems, with a fast tick.
func startLocalCluster(t *testing.T, n int) []*Runtime {
	t.Helper()
	var infos []MemberInfo
	for i := 1; i <= n; i++ {
		infos = append(infos, MemberInfo{ID: uint64(i), Name: fmt.Sprintf("m%d", i)})
	}
	net := NewLocalNetwork()
	var rts []*Runtime
	for _, info := range infos {
		m, err := New(Config{ID: info.ID, Name: info.Name, InitialCluster: infos, FS: storage.NewMemFS(), Dir: "data",
			Rand: rand.New(rand.NewPCG(info.ID, 1)), TickMillis: 10, ElectionTicks: 10})
		require.NoError(t, err)
		rt := NewRuntime(m, net, RuntimeOptions{Tick: 10 * time.Millisecond})
		net.Join(info.ID, rt)
		rts = append(rts, rt)
	}
	for _, rt := range rts {
		rt.Start()
	}
	t.Cleanup(func() {
		for _, rt := range rts {
			assert.NoError(t, rt.Stop())
		}
	})
	return rts
}

func TestRuntimeConcurrentClients(t *testing.T) {
	rts := startLocalCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const clients, writes = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients*writes)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := rts[c%len(rts)]
			for i := range writes {
				for {
					r, err := rt.Do(ctx, set(fmt.Sprintf("/c%d/%d", c, i), "v"))
					if err != nil {
						errs <- err
						return
					}
					if r.Err == nil {
						break
					}
					// No leader yet, or a timeout while one is elected:
					// retry (a set is idempotent).
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Every member answers a linearizable read with every write.
	for _, rt := range rts {
		r, err := rt.Do(ctx, Request{Kind: RequestRead, Path: "/", Get: kvstore.GetOptions{Recursive: true}})
		require.NoError(t, err)
		require.NoError(t, r.Err)
		total := 0
		for _, dir := range r.Event.Node.Nodes {
			total += len(dir.Nodes)
		}
		assert.Equal(t, clients*writes, total)
	}
	st := rts[0].Status()
	assert.NotZero(t, st.Leader)
	assert.NotZero(t, st.Commit)
}

func TestRuntimeStopAnswersPendingRequests(t *testing.T) {
	rts := startLocalCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Wait for the member to lead.
	for rts[0].Status().Leader == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	r, err := rts[0].Do(ctx, set("/a", "1"))
	require.NoError(t, err)
	require.NoError(t, r.Err)
	var members []MemberInfo
	require.NoError(t, rts[0].Query(ctx, func(m *Member) { members = m.Members() }))
	assert.Len(t, members, 1)
	require.NoError(t, rts[0].Stop())
	_, err = rts[0].Do(ctx, set("/b", "2"))
	assert.ErrorIs(t, err, ErrRuntimeStopped)
}

// A reused call takes only its own request's answer: an answer for the
// request it served before, or a second one, is dropped rather than handed
// to the wrong caller.
func TestPendingCallTakesOnlyItsRequestsAnswer(t *testing.T) {
	rt := &Runtime{member: &Member{}}
	p := rt.newPendingCall()
	first := p.gen
	p.finish(first, Response{RaftIndex: 1})
	p.finish(first, Response{RaftIndex: 2})
	require.Len(t, p.answer, 1)
	assert.Equal(t, uint64(1), (<-p.answer).RaftIndex)

	p.mu.Lock()
	p.gen++ // reused, as newPendingCall does with a pooled call
	p.mu.Unlock()
	p.finish(first, Response{RaftIndex: 3})
	assert.Empty(t, p.answer, "an answer for the earlier request")
	p.finish(p.gen, Response{RaftIndex: 4})
	assert.Equal(t, uint64(4), (<-p.answer).RaftIndex)

	p.abandon()
	p.finish(p.gen, Response{RaftIndex: 5})
	assert.Empty(t, p.answer, "nobody waits after abandon")
}

// gateFS holds every file Sync while its gate is shut, telling when one
// waits.
type gateFS struct {
	storage.FS
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	waiting chan struct{}
}

func (g *gateFS) Create(name string) (storage.File, error) {
	f, err := g.FS.Create(name)
	return gateFile{f, g}, err
}

func (g *gateFS) Open(name string) (storage.File, error) {
	f, err := g.FS.Open(name)
	return gateFile{f, g}, err
}

type gateFile struct {
	storage.File
	g *gateFS
}

func (f gateFile) Sync() error {
	f.g.mu.Lock()
	gate, waiting := f.g.gate, f.g.waiting
	f.g.mu.Unlock()
	if gate != nil {
		waiting <- struct{}{}
		<-gate
	}
	return f.File.Sync()
}

// sentTransport records what a runtime sends.
type sentTransport struct{ sent chan raft.Message }

func (s sentTransport) Send(msgs []raft.Message) {
	for _, m := range msgs {
		s.sent <- m
	}
}

// A follower acknowledges an append as soon as its disk has it, not when
// its event loop next runs: here the loop is busy all along.
func TestRuntimeAcknowledgesFromTheDisk(t *testing.T) {
	infos := []MemberInfo{{ID: 1, Name: "m1"}, {ID: 2, Name: "m2"}, {ID: 3, Name: "m3"}}
	fs := &gateFS{FS: storage.NewMemFS(), waiting: make(chan struct{}, 1)}
	m, err := New(Config{ID: 2, Name: "m2", InitialCluster: infos, FS: fs, Dir: "data",
		Rand: rand.New(rand.NewPCG(2, 1)), TickMillis: 1000, ElectionTicks: 100})
	require.NoError(t, err)
	tr := sentTransport{sent: make(chan raft.Message, 100)}
	rt := NewRuntime(m, tr, RuntimeOptions{Tick: time.Hour})
	rt.Start()
	defer func() { assert.NoError(t, rt.Stop()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last uint64 // the founding configuration's entries, applied
	for last == 0 {
		require.NoError(t, rt.Query(ctx, func(m *Member) { last = m.node.Status().Applied }))
	}

	fs.mu.Lock()
	fs.gate = make(chan struct{})
	fs.mu.Unlock()
	rt.Receive(raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 2, Index: last, LogTerm: 1,
		Entries: []raft.Entry{{Index: last + 1, Term: 2}}, Commit: last})
	select {
	case <-fs.waiting:
	case <-ctx.Done():
		t.Fatal("the append was never written")
	}
	loopBusy, loopFree := make(chan struct{}), make(chan struct{})
	go rt.Query(context.Background(), func(*Member) { close(loopBusy); <-loopFree })
	<-loopBusy
	defer close(loopFree)
	fs.mu.Lock()
	close(fs.gate)
	fs.gate = nil
	fs.mu.Unlock()
	for {
		select {
		case m := <-tr.sent:
			if m.Type == raft.MsgAppResp {
				assert.False(t, m.Reject)
				assert.Equal(t, last+1, m.Index)
				return
			}
		case <-ctx.Done():
			t.Fatal("no acknowledgement while the event loop was busy")
		}
	}
}

// TestRuntimeStatusTellsSinceWhenTheLeaderLeads checks that the status
// dates the leader from when this member first heard from it, not from
// its later messages, and dates a new leader afresh.
func TestRuntimeStatusTellsSinceWhenTheLeaderLeads(t *testing.T) {
	infos := []MemberInfo{{ID: 1, Name: "m1"}, {ID: 2, Name: "m2"}, {ID: 3, Name: "m3"}}
	m, err := New(Config{ID: 2, Name: "m2", InitialCluster: infos, FS: storage.NewMemFS(), Dir: "data",
		Rand: rand.New(rand.NewPCG(2, 1)), TickMillis: 1000, ElectionTicks: 100})
	require.NoError(t, err)
	tr := sentTransport{sent: make(chan raft.Message, 100)}
	rt := NewRuntime(m, tr, RuntimeOptions{Tick: time.Hour})
	var now atomic.Int64 // seconds after t0
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	rt.clock = func() time.Time { return t0.Add(time.Duration(now.Load()) * time.Second) }
	rt.Start()
	defer func() { assert.NoError(t, rt.Stop()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// heartbeat steps a heartbeat from a leader at the given second and
	// returns the status of the round that stepped it: the answer leaves
	// in that round, and a query runs only after the round's status.
	heartbeat := func(at int64, from, term uint64) RuntimeStatus {
		t.Helper()
		now.Store(at)
		rt.Receive(raft.Message{Type: raft.MsgHeartbeat, From: from, To: 2, Term: term})
		for answered := false; !answered; {
			select {
			case m := <-tr.sent:
				answered = m.Type == raft.MsgHeartbeatResp && m.To == from
			case <-ctx.Done():
				t.Fatal("the heartbeat was never answered")
			}
		}
		require.NoError(t, rt.Query(ctx, func(*Member) {}))
		st := rt.Status()
		require.Equal(t, from, st.Leader)
		return st
	}
	assert.Equal(t, t0.Add(5*time.Second), heartbeat(5, 1, 2).LeaderSince, "first heard from member 1")
	assert.Equal(t, t0.Add(5*time.Second), heartbeat(9, 1, 2).LeaderSince, "member 1 still leads")
	assert.Equal(t, t0.Add(20*time.Second), heartbeat(20, 3, 3).LeaderSince, "member 3 leads now")
}
