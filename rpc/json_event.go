package rpc

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/raftkv/raftkv/kvstore"
)

// A hand-written encoder of key events: the same bytes encoding/json
// writes for kvstore.Event (field order, omitempty, HTML-safe string
// escaping, RFC 3339 times), without reflection. Every answer to a key
// request goes through it, so it is on the hot path; json_event_test.go
// checks it against encoding/json on random events.

// appendEvent appends ev's JSON encoding.
func appendEvent(b []byte, ev *kvstore.Event) []byte {
	b = append(b, `{"action":`...)
	b = appendJSONString(b, ev.Action)
	if ev.Node != nil {
		b = append(b, `,"node":`...)
		b = appendNode(b, ev.Node)
	}
	if ev.PrevNode != nil {
		b = append(b, `,"prevNode":`...)
		b = appendNode(b, ev.PrevNode)
	}
	return append(b, '}')
}

// appendNode appends n's JSON encoding (kvstore.Node's tags: every field
// omitted when empty, value when nil).
func appendNode(b []byte, n *kvstore.Node) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if n.Key != "" {
		field("key")
		b = appendJSONString(b, n.Key)
	}
	if n.Value != nil {
		field("value")
		b = appendJSONString(b, *n.Value)
	}
	if n.Dir {
		field("dir")
		b = append(b, "true"...)
	}
	if n.Expiration != nil {
		field("expiration")
		b = appendJSONTime(b, *n.Expiration)
	}
	if n.TTL != 0 {
		field("ttl")
		b = strconv.AppendInt(b, n.TTL, 10)
	}
	if len(n.Nodes) > 0 {
		field("nodes")
		b = append(b, '[')
		for i, c := range n.Nodes {
			if i > 0 {
				b = append(b, ',')
			}
			if c == nil {
				b = append(b, "null"...)
				continue
			}
			b = appendNode(b, c)
		}
		b = append(b, ']')
	}
	if n.ModifiedIndex != 0 {
		field("modifiedIndex")
		b = strconv.AppendUint(b, n.ModifiedIndex, 10)
	}
	if n.CreatedIndex != 0 {
		field("createdIndex")
		b = strconv.AppendUint(b, n.CreatedIndex, 10)
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time.MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json does
// by default: ", \ and control characters escaped, <, > and & escaped as
// \u003c, \u003e, \u0026, U+2028 and U+2029 escaped, and invalid UTF-8
// replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
