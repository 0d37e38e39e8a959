package simulator

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCoverageCampaign runs a short campaign and checks that its runs reach
// the states that faults make common, and that its summary shows the
// coverage table.
func TestCoverageCampaign(t *testing.T) {
	res := Campaign(CampaignConfig{Base: Config{Duration: 5 * time.Second}, First: 1, Seeds: 30})
	require.Empty(t, res.Failures)
	cov := &res.Coverage
	require.Equal(t, 30, cov.Runs)
	// The joint configurations are left out: the simulator's operator asks
	// for single-server changes only, so no run enters one (the table
	// flags them as not reached).
	for _, c := range []CoverageState{
		CoverLeaderElected, CoverElectionLost, CoverElectedOverUncommitted, CoverIndirectCommit,
		CoverSuffixTruncated, CoverAppendRejected, CoverReadDuringChange, CoverRestart, CoverTornRecovered,
		CoverMembershipChange,
	} {
		assert.Positive(t, cov.Reached[c], "no run reached %q", c)
		assert.GreaterOrEqual(t, cov.Occurrences[c], cov.Reached[c], "%q", c)
		assert.LessOrEqual(t, cov.Reached[c], cov.Possible[c], "%q", c)
	}

	var summary strings.Builder
	res.WriteSummary(&summary)
	out := summary.String()
	require.Contains(t, out, "coverage: runs that reached each state")
	for _, c := range CoverageStates() {
		require.Contains(t, out, "  "+c.String()+"  ", "the table has no row for %q", c)
	}
}

// TestCoverageNoFaults checks that a run without faults elects a leader
// but reaches none of the states only faults bring about.
func TestCoverageNoFaults(t *testing.T) {
	res := Run(Config{Seed: 1, Members: 5, Duration: 2 * time.Second, NoFaults: true})
	require.Nil(t, res.Failure)
	cov := &res.Coverage
	assert.True(t, cov.Reached(CoverLeaderElected))
	for _, c := range []CoverageState{CoverSuffixTruncated, CoverIndirectCommit, CoverElectedOverUncommitted, CoverRestart, CoverTornRecovered} {
		assert.False(t, cov.Reached(c), "a run without faults reached %q", c)
	}
	assert.False(t, cov.Possible[CoverStartRefused], "a run without corrupt disks cannot refuse to start")
	assert.False(t, cov.Possible[CoverMembershipChange], "a run without membership changes cannot commit one")
}

// TestCoverageDeterministic checks that a seed's coverage is the same at
// every run, like its trace.
func TestCoverageDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Duration: 3 * time.Second}
	a, b := Run(cfg), Run(cfg)
	require.Equal(t, a.TraceHash, b.TraceHash)
	require.Equal(t, a.Coverage, b.Coverage)
}

// TestCoverageTableFlagsStatesNotReached checks the campaign table's
// columns and flags on a hand-made sum.
func TestCoverageTableFlagsStatesNotReached(t *testing.T) {
	var cc CampaignCoverage
	reached := Coverage{}
	reached.Count[CoverLeaderElected] = 3
	for c := range numCoverageStates {
		reached.Possible[c] = c != CoverLeaseRead
	}
	cc.add(&reached)
	cc.add(&Coverage{Possible: reached.Possible})
	var out strings.Builder
	cc.WriteTable(&out)
	lines := map[CoverageState]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		for _, c := range CoverageStates() {
			if strings.HasPrefix(line, "  "+c.String()+"  ") {
				lines[c] = line
			}
		}
	}
	require.Len(t, lines, int(numCoverageStates))
	assert.Regexp(t, `leader elected +1 of 2 +3$`, lines[CoverLeaderElected])
	assert.Regexp(t, `conflicting suffix truncated +0 of 2 +0  NOT REACHED$`, lines[CoverSuffixTruncated])
	assert.Regexp(t, `lease read answered +0 of 0 +0  \(possible in no run\)$`, lines[CoverLeaseRead])
}
