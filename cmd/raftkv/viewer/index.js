// The trace index: what lets the page open a run of a million events in a
// second or two and jump anywhere in it at once.
//
// Opening reads every line once. It keeps, per line, only where the line
// starts, its event number, its time and its kind (typed arrays); it runs
// the replay model over all of it and keeps a copy of the state every
// CHECKPOINT_EVERY lines. To show the state after any line, it copies the
// checkpoint before it and replays at most CHECKPOINT_EVERY lines. The
// same pass collects what the timeline draws: leaders per term, faults,
// client operations, commits.
//
// Message lines (send, deliver, drop) are most of a trace; the pass reads
// their head (n, t_us, kind, id) straight from the bytes instead of
// parsing them as JSON, and parses them only when one is drawn or clicked.

import { newClusterState, checkHeader, applyLine, cloneState } from "./model.js";

// CHECKPOINT_EVERY is the number of lines between two checkpoints: the
// most a seek replays.
export const CHECKPOINT_EVERY = 2048;

// KIND numbers the kinds of lines (the kinds array holds these).
export const KIND = {
  other: 0, member: 1, log: 2, conf: 3, send: 4, deliver: 5, drop: 6, commit: 7, call: 8,
  return: 9, timeout: 10, fault: 11, heal: 12, crash: 13, restart: 14, action: 15, phase: 16,
};
const kindNames = Object.keys(KIND);

// TraceError is a trace the page cannot show, with the line that says so
// (1 is the header).
export class TraceError extends Error {
  constructor(lineNumber, message) {
    super(`trace line ${lineNumber}: ${message}`);
    this.lineNumber = lineNumber;
  }
}

const NEWLINE = 10;
const textDecoder = new TextDecoder();

// headScan is where readHead leaves what it read of a line's head.
const headScan = { n: 0, t: 0, kind: 0, id: 0 };

// Byte patterns of a message line's head, as the simulator writes it:
// {"n":N,"t_us":T,"kind":"K","id":I
const PAT_N = [123, 34, 110, 34, 58]; // {"n":
const PAT_T = [44, 34, 116, 95, 117, 115, 34, 58]; // ,"t_us":
const PAT_KIND = [44, 34, 107, 105, 110, 100, 34, 58, 34]; // ,"kind":"
const PAT_ID = [44, 34, 105, 100, 34, 58]; // ,"id":

// readHead reads the head of the line at bytes[p..end) into headScan and
// reports whether it could (false: parse the line as JSON instead). Only
// send, deliver and drop lines are read this way.
function readHead(b, p, end) {
  function expect(pat) {
    if (p + pat.length > end) return false;
    for (let k = 0; k < pat.length; k++) if (b[p + k] !== pat[k]) return false;
    p += pat.length;
    return true;
  }
  function number() {
    let v = 0;
    const start = p;
    while (p < end && b[p] >= 48 && b[p] <= 57) v = v * 10 + (b[p++] - 48);
    return p > start ? v : -1;
  }
  if (!expect(PAT_N) || (headScan.n = number()) < 0) return false;
  if (!expect(PAT_T) || (headScan.t = number()) < 0) return false;
  if (!expect(PAT_KIND)) return false;
  // send", deliver", drop" (the byte after the kind's first letter tells
  // them apart from the other kinds starting with s or d).
  const c0 = b[p];
  const c1 = b[p + 1];
  let len = 0;
  if (c0 === 115 && c1 === 101 && b[p + 4] === 34) { headScan.kind = KIND.send; len = 4; }
  else if (c0 === 100 && c1 === 101 && b[p + 7] === 34) { headScan.kind = KIND.deliver; len = 7; }
  else if (c0 === 100 && c1 === 114 && b[p + 4] === 34) { headScan.kind = KIND.drop; len = 4; }
  else return false;
  p += len + 1;
  if (!expect(PAT_ID) || (headScan.id = number()) < 0) return false;
  return true;
}

// kindByteAt returns the first letter of a line's kind, a cheap test of
// whether readHead may read it.
function kindByteAt(b, p, end) {
  // The kind starts after {"n":N,"t_us":T,"kind":" — find the third
  // colon's quote without parsing.
  let colons = 0;
  for (let q = p; q < end && q < p + 64; q++) {
    if (b[q] === 58 && ++colons === 3) return b[q + 2];
  }
  return 0;
}

