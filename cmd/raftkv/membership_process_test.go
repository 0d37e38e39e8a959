package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/linearizability"
)

// TestGrowAndShrinkUnderWrites grows a 3-process cluster to 5 members and
// shrinks it back to 3 (removing two founders, the leader among them)
// while clients read and write, then checks the history with porcupine.
func TestGrowAndShrinkUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startProcCluster(t, 3)
	c.leader()
	now, epoch := linearizability.WallClock()
	rec := linearizability.NewRecorder()
	keys := []string{"/a", "/b", "/c", "/d", "/e", "/f"}
	var endpoints atomic.Pointer[[]string]
	eps := c.endpoints()
	endpoints.Store(&eps)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				w := &faultWorker{id: i, rec: rec, now: now, endpoints: *endpoints.Load(), rng: rng,
					keys: keys, http: &http.Client{Timeout: 3 * time.Second}}
				w.step()
			}
		}()
	}
	annotate := func(what string) {
		at := now()
		rec.Annotate(linearizability.Annotation{Tag: "membership", Start: at, End: at, Description: what, Color: "#cfe2f3"})
	}

	// Grow: add m4 and m5, one at a time, as etcd users do.
	for _, name := range []string{"m4", "m5"} {
		m := &procMember{name: name, clientURL: "http://" + loopbackAddr(t), peerURL: "http://" + loopbackAddr(t),
			dataDir: filepath.Join(t.TempDir(), name), logs: &lockedBuffer{}}
		id := c.addMember(m.peerURL)
		annotate(fmt.Sprintf("add %s (%s)", name, id))
		var initial []string
		for _, o := range c.members {
			if o.cmd != nil {
				initial = append(initial, o.name+"="+o.peerURL)
			}
		}
		initial = append(initial, name+"="+m.peerURL)
		m.args = []string{"serve", "--name", name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL, "--listen-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing",
			"--heartbeat-interval", "50", "--election-timeout", "500"}
		c.members = append(c.members, m)
		c.start(m)
		c.waitVoters(len(c.members))
		eps := c.endpoints()
		endpoints.Store(&eps)
		time.Sleep(500 * time.Millisecond)
	}

	// Shrink: remove the leader and one other founder.
	lead := c.leader()
	var victims []*procMember
	victims = append(victims, lead)
	for _, m := range c.members[:3] {
		if m != lead {
			victims = append(victims, m)
			break
		}
	}
	for _, v := range victims {
		var survivors []string
		for _, m := range c.members {
			if m.cmd != nil && m != v && !containsMember(victims, m) {
				survivors = append(survivors, m.clientURL)
			}
		}
		endpoints.Store(&survivors)
		id := c.memberID(v.name)
		c.removeMember(survivors[0], id)
		annotate("remove " + v.name)
		time.Sleep(300 * time.Millisecond)
		c.kill(v)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	live := *endpoints.Load()
	final := &faultWorker{id: 99, rec: rec, now: now, endpoints: live[:1], http: &http.Client{Timeout: 5 * time.Second}, keys: keys}
	for _, k := range keys {
		final.do(linearizability.Read(k, false), http.MethodGet, k, nil)
	}
	res := linearizability.Check(rec.History(), linearizability.Options{Epoch: epoch})
	t.Logf("checked %d operations in %d partitions", res.Operations, res.Partitions)
	if !res.Ok {
		t.Fatalf("history is not linearizable: %s (visualisation: %s)", res, res.Visualization)
	}
	members := c.listMembers(live[0])
	if len(members) != 3 {
		t.Fatalf("the cluster has %d members, want 3: %v", len(members), members)
	}
	// The added members are voters now (learners are promoted once caught
	// up): with the last founder gone, they alone still make a quorum.
	for _, m := range c.members[:3] {
		c.kill(m)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := putValue(c.members[3].clientURL+"/v2/keys/after-shrink", "x")
		if code == http.StatusOK || code == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m4 and m5 cannot commit alone (were they promoted?): %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func putValue(rawURL, value string) (int, string) {
	req, _ := http.NewRequest(http.MethodPut, rawURL, strings.NewReader("value="+value))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func containsMember(list []*procMember, m *procMember) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}

type memberEntry struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// addMember asks any live member to add one at peerURL and returns its ID.
func (c *procCluster) addMember(peerURL string) string {
	for attempt := 0; ; attempt++ {
		lead := c.leader()
		resp, err := http.Post(lead.clientURL+"/v2/members", "application/json",
			strings.NewReader(fmt.Sprintf(`{"peerURLs":[%q]}`, peerURL)))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				var m memberEntry
				if err := json.Unmarshal(body, &m); err != nil {
					c.t.Fatalf("member add answered %s", body)
				}
				return m.ID
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if attempt > 20 {
			c.t.Fatalf("member add: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *procCluster) removeMember(endpoint, id string) {
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodDelete, endpoint+"/v2/members/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if attempt > 20 {
			c.t.Fatalf("member remove %s: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *procCluster) listMembers(endpoint string) []memberEntry {
	resp, err := http.Get(endpoint + "/v2/members")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Members []memberEntry }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		c.t.Fatal(err)
	}
	return list.Members
}

func (c *procCluster) memberID(name string) string {
	for _, m := range c.listMembers(c.leader().clientURL) {
		if m.Name == name {
			return m.ID
		}
	}
	c.t.Fatalf("no member named %s", name)
	return ""
}

// waitVoters waits until n members are listed with names (started) and
// the newest answers a linearizable read (caught up; learners are promoted
// once caught up).
func (c *procCluster) waitVoters(n int) {
	deadline := time.Now().Add(30 * time.Second)
	newest := c.members[len(c.members)-1]
	for time.Now().Before(deadline) {
		named := 0
		for _, m := range c.listMembers(c.leader().clientURL) {
			if m.Name != "" {
				named++
			}
		}
		resp, err := http.Get(newest.clientURL + "/v2/keys/?quorum=true")
		if err == nil {
			resp.Body.Close()
			if named == n && resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the cluster did not reach %d started members", n)
}
