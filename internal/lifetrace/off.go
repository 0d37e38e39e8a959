//go:build !lifetrace

package lifetrace

// Enabled says whether this build records.
const Enabled = false

// Mark notes that member passed stage (about peer and index, where they
// apply) now. This build records nothing.
func Mark(member, peer, index uint64, stage Stage) {}
