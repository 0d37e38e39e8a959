package embed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startCluster starts n members on loopback ports chosen by the OS, with
// data in temporary directories, and stops them at the end of the test.
// Peer ports are reserved before any member starts, and another process
// (a client's outgoing connection, say) may take one meanwhile: then the
// cluster starts again on fresh ports.
func startCluster(t *testing.T, n int) []*Member {
	t.Helper()
	for attempt := 1; ; attempt++ {
		members, err := tryStartCluster(t, n)
		if err == nil {
			t.Cleanup(func() {
				for _, m := range members {
					assert.NoError(t, m.Stop())
				}
			})
			return members
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			require.NoError(t, err)
		}
		t.Logf("start a cluster (attempt %d): %v; again on fresh ports", attempt, err)
	}
}

// tryStartCluster starts n members, or none: on an error it stops those it
// started.
func tryStartCluster(t *testing.T, n int) ([]*Member, error) {
	var parts []string
	peerURLs := make([]string, n)
	for i := range n {
		peerURLs[i] = "http://" + freeAddr(t)
		parts = append(parts, fmt.Sprintf("m%d=%s", i+1, peerURLs[i]))
	}
	var members []*Member
	for i := range n {
		m, err := Start(Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: t.TempDir(),
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{peerURLs[i]},
			InitialCluster: strings.Join(parts, ","), HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
		if err != nil {
			for _, m := range members {
				m.Stop()
			}
			return nil, err
		}
		members = append(members, m)
	}
	return members, nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// put sends a form PUT, as etcd clients do.
func put(client *http.Client, rawURL string, form url.Values) (int, string, error) {
	req, err := http.NewRequest(http.MethodPut, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClusterServesTheKeysAPI(t *testing.T) {
	members := startCluster(t, 3)
	client := &http.Client{Timeout: 10 * time.Second}
	// Write at one member (retrying until a leader is elected), read at
	// every member.
	var body string
	require.Eventually(t, func() bool {
		code, b, err := put(client, members[0].ClientURLs()[0]+"/v2/keys/message", url.Values{"value": {"Hello"}})
		body = b
		return err == nil && code == http.StatusCreated
	}, 10*time.Second, 50*time.Millisecond, "last answer: %s", body)
	assert.Contains(t, body, `"action":"set"`)
	for _, m := range members {
		resp, err := client.Get(m.ClientURLs()[0] + "/v2/keys/message")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(b), `"value":"Hello"`)
		assert.NotEmpty(t, resp.Header.Get("X-Etcd-Cluster-Id"))
	}
}
