package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// walModel is the obviously-correct reference the WAL is checked against:
// the list of records written, in order, of which the first synced are
// durable. After a crash, recovery must return the state of some prefix of
// the records at least synced long: never less (nothing acknowledged is
// lost), never anything that was not written.
type walModel struct {
	records []modelRecord
	synced  int
}

type modelRecord struct {
	entry  *raft.Entry
	hs     *raft.HardState
	marker *raft.SnapshotMetadata
}

// modelState is what the first n records leave.
type modelState struct {
	HardState raft.HardState
	Snapshot  raft.SnapshotMetadata
	Entries   []raft.Entry
}

// state replays the first n records with a map for a log: an entry
// replaces its index and drops everything after it; a snapshot marker keeps
// the log after it if the log holds its last entry and otherwise empties it.
func (m *walModel) state(n int) modelState {
	var s modelState
	log := map[uint64]raft.Entry{}
	var last uint64
	for _, r := range m.records[:n] {
		switch {
		case r.hs != nil:
			s.HardState = *r.hs
		case r.entry != nil:
			if r.entry.Index <= s.Snapshot.Index {
				continue
			}
			for i := r.entry.Index; i <= last; i++ {
				delete(log, i)
			}
			log[r.entry.Index], last = *r.entry, r.entry.Index
		case r.marker != nil:
			e, ok := log[r.marker.Index]
			keeps := (ok && e.Term == r.marker.Term) ||
				(r.marker.Index == s.Snapshot.Index && r.marker.Term == s.Snapshot.Term)
			for i := range log {
				if !keeps || i <= r.marker.Index {
					delete(log, i)
				}
			}
			if !keeps {
				last = r.marker.Index
			}
			s.Snapshot = *r.marker
		}
	}
	for i := s.Snapshot.Index + 1; i <= last; i++ {
		s.Entries = append(s.Entries, log[i])
	}
	return s
}

func (m *walModel) last() (index, term uint64) {
	s := m.state(len(m.records))
	if len(s.Entries) == 0 {
		return s.Snapshot.Index, s.Snapshot.Term
	}
	e := s.Entries[len(s.Entries)-1]
	return e.Index, e.Term
}

// save records a Save call about to be made.
func (m *walModel) save(hs raft.HardState, ents []raft.Entry) {
	for i := range ents {
		m.records = append(m.records, modelRecord{entry: &ents[i]})
	}
	if !hs.IsEmpty() {
		m.records = append(m.records, modelRecord{hs: &hs})
	}
}

func (m *walModel) marker(meta raft.SnapshotMetadata) {
	m.records = append(m.records, modelRecord{marker: &meta})
}

// durable says everything recorded so far has been acknowledged.
func (m *walModel) durable() { m.synced = len(m.records) }

// recovered checks rec against the states the records allow and adopts the
// prefix that matches.
func (m *walModel) recovered(t require.TestingT, rec Recovered) {
	got := modelState{HardState: rec.HardState, Snapshot: rec.Snapshot, Entries: rec.Entries}
	for n := len(m.records); n >= m.synced; n-- {
		want := m.state(n)
		if got.HardState == want.HardState && got.Snapshot.Index == want.Snapshot.Index &&
			got.Snapshot.Term == want.Snapshot.Term && entriesEqual(got.Entries, want.Entries) {
			m.records, m.synced = m.records[:n], n
			return
		}
	}
	require.Fail(t, "recovered state matches no prefix of the records at least as long as the synced ones",
		"recovered %s\nsynced    %s\nwritten   %s", describe(got), describe(m.state(m.synced)), describe(m.state(len(m.records))))
}

func entriesEqual(a, b []raft.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y raft.Entry) bool {
		return x.Index == y.Index && x.Term == y.Term && x.Type == y.Type && string(x.Data) == string(y.Data)
	})
}

func describe(s modelState) string {
	out := fmt.Sprintf("hs=%+v snap=%d/%d entries=", s.HardState, s.Snapshot.Index, s.Snapshot.Term)
	for _, e := range s.Entries {
		out += fmt.Sprintf("%d/%d ", e.Index, e.Term)
	}
	return out
}