// openTrace indexes a trace (its bytes). onProgress(fraction) is called
// now and then during the pass. It throws a TraceError for a trace it
// cannot show.
export async function openTrace(bytes, onProgress) {
  const total = bytes.length;
  let firstEnd = bytes.indexOf(NEWLINE);
  if (firstEnd < 0) firstEnd = total;
  if (firstEnd === 0) throw new TraceError(1, "empty: not a raftkv trace");
  let header;
  try {
    header = JSON.parse(textDecoder.decode(bytes.subarray(0, firstEnd)));
  } catch (e) {
    throw new TraceError(1, `not a raftkv trace (${e.message})`);
  }
  try {
    checkHeader(header);
  } catch (e) {
    throw new TraceError(1, e.message);
  }

  // Count the lines first, to size the arrays.
  let count = 0;
  for (let p = firstEnd + 1; p < total;) {
    let e = bytes.indexOf(NEWLINE, p);
    if (e < 0) e = total;
    if (e > p) count++;
    p = e + 1;
  }
  const ix = new TraceIndex(bytes, header, count);
  await ix.build(firstEnd + 1, onProgress);
  return ix;
}

// TraceIndex is an opened trace.
export class TraceIndex {
  constructor(bytes, header, count) {
    this.bytes = bytes;
    this.header = header;
    this.count = count; // lines after the header
    this.starts = new Float64Array(count + 1); // line i is bytes[starts[i], starts[i+1]-1)
    this.ns = new Float64Array(count);
    this.ts = new Float64Array(count);
    this.kinds = new Uint8Array(count);
    // partner links a send line to its deliver or drop line and back (-1:
    // none, or not a message line).
    this.partner = new Int32Array(count).fill(-1);
    this.checkpoints = [];
    // What the timeline and the step buttons use (line numbers and spans).
    this.leaderChanges = []; // lines where some member starts or stops leading
    this.leaderBands = []; // {member, term, t0, t1, line}
    this.faultBands = []; // {cls, member, detail, t0, t1, line, endLine}
    this.ops = []; // {id, client, member, op, t0, t1, outcome, result, line, endLine}
    this.commitLines = [];
    this.faultLines = []; // fault, heal, crash, restart
    this.markers = []; // actions and phases: {t, line, text}
    this.parsed = new Map(); // a small cache of parsed lines
    this.endUs = header.duration_us || 0;
  }

  // build is the one pass over the lines.
  async build(p, onProgress) {
    const b = this.bytes;
    const total = b.length;
    const st = newClusterState(this.header);
    const openOps = new Map();
    const openFaults = new Map(); // "class/member" -> band
    const openLeaders = new Map(); // member -> band
    let i = 0;
    let lastN = 0;
    let nextYield = performance.now() + 100;
    while (p < total && i < this.count) {
      let end = b.indexOf(NEWLINE, p);
      if (end < 0) end = total;
      if (end === p) { p++; continue; }
      if (i % CHECKPOINT_EVERY === 0) this.checkpoints.push(cloneState(st));
      this.starts[i] = p;
      const c = kindByteAt(b, p, end);
      // s(end), d(eliver/rop): try the fast path.
      if ((c === 115 || c === 100) && readHead(b, p, end)) {
        const { n, t, kind, id } = headScan;
        if (n < lastN) throw new TraceError(i + 2, `event ${n} after event ${lastN}: events go in order`);
        lastN = n;
        this.ns[i] = n;
        this.ts[i] = t;
        this.kinds[i] = kind;
        st.n = n;
        st.t_us = t;
        if (kind === KIND.send) {
          st.inFlight.set(id, i);
        } else {
          const sent = st.inFlight.get(id);
          if (sent === undefined) {
            throw new TraceError(i + 2, `event ${n}: ${kindNames[kind]} of message ${id}, which is not in flight`);
          }
          st.inFlight.delete(id);
          this.partner[i] = sent;
          this.partner[sent] = i;
        }
      } else {
        const l = this.parseAt(p, end, i);
        if (l.n < lastN) throw new TraceError(i + 2, `event ${l.n} after event ${lastN}: events go in order`);
        lastN = l.n || 0;
        this.ns[i] = l.n || 0;
        this.ts[i] = l.t_us || 0;
        this.kinds[i] = KIND[l.kind] || 0;
        let leading = 0;
        const m = l.kind === "member" ? st.members[l.member - 1] : null;
        if (m) leading = m.role === "leader" && m.status === "up" ? m.term : 0;
        if ((l.kind === "deliver" || l.kind === "drop") && st.inFlight.has(l.id)) {
          const sent = st.inFlight.get(l.id);
          this.partner[i] = sent;
          this.partner[sent] = i;
        }
        try {
          applyLine(st, l, i);
        } catch (e) {
          throw new TraceError(i + 2, e.message);
        }
        if (m) this.noteLeader(m, leading, l, i, openLeaders);
        this.noteTimeline(l, i, openOps, openFaults);
      }
      i++;
      p = end + 1;
      if ((i & 8191) === 0 && onProgress && performance.now() > nextYield) {
        onProgress(p / total);
        await new Promise((resolve) => setTimeout(resolve, 0));
        nextYield = performance.now() + 100;
      }
    }
    this.count = i;
    this.starts[i] = total + 1;
    const lastT = i > 0 ? this.ts[i - 1] : 0;
    this.endUs = Math.max(this.endUs, lastT);
    for (const band of openLeaders.values()) band.t1 = this.endUs;
    for (const band of openFaults.values()) band.t1 = this.endUs;
    for (const op of openOps.values()) op.t1 = this.endUs;
    this.finalState = st;
  }

