package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/raftkv/raftkv/client/recipe/recipecheck"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// This file runs the lock recipe of client/recipe inside the simulator, so
// that seeds exercise it under partitions, crashes and pauses: lock
// clients queue as in-order keys with a TTL under one directory, the
// lowest key holds the lock, the holder keeps its key alive with refreshes
// and believes it holds the lock only while its last successful refresh is
// younger than the TTL (by its own clock, from the refresh's send time).
// The simulator's clients poll with linearizable reads where a real client
// watches its predecessor; what is checked is the same: no two holders at
// once unless the first was told it lost the lock before the second
// entered, and fencing tokens (the key's createdIndex) that grow with each
// acquisition. Now and then a holder's link stalls with a refresh out (the
// answer comes late): its watchdog must tell it it lost the lock at the
// earliest moment the key may expire.

// lockDir is the directory the lock clients queue in.
const lockDir = "/recipe/lock"

// maxDuration stands for "no time".
const maxDuration = time.Duration(1<<63 - 1)

// recipeOpTimeout bounds how long a recipe client waits for an answer
// before it tries another member.
const recipeOpTimeout = 500 * time.Millisecond

// lockState is where a lock client is in its loop.
type lockState uint8

const (
	lockIdle lockState = iota
	lockQueued
	lockHolding
)

// recipeClient is what every recipe client has: the member it talks to,
// its one outstanding operation, and its step, which its timers and the
// answers to its operations wake.
type recipeClient struct {
	id     int // its index in Simulation.recipeClients
	target int
	// busy says an operation is outstanding; op numbers it, so that a late
	// answer to an operation given up on is ignored.
	busy bool
	op   uint64
	// giveUp ends the outstanding operation without an answer.
	giveUp func()
	step   func()
	// stallUntil holds the answers to the client back until then: its
	// link to the cluster stalls (the requests already sent go on).
	stallUntil time.Duration
}

// lockClient is one contender for the lock.
type lockClient struct {
	*recipeClient
	state lockState
	// key and token are the client's queue key and its createdIndex;
	// modified its modifiedIndex (a refresh moves it).
	key             string
	token, modified uint64
	// alive is the send time of the last successful create or refresh;
	// uncertain the send time of the first refresh whose outcome is
	// unknown (maxDuration if none). A refresh applies with the time it
	// was sent, so one that applies late sets an earlier expiry than a
	// later one did: the key lives until min(alive, uncertain) + TTL at
	// least, and no longer than that can the holder count on it.
	alive, uncertain time.Duration
	// section is the open critical section's index in recipeSections, or -1.
	section int
	// releaseAt is when the holder lets go; nextRefresh when it refreshes.
	releaseAt, nextRefresh time.Duration
}

// LockSection is one critical section as the holder saw it: entered at
// Enter with fencing token Token, left (released, or told the lock was
// lost) at Exit.
type LockSection struct {
	Client      int
	Token       uint64
	Enter, Exit time.Duration
	// Lost says the holder was told it lost the lock (its session ran out)
	// rather than releasing it.
	Lost bool
}

// lockParams are the lock workload's settings.
type lockParams struct {
	clients int
	ttl     time.Duration
	holdMax time.Duration
}

// drawLockParams draws, from their own stream, the lock workload of a
// key-space run with Config.LockRecipe. (It is off in the default
// campaign, so that a seed replays the run it did before it existed;
// TestLockRecipeHolds and raftkv sim --lock-recipe run it.)
func drawLockParams(cfg Config) lockParams {
	rng := rand.New(rand.NewPCG(cfg.Seed, streamRecipes))
	lp := lockParams{clients: 2 + rng.IntN(4), ttl: time.Duration(1+rng.IntN(2)) * time.Second}
	// Short sections in half the runs; in the other half, holders outstay
	// their TTL and live on refreshes.
	lp.holdMax = lp.ttl / 4
	if rng.IntN(2) == 0 {
		lp.holdMax = 3 * lp.ttl
	}
	if cfg.Kind != KindKV || !cfg.LockRecipe {
		lp.clients = 0
	}
	return lp
}

// startLockClients starts the run's lock clients.
func (s *Simulation) startLockClients() {
	s.lockRng = rand.New(rand.NewPCG(s.cfg.Seed, streamRecipes+1))
	s.lock = drawLockParams(s.cfg)
	for c := range s.lock.clients {
		rc := s.newRecipeClient(func() { s.lockStep(c) })
		s.lockClients = append(s.lockClients, lockClient{recipeClient: rc, section: -1})
	}
}

