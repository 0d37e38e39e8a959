package rpc_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raftkv/raftkv/rpc"
	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// A one-member cluster serving etcd's v2 API on a loopback port, and the
// request of etcd's README: curl -XPUT .../v2/keys/message -d value=Hello.
func ExampleAPI() {
	member, err := server.New(server.Config{
		ID: 1, Name: "example", FS: storage.NewMemFS(), Dir: "data",
		Rand: rand.New(rand.NewPCG(1, 1)), TickMillis: 10, ElectionTicks: 10,
	})
	if err != nil {
		panic(err)
	}
	rt := server.NewRuntime(member, server.NewLocalNetwork(), server.RuntimeOptions{Tick: 10 * time.Millisecond})
	rt.Start()
	defer rt.Stop()

	api, err := rpc.NewAPI(rpc.NewRuntimeBackend(rt), rpc.APIOptions{})
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go api.Serve(l, nil)
	defer api.Shutdown(context.Background())
	for rt.Status().Leader == 0 {
		time.Sleep(10 * time.Millisecond)
	}

	form := url.Values{"value": {"Hello"}}.Encode()
	req, _ := http.NewRequest("PUT", "http://"+l.Addr().String()+"/v2/keys/message", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	// Output:
	// 201 Created
	// {"action":"set","node":{"key":"/message","value":"Hello","modifiedIndex":1,"createdIndex":1}}
}
