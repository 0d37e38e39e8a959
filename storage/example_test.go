package storage_test

import (
	"fmt"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// A member persists what raft's Ready hands it, takes a snapshot, and
// restarts from its disk.
func Example() {
	disk := storage.NewMemFS() // storage.OSFS{} in production, a FaultyFS in the simulator
	w, _, err := storage.Open(disk, "member1/wal", storage.Options{})
	if err != nil {
		panic(err)
	}
	snaps, err := storage.NewSnapshotter(disk, "member1/snap")
	if err != nil {
		panic(err)
	}

	// One Ready: entries, then the hard state, made durable with one fsync
	// before MessagesAfterPersist may leave.
	entries := []raft.Entry{
		{Term: 1, Index: 1, Data: []byte("set a=1")},
		{Term: 1, Index: 2, Data: []byte("set b=2")},
		{Term: 1, Index: 3, Data: []byte("set c=3")},
	}
	if err := w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 3}, entries, true); err != nil {
		panic(err)
	}

	// A snapshot as of index 2: the file first, then its marker in the WAL,
	// then the segments it makes unnecessary can go.
	snap := raft.Snapshot{
		Metadata: raft.SnapshotMetadata{Index: 2, Term: 1, ConfState: raft.ConfState{Voters: []uint64{1}}},
		Data:     []byte("a=1 b=2"),
	}
	if err := snaps.Save(snap); err != nil {
		panic(err)
	}
	if err := w.SaveSnapshotMarker(snap.Metadata); err != nil {
		panic(err)
	}
	if err := w.ReleaseTo(snap.Metadata.Index); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	// Restart: the WAL says which snapshot it needs; together they give
	// raft its storage.
	w, rec, err := storage.Open(disk, "member1/wal", storage.Options{})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	if rec.TornTail != nil {
		fmt.Println(rec.TornTail) // a server logs this
	}
	loaded, skipped, err := snaps.Load(rec.Snapshot.Index)
	if err != nil {
		panic(err)
	}
	for _, s := range skipped {
		fmt.Println(s) // a server logs these too
	}
	ms, err := storage.NewMemoryStorage(rec, loaded)
	if err != nil {
		panic(err)
	}
	hs, _, _ := ms.InitialState()
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	fmt.Printf("hard state %+v\n", hs)
	fmt.Printf("snapshot at %d holding %q\n", loaded.Metadata.Index, loaded.Data)
	fmt.Printf("log %d..%d\n", first, last)
	// Output:
	// hard state {Term:1 Vote:1 Commit:3}
	// snapshot at 2 holding "a=1 b=2"
	// log 3..3
}
