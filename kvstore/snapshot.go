package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Snapshot layout (version 1):
//
//	"RKVS" | version byte | payload | CRC-32C of everything before, 4 bytes LE
//
// payload: the etcd index (uvarint); the tree in pre-order from the root,
// children sorted by name (name, flags, createdIndex, modifiedIndex, the
// expiration if any, then the value of a file or the child count of a
// directory); the event history, oldest first (count, then each event).
// Sorting makes Save deterministic: equal stores give equal bytes.
const (
	snapshotMagic   = "RKVS"
	snapshotVersion = 1
)

// Node flag bits in a snapshot.
const (
	snapDir = 1 << iota
	snapHasTTL
)

// Event and rendered-node flag bits in a snapshot.
const (
	snapRefresh = 1 << iota
	snapHasNode
	snapHasPrevNode
)
const (
	snapHasValue = 1 << iota
	snapNodeDir
	snapHasExpiration
)

// snapshotActions numbers the actions in a snapshot; 0 is not used.
var snapshotActions = []string{"", ActionGet, ActionSet, ActionCreate, ActionUpdate,
	ActionDelete, ActionCompareAndSwap, ActionCompareAndDelete, ActionExpire}

// ErrBadSnapshot is wrapped by every error Restore returns for bad input.
var ErrBadSnapshot = errors.New("kvstore: bad snapshot")

// Save returns a snapshot of the whole store: every node with its indexes
// and TTL, the etcd index and the event history. Watchers are not saved.
func (s *Store) Save() ([]byte, error) {
	return s.AppendSnapshot(nil)
}

// AppendSnapshot appends the snapshot Save returns to buf and returns the
// extended buffer, so that a caller adding its own header copies nothing.
// The snapshot is sized exactly before it is written: a store of a million
// keys makes some 80 MB, which grown by doubling would be copied several
// times over and leave as much again behind for the collector.
func (s *Store) AppendSnapshot(buf []byte) ([]byte, error) {
	var history []byte
	for i := 0; i < s.history.size; i++ {
		var err error
		if history, err = appendEvent(history, s.history.at(i)); err != nil {
			return nil, err
		}
	}
	size := len(snapshotMagic) + 1 + uvarintLen(s.index) + treeSize(s.root) +
		uvarintLen(uint64(s.history.size)) + len(history) + 4
	buf = slices.Grow(buf, size)
	start := len(buf)
	buf = append(buf, snapshotMagic...)
	buf = append(buf, snapshotVersion)
	buf = binary.AppendUvarint(buf, s.index)
	tree := treeWriter{buf: buf}
	tree.node(s.root)
	buf = tree.buf
	buf = binary.AppendUvarint(buf, uint64(s.history.size))
	buf = append(buf, history...)
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:], crcTable))
	if len(buf)-start != size {
		panic(fmt.Sprintf("kvstore: snapshot of %d bytes, sized as %d", len(buf)-start, size))
	}
	return buf, nil
}

// WriteSnapshot writes the snapshot Save returns to w, in pieces of about
// snapshotPieceBytes: a snapshot can then go to a file without ever being
// whole in memory (some 80 MB at a million keys).
func (s *Store) WriteSnapshot(w io.Writer) error {
	var history []byte
	for i := 0; i < s.history.size; i++ {
		var err error
		if history, err = appendEvent(history, s.history.at(i)); err != nil {
			return err
		}
	}
	crc := uint32(0)
	flush := func(b []byte) error {
		crc = crc32.Update(crc, crcTable, b)
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("kvstore: write snapshot: %w", err)
		}
		return nil
	}
	tree := treeWriter{buf: make([]byte, 0, snapshotPieceBytes+4096), flush: flush}
	tree.buf = append(tree.buf, snapshotMagic...)
	tree.buf = append(tree.buf, snapshotVersion)
	tree.buf = binary.AppendUvarint(tree.buf, s.index)
	tree.node(s.root)
	if tree.err != nil {
		return tree.err
	}
	if err := flush(tree.buf); err != nil {
		return err
	}
	// The history, up to historyCapacity events, is built whole anyway.
	history = append(binary.AppendUvarint(nil, uint64(s.history.size)), history...)
	if err := flush(history); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc))
	if err != nil {
		return fmt.Errorf("kvstore: write snapshot: %w", err)
	}
	return nil
}

// snapshotPieceBytes is about how much WriteSnapshot hands to its writer
// at a time.
const snapshotPieceBytes = 64 << 10

// treeWriter appends the tree to buf in pre-order; with a flush function,
// it hands buf to flush and starts it again whenever it outgrows
// snapshotPieceBytes.
type treeWriter struct {
	buf   []byte
	flush func([]byte) error
	// err is the first error of flush; nothing is written after it.
	err error
}

// node appends n and its subtree.
func (t *treeWriter) node(n *node) {
	if t.err != nil {
		return
	}
	t.buf = appendNode(t.buf, n)
	if t.flush != nil && len(t.buf) >= snapshotPieceBytes {
		t.err = t.flush(t.buf)
		t.buf = t.buf[:0]
	}
	for child := range n.children().all() {
		t.node(child)
	}
}

