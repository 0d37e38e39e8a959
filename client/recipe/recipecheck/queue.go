package recipecheck

import (
	"slices"
)

// Enqueued is one Enqueue call as its producer saw it.
type Enqueued struct {
	// Producer names who enqueued; Seq numbers its calls in the order it
	// made them (one at a time).
	Producer string
	Seq      int
	// Item identifies the item uniquely across the whole history (the
	// test puts it in the value).
	Item string
	// Acked is true when Enqueue returned success; false when its outcome
	// is unknown (the item may or may not be in the queue).
	Acked bool
	// Index is the item key's createdIndex when Acked (0 otherwise).
	Index uint64
}

// Dequeued is one item handed to a consumer.
type Dequeued struct {
	// Consumer names who dequeued.
	Consumer string
	// Item is the item's identity (as in Enqueued.Item).
	Item string
	// Index is the index of the compare-and-delete that took the item
	// (0 when Unknown).
	Index uint64
	// Unknown is true when the consumer could not learn whether its
	// dequeue took the item or another consumer's did (its delete's
	// outcome was lost in a failover). Such an item may have been taken
	// by nobody else.
	Unknown bool
}

// CheckQueue checks a queue's history: no item is dequeued twice (two
// definite dequeues of one item), no item is dequeued that was never
// enqueued, every acknowledged item is accounted for by a definite dequeue
// or at least one dequeue of unknown outcome (nothing lost), and each
// producer's acknowledged items were dequeued in the order it enqueued
// them. Items whose enqueue outcome is unknown may be absent. pending
// lists items known to be still in the queue at the end (not lost).
func CheckQueue(enqueued []Enqueued, dequeued []Dequeued, pending []string) error {
	v := &Violations{Check: "queue"}
	byItem := map[string]Enqueued{}
	for _, e := range enqueued {
		if _, dup := byItem[e.Item]; dup {
			v.add("item %q was enqueued twice in the records (items must be unique)", e.Item)
		}
		byItem[e.Item] = e
	}
	definite := map[string]Dequeued{}
	unknown := map[string]int{}
	for _, d := range dequeued {
		if _, ok := byItem[d.Item]; !ok {
			v.add("%s dequeued %q, which nobody enqueued", d.Consumer, d.Item)
			continue
		}
		if d.Unknown {
			unknown[d.Item]++
			continue
		}
		if first, dup := definite[d.Item]; dup {
			v.add("item %q was dequeued twice: by %s at index %d and by %s at index %d",
				d.Item, first.Consumer, first.Index, d.Consumer, d.Index)
			continue
		}
		definite[d.Item] = d
	}
	left := map[string]bool{}
	for _, p := range pending {
		left[p] = true
		if _, ok := definite[p]; ok {
			v.add("item %q is still in the queue but was dequeued by %s", p, definite[p].Consumer)
		}
	}
	for _, e := range enqueued {
		_, taken := definite[e.Item]
		if e.Acked && !taken && unknown[e.Item] == 0 && !left[e.Item] {
			v.add("item %q (enqueued by %s as its #%d at index %d) was lost: never dequeued and not in the queue",
				e.Item, e.Producer, e.Seq, e.Index)
		}
	}
	checkProducerOrder(v, enqueued, definite)
	return v.result()
}

// checkProducerOrder checks that each producer's acknowledged items left
// the queue in the order the producer enqueued them.
func checkProducerOrder(v *Violations, enqueued []Enqueued, definite map[string]Dequeued) {
	byProducer := map[string][]Enqueued{}
	for _, e := range enqueued {
		if _, ok := definite[e.Item]; ok && e.Acked {
			byProducer[e.Producer] = append(byProducer[e.Producer], e)
		}
	}
	producers := make([]string, 0, len(byProducer))
	for p := range byProducer {
		producers = append(producers, p)
	}
	slices.Sort(producers)
	for _, p := range producers {
		items := byProducer[p]
		slices.SortFunc(items, func(a, b Enqueued) int { return a.Seq - b.Seq })
		for i := 1; i < len(items); i++ {
			a, b := items[i-1], items[i]
			if definite[a.Item].Index > definite[b.Item].Index {
				v.add("%s enqueued %q (#%d) before %q (#%d), but they were dequeued in the other order (indexes %d and %d)",
					p, a.Item, a.Seq, b.Item, b.Seq, definite[a.Item].Index, definite[b.Item].Index)
			}
		}
	}
}
