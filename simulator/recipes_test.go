package simulator

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLockRecipeHolds runs the lock and queue recipes under the swarm's
// faults, on the campaign's fresh seed range, and checks that the lock
// stays exclusive and the queue hands each item to one consumer, and that
// the workload does reach them: acquisitions, sessions lost, dequeues.
func TestLockRecipeHolds(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	first := firstSeed(t)
	t.Logf("seeds %d..%d (replay one: raftkv sim --lock-recipe --duration 5s --seed N)", first, first+uint64(seeds)-1)
	acquired, lost, dequeued := 0, 0, 0
	for seed := first; seed < first+uint64(seeds); seed++ {
		s := New(Config{Seed: seed, LockRecipe: true, Duration: 5 * time.Second})
		res := s.Run()
		require.Nil(t, res.Failure, "seed %d: %v", seed, res.Failure)
		dequeued += len(s.queue.dequeued)
		for _, sec := range s.lockSections {
			acquired++
			if sec.Lost {
				lost++
			}
		}
	}
	t.Logf("%d acquisitions, %d sessions lost while holding", acquired, lost)
	require.Positive(t, dequeued, "the queue workload dequeued nothing")
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
					want := InvLockExclusive
					if bug == BugQueueNoCompare {
						want = InvQueueOnce
					}
					require.Equal(t, want, res.Failure.Invariant, "seed %d: %v", seed, res.Failure)
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
