package simulator

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseScriptNamesTheProblem checks that a bad Script is refused with
// an error that says what is wrong and where.
func TestParseScriptNamesTheProblem(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{`{"version":2,"seed":1,"duration":"1s"}`, "version 2"},
		{`{"version":1,"seed":1}`, "duration"},
		{`{"version":1,"seed":1,"duration":"1s","members":9}`, "members 9"},
		{`{"version":1,"seed":1,"duration":"1s","colour":"red"}`, "colour"},
		{`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":5,"do":"explode","member":1}]}`, "action 1 (explode at 5us): unknown action"},
		{`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":5,"do":"crash","member":6}]}`, "member 6: members are 1 to 5"},
		{`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":9,"do":"heal"},{"t_us":5,"do":"heal"}]}`, "comes before"},
		{`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":5,"do":"partition","groups":[[1,2]]}]}`, "two groups"},
		{`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":5,"do":"cut","member":2,"to":2}]}`, "not 2 to itself"},
		{`{"version":1,"seed":1,"duration":"1s","prevote":"maybe"}`, `prevote "maybe"`},
		{`{"version":1,"seed":1,"duration":"1s","faults":"lightning"}`, "lightning"},
	} {
		_, err := ParseScript([]byte(tc.script))
		require.ErrorContains(t, err, tc.want, tc.script)
	}
}

// TestScriptReplaysToTheSameBytes checks that a lab run, saved and read
// back, replays to the same trace, byte for byte.
func TestScriptReplaysToTheSameBytes(t *testing.T) {
	sc := Script{Version: 1, Seed: 42, Members: 3, Duration: "1500ms", Actions: []Action{
		{AtUs: 300000, Do: "write", Member: 1, Key: "/a", Value: "x"},
		{AtUs: 400000, Do: "crash", Member: 2},
		{AtUs: 500000, Do: "partition", Groups: [][]uint64{{1}, {3}}},
		{AtUs: 600000, Do: "drop-next", Member: 1, To: 3},
		{AtUs: 700000, Do: "heal"},
		{AtUs: 800000, Do: "restart", Member: 2},
		{AtUs: 900000, Do: "timeout", Member: 3},
		{AtUs: 1000000, Do: "read", Member: 2, Key: "/a"},
		{AtUs: 1100000, Do: "read-local", Member: 3, Key: "/a"},
		{AtUs: 1200000, Do: "transfer", Member: 1},
	}}
	again, err := ParseScript(sc.Marshal())
	require.NoError(t, err)
	var a, b bytes.Buffer
	resA, err := RunScript(sc, &a)
	require.NoError(t, err)
	require.Nil(t, resA.Failure)
	_, err = RunScript(again, &b)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "a saved Script replays to a different trace")
	for _, kind := range []string{`"kind":"action","do":"crash"`, `"why":"lab"`, `"kind":"restart"`, `(serializable)`} {
		require.Contains(t, a.String(), kind)
	}
}