  // noteLeader records a member starting or stopping leading (a member
  // line, applied already; was: the term it led in before, or 0).
  noteLeader(m, was, l, i, open) {
    const now = m.role === "leader" && m.status === "up" ? m.term : 0;
    if (now === was) return;
    this.leaderChanges.push(i);
    if (was) {
      const band = open.get(m.id);
      if (band) { band.t1 = l.t_us; band.endLine = i; open.delete(m.id); }
    }
    if (now) {
      const band = { member: m.id, term: now, t0: l.t_us, t1: 0, line: i, endLine: -1 };
      this.leaderBands.push(band);
      open.set(m.id, band);
    }
  }

  // noteTimeline records the lines the timeline draws as spans and marks.
  noteTimeline(l, i, openOps, openFaults) {
    switch (l.kind) {
      case "commit":
        this.commitLines.push(i);
        break;
      case "call": {
        const op = { id: l.id, client: l.client || 0, member: l.member || 0, op: l.op || "", t0: l.t_us, t1: 0, outcome: "", result: "", line: i, endLine: -1 };
        this.ops.push(op);
        openOps.set(l.id, op);
        break;
      }
      case "return":
      case "timeout": {
        const op = openOps.get(l.id);
        if (!op) break;
        op.t1 = l.t_us;
        op.endLine = i;
        op.outcome = l.kind === "timeout" ? "unknown" : l.outcome || "unknown";
        op.result = l.kind === "timeout" ? "the client gave up" : l.result || "";
        openOps.delete(l.id);
        break;
      }
      case "fault":
      case "crash": {
        this.faultLines.push(i);
        const cls = l.kind === "crash" ? "crash" : l.class || "fault";
        const key = `${cls}/${l.member || 0}`;
        if (openFaults.has(key)) break; // already open: the first one's band goes on
        const band = { cls, member: l.member || 0, detail: l.detail || "", t0: l.t_us, t1: 0, line: i, endLine: -1 };
        this.faultBands.push(band);
        openFaults.set(key, band);
        break;
      }
      case "heal":
      case "restart": {
        this.faultLines.push(i);
        const cls = l.kind === "restart" ? "crash" : l.class || "fault";
        const close = (key, band) => { band.t1 = l.t_us; band.endLine = i; openFaults.delete(key); };
        if (l.member) {
          const key = `${cls}/${l.member}`;
          if (openFaults.has(key)) close(key, openFaults.get(key));
        } else {
          for (const [key, band] of [...openFaults]) if (band.cls === cls) close(key, band);
        }
        break;
      }
      case "action":
        this.markers.push({ t: l.t_us, line: i, text: actionText(l), kind: "action" });
        break;
      case "phase":
        this.markers.push({ t: l.t_us, line: i, text: l.detail || "phase", kind: "phase" });
        break;
    }
  }

