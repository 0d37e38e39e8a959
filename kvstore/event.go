package kvstore

import "time"

// Actions, as they appear in the "action" field of an event (spec §4.1).
const (
	ActionGet              = "get"
	ActionSet              = "set"
	ActionCreate           = "create"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// Event is the outcome of one read or one modifying operation. Its JSON
// encoding is exactly etcd's success body (spec §4.1).
//
// Events handed out by the store (Apply results, Get results, watch
// deliveries) are shared between the caller, the event history and every
// watcher that receives them: treat them as immutable.
type Event struct {
	// Action is one of the Action* constants.
	Action string `json:"action"`
	// Node is the node after the operation (for delete, compareAndDelete and
	// expire: the removed node's key and indexes, without value).
	Node *Node `json:"node,omitempty"`
	// PrevNode is the node before the operation, rendered non-recursively;
	// nil when the operation did not replace, change or remove a node.
	PrevNode *Node `json:"prevNode,omitempty"`
	// EtcdIndex is the store index the HTTP layer reports in X-Etcd-Index:
	// the index a write produced, or the current index for reads and for
	// events a watch found in the history. It is not part of the body.
	EtcdIndex uint64 `json:"-"`
	// Refresh marks a TTL refresh. Refresh events consume an index and enter
	// the history, but no watcher ever receives them. Never serialised.
	Refresh bool `json:"-"`
}

// eventBlock holds a write's event and the nodes it points to, so that an
// apply makes one allocation instead of five: applies run by the million,
// and allocation (with the collection it causes on a large heap) was most
// of their cost.
type eventBlock struct {
	event            Event
	node, prevNode   Node
	value, prevValue string
}

// newEvent returns an event with the given action and index, whose node
// and previous node can be rendered into the same allocation with
// renderNode and renderPrevNode.
func newEvent(action string, index uint64) *eventBlock {
	block := &eventBlock{}
	block.event = Event{Action: action, EtcdIndex: index}
	return block
}

// renderNode renders n at path p as the event's node.
func (b *eventBlock) renderNode(n *node, p string, now time.Time) {
	b.event.Node = n.renderInto(&b.node, &b.value, p, now)
}

// renderPrevNode renders n at path p as the event's previous node.
func (b *eventBlock) renderPrevNode(n *node, p string, now time.Time) {
	b.event.PrevNode = n.renderInto(&b.prevNode, &b.prevValue, p, now)
}

// Index is the index of the change the event describes.
func (e *Event) Index() uint64 {
	return e.Node.ModifiedIndex
}

// IsCreated reports whether the event created a node, which etcd answers
// with 201 Created instead of 200 OK (spec §4.3).
func (e *Event) IsCreated() bool {
	return e.Action == ActionCreate || (e.Action == ActionSet && e.PrevNode == nil)
}

// Clone returns a deep copy of e.
func (e *Event) Clone() *Event {
	if e == nil {
		return nil
	}
	clone := *e
	clone.Node = e.Node.Clone()
	clone.PrevNode = e.PrevNode.Clone()
	return &clone
}

// Node is a node as etcd serves it (spec §4.2). Field order and omission
// rules match etcd's encoding, so json.Marshal produces etcd's bytes.
type Node struct {
	// Key is the full key ("/a/b"); empty (and so omitted) for the root.
	Key string `json:"key,omitempty"`
	// Value is the file's value; nil for directories and for the node of
	// delete, compareAndDelete and expire events.
	Value *string `json:"value,omitempty"`
	// Dir is true for directories.
	Dir bool `json:"dir,omitempty"`
	// Expiration is the absolute expiry time in UTC; nil for permanent nodes.
	Expiration *time.Time `json:"expiration,omitempty"`
	// TTL is the number of seconds left until Expiration, rounded up, as of
	// the time the node was rendered; 0 (omitted) for permanent nodes, and it
	// can be 0 or negative for a node that is due but not yet expired.
	TTL int64 `json:"ttl,omitempty"`
	// Nodes are the visible children of a directory (listed by Get only).
	Nodes []*Node `json:"nodes,omitempty"`
	// ModifiedIndex is the index of the node's last change.
	ModifiedIndex uint64 `json:"modifiedIndex,omitempty"`
	// CreatedIndex is the index at which the node was created.
	CreatedIndex uint64 `json:"createdIndex,omitempty"`
}

// Clone returns a deep copy of n, children included.
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	clone := *n
	if n.Value != nil {
		value := *n.Value
		clone.Value = &value
	}
	if n.Expiration != nil {
		expiration := *n.Expiration
		clone.Expiration = &expiration
	}
	if n.Nodes != nil {
		clone.Nodes = make([]*Node, len(n.Nodes))
		for i, child := range n.Nodes {
			clone.Nodes[i] = child.Clone()
		}
	}
	return &clone
}
