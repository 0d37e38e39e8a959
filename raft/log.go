package raft

import (
	"errors"
	"fmt"
)

// raftLog is a member's log: the durable part in storage followed by the
// not-yet-durable part in unstable, with the commit and apply marks.
type raftLog struct {
	storage  Storage
	unstable unstable
	// committed is the highest index known to be committed (Figure 2's
	// commitIndex).
	// Invariant: applied <= committed <= lastIndex().
	committed uint64
	// applied is the highest index the application has applied (Figure 2's
	// lastApplied).
	applied uint64
	// applying is the highest index handed out to be applied (in a Ready
	// not yet advanced, or taken with TakeCommittedEntries).
	// Invariant: applied <= applying <= committed.
	applying uint64
	// maxApplyBytes bounds the committed entries handed out in one Ready.
	maxApplyBytes uint64
	// durableCommit is the commit index as of the last hard state made
	// durable (synced); confBarrier, when not 0, is the index of a committed
	// configuration change beyond it, which waits until durableCommit
	// reaches it. A member that applied a change must come back in the new
	// configuration after a crash: losing the commit index that covers a
	// removal would bring the survivor back needing the vote of a member
	// already stopped. (Commit indexes are otherwise written without a
	// sync: losing one is safe.)
	// Invariant: confBarrier == 0 || durableCommit < confBarrier <= committed.
	durableCommit uint64
	confBarrier   uint64
	// bug is the planted bug, if any (see planted.go).
	bug PlantedBug
}

func newLog(storage Storage, maxApplyBytes uint64) (*raftLog, error) {
	first, err := storage.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: read first index from storage: %w", err)
	}
	last, err := storage.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: read last index from storage: %w", err)
	}
	if last+1 < first {
		return nil, fmt.Errorf("raft: storage's last index %d is before its first index %d", last, first)
	}
	l := &raftLog{storage: storage, maxApplyBytes: maxApplyBytes}
	l.unstable.offset = last + 1
	// Everything up to the snapshot is committed and applied.
	l.committed = first - 1
	l.applied = first - 1
	l.applying = first - 1
	return l, nil
}

func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d applied=%d unstable.offset=%d len(unstable)=%d",
		l.committed, l.applied, l.unstable.offset, len(l.unstable.entries))
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage.FirstIndex: %v", err))
	}
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage.LastIndex: %v", err))
	}
	return i
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		panic(fmt.Sprintf("raft: term of the last entry: %v", err))
	}
	return t
}

// term returns the term of entry i, or ErrCompacted / ErrUnavailable.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	// Below the first index only the entry the snapshot ends with has a
	// known term.
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	t, err := l.storage.Term(i)
	if err == nil || errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return t, err
	}
	panic(fmt.Sprintf("raft: storage.Term(%d): %v", i, err))
}

// zeroTermOnOutOfBounds turns "no such entry" into term 0, which matches
// nothing.
func (l *raftLog) zeroTermOnOutOfBounds(t uint64, err error) uint64 {
	if err == nil {
		return t
	}
	if errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return 0
	}
	panic(fmt.Sprintf("raft: unexpected error: %v", err))
}

// matchTerm reports whether entry i has term t.
func (l *raftLog) matchTerm(i, t uint64) bool {
	gt, err := l.term(i)
	return err == nil && gt == t
}

// isUpToDate is §5.4.1's election restriction: a log with last entry
// (lasti, term) is at least as up to date as ours.
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	return term > l.lastTerm() || (term == l.lastTerm() && lasti >= l.lastIndex())
}