// newRecipeClient adds a recipe client whose step is step, and wakes it
// within 200ms.
func (s *Simulation) newRecipeClient(step func()) *recipeClient {
	rc := &recipeClient{id: len(s.recipeClients), target: s.lockRng.IntN(s.p.Members), step: step}
	s.recipeClients = append(s.recipeClients, rc)
	s.wake(rc, time.Duration(s.lockRng.Int64N(int64(200*time.Millisecond))))
	return rc
}

// wake runs rc's step after wait.
func (s *Simulation) wake(rc *recipeClient, wait time.Duration) {
	s.q.push(event{at: s.now + wait, kind: evRecipe, member: rc.id})
}

// lockStep moves lock client c on: it is woken by its timers and by the
// answers to its operations.
func (s *Simulation) lockStep(c int) {
	lc := &s.lockClients[c]
	if lc.state == lockHolding && lc.section >= 0 && s.now >= s.lockDeadline(lc) && s.cfg.Bug != BugLockNoTTL {
		// The session may have expired: the holder is told, and stops.
		s.lockExit(c, s.lockDeadline(lc), true)
		lc.state = lockIdle
	}
	if lc.busy || s.phase != phaseFaults {
		return
	}
	switch lc.state {
	case lockIdle:
		lc.key, lc.token = "", 0
		s.lockCreate(c)
	case lockQueued:
		if s.now >= lc.nextRefresh {
			s.lockRefresh(c)
		} else {
			s.lockPoll(c)
		}
	case lockHolding:
		switch {
		case s.now >= lc.releaseAt:
			s.lockRelease(c)
		case s.now >= lc.nextRefresh:
			s.lockRefresh(c)
		default:
			wake := min(lc.releaseAt, lc.nextRefresh)
			if s.cfg.Bug != BugLockNoTTL {
				wake = min(wake, s.lockDeadline(lc))
			}
			s.wake(lc.recipeClient, max(wake-s.now, time.Millisecond))
		}
	}
}

// lockDeadline is when client lc's key may expire at the earliest.
func (s *Simulation) lockDeadline(lc *lockClient) time.Duration {
	if s.cfg.Bug == BugLockAliveFromAnswer {
		return lc.alive + s.lock.ttl // and alive is an answer's time
	}
	return min(lc.alive, lc.uncertain) + s.lock.ttl
}

// lockSend sends client c's request.
func (s *Simulation) lockSend(c int, req server.Request, then func(sent time.Duration, r *server.Response, unknown bool) (wait time.Duration)) {
	s.recipeSend(s.lockClients[c].recipeClient, req, then)
}

// recipeSend submits rc's request; then runs with the answer (nil for
// none: the member refused or crashed, or the client gave up; unknown says
// the request may still take effect) and says how long the client waits
// before its next step.
func (s *Simulation) recipeSend(rc *recipeClient, req server.Request, then func(sent time.Duration, r *server.Response, unknown bool) (wait time.Duration)) {
	rc.busy = true
	rc.op++
	op, sent := rc.op, s.now
	sm := s.members[rc.target]
	var finish func(r *server.Response, unknown bool)
	finish = func(r *server.Response, unknown bool) {
		if rc.op != op || !rc.busy {
			return // given up on already
		}
		if s.now < rc.stallUntil {
			s.later(rc.stallUntil, func() { finish(r, unknown) })
			return
		}
		rc.busy = false
		wait := then(sent, r, unknown)
		if r == nil || r.Err != nil {
			// No answer, or an error: try another member, a little later.
			rc.target = s.lockRng.IntN(s.p.Members)
			wait = max(wait, 10*time.Millisecond)
		}
		s.wake(rc, wait)
	}
	done := func(reply Reply) {
		var r *server.Response
		if reply.Err == nil {
			r = reply.Response
		}
		unknown := reply.Err != nil && !errors.Is(reply.Err, ErrRefused) || r != nil && isCode(r.Err, kvstore.CodeRaftInternal)
		if s.inProcess >= 0 {
			s.deferReply(func() { finish(r, unknown) })
			return
		}
		finish(r, unknown)
	}
	rc.giveUp = func() { finish(nil, true) }
	s.q.push(event{at: s.now + min(s.p.ClientTimeout, recipeOpTimeout), kind: evRecipeTimeout, member: rc.id, arg: op})
	id := Op{ID: 1<<61 | uint64(rc.id)<<32 | op, Request: &req}
	switch {
	case !sm.up || sm.failed:
		done(Reply{Err: ErrRefused})
	case sm.paused:
		sm.submissions = append(sm.submissions, submission{id, done})
	default:
		sm.m.Submit(id, done)
		s.scheduleProcess(rc.target)
	}
}

