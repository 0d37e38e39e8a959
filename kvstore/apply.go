package kvstore

import "fmt"

// Result is the outcome of applying one command: an event, or an error
// with nothing changed.
type Result struct {
	// Event is the event of a successful operation other than OpExpire.
	Event *Event
	// Expired holds OpExpire's events, one per expired node, in index order;
	// empty when nothing was due.
	Expired []*Event
	// Err is the etcd error of a failed operation; nil on success.
	Err *Error
}

// Apply applies one committed command. index is the Raft log index of the
// entry that carried it; it is informational only. The store's own etcd
// index advances by one per event (spec §6.2). A failed command changes
// nothing.
func (s *Store) Apply(index uint64, cmd Command) Result {
	s.raftIndex = index
	op := cmd.EffectiveOp()
	p := ""
	if op != OpExpire {
		p = cleanPath(cmd.Path)
	}
	if err := s.checkCommand(op, p, cmd); err != nil {
		return Result{Err: err}
	}
	if op == OpExpire {
		return Result{Expired: s.expire(cmd.Now)}
	}
	var e *Event
	var err *Error
	switch op {
	case OpSet:
		e, err = s.set(p, cmd)
	case OpCreate:
		e, err = s.create(creation{path: p, action: ActionCreate, dir: cmd.Dir, value: cmd.Value}, cmd)
	case OpCreateInOrder:
		e, err = s.createInOrder(p, cmd)
	case OpUpdate:
		e, err = s.update(p, cmd)
	case OpCompareAndSwap:
		e, err = s.compareAndSwap(p, cmd)
	case OpDelete:
		e, err = s.delete(p, cmd)
	case OpCompareAndDelete:
		e, err = s.compareAndDelete(p, cmd)
	default:
		panic(fmt.Sprintf("kvstore: raft entry %d: operation %v passed checkCommand", index, op))
	}
	if err != nil {
		return Result{Err: err}
	}
	return Result{Event: e}
}

// checkCommand rejects malformed commands before anything changes, with
// the request errors etcd gives (index 0). p is the cleaned cmd.Path.
func (s *Store) checkCommand(op Op, p string, cmd Command) *Error {
	if !op.valid() {
		return NewError(CodeInvalidField, fmt.Sprintf("unknown operation %v", op), 0)
	}
	if cmd.Refresh && cmd.Value != "" {
		return NewError(CodeRefreshValue, "A value was provided on a refresh", 0)
	}
	if cmd.Refresh && !cmd.HasTTL {
		return NewError(CodeRefreshTTLRequired, "No TTL value set", 0)
	}
	if cmd.HasTTL && cmd.Now.IsZero() {
		return NewError(CodeInvalidField, "a ttl was given without the proposer's time (Command.Now)", 0)
	}
	if op == OpExpire {
		return nil
	}
	if len(cmd.Value) > s.cfg.MaxValueSize {
		return NewError(CodeInvalidField,
			fmt.Sprintf("value is %d bytes long, the limit is %d", len(cmd.Value), s.cfg.MaxValueSize), 0)
	}
	return s.checkPath(p)
}

// setExpiry gives n the expiration at, or makes it permanent, keeping the
// expiry heap in step.
func (s *Store) setExpiry(n *node, at int64, hasTTL bool) {
	switch {
	case hasTTL && n.expiry() == nil:
		n.setExpiryState(&expiry{at: at})
		s.expiries.push(n)
	case hasTTL:
		n.expiry().at = at
		s.expiries.fix(n.expiry().heapIndex)
	case n.expiry() != nil:
		s.expiries.remove(n)
		n.setExpiryState(nil)
	}
}

// commit makes e the newest event: it advances the index, records e in the
// history and wakes the watchers, unless e is a refresh.
func (s *Store) commit(e *Event) {
	if e.Index() != s.index+1 {
		panic(fmt.Sprintf("kvstore: raft entry %d: event index %d after %d", s.raftIndex, e.Index(), s.index))
	}
	s.index = e.Index()
	s.history.add(e)
	if !e.Refresh {
		s.hub.notify(e)
	}
}

// rootReadOnly is error 107, for writes to the root.
func (s *Store) rootReadOnly() *Error {
	return NewError(CodeRootReadOnly, "/", s.index)
}