// uvarintLen is the length of x as binary.AppendUvarint writes it.
func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

// varintLen is the length of x as binary.AppendVarint writes it.
func varintLen(x int64) int {
	return uvarintLen(uint64(x<<1) ^ uint64(x>>63))
}

// treeSize is the length of what treeWriter writes for n.
func treeSize(n *node) int {
	size := uvarintLen(uint64(len(n.name))) + len(n.name) + 1 +
		uvarintLen(n.createdIndex) + uvarintLen(n.modifiedIndex)
	if n.expiry() != nil {
		size += varintLen(n.expiry().at)
	}
	if !n.isDir() {
		return size + uvarintLen(uint64(len(n.value))) + len(n.value)
	}
	size += uvarintLen(uint64(n.children().len()))
	for child := range n.children().all() {
		size += treeSize(child)
	}
	return size
}

// appendCRC seals buf, a whole snapshot body, with its CRC-32C.
func appendCRC(buf []byte) []byte {
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, crcTable))
}

// crcTable is the Castagnoli polynomial table.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendNode appends n without its children (which follow it, each with
// its subtree, in name order).
func appendNode(buf []byte, n *node) []byte {
	var flags byte
	if n.isDir() {
		flags |= snapDir
	}
	if n.expiry() != nil {
		flags |= snapHasTTL
	}
	buf = appendString(buf, n.name)
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, n.createdIndex)
	buf = binary.AppendUvarint(buf, n.modifiedIndex)
	if n.expiry() != nil {
		buf = binary.AppendVarint(buf, n.expiry().at)
	}
	if !n.isDir() {
		return appendString(buf, n.value)
	}
	return binary.AppendUvarint(buf, uint64(n.children().len()))
}

// appendEvent appends a history event.
func appendEvent(buf []byte, e *Event) ([]byte, error) {
	action := -1
	for i, name := range snapshotActions {
		if i > 0 && name == e.Action {
			action = i
		}
	}
	if action < 0 {
		return nil, fmt.Errorf("kvstore: save: event %d has unknown action %q", e.Index(), e.Action)
	}
	var flags byte
	if e.Refresh {
		flags |= snapRefresh
	}
	if e.Node != nil {
		flags |= snapHasNode
	}
	if e.PrevNode != nil {
		flags |= snapHasPrevNode
	}
	buf = append(buf, byte(action), flags)
	buf = binary.AppendUvarint(buf, e.EtcdIndex)
	if e.Node != nil {
		buf = appendRendered(buf, e.Node)
	}
	if e.PrevNode != nil {
		buf = appendRendered(buf, e.PrevNode)
	}
	return buf, nil
}

// appendRendered appends an event's node. Event nodes never have children.
func appendRendered(buf []byte, n *Node) []byte {
	var flags byte
	if n.Value != nil {
		flags |= snapHasValue
	}
	if n.Dir {
		flags |= snapNodeDir
	}
	if n.Expiration != nil {
		flags |= snapHasExpiration
	}
	buf = appendString(buf, n.Key)
	buf = append(buf, flags)
	if n.Value != nil {
		buf = appendString(buf, *n.Value)
	}
	if n.Expiration != nil {
		buf = binary.AppendVarint(buf, n.Expiration.UnixNano())
	}
	buf = binary.AppendVarint(buf, n.TTL)
	buf = binary.AppendUvarint(buf, n.ModifiedIndex)
	return binary.AppendUvarint(buf, n.CreatedIndex)
}

