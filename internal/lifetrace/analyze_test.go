package lifetrace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChainFollowsAWriteAcrossProcesses: a leader (process 10, member a)
// serving the client, followers b (process 20) and c (process 30); two
// writes, entries 7 and 8, with the same offsets each time, and noise a
// write must not pick up: the previous entry's acknowledgement arriving
// inside the window, and a heartbeat-time record before it.
func TestChainFollowsAWriteAcrossProcesses(t *testing.T) {
	var recs []Record
	add := func(process int, member, peer, index uint64, stage Stage, at int64) {
		recs = append(recs, Record{Process: process, Member: member, Peer: peer, Index: index, Stage: stage, At: at})
	}
	for w, base := range []int64{1_000_000, 2_000_000} {
		index := uint64(7 + w)
		add(10, 0, 0, 0, RequestRead, base)
		add(10, 0xa, 0, 0, Submitted, base+5_000)
		add(10, 0xa, 0xb, index, AppendSent, base+10_000)
		add(10, 0xa, 0xc, index, AppendSent, base+10_000)
		add(20, 0xb, 0xa, index-1, AckSent, base+12_000) // the previous entry's
		add(10, 0xa, 0xb, index-1, AckReceived, base+15_000)
		add(10, 0xa, 0, index, DiskStart, base+20_000)
		add(20, 0xb, 0xa, index, AppendReceived, base+60_000)
		add(30, 0xc, 0xa, index, AppendReceived, base+90_000)
		add(20, 0xb, 0, index, DiskDone, base+300_000)
		add(20, 0xb, 0xa, index, AckSent, base+310_000)
		add(10, 0xa, 0xb, index, AckReceived, base+350_000)
		add(10, 0xa, 0, index, Applied, base+400_000)
		add(10, 0xa, 0, 0, Answered, base+410_000)
		add(10, 0, 0, 0, ResponseWritten, base+480_000)
	}
	rows, writes := Chain(recs, 0, 3_000_000)
	if writes != 2 {
		t.Fatalf("followed %d writes, want 2", writes)
	}
	want := []string{
		"leader request read  0s",
		"leader submitted  5µs",
		"leader append sent follower1 10µs",
		"leader append sent follower2 10µs",
		"leader disk start  20µs",
		"follower1 append received leader 60µs",
		"follower2 append received leader 90µs",
		"follower1 disk done  300µs",
		"follower1 ack sent leader 310µs",
		"leader ack received follower1 350µs",
		"leader applied  400µs",
		"leader answered  410µs",
		"leader response written  480µs",
	}
	var got []string
	for _, r := range rows {
		if r.N != 2 || r.P10 != r.P50 || r.P90 != r.P50 {
			t.Errorf("%+v: want 2 writes with equal offsets", r)
		}
		got = append(got, strings.Join([]string{r.Where, r.Stage, r.Peer, r.P50.String()}, " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("chain:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rows, _ := Chain(recs, 5_000_000, 6_000_000); rows != nil {
		t.Fatalf("a range without writes gave %v", rows)
	}
}

func TestReadFilesNamesABadLine(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "life")
	good := "a b 7 3 1000\n"
	if err := os.WriteFile(prefix+".42", []byte(good+"a b 7 99 1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFiles(prefix)
	if err == nil || !strings.Contains(err.Error(), "life.42:2: unknown stage 99") {
		t.Fatalf("err = %v, want the file, line 2 and the unknown stage", err)
	}
	if err := os.WriteFile(prefix+".42", []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadFiles(prefix)
	if err != nil || len(recs) != 1 || recs[0] != (Record{Process: 42, Member: 0xa, Peer: 0xb, Index: 7, Stage: AppendSent, At: 1000}) {
		t.Fatalf("ReadFiles = %+v, %v", recs, err)
	}
}
