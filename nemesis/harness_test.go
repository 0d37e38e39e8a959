package nemesis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// raftkvBinary builds cmd/raftkv once per test run.
func raftkvBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "raftkv-nemesis-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "raftkv")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/raftkv").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// needNamespaces skips the test, in one line, when namespaces cannot be
// made here.
func needNamespaces(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("nemesis: starts processes in network namespaces (-short)")
	}
	if err := Available(); err != nil {
		t.Skip(err.Error())
	}
}

// TestClusterCutAndHeal starts a 3-member cluster on the test network,
// cuts the leader off both ways, sees the others elect a new leader and
// take writes, heals, and leaves nothing behind.
func TestClusterCutAndHeal(t *testing.T) {
	needNamespaces(t)
	c, err := StartCluster(ClusterOptions{Binary: raftkvBinary(t), Members: 3, Token: "harness", LogDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	slot := c.Net.Slot
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		assertNothingLeft(t, slot)
	}()
	ctx := context.Background()
	lead := c.Leader(ctx, 10*time.Second)
	if lead < 0 {
		t.Fatal("no leader")
	}
	for j := range 3 {
		if j != lead {
			if err := c.Net.Cut(lead, j); err != nil {
				t.Fatal(err)
			}
			if err := c.Net.Cut(j, lead); err != nil {
				t.Fatal(err)
			}
		}
	}
	var others []string
	for _, m := range c.Members {
		if m.Index != lead {
			others = append(others, m.ClientURL())
		}
	}
	cl, err := client.New(client.Config{Endpoints: others, HeaderTimeoutPerRequest: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cl.Set(wctx, "/x", "after-cut", nil)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the majority takes no write with the leader cut off: %v", err)
		}
	}
	// The old leader, cut off, cannot answer a linearizable read.
	iso, _ := client.New(client.Config{Endpoints: []string{c.Members[lead].ClientURL()}})
	rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	resp, err := iso.Get(rctx, "/x", &client.GetOptions{Quorum: true})
	cancel()
	if err == nil && resp.Node != nil && resp.Node.Value != "after-cut" {
		t.Fatalf("the cut-off leader answered a stale linearizable read: %q", resp.Node.Value)
	}
	if err := c.Net.Heal(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := iso.Get(rctx, "/x", &client.GetOptions{Quorum: true})
		cancel()
		if err == nil && resp.Node.Value == "after-cut" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the healed member does not catch up: %v", err)
		}
	}
}

// assertNothingLeft checks that no namespace, link or process of slot is
// left (slot -1: of the slot this process last used).
func assertNothingLeft(t *testing.T, slot int) {
	t.Helper()
	if slot < 0 {
		slot = lastSlot
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), fmt.Sprintf("raftkv-nem%d-", slot)) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	if strings.Contains(string(links), fmt.Sprintf("rkn%dc", slot)) {
		t.Errorf("links left behind:\n%s", links)
	}
	if _, err := os.Stat(slotDir(slot)); err == nil {
		t.Errorf("work directory %s left behind", slotDir(slot))
	}
}