// TestWALMatchesModel runs random operations — batches that append and
// overwrite, synced or not, snapshot markers of both kinds, releases,
// crashes of the faulty disk at random points, fsync failures, a full disk
// and clean restarts — and checks every recovery against walModel.
func TestWALMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fsys := NewFaultyFS()
		opts := Options{SegmentSize: minSegmentSize}
		w, rec, err := Open(fsys, "wal", opts)
		require.NoError(t, err)
		m := &walModel{}
		m.recovered(t, rec)
		term := uint64(1)

		restart := func(crash bool) {
			if crash {
				fsys.Crash(rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0)))
			} else if err := w.Close(); err == nil {
				m.durable()
			}
			w, rec, err = Open(fsys, "wal", opts)
			require.NoError(t, err)
			m.recovered(t, rec)
		}
		// save makes a random Save call and returns whether it failed the WAL.
		save := func(t *rapid.T) (failed bool) {
			last, _ := m.last()
			snap := m.state(len(m.records)).Snapshot.Index
			first := rapid.Uint64Range(max(snap+1, last-min(last, 3)), last+1).Draw(t, "first")
			n := rapid.IntRange(0, 4).Draw(t, "n")
			if rapid.Bool().Draw(t, "new term") {
				term++
			}
			var ents []raft.Entry
			for i := range n {
				size := rapid.IntRange(0, 300).Draw(t, "size")
				ents = append(ents, makeEntries(term, first+uint64(i), first+uint64(i), size)...)
			}
			var hs raft.HardState
			if rapid.Bool().Draw(t, "hs") {
				hs = raft.HardState{Term: term, Vote: rapid.Uint64Range(0, 3).Draw(t, "vote"), Commit: rapid.Uint64Range(0, last).Draw(t, "commit")}
			}
			sync := rapid.Bool().Draw(t, "sync")
			m.save(hs, ents)
			err := w.Save(hs, ents, sync)
			if errors.Is(err, ErrDiskFull) && !errors.Is(err, ErrFailed) {
				m.records = m.records[:len(m.records)-len(ents)-btoi(!hs.IsEmpty())] // nothing written
				return false
			}
			if errors.Is(err, ErrFailed) {
				return true
			}
			require.NoError(t, err)
			if sync {
				m.durable()
			}
			return false
		}
		t.Repeat(map[string]func(*rapid.T){
			"save": func(t *rapid.T) {
				if save(t) {
					t.Fatalf("Save failed the WAL without any fault injected")
				}
			},
			"marker": func(t *rapid.T) {
				last, _ := m.last()
				s := m.state(len(m.records))
				var meta raft.SnapshotMetadata
				if len(s.Entries) > 0 && rapid.Bool().Draw(t, "local") {
					e := rapid.SampledFrom(s.Entries).Draw(t, "at")
					meta = raft.SnapshotMetadata{Index: e.Index, Term: e.Term}
				} else {
					term++
					meta = raft.SnapshotMetadata{Index: rapid.Uint64Range(s.Snapshot.Index+1, last+3).Draw(t, "index"), Term: term}
				}
				m.marker(meta)
				err := w.SaveSnapshotMarker(meta)
				if errors.Is(err, ErrDiskFull) && !errors.Is(err, ErrFailed) {
					m.records = m.records[:len(m.records)-1]
					return
				}
				require.NoError(t, err)
				m.durable()
			},
			"release": func(t *rapid.T) {
				require.NoError(t, w.ReleaseTo(m.state(len(m.records)).Snapshot.Index))
			},
			"crash":   func(t *rapid.T) { restart(true) },
			"restart": func(t *rapid.T) { restart(false) },
			"failing fsync": func(t *rapid.T) {
				fsys.SetSyncError(errors.New("injected EIO"))
				failed := save(t)
				fsys.SetSyncError(nil)
				if failed {
					restart(true) // the member stops; the disk may lose what the fsync did not flush
				}
			},
			"full disk": func(t *rapid.T) {
				fsys.SetCapacity(fsys.Used() + rapid.Int64Range(0, 2*minSegmentSize).Draw(t, "room"))
				if save(t) {
					t.Fatalf("a full disk failed the WAL")
				}
				fsys.SetCapacity(-1)
			},
		})
		restart(false)
		require.Equal(t, m.synced, len(m.records), "a clean restart loses nothing")
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