// Restore replaces the store's contents with a snapshot made by Save. On
// any error (wrapping ErrBadSnapshot) the store is left unchanged. On
// success every registered watcher is removed and its channel closed: the
// events between its registration and the snapshot are unknown, so its
// client must watch again (from its last index, which the restored history
// answers or refuses with error 401).
func (s *Store) Restore(data []byte) error {
	if len(data) < len(snapshotMagic)+1+4 {
		return fmt.Errorf("%w: %d bytes is too short", ErrBadSnapshot, len(data))
	}
	if string(data[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: not a kvstore snapshot (magic %q)", ErrBadSnapshot, data[:len(snapshotMagic)])
	}
	if version := data[len(snapshotMagic)]; version != snapshotVersion {
		return fmt.Errorf("%w: unknown version %d", ErrBadSnapshot, version)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, crcTable); got != sum {
		return fmt.Errorf("%w: checksum %08x, want %08x", ErrBadSnapshot, got, sum)
	}
	r := restorer{decoder: decoder{data: body, offset: len(snapshotMagic) + 1, kind: ErrBadSnapshot}, cfg: s.cfg}
	state := r.read()
	if r.err != nil {
		return r.err
	}
	s.hub.closeAll()
	s.root, s.index, s.expiries, s.history = state.root, state.index, state.expiries, state.history
	return nil
}

// restoredState is what a snapshot decodes to.
type restoredState struct {
	root     *node
	index    uint64
	expiries expiryHeap
	history  *eventHistory
}

// restorer decodes a snapshot body and checks its invariants.
type restorer struct {
	decoder
	cfg   Config
	state restoredState
	// timed collects the nodes with a TTL; they enter the expiry heap once
	// the tree is complete, since the heap orders ties by full path.
	timed []*node
}

func (r *restorer) read() restoredState {
	r.state.index = r.uvarint("index")
	r.state.history = newEventHistory(historyCapacity)
	root := r.node(0)
	if r.err == nil && (root.name != "" || !root.isDir() || root.expiry() != nil || root.createdIndex != 0 || root.modifiedIndex != 0) {
		r.fail("the root is not an empty-named, permanent directory with index 0")
	}
	r.state.root = root
	for _, n := range r.timed {
		r.state.expiries.push(n)
	}
	r.events()
	if r.err == nil && r.offset != len(r.data) {
		r.fail("%d trailing bytes", len(r.data)-r.offset)
	}
	return r.state
}

// node decodes a node and its subtree at the given depth.
func (r *restorer) node(depth int) *node {
	name := r.string("name")
	flags := r.byte("node flags")
	n := &node{name: name, createdIndex: r.uvarint("createdIndex"), modifiedIndex: r.uvarint("modifiedIndex")}
	if flags&snapHasTTL != 0 {
		n.setExpiryState(&expiry{at: r.varint("expiration")})
	}
	switch {
	case r.err != nil:
		return n
	case flags&^(snapDir|snapHasTTL) != 0:
		r.fail("unknown node flags %#x", flags)
	case depth > 0 && (name == "" || strings.Contains(name, "/")):
		r.fail("bad node name %q", name)
	case depth > r.cfg.MaxDepth:
		r.fail("tree deeper than the limit of %d", r.cfg.MaxDepth)
	case n.createdIndex > n.modifiedIndex || n.modifiedIndex > r.state.index:
		r.fail("node %q has indexes %d/%d beyond index %d", name, n.createdIndex, n.modifiedIndex, r.state.index)
	}
	if r.err != nil {
		return n
	}
	if flags&snapDir == 0 {
		n.value = r.string("value")
	} else {
		n.makeDir()
		count := r.uvarint("child count")
		// Each child takes at least 5 bytes, which bounds count by the input.
		if count > uint64(len(r.data)-r.offset)/5 {
			r.fail("child count %d exceeds the remaining input", count)
		}
		for i := uint64(0); i < count && r.err == nil; i++ {
			child := r.node(depth + 1)
			if r.err == nil && n.children().get(child.name) != nil {
				r.fail("duplicate child %q", child.name)
			}
			if r.err == nil {
				n.attach(child)
			}
		}
	}
	if r.err == nil && n.expiry() != nil {
		r.timed = append(r.timed, n)
	}
	return n
}

// events decodes the event history.
func (r *restorer) events() {
	count := r.uvarint("history size")
	if r.err == nil && count > historyCapacity {
		r.fail("history of %d events exceeds %d", count, historyCapacity)
	}
	for i := uint64(0); i < count && r.err == nil; i++ {
		e := r.event()
		if r.err != nil {
			return
		}
		if h := r.state.history; h.size > 0 && e.Index() != h.lastIndex()+1 {
			r.fail("history event %d does not follow %d", e.Index(), h.lastIndex())
			return
		}
		r.state.history.add(e)
	}
	if r.err == nil && r.state.history.lastIndex() != r.state.index {
		r.fail("history ends at %d, index is %d", r.state.history.lastIndex(), r.state.index)
	}
}

// event decodes one history event.
func (r *restorer) event() *Event {
	action, flags := r.byte("action"), r.byte("event flags")
	e := &Event{EtcdIndex: r.uvarint("etcd index"), Refresh: flags&snapRefresh != 0}
	if flags&snapHasNode != 0 {
		e.Node = r.rendered()
	}
	if flags&snapHasPrevNode != 0 {
		e.PrevNode = r.rendered()
	}
	switch {
	case r.err != nil:
	case action == 0 || int(action) >= len(snapshotActions):
		r.fail("unknown action %d", action)
	case flags&^(snapRefresh|snapHasNode|snapHasPrevNode) != 0:
		r.fail("unknown event flags %#x", flags)
	case e.Node == nil:
		r.fail("event without a node")
	default:
		e.Action = snapshotActions[action]
	}
	return e
}

// rendered decodes an event's node.
func (r *restorer) rendered() *Node {
	n := &Node{Key: r.string("key")}
	flags := r.byte("rendered flags")
	if flags&^(snapHasValue|snapNodeDir|snapHasExpiration) != 0 {
		r.fail("unknown rendered-node flags %#x", flags)
	}
	if flags&snapHasValue != 0 {
		value := r.string("value")
		n.Value = &value
	}
	n.Dir = flags&snapNodeDir != 0
	if flags&snapHasExpiration != 0 {
		expiration := time.Unix(0, r.varint("expiration")).UTC()
		n.Expiration = &expiration
	}
	n.TTL = r.varint("ttl")
	n.ModifiedIndex = r.uvarint("modifiedIndex")
	n.CreatedIndex = r.uvarint("createdIndex")
	return n
}
