// The replay model: the cluster's state rebuilt from trace lines, exactly
// as simulator.Rebuilder does it in Go (simulator/rebuild.go). The browser
// test compares the two at sampled events, so keep them in step: the same
// fields, the same rules, the same errors.
//
// A state is plain data:
//   { n, t_us, commit, members: [MemberState...], inFlight: Map(id -> line),
//     cut: [[from, to]...] or null }
// where a MemberState has the JSON names of the Go struct (id, status,
// role, term, vote, lead, commit, applied, first, last, snap_index,
// snap_term, terms, types, voters, learners, outgoing). inFlight maps each
// message sent and not yet delivered or dropped to the number of its send
// line, which the picture needs to draw it.

// newClusterState is the state before the first line, for a trace header.
export function newClusterState(header) {
  const members = [];
  for (let i = 0; i < header.slots; i++) {
    members.push({
      id: i + 1, status: "", role: "", term: 0, vote: 0, lead: 0, commit: 0, applied: 0,
      first: 1, last: 0, snap_index: 0, snap_term: 0, terms: [], types: "",
      voters: null, learners: null, outgoing: null,
    });
  }
  return { n: 0, t_us: 0, commit: 0, members, inFlight: new Map(), cut: null };
}

// checkHeader throws unless header is a version-2 raftkv trace header
// (NewRebuilder's checks).
export function checkHeader(header) {
  if (header.kind !== "header" || header.format !== "raftkv-trace") {
    throw new Error(`trace header: not a raftkv trace (kind "${header.kind}", format "${header.format}")`);
  }
  if (header.version !== 2) {
    throw new Error(`trace header: version ${header.version}, this viewer reads version 2`);
  }
  if (!(header.slots >= header.members && header.slots <= 64)) {
    throw new Error(`trace header: ${header.slots} slots for ${header.members} members`);
  }
}

// applyLine folds one parsed trace line (lineNo: its index among the
// trace's lines after the header) into st. It throws on a line the
// Rebuilder would refuse.
export function applyLine(st, l, lineNo) {
  st.n = l.n || 0;
  st.t_us = l.t_us || 0;
  const m = l.member >= 1 && l.member <= st.members.length ? st.members[l.member - 1] : null;
  switch (l.kind) {
    case "member":
      if (!m) throw new Error(`event ${st.n}: member line for member ${l.member || 0}`);
      m.status = l.status || "";
      m.role = l.role || "";
      m.term = l.term || 0;
      m.vote = l.vote || 0;
      m.lead = l.lead || 0;
      m.commit = l.commit || 0;
      m.applied = l.applied || 0;
      break;
    case "log":
      if (!m) throw new Error(`event ${st.n}: log line for member ${l.member || 0}`);
      applyLog(m, l, st.n);
      break;
    case "conf":
      if (!m) throw new Error(`event ${st.n}: conf line for member ${l.member || 0}`);
      m.voters = l.voters || null;
      m.learners = l.learners || null;
      m.outgoing = l.outgoing || null;
      break;
    case "send":
      st.inFlight.set(l.id || 0, lineNo);
      break;
    case "deliver":
    case "drop":
      if (!st.inFlight.delete(l.id || 0)) {
        throw new Error(`event ${st.n}: ${l.kind} of message ${l.id || 0}, which is not in flight`);
      }
      break;
    case "commit":
      st.commit = l.commit || 0;
      break;
    case "fault":
    case "heal":
      if (l.cut !== undefined && l.cut !== null) st.cut = l.cut;
      break;
  }
}

// applyLog applies a log line to member m (applyLog in rebuild.go): first
// drops the entries before it (a compaction or a snapshot), from drops the
// entries from there on and appends the runs.
function applyLog(m, l, n) {
  const first = l.first || 0;
  const from = l.from || 0;
  if (first !== 0) {
    if (first > m.first) {
      const drop = Math.min(first - m.first, m.terms.length);
      m.terms.splice(0, drop);
      m.types = m.types.slice(drop);
    }
    if (first !== m.first && from !== first && first > m.last + 1) {
      throw new Error(`event ${n}: member ${m.id}'s log starts at ${first}, after its last entry ${m.last}, without entries`);
    }
    if (first < m.first && from !== first) {
      throw new Error(`event ${n}: member ${m.id}'s log first index goes back from ${m.first} to ${first}`);
    }
    m.first = first;
    if (m.last < m.first - 1) m.last = m.first - 1;
    m.snap_index = l.snap_index || 0;
    m.snap_term = l.snap_term || 0;
  }
  if (from === 0) return;
  if (from < m.first || from > m.last + 1) {
    throw new Error(`event ${n}: member ${m.id}'s log ${m.first}..${m.last}: entries from ${from} leave a gap`);
  }
  const keep = from - m.first;
  m.terms.length = keep;
  let types = m.types.slice(0, keep);
  for (const run of l.runs || []) {
    const [term, count, kind] = run;
    if (typeof term !== "number" || typeof count !== "number" || typeof kind !== "string" || count < 1 || kind.length !== 1) {
      throw new Error(`event ${n}: member ${m.id}: bad log run ${JSON.stringify(run)} (want [term, count, type])`);
    }
    for (let k = 0; k < count; k++) m.terms.push(term);
    types += kind.repeat(count);
  }
  m.types = types;
  m.last = m.first + m.terms.length - 1;
}

// cloneState copies a state deeply enough that applying lines to the copy
// leaves the original alone (a checkpoint).
export function cloneState(st) {
  return {
    n: st.n, t_us: st.t_us, commit: st.commit,
    members: st.members.map((m) => ({ ...m, terms: m.terms.slice() })),
    inFlight: new Map(st.inFlight),
    cut: st.cut,
  };
}

// publicState is a state in the JSON shape of simulator.ClusterState.
export function publicState(st) {
  return {
    n: st.n, t_us: st.t_us, commit: st.commit,
    members: st.members.map((m) => ({ ...m, terms: m.terms.slice() })),
    in_flight: [...st.inFlight.keys()].sort((a, b) => a - b),
    cut: st.cut,
  };
}

// leaderOf names the member the picture calls the leader: the one up and
// leading in the highest term (0 if none).
export function leaderOf(st) {
  let best = null;
  for (const m of st.members) {
    if (m.role === "leader" && m.status === "up" && (!best || m.term > best.term)) best = m;
  }
  return best ? best.id : 0;
}
