package rpc

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAPIPut measures the HTTP layer alone: PUTs of 256-byte values
// over keep-alive connections from parallel clients, answered by the fake
// member (a kvstore.Store applied in-process, no raft, no disk).
func BenchmarkAPIPut(b *testing.B) {
	backend := newFakeBackend(b)
	api, err := NewAPI(backend, APIOptions{})
	if err != nil {
		b.Fatal(err)
	}
	url := newServer(b, api)
	body := "value=" + strings.Repeat("v", 256)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var n atomic.Uint64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req, _ := http.NewRequest("PUT", url+"/v2/keys/bench/"+string(rune('a'+i%26)), strings.NewReader(body))
			req.Header.Set("Content-Type", formType)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}
