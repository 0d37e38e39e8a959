package recipecheck

import (
	"slices"
	"time"
)

// Section is one critical section of a lock holder, or one term of an
// elected leader, as the holder itself saw it.
type Section struct {
	// Holder names who held it (a client, a process, a simulated client).
	Holder string
	// Token is the fencing token the holder was given: the createdIndex of
	// its key. Tokens must strictly increase with each acquisition.
	Token uint64
	// Enter is when the holder learnt it held (Lock or Campaign returned).
	Enter time.Time
	// Exit is when it let go of its own accord (Unlock or Resign was
	// called); zero if it never did.
	Exit time.Time
	// Lost is when the holder was told it had lost the lock (its session's
	// Done closed); zero if it never was.
	Lost time.Time
}

// End is when the holder stopped believing it held: the earlier of Exit
// and Lost. ok is false when neither happened (held until the end).
func (s Section) End() (end time.Time, ok bool) {
	switch {
	case s.Exit.IsZero() && s.Lost.IsZero():
		return time.Time{}, false
	case s.Exit.IsZero():
		return s.Lost, true
	case s.Lost.IsZero() || s.Exit.Before(s.Lost):
		return s.Exit, true
	}
	return s.Lost, true
}

// heldAt reports whether the holder still believed it held at t.
func (s Section) heldAt(t time.Time) bool {
	end, ok := s.End()
	return !ok || end.After(t)
}

// CheckLock checks a lock's history: no two sections overlap unless the
// earlier holder had been told it lost (or had unlocked) before the later
// one entered, and fencing tokens strictly increase in the order of entry.
func CheckLock(sections []Section) error {
	return checkSections("lock", "held the lock", sections)
}

// CheckElection checks an election's history by the same rules: at most
// one campaigner believes it leads at any time, unless the earlier was told
// it lost its leadership before the later was elected; the tokens (its
// key's createdIndex) strictly increase from term to term.
func CheckElection(terms []Section) error {
	return checkSections("election", "led", terms)
}

func checkSections(check, verb string, sections []Section) error {
	v := &Violations{Check: check}
	sorted := slices.Clone(sections)
	slices.SortStableFunc(sorted, func(a, b Section) int { return a.Enter.Compare(b.Enter) })
	for _, s := range sorted {
		if s.Enter.IsZero() {
			v.add("%s (token %d) has no entry time", s.Holder, s.Token)
		}
		if end, ok := s.End(); ok && end.Before(s.Enter) {
			v.add("%s (token %d) left at %s, before it entered at %s", s.Holder, s.Token, stamp(end), stamp(s.Enter))
		}
	}
	// active holds the sections entered so far that may still be held.
	var active []Section
	for i, b := range sorted {
		kept := active[:0]
		for _, a := range active {
			if !a.heldAt(b.Enter) {
				continue
			}
			kept = append(kept, a)
			v.add("%s (token %d) and %s (token %d) both %s at %s: %s", a.Holder, a.Token, b.Holder, b.Token, verb,
				stamp(b.Enter), lostWords(a))
		}
		active = append(kept, b)
		if i > 0 && b.Token <= sorted[i-1].Token {
			v.add("fencing token %d of %s (entered %s) is not above token %d of %s, who entered before it at %s",
				b.Token, b.Holder, stamp(b.Enter), sorted[i-1].Token, sorted[i-1].Holder, stamp(sorted[i-1].Enter))
		}
	}
	return v.result()
}

// lostWords says when a section's holder let go or was told it lost.
func lostWords(a Section) string {
	end, ok := a.End()
	if !ok {
		return "the first was never told it lost and never let go"
	}
	return "the first believed it held until " + stamp(end)
}

// stamp prints a time to the microsecond; a simulator's virtual times
// (near the epoch) print as an offset.
func stamp(t time.Time) string {
	if t.Year() < 1980 {
		return time.Duration(t.UnixNano()).String()
	}
	return t.Format("15:04:05.000000")
}
