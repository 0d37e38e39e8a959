package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The data of a normal raft entry written by a member. Entries with empty
// data are a leader's no-op.
//
//	byte 0     kind
//	uvarint    proposer: the member that proposed it
//	uvarint    incarnation: a random number the proposer drew when it started
//	uvarint    request ID, unique within the proposer's incarnation (0: none)
//	rest       payload (kindCommand: an encoded kvstore.Command)
//
// (proposer, incarnation, request ID) identifies a proposal: it lets the
// proposer find its request when the entry applies, and every member skip a
// proposal the log holds twice (a forwarded proposal duplicated by the
// network), so that no write applies twice.

type entryKind uint8

const (
	// kindCommand carries a kvstore.Command.
	kindCommand entryKind = 1
	// kindMemberInfo carries a member's name and URLs (cluster metadata).
	kindMemberInfo entryKind = 2
)

// proposal is the decoded header of an entry.
type proposal struct {
	kind        entryKind
	proposer    uint64
	incarnation uint64
	requestID   uint64
	payload     []byte
}

var errBadEntry = errors.New("server: malformed entry data")

func appendProposal(b []byte, p proposal) []byte {
	b = append(b, byte(p.kind))
	b = binary.AppendUvarint(b, p.proposer)
	b = binary.AppendUvarint(b, p.incarnation)
	b = binary.AppendUvarint(b, p.requestID)
	return append(b, p.payload...)
}

func decodeProposal(data []byte) (proposal, error) {
	if len(data) == 0 {
		return proposal{}, fmt.Errorf("%w: empty", errBadEntry)
	}
	p := proposal{kind: entryKind(data[0])}
	rest := data[1:]
	for _, f := range []*uint64{&p.proposer, &p.incarnation, &p.requestID} {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return proposal{}, fmt.Errorf("%w: truncated header", errBadEntry)
		}
		*f, rest = v, rest[n:]
	}
	if p.kind != kindCommand && p.kind != kindMemberInfo {
		return proposal{}, fmt.Errorf("%w: unknown kind %d", errBadEntry, p.kind)
	}
	p.payload = rest
	return p, nil
}
