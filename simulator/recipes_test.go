package simulator

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLockRecipeHolds runs the lock recipe under the swarm's faults, on
// the campaign's fresh seed range, and checks that it stays exclusive, and
// that the workload does reach the lock: acquisitions, releases and
// sessions lost.
func TestLockRecipeHolds(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	first := firstSeed(t)
	t.Logf("seeds %d..%d (replay one: raftkv sim --lock-recipe --duration 5s --seed N)", first, first+uint64(seeds)-1)
	acquired, lost := 0, 0
	for seed := first; seed < first+uint64(seeds); seed++ {
		s := New(Config{Seed: seed, LockRecipe: true, Duration: 5 * time.Second})
		res := s.Run()
		require.Nil(t, res.Failure, "seed %d: %v", seed, res.Failure)
		for _, sec := range s.lockSections {
			acquired++
			if sec.Lost {
				lost++
			}
		}
	}
	t.Logf("%d acquisitions, %d sessions lost while holding", acquired, lost)
	require.Greater(t, acquired, seeds)
	require.Positive(t, lost)
}

// TestRecipeBugsCaught plants each of the lock recipe's bugs and requires
// the lock check to catch it within a bounded number of seeds.
func TestRecipeBugsCaught(t *testing.T) {
	for _, bug := range RecipeBugs() {
		t.Run(bug.String(), func(t *testing.T) {
			for seed := uint64(1); seed <= 300; seed++ {
				res := Run(Config{Seed: seed, LockRecipe: true, Bug: bug, Duration: 5 * time.Second, NoLinearizability: true})
				if res.Failure != nil {
					require.Equal(t, InvLockExclusive, res.Failure.Invariant, "seed %d: %v", seed, res.Failure)
					t.Logf("caught at seed %d: %s", seed, res.Failure.Detail)
					return
				}
			}
			t.Fatal(fmt.Sprintf("%s not caught in 300 seeds", bug))
		})
	}
}

// TestCheckLockSections shows the checker failing on overlapping sections
// and on tokens that do not grow, and passing a section that ends when its
// holder was told it lost the lock.
func TestCheckLockSections(t *testing.T) {
	ms := time.Millisecond
	require.NoError(t, CheckLockSections([]LockSection{{Client: 1, Token: 5, Enter: 0, Exit: 10 * ms, Lost: true}, {Client: 2, Token: 7, Enter: 10 * ms, Exit: 20 * ms}}))
	require.ErrorContains(t, CheckLockSections([]LockSection{{Client: 1, Token: 5, Enter: 0, Exit: 10 * ms}, {Client: 2, Token: 7, Enter: 9 * ms, Exit: 20 * ms}}), "both held the lock")
	require.ErrorContains(t, CheckLockSections([]LockSection{{Client: 1, Token: 7, Enter: 0, Exit: 10 * ms}, {Client: 2, Token: 5, Enter: 11 * ms, Exit: 20 * ms}}), "is not above")
}
