package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

// TestTraceIsJSONLines checks that every trace line is a JSON object with
// the event number, the virtual time and a kind, in order.
func TestTraceIsJSONLines(t *testing.T) {
	var buf bytes.Buffer
	res := Run(Config{Seed: 3, Duration: 2 * time.Second, Trace: &buf})
	require.Nil(t, res.Failure)
	kinds := map[string]int{}
	var lastN uint64
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"kind":"header"`)) {
			kinds["header"]++
			continue
		}
		var line struct {
			N    uint64 `json:"n"`
			T    int64  `json:"t_us"`
			Kind string `json:"kind"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "line %q", sc.Text())
		require.GreaterOrEqual(t, line.N, lastN)
		lastN = line.N
		kinds[line.Kind]++
	}
	for _, k := range []string{"header", "member", "log", "conf", "send", "deliver", "commit", "call", "return"} {
		require.Positive(t, kinds[k], "no %q lines", k)
	}
}

// TestDeterminismCheckNamesFirstDifference makes a member whose behaviour
// depends on state outside the run (a counter that survives from one run to
// the next) and checks that the determinism self-check catches it and names
// the first event that differs.
func TestDeterminismCheckNamesFirstDifference(t *testing.T) {
	runs := 0
	leaky := func(cfg MemberConfig, d Disk) (Member, error) {
		if cfg.ID == 1 {
			runs++
		}
		m, err := NewRaftMember(cfg, d)
		if err != nil || runs < 2 || cfg.ID != 2 {
			return m, err
		}
		return &leakyMember{Member: m}, nil
	}
	cfg := Config{Seed: 5, Members: 3, Duration: time.Second, NoFaults: true, Kind: KindLog, Factory: leaky}
	f := CheckDeterminism(cfg)
	require.NotNil(t, f)
	require.Equal(t, FailDeterminism, f.Kind)
	require.Positive(t, f.Event)
	require.Contains(t, f.Detail, "differ first at event")
	t.Log(f.Detail)
}

// leakyMember loses every third message it receives: a member that is not
// the same from one run to the next.
type leakyMember struct {
	Member
	received int
}

func (m *leakyMember) Receive(msg raft.Message) {
	if m.received++; m.received%3 != 0 {
		m.Member.Receive(msg)
	}
}

// TestTraceBytesAreDeterministic checks that a seed writes the same trace,
// byte for byte, with the lines a viewer rebuilds state from.
func TestTraceBytesAreDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	Run(Config{Seed: 11, Duration: 2 * time.Second, Trace: &a})
	Run(Config{Seed: 11, Duration: 2 * time.Second, Trace: &b})
	require.Positive(t, a.Len())
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "two runs of seed 11 wrote different traces")
	// The trace hash does not depend on whether a trace is written.
	require.Equal(t, Run(Config{Seed: 11, Duration: 2 * time.Second}).TraceHash, Run(Config{Seed: 11, Duration: 2 * time.Second, Trace: &a}).TraceHash)
}