  // parseAt parses line i (bytes[p, end)).
  parseAt(p, end, i) {
    const text = textDecoder.decode(this.bytes.subarray(p, end));
    let l;
    try {
      l = JSON.parse(text);
    } catch (e) {
      throw new TraceError(i + 2, `not JSON (${e.message}): ${text.slice(0, 80)}`);
    }
    if (typeof l !== "object" || l === null || typeof l.kind !== "string" || typeof l.n !== "number") {
      throw new TraceError(i + 2, "a trace line needs n and kind");
    }
    return l;
  }

  // line returns line i parsed (cached: the picture asks for the same
  // message lines frame after frame).
  line(i) {
    let l = this.parsed.get(i);
    if (l) return l;
    l = this.parseAt(this.starts[i], this.starts[i + 1] - 1, i);
    if (this.parsed.size > 4096) this.parsed.clear();
    this.parsed.set(i, l);
    return l;
  }

  // text returns line i as written.
  text(i) {
    return textDecoder.decode(this.bytes.subarray(this.starts[i], this.starts[i + 1] - 1));
  }

  // stateAfterLine returns the state after line i (i < 0: before the
  // first), replaying from the checkpoint before it, or from base (a state
  // after line baseLine, which it then changes) when that is nearer.
  stateAfterLine(i, base, baseLine) {
    i = Math.min(i, this.count - 1);
    let st;
    let from;
    const c = Math.floor((i + 1) / CHECKPOINT_EVERY);
    if (base && baseLine <= i && baseLine >= c * CHECKPOINT_EVERY - 1) {
      st = base;
      from = baseLine + 1;
    } else {
      st = cloneState(this.checkpoints[Math.min(c, this.checkpoints.length - 1)] || newClusterState(this.header));
      from = Math.min(c, this.checkpoints.length - 1) * CHECKPOINT_EVERY;
    }
    for (let k = Math.max(from, 0); k <= i; k++) this.applyAt(st, k);
    return st;
  }

  // applyAt applies line k to st, without parsing a message line.
  applyAt(st, k) {
    const kind = this.kinds[k];
    if (kind === KIND.send || kind === KIND.deliver || kind === KIND.drop) {
      st.n = this.ns[k];
      st.t_us = this.ts[k];
      if (kind === KIND.send) {
        // The id is in the line; the partner's send line is k itself.
        st.inFlight.set(this.messageId(k), k);
      } else {
        st.inFlight.delete(this.messageId(k));
      }
      return;
    }
    applyLine(st, this.line(k), k);
  }

  // messageId reads a message line's id.
  messageId(k) {
    const p = this.starts[k];
    if (readHead(this.bytes, p, this.starts[k + 1] - 1)) return headScan.id;
    return this.line(k).id;
  }

  // lineAfterEvent is the last line of event n or before it (-1: none).
  lineAfterEvent(n) {
    return upperBound(this.ns, this.count, n) - 1;
  }

  // lineAtTime is the last line at time t or before it (-1: none).
  lineAtTime(t) {
    return upperBound(this.ts, this.count, t) - 1;
  }

  // events lists the event numbers that have lines, in order.
  events() {
    const out = [];
    for (let k = 0; k < this.count; k++) {
      if (k === 0 || this.ns[k] !== this.ns[k - 1]) out.push(this.ns[k]);
    }
    return out;
  }
}

// upperBound is the first k in a[0:count) with a[k] > v (a sorted).
export function upperBound(a, count, v) {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// actionText says what a lab or tour action did, in a few words.
export function actionText(l) {
  const d = l.do || "action";
  const parts = [d];
  if (l.member) parts.push(String(l.member));
  if (l.to) parts.push("→ " + l.to);
  if (l.groups) parts.push(l.groups.map((g) => g.join(",")).join(" | "));
  if (l.key) parts.push(l.key);
  if (l.value) parts.push("= " + l.value);
  return parts.join(" ");
}