// recipeTimeout gives up on client i's operation op if it is still out.
func (s *Simulation) recipeTimeout(i int, op uint64) {
	if rc := s.recipeClients[i]; rc.busy && rc.op == op {
		rc.giveUp()
	}
}

// later runs fn at time at.
func (s *Simulation) later(at time.Duration, fn func()) {
	s.q.push(event{at: at, kind: evDeferred, arg: uint64(len(s.replies))})
	s.replies = append(s.replies, fn)
}

// deferReply runs fn once the member's round of work is on disk.
func (s *Simulation) deferReply(fn func()) {
	s.deferred = append(s.deferred, fn)
}

func (s *Simulation) lockCreate(c int) {
	ttl := uint64(s.lock.ttl / time.Second)
	req := server.Request{Kind: server.RequestWrite, Command: kvstore.Command{Op: kvstore.OpCreateInOrder, Path: lockDir, Value: fmt.Sprintf("c%d", c), HasTTL: true, TTL: ttl}}
	s.lockSend(c, req, func(sent time.Duration, r *server.Response, _ bool) time.Duration {
		lc := &s.lockClients[c]
		if r == nil || r.Err != nil || r.Event == nil || r.Event.Node == nil {
			return 0 // idle: try again (a key made unknowingly expires)
		}
		lc.key, lc.token, lc.modified, lc.alive = r.Event.Node.Key, r.Event.Node.CreatedIndex, r.Event.Node.ModifiedIndex, sent
		lc.uncertain = maxDuration
		lc.state, lc.nextRefresh = lockQueued, sent+s.lock.ttl/3
		return 0
	})
}

// lockPoll reads the queue: the lowest key holds the lock.
func (s *Simulation) lockPoll(c int) {
	req := server.Request{Kind: server.RequestRead, Path: lockDir, Get: kvstore.GetOptions{Sorted: true}}
	s.lockSend(c, req, func(_ time.Duration, r *server.Response, _ bool) time.Duration {
		lc := &s.lockClients[c]
		if lc.state != lockQueued || r == nil || r.Err != nil || r.Event == nil || r.Event.Node == nil {
			return 0
		}
		var keys []*kvstore.Node
		for _, n := range r.Event.Node.Nodes {
			if !n.Dir {
				keys = append(keys, n)
			}
		}
		slices.SortFunc(keys, func(a, b *kvstore.Node) int { return int(a.CreatedIndex) - int(b.CreatedIndex) })
		mine := slices.IndexFunc(keys, func(n *kvstore.Node) bool { return n.Key == lc.key })
		switch {
		case mine < 0:
			lc.state = lockIdle // the key expired: the session is lost
		case mine == 0 && (s.now < s.lockDeadline(lc) || s.cfg.Bug == BugLockNoTTL):
			lc.state = lockHolding
			lc.releaseAt = s.now + time.Duration(s.lockRng.Int64N(int64(s.lock.holdMax)+1))
			lc.section = len(s.lockSections)
			s.lockSections = append(s.lockSections, LockSection{Client: c, Token: lc.token, Enter: s.now})
			s.traceRecipe(c, "lock acquired", lc.token)
		default:
			return time.Duration(5+s.lockRng.IntN(30)) * time.Millisecond // poll again
		}
		return 0
	})
}

