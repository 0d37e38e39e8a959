package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/raftkv/raftkv/client"
)

// TestPrintJoinEnv: etcdctl's lines; a member added earlier and not yet
// started (no name) is left out of ETCD_INITIAL_CLUSTER rather than
// printed as "=URL", which no member could parse; a list that does not
// show the new member yet still names it.
func TestPrintJoinEnv(t *testing.T) {
	added := &client.Member{ID: "c", PeerURLs: []string{"http://10.0.0.3:2380"}}
	members := []client.Member{
		{ID: "a", Name: "m1", PeerURLs: []string{"http://10.0.0.1:2380"}},
		{ID: "b", PeerURLs: []string{"http://10.0.0.2:2380"}},
		*added,
	}
	var out bytes.Buffer
	printJoinEnv(&out, "m3", added, members)
	assert.Equal(t, `
ETCD_NAME="m3"
ETCD_INITIAL_CLUSTER="m1=http://10.0.0.1:2380,m3=http://10.0.0.3:2380"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://10.0.0.3:2380"
ETCD_INITIAL_CLUSTER_STATE="existing"
`, out.String())

	out.Reset()
	printJoinEnv(&out, "m3", added, members[:1])
	assert.Contains(t, out.String(), `ETCD_INITIAL_CLUSTER="m1=http://10.0.0.1:2380,m3=http://10.0.0.3:2380"`)
}
