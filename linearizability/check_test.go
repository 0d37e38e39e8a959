package linearizability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// staleRead is a history with a stale read during a partition.
func staleRead() *builder {
	b := newBuilder().
		op(0, set("/x", "1"), wrote(5), 0, 10).
		op(0, set("/x", "2"), wrote(6), 20, 30).
		op(1, get("/x"), read(file("/x", "1", 5), 5), 40, 50)
	b.rec.Annotate(Annotation{Tag: "network", Start: 15, End: 45, Description: "partition {1} {2 3}", Details: "member 1 cut off"})
	b.rec.Annotate(Annotation{Tag: "member 2", Start: 35, Description: "crashed, never restarted"})
	b.rec.Annotate(Annotation{Tag: "leader", Start: 25, End: 25, Description: "member 3 leads term 4"})
	return b
}

func TestFailureWritesAnnotatedVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.html")
	var log bytes.Buffer
	res := Check(staleRead().history(), Options{
		VisualizationPath: path,
		Log:               &log,
		Annotations:       []Annotation{{Tag: "test", Start: 0, End: 50, Description: "planted stale read"}},
	})
	require.False(t, res.Ok)
	require.Equal(t, path, res.Visualization)
	require.NoError(t, res.VisualizationErr)
	assert.Contains(t, log.String(), path)
	assert.Contains(t, res.String(), path)

	html, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, want := range []string{
		"partition {1} {2 3}", "member 1 cut off", "crashed, never restarted", "member 3 leads term 4",
		"planted stale read", "index order", "get /x",
	} {
		assert.Contains(t, string(html), want)
	}
	// An annotation without an end lasts until the history's end; one
	// without a tag goes to the "faults" row.
	notes := annotations(staleRead().history(), Options{Annotations: []Annotation{{Start: 3, End: 4}}}, nil, 51)
	require.Len(t, notes, 4)
	assert.Equal(t, "member 2", notes[1].Tag)
	assert.Equal(t, int64(51), notes[1].End)
	assert.Equal(t, int64(25), notes[2].End)
	assert.Equal(t, "faults", notes[3].Tag)
}

func TestFailureWritesToTempDirByDefault(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	var log bytes.Buffer
	res := Check(staleRead().history(), Options{Log: &log})
	require.False(t, res.Ok)
	require.NotEmpty(t, res.Visualization)
	assert.Equal(t, dir, filepath.Dir(res.Visualization))
	assert.True(t, strings.HasSuffix(res.Visualization, ".html"))
	assert.FileExists(t, res.Visualization)
	assert.Contains(t, log.String(), res.Visualization)
}

func TestSuccessWritesNothingUnlessAsked(t *testing.T) {
	h := newBuilder().
		op(0, set("/x", "1"), wrote(5), 0, 10).
		op(1, get("/x"), read(file("/x", "1", 5), 5), 20, 30).
		history()
	path := filepath.Join(t.TempDir(), "ok.html")
	var log bytes.Buffer
	res := Check(h, Options{VisualizationPath: path, Log: &log})
	require.True(t, res.Ok, "%s", res)
	assert.Empty(t, res.Visualization)
	assert.NoFileExists(t, path)
	assert.Empty(t, log.String())

	res = Check(h, Options{VisualizationPath: path, Log: &log, AlwaysVisualize: true})
	require.True(t, res.Ok, "%s", res)
	assert.Equal(t, path, res.Visualization)
	assert.FileExists(t, path)
}

func TestVisualizationErrorIsReported(t *testing.T) {
	res := Check(staleRead().history(), Options{
		VisualizationPath: filepath.Join(t.TempDir(), "missing", "dir", "x.html"),
		Log:               &bytes.Buffer{},
	})
	require.False(t, res.Ok)
	assert.Empty(t, res.Visualization)
	require.Error(t, res.VisualizationErr)
	assert.Contains(t, res.String(), "no visualisation")
}

func TestResultNamesTheFailingPart(t *testing.T) {
	res := newBuilder().
		op(0, set("/a/x", "1"), wrote(5), 0, 10).
		op(1, set("/b", "1"), wrote(6), 0, 10).
		op(1, get("/b"), failed(kvstore.CodeKeyNotFound, 0), 20, 30).
		check(t)
	require.False(t, res.Ok)
	assert.Equal(t, 2, res.Partitions)
	assert.Equal(t, 3, res.Operations)
	assert.Equal(t, []string{"/b"}, res.Illegal)
	assert.Contains(t, res.String(), "not linearizable under /b")
}

// TestTimeoutLeavesAPartUndecided: with Options.Timeout, a part whose
// check runs out of time is named undecided — neither linearizable nor
// not — while the others get their verdict. Proving that no order of 24
// writes of unknown outcome explains a read of a value nobody wrote takes
// porcupine far longer than a millisecond.
func TestTimeoutLeavesAPartUndecided(t *testing.T) {
	b := newBuilder().op(0, set("/a", "1"), wrote(1), 0, 10)
	for i := range 24 {
		b.unknown(i+1, set("/x", fmt.Sprintf("v%d", i)), 20)
	}
	b.op(25, get("/x"), read(file("/x", "nobody", 30), 30), 40, 50)
	opts := quiet(t)
	opts.Timeout = time.Millisecond
	res := Check(b.history(), opts)
	assert.False(t, res.Ok)
	assert.Empty(t, res.Illegal)
	assert.Equal(t, []string{"/x"}, res.Undecided)
	assert.Contains(t, res.String(), "undecided within the time limit under /x")
	assert.Empty(t, res.Visualization, "an undecided part is not drawn")
}

func TestOutputOf(t *testing.T) {
	v := "v"
	ev := &kvstore.Event{Action: kvstore.ActionSet, Node: &kvstore.Node{Key: "/x", Value: &v, ModifiedIndex: 7}, EtcdIndex: 7}
	assert.Equal(t, Output{Index: 7, Node: ev.Node}, OutputOf(ev, nil))
	assert.Equal(t, Output{Err: kvstore.CodeKeyNotFound, Index: 9},
		OutputOf(nil, kvstore.NewError(kvstore.CodeKeyNotFound, "/x", 9)))
	assert.Equal(t, Output{Err: kvstore.CodeRaftInternal}, OutputOf(nil, os.ErrClosed))
}

func TestWriteDispatchesAsTheStore(t *testing.T) {
	tests := []struct {
		cmd  kvstore.Command
		want Kind
	}{
		{kvstore.Command{Op: kvstore.OpSet}, KindSet},
		{kvstore.Command{Op: kvstore.OpSet, PrevExist: kvstore.PrevExistFalse, PrevValue: "x"}, KindCreate},
		{kvstore.Command{Op: kvstore.OpSet, PrevExist: kvstore.PrevExistTrue}, KindUpdate},
		{kvstore.Command{Op: kvstore.OpSet, PrevExist: kvstore.PrevExistTrue, PrevIndex: 3}, KindCompareAndSwap},
		{kvstore.Command{Op: kvstore.OpSet, PrevValue: "x"}, KindCompareAndSwap},
		{kvstore.Command{Op: kvstore.OpDelete}, KindDelete},
		{kvstore.Command{Op: kvstore.OpDelete, PrevIndex: 3}, KindCompareAndDelete},
		{kvstore.Command{Op: kvstore.OpCreateInOrder}, KindCreateInOrder},
		{kvstore.Command{Op: kvstore.OpCompareAndSwap}, KindCompareAndSwap},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Write(tt.cmd).Kind, "%+v", tt.cmd)
	}
	assert.Panics(t, func() { Write(kvstore.Command{Op: kvstore.OpExpire}) })
}