// maybeAppend is the receiver's side of AppendEntries (Figure 2, rules 2-5):
// if entry index has term logTerm, delete any conflicting entries after it,
// append the new ones and advance the commit mark. It returns the last index
// of the new entries and whether the append was accepted.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []Entry) (lastNew uint64, ok bool) {
	if !l.matchTerm(index, logTerm) {
		return 0, false
	}
	lastNew = index + uint64(len(ents))
	ci := l.findConflict(ents)
	if l.bug == BugKeepConflictingSuffix && ci != 0 && ci <= l.lastIndex() {
		ci = min(l.lastIndex()+1, lastNew+1) // keep ours, take only what is beyond
		if ci > lastNew {
			ci = 0
		}
	}
	switch {
	case ci == 0:
		// All entries are already present.
	case ci <= l.committed:
		panic(fmt.Sprintf("raft: entry %d conflicts with committed entry (committed %d)", ci, l.committed))
	default:
		l.append(ents[ci-(index+1):]...)
	}
	// Rule 5: commitIndex = min(leaderCommit, index of last new entry).
	if l.bug == BugCommitPastLastNew {
		lastNew = committed
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true
}

// append adds entries at the end of the log (truncating a conflicting
// suffix first) and returns the new last index.
func (l *raftLog) append(ents ...Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("raft: appending after %d would overwrite committed entries (committed %d)", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

// findConflict returns the index of the first entry of ents that is not in
// the log (different term, or beyond the end), or 0 if all are there.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is at
// most term, and that term. A follower uses it to hint where its log may
// match the leader's; the leader, to skip over a term the follower lacks.
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		t, err := l.term(index)
		if err != nil {
			// Compacted or unavailable: do not look further back.
			return index, 0
		}
		if t <= term {
			return index, t
		}
	}
	return 0, 0
}

// commitTo raises the commit mark.
func (l *raftLog) commitTo(tocommit uint64) {
	if l.committed < tocommit {
		if l.lastIndex() < tocommit {
			panic(fmt.Sprintf("raft: commit index %d is out of range [last index %d]", tocommit, l.lastIndex()))
		}
		l.committed = tocommit
	}
}

// maybeCommit commits up to maxIndex if entry maxIndex is of term: the
// Figure 8 rule, that a leader counts replicas only of its own term's
// entries (§5.4.2).
func (l *raftLog) maybeCommit(maxIndex, term uint64) bool {
	if maxIndex > l.committed && l.zeroTermOnOutOfBounds(l.term(maxIndex)) == term {
		l.commitTo(maxIndex)
		return true
	}
	return false
}

// appliedTo records that the application has applied up to i. (It may
// already know of more: entries taken with TakeCommittedEntries while a
// Ready was outstanding.)
func (l *raftLog) appliedTo(i uint64) {
	if i <= l.applied {
		return
	}
	if l.committed < i {
		panic(fmt.Sprintf("raft: applied(%d) is beyond committed(%d)", i, l.committed))
	}
	l.applied = i
	l.applying = max(l.applying, i)
}

// maxAppliableIndex is the last index that may be handed out for applying:
// committed, durable here with the contents the log now has, and before a
// configuration change whose commit is not durable yet.
func (l *raftLog) maxAppliableIndex() uint64 {
	if l.unstable.snapshot != nil {
		// The snapshot is applied first, when it is durable.
		return 0
	}
	hi := min(l.committed, l.unstable.offset-1)
	if l.confBarrier != 0 {
		hi = min(hi, l.confBarrier-1)
	}
	return hi
}

// confChangeAwaitingCommit returns the position in ents (entries to write)
// of the first configuration change that must wait for a durable commit
// index covering the changes before it, or -1. The commit index covers
// them already in memory: a leader appends a change only after applying
// the one before (pendingConfIndex), and an append that carries a change
// carries a commit index at least that far.
func (l *raftLog) confChangeAwaitingCommit(ents []Entry) int {
	for i := range ents {
		if ents[i].Type == EntryConfChange && l.durableCommit < min(l.committed, ents[i].Index-1) {
			return i
		}
	}
	return -1
}

// setDurableCommit records that a hard state with commit index c is
// durable, which lifts a configuration change's barrier it covers.
func (l *raftLog) setDurableCommit(c uint64) {
	l.durableCommit = max(l.durableCommit, c)
	if l.confBarrier != 0 && l.confBarrier <= l.durableCommit {
		l.confBarrier = 0
	}
}

// hasNextCommittedEnts reports whether entries wait to be applied.
func (l *raftLog) hasNextCommittedEnts() bool {
	return l.applying < l.maxAppliableIndex()
}