// lockRefresh keeps the client's key alive (refresh: the value stays, no
// watcher wakes).
func (s *Simulation) lockRefresh(c int) {
	lc := &s.lockClients[c]
	if lc.state == lockHolding {
		// The holder's watchdog: told at its deadline, answer or not.
		s.wake(lc.recipeClient, max(s.lockDeadline(lc)-s.now, 0))
		if s.lockRng.IntN(4) == 0 {
			// Now and then the holder's link stalls with its refresh out:
			// the answer comes late, if the session still lives by then.
			lc.stallUntil = s.now + time.Duration(s.lockRng.Int64N(int64(3*s.lock.ttl/2)))
		}
	}
	ttl := uint64(s.lock.ttl / time.Second)
	req := server.Request{Kind: server.RequestWrite, Command: kvstore.Command{Op: kvstore.OpSet, Path: lc.key, PrevExist: kvstore.PrevExistTrue, Refresh: true, HasTTL: true, TTL: ttl}}
	s.lockSend(c, req, func(sent time.Duration, r *server.Response, unknown bool) time.Duration {
		lc := &s.lockClients[c]
		switch {
		case unknown:
			lc.uncertain = min(lc.uncertain, sent)
		case r != nil && r.Err == nil:
			if s.cfg.Bug == BugLockAliveFromAnswer {
				sent = s.now
			}
			lc.alive, lc.nextRefresh = sent, sent+s.lock.ttl/3
			if r.Event != nil && r.Event.Node != nil {
				lc.modified = r.Event.Node.ModifiedIndex
			}
		case r != nil && isCode(r.Err, kvstore.CodeKeyNotFound):
			// The key expired: whoever is next may hold the lock now.
			if lc.state == lockHolding && lc.section >= 0 {
				s.lockExit(c, s.now, true)
			}
			lc.state = lockIdle
		}
		return 0
	})
}

// lockRelease deletes the holder's key (compare-and-delete on its last
// modifiedIndex: a key that expired and was made again by someone else is
// not touched); the holder stops believing it holds the lock as it sends
// the delete.
func (s *Simulation) lockRelease(c int) {
	lc := &s.lockClients[c]
	s.lockExit(c, s.now, false)
	req := server.Request{Kind: server.RequestWrite, Command: kvstore.Command{Op: kvstore.OpDelete, Path: lc.key, PrevIndex: lc.modified}}
	lc.state = lockIdle
	s.lockSend(c, req, func(time.Duration, *server.Response, bool) time.Duration { return 0 })
}

func (s *Simulation) lockExit(c int, at time.Duration, lost bool) {
	lc := &s.lockClients[c]
	if lc.section < 0 {
		return
	}
	sec := &s.lockSections[lc.section]
	sec.Exit, sec.Lost = max(at, sec.Enter), lost
	lc.section = -1
	what := "lock released"
	if lost {
		what = "lock lost: session expired"
	}
	s.traceRecipe(c, what, lc.token)
}

func (s *Simulation) traceRecipe(c int, what string, token uint64) {
	s.logf("lock client %d: %s (token %d)", c, what, token)
	if s.viewing() {
		s.endLine(s.line("recipe").num("client", uint64(c+1)).str("detail", what).num("token", token))
	}
}

// checkLockSections checks the critical sections once the run is over:
// sections still open end when the run did (or, for a correct holder,
// when its session could have run out).
func (s *Simulation) checkLockSections() {
	for c := range s.lockClients {
		lc := &s.lockClients[c]
		if lc.section >= 0 {
			end := s.now
			if s.cfg.Bug != BugLockNoTTL {
				end = min(end, s.lockDeadline(lc))
			}
			s.lockExit(c, end, false)
		}
	}
	if err := CheckLockSections(s.lockSections); err != nil {
		s.fail(FailSafety, InvLockExclusive, err.Error())
	}
}

// CheckLockSections checks a lock's critical sections with the recipes'
// own checker (recipecheck.CheckLock): no two overlap (the first must have
// left, or been told it lost the lock, before the second entered) and
// fencing tokens grow with each acquisition.
func CheckLockSections(sections []LockSection) error {
	var out []recipecheck.Section
	for _, sec := range sections {
		// Virtual times as times near the Unix epoch: the checker prints
		// them as offsets.
		rs := recipecheck.Section{Holder: fmt.Sprintf("lock client %d", sec.Client), Token: sec.Token, Enter: time.Unix(0, int64(sec.Enter))}
		if sec.Lost {
			rs.Lost = time.Unix(0, int64(sec.Exit))
		} else {
			rs.Exit = time.Unix(0, int64(sec.Exit))
		}
		out = append(out, rs)
	}
	return recipecheck.CheckLock(out)
}

func isCode(err error, code int) bool {
	var e *kvstore.Error
	return errors.As(err, &e) && e.Code == code
}
