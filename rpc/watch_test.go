package rpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// openWatch starts a watch and returns its response once the headers are in.
func openWatch(t *testing.T, target string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp, cancel
}

// readAllWithin reads the rest of a body, failing if it does not end in time.
func readAllWithin(t *testing.T, body io.Reader, d time.Duration) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(body)
		done <- string(b)
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(d):
		t.Fatalf("body still open after %v", d)
		return ""
	}
}

// TestWatchEnds covers the ways a watch response ends before an event: the
// client sees 200 with an empty body (the v2 Go client then watches again),
// and the watcher is gone.
func TestWatchEnds(t *testing.T) {
	t.Run("API closed", func(t *testing.T) {
		api, backend, srv := newTestAPI(t, APIOptions{})
		resp, _ := openWatch(t, srv.URL+"/v2/keys/a?wait=true")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		api.Close()
		assert.Equal(t, "", readAllWithin(t, resp.Body, 5*time.Second))
		require.Eventually(t, func() bool { return backend.watcherCount() == 0 }, 5*time.Second, time.Millisecond)
	})
	t.Run("member stopped", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		resp, _ := openWatch(t, srv.URL+"/v2/keys/a?wait=true&stream=true")
		close(backend.done)
		assert.Equal(t, "", readAllWithin(t, resp.Body, 5*time.Second))
		require.Eventually(t, func() bool { return backend.watcherCount() == 0 }, 5*time.Second, time.Millisecond)
	})
	t.Run("client gone", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		_, cancel := openWatch(t, srv.URL+"/v2/keys/a?wait=true&recursive=true&stream=true")
		require.Equal(t, 1, backend.watcherCount())
		cancel()
		require.Eventually(t, func() bool { return backend.watcherCount() == 0 }, 5*time.Second, time.Millisecond)
	})
}

// floodingBackend fills a new watcher's buffer before the handler reads it,
// as a burst of writes would for a slow client.
type floodingBackend struct {
	*fakeBackend
	events int
}

func (b floodingBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	resp, err := b.fakeBackend.Do(ctx, req)
	if req.Kind == server.RequestWatch {
		for i := range b.events {
			w := server.Request{Kind: server.RequestWrite, Now: req.Now,
				Command: kvstore.Command{Op: kvstore.OpSet, Path: req.Path, Value: fmt.Sprint(i)}}
			if _, err := b.fakeBackend.Do(ctx, w); err != nil {
				return resp, err
			}
		}
	}
	return resp, err
}

// TestWatchStreamDroppedWhenSlow: a stream watcher whose 100-event buffer
// overflows is dropped; its response carries what was buffered and ends
// (spec §8.2).
func TestWatchStreamDroppedWhenSlow(t *testing.T) {
	backend := floodingBackend{newFakeBackend(t), 150}
	api, err := NewAPI(backend, APIOptions{})
	require.NoError(t, err)
	srv := newServer(t, api)
	resp, _ := openWatch(t, srv+"/v2/keys/k?wait=true&stream=true")
	body := readAllWithin(t, resp.Body, 5*time.Second)
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	require.Len(t, lines, kvstore.DefaultWatchBuffer)
	assert.Contains(t, lines[0], `"value":"0"`)
	assert.Contains(t, lines[99], `"value":"99"`)
	assert.Equal(t, 0, backend.watcherCount())
}

// TestWatchStreamFraming: each event is one JSON line, flushed as it
// happens, on a chunked response.
func TestWatchStreamFraming(t *testing.T) {
	_, backend, srv := newTestAPI(t, APIOptions{})
	resp, _ := openWatch(t, srv.URL+"/v2/keys/dir?wait=true&recursive=true&stream=true")
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	assert.Equal(t, "0", resp.Header.Get("X-Etcd-Index"))
	r := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		_, err := backend.Do(context.Background(), server.Request{Kind: server.RequestWrite,
			Command: kvstore.Command{Op: kvstore.OpSet, Path: fmt.Sprintf("/dir/k%d", i), Value: "v"}})
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf(`{"action":"set","node":{"key":"/dir/k%d","value":"v","modifiedIndex":%d,"createdIndex":%d}}`+"\n", i, i, i), line)
	}
}