// nextCommittedEnts returns the entries to apply next, bounded by
// maxApplyBytes.
func (l *raftLog) nextCommittedEnts() []Entry {
	hi := l.maxAppliableIndex()
	if l.applying >= hi {
		return nil
	}
	ents, err := l.slice(l.applying+1, hi+1, l.maxApplyBytes)
	if err != nil {
		panic(fmt.Sprintf("raft: unexpected error reading entries to apply: %v", err))
	}
	for i := range ents {
		if ents[i].Type == EntryConfChange && ents[i].Index > l.durableCommit {
			// Stop before it until a durable commit index covers it.
			l.confBarrier = ents[i].Index
			ents = ents[:i]
			break
		}
	}
	if len(ents) == 0 {
		return nil
	}
	l.applying = ents[len(ents)-1].Index
	return ents
}

// hasUnstable reports whether anything waits to be made durable.
func (l *raftLog) hasUnstable() bool {
	return len(l.unstable.entries) > 0 || l.unstable.snapshot != nil
}

// entries returns the entries from i on, at most maxSize bytes (at least one).
func (l *raftLog) entries(i, maxSize uint64) ([]Entry, error) {
	if i > l.lastIndex() {
		return nil, nil
	}
	return l.slice(i, l.lastIndex()+1, maxSize)
}

// slice returns the entries in [lo, hi), at most maxSize bytes beyond the
// first, reading the durable part from storage and the rest from unstable.
func (l *raftLog) slice(lo, hi, maxSize uint64) ([]Entry, error) {
	if err := l.mustCheckOutOfBounds(lo, hi); err != nil {
		return nil, err
	}
	if lo == hi {
		return nil, nil
	}
	var ents []Entry
	if lo < l.unstable.offset {
		stored, err := l.storage.Entries(lo, min(hi, l.unstable.offset), maxSize)
		if errors.Is(err, ErrCompacted) {
			return nil, err
		} else if err != nil {
			panic(fmt.Sprintf("raft: storage.Entries[%d:%d): %v", lo, min(hi, l.unstable.offset), err))
		}
		// Short read: the size limit was hit in storage.
		if uint64(len(stored)) < min(hi, l.unstable.offset)-lo {
			return stored, nil
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		unst := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) > 0 {
			// Copy: appending to a slice from storage must not write into
			// storage's array.
			combined := make([]Entry, len(ents), len(ents)+len(unst))
			copy(combined, ents)
			ents = append(combined, unst...)
		} else {
			ents = unst
		}
	}
	return limitSize(ents, maxSize), nil
}

func (l *raftLog) mustCheckOutOfBounds(lo, hi uint64) error {
	if lo > hi {
		panic(fmt.Sprintf("raft: invalid slice %d > %d", lo, hi))
	}
	fi := l.firstIndex()
	if lo < fi {
		return ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		panic(fmt.Sprintf("raft: slice[%d,%d) out of bound [%d,%d]", lo, hi, fi, l.lastIndex()))
	}
	return nil
}

// snapshot returns the snapshot to send to a follower that needs it.
func (l *raftLog) snapshot() (Snapshot, error) {
	if l.unstable.snapshot != nil {
		return *l.unstable.snapshot, nil
	}
	return l.storage.Snapshot()
}

// restore replaces the log with snapshot s (an incoming InstallSnapshot).
func (l *raftLog) restore(s Snapshot) {
	l.committed = s.Metadata.Index
	// What the snapshot holds is applied when the snapshot is; nothing of
	// the old log may be handed out any more (a change waiting at a
	// barrier is in the snapshot, which is made durable before it applies).
	l.applying = max(l.applying, l.applied)
	l.confBarrier = 0
	l.unstable.restore(s)
}

// stableTo marks entries up to i (term t) durable; stableSnapTo, the
// snapshot at i.
func (l *raftLog) stableTo(i, t uint64)  { l.unstable.stableTo(i, t) }
func (l *raftLog) stableSnapTo(i uint64) { l.unstable.stableSnapTo(i) }
