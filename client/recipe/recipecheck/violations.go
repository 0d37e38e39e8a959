package recipecheck

import (
	"fmt"
	"strings"
)

// maxReported bounds how many violations a Violations error keeps; the
// count of the rest is still reported.
const maxReported = 20

// Violations is the failure of a check: what property was broken, each
// time it was.
type Violations struct {
	// Check names the check ("lock", "election", "queue", "watch").
	Check string
	// List holds the first maxReported violations, each one sentence.
	List []string
	// Total counts every violation found, reported or not.
	Total int
}

func (v *Violations) add(format string, args ...any) {
	v.Total++
	if len(v.List) < maxReported {
		v.List = append(v.List, fmt.Sprintf(format, args...))
	}
}

// Error lists the violations, one a line.
func (v *Violations) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s history: %d violation(s)", v.Check, v.Total)
	for _, s := range v.List {
		b.WriteString("\n  - ")
		b.WriteString(s)
	}
	if v.Total > len(v.List) {
		fmt.Fprintf(&b, "\n  - ... and %d more", v.Total-len(v.List))
	}
	return b.String()
}

// result is v as an error: nil when nothing was found.
func (v *Violations) result() error {
	if v.Total == 0 {
		return nil
	}
	return v
}
