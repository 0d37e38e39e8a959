// The replay model: the cluster's state rebuilt from trace lines, exactly
// as simulator.Rebuilder does it in Go (simulator/rebuild.go). The browser
// test compares the two at sampled events, so keep them in step: the same
// fields, the same rules, the same errors.
//
// A state is plain data:
//   { n, t_us, commit, members: [MemberState...], inFlight: Map(id -> line),
//     cut: [[from, to]...] or null }
// where a member has the JSON names of the Go struct (id, status, role,
// term, vote, lead, commit, applied, first, last, snap_index, snap_term,
// voters, learners, outgoing) but keeps its log entries first..last as
// runs, [term, count, type] (as the trace's log lines write them), instead
// of Go's terms and types of each entry: a log of 12,000 entries is a
// handful of runs, so a checkpoint of the state costs next to nothing.
// Runs are never changed in place (a changed run is a new array), so a
// copy of the list of runs is a copy of the log. publicState writes the
// Go shape. inFlight maps each message sent and not yet delivered or
// dropped to the number of its send line, which the picture needs to draw
// it.

// newClusterState is the state before the first line, for a trace header.
export function newClusterState(header) {
  const members = [];
  for (let i = 0; i < header.slots; i++) {
    members.push({
      id: i + 1, status: "", role: "", term: 0, vote: 0, lead: 0, commit: 0, applied: 0,
      first: 1, last: 0, snap_index: 0, snap_term: 0, runs: [],
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
  const count = m.last - m.first + 1;
  if (first !== 0) {
    if (first > m.first) {
      m.runs = dropFront(m.runs, Math.min(first - m.first, Math.max(count, 0)));
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
  const runs = keepFront(m.runs, from - m.first);
  for (const run of l.runs || []) {
    const [term, count, kind] = run;
    if (typeof term !== "number" || typeof count !== "number" || typeof kind !== "string" || count < 1 || kind.length !== 1) {
      throw new Error(`event ${n}: member ${m.id}: bad log run ${JSON.stringify(run)} (want [term, count, type])`);
    }
    const lastRun = runs[runs.length - 1];
    if (lastRun && lastRun[0] === term && lastRun[2] === kind) runs[runs.length - 1] = [term, lastRun[1] + count, kind];
    else runs.push([term, count, kind]);
  }
  m.runs = runs;
  m.last = m.first + runsLength(runs) - 1;
}

// runsLength counts the entries of runs.
function runsLength(runs) {
  let total = 0;
  for (const r of runs) total += r[1];
  return total;
}

// dropFront returns runs without their first k entries.
function dropFront(runs, k) {
  let i = 0;
  while (i < runs.length && k >= runs[i][1]) k -= runs[i++][1];
  const out = runs.slice(i);
  if (k > 0 && out.length > 0) out[0] = [out[0][0], out[0][1] - k, out[0][2]];
  return out;
}

// keepFront returns (a new list of) the first k entries of runs.
function keepFront(runs, k) {
  const out = [];
  for (const r of runs) {
    if (k <= 0) break;
    out.push(k >= r[1] ? r : [r[0], k, r[2]]);
    k -= r[1];
  }
  return out;
}

// logEntries calls fn(index, term, type) for each entry of m's log from
// index lo to hi (clipped to the log), in order.
export function logEntries(m, lo, hi, fn) {
  lo = Math.max(lo, m.first);
  hi = Math.min(hi, m.last);
  let index = m.first;
  for (const [term, count, type] of m.runs) {
    if (index > hi) return;
    const end = index + count - 1;
    for (let k = Math.max(index, lo); k <= Math.min(end, hi); k++) fn(k, term, type);
    index = end + 1;
  }
}

// entryTerm is the term of m's entry at index (0: none).
export function entryTerm(m, index) {
  let term = 0;
  logEntries(m, index, index, (k, t) => { term = t; });
  return term;
}

// cloneState copies a state deeply enough that applying lines to the copy
// leaves the original alone (a checkpoint).
export function cloneState(st) {
  return {
    n: st.n, t_us: st.t_us, commit: st.commit,
    members: st.members.map((m) => ({ ...m, runs: m.runs.slice() })),
    inFlight: new Map(st.inFlight),
    cut: st.cut,
  };
}

// publicState is a state in the JSON shape of simulator.ClusterState.
export function publicState(st) {
  return {
    n: st.n, t_us: st.t_us, commit: st.commit,
    members: st.members.map(goMember),
    in_flight: [...st.inFlight.keys()].sort((a, b) => a - b),
    cut: st.cut,
  };
}

// goMember is a member in the JSON shape of simulator.MemberState: the
// term and type of each entry instead of runs.
function goMember(m) {
  const { runs, ...rest } = m;
  const terms = [];
  let types = "";
  for (const [term, count, type] of runs) {
    for (let k = 0; k < count; k++) terms.push(term);
    types += type.repeat(count);
  }
  return { ...rest, terms, types };
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
