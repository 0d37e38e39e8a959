package linearizability_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
)

// A history recorded from a store serving two clients, one of whose reads
// comes from a member cut off by a partition: it returns the value from
// before the other client's write completed.
func Example() {
	store, _ := kvstore.New(kvstore.Config{})
	rec := linearizability.NewRecorder()

	// Client 0 writes /x twice, one write after the other.
	write := func(value string, call, ret int64) {
		cmd := kvstore.Command{Op: kvstore.OpSet, Path: "/x", Value: value}
		id := rec.Call(0, linearizability.Write(cmd), call)
		res := store.Apply(0, cmd)
		rec.Return(id, linearizability.OutputOf(res.Event, nil), ret)
	}
	write("1", 0, 10)
	stale, _ := store.Get("/x", kvstore.GetOptions{})
	write("2", 20, 30)

	// Client 1 reads after both writes, from the partitioned member.
	id := rec.Call(1, linearizability.Read("/x", false), 40)
	rec.Return(id, linearizability.OutputOf(stale, nil), 50)
	rec.Annotate(linearizability.Annotation{Tag: "network", Start: 15, End: 45, Description: "partition {1} {2 3}"})

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	res := linearizability.Check(rec.History(), linearizability.Options{
		VisualizationPath: filepath.Join(dir, "history.html"),
		Log:               io.Discard,
	})
	fmt.Println("linearizable:", res.Ok)
	fmt.Println("illegal parts:", res.Illegal)
	fmt.Println("index order:", res.IndexOrder)
	fmt.Println("visualised:", filepath.Base(res.Visualization))
	// Output:
	// linearizable: false
	// illegal parts: [/x]
	// index order: operation 1 (made index 2) returned at 30, before operation 2 (saw index 1) was called at 40
	// visualised: history.html
}
