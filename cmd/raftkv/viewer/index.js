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
// send, deliver and drop lines are read this way. (It is the hot loop of
// opening a trace: no closures, no allocation.)
function readHead(b, p, end) {
  if ((p = expectAt(b, p, end, PAT_N)) < 0 || (p = numberAt(b, p, end)) < 0) return false;
  headScan.n = scannedNumber;
  if ((p = expectAt(b, p, end, PAT_T)) < 0 || (p = numberAt(b, p, end)) < 0) return false;
  headScan.t = scannedNumber;
  if ((p = expectAt(b, p, end, PAT_KIND)) < 0) return false;
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
  if ((p = expectAt(b, p, end, PAT_ID)) < 0 || (p = numberAt(b, p, end)) < 0) return false;
  headScan.id = scannedNumber;
  return true;
}

// expectAt returns the position after pat at b[p], or -1 if pat is not
// there.
function expectAt(b, p, end, pat) {
  if (p + pat.length > end) return -1;
  for (let k = 0; k < pat.length; k++) if (b[p + k] !== pat[k]) return -1;
  return p + pat.length;
}

// scannedNumber is the number numberAt read last.
let scannedNumber = 0;

// numberAt reads the decimal digits at b[p] into scannedNumber and returns
// the position after them, or -1 if there are none.
function numberAt(b, p, end) {
  let v = 0;
  const start = p;
  while (p < end && b[p] >= 48 && b[p] <= 57) v = v * 10 + (b[p++] - 48);
  scannedNumber = v;
  return p > start ? p : -1;
}

// TraceReader indexes a trace as its bytes arrive (from the stream of a
// fetch, so that reading overlaps the download, or all at once): each
// line as soon as it is whole. push the chunks, then finish.
//
// The chunks are kept as they came, not copied into one buffer (copying
// a hundred megabytes costs as much as indexing them); a line split
// between two chunks is copied on its own.
export class TraceReader {
  // sizeHint is the trace's size if known (Content-Length), else 0.
  constructor(sizeHint) {
    this.sizeHint = sizeHint || 0;
    this.chunks = []; // the bytes, as they came
    this.chunkStarts = []; // the offset in the trace of each chunk
    this.total = 0; // bytes received
    this.carry = null; // the start of a line the next chunk ends
    this.carryStart = 0;
    this.ix = null; // the index, once the header is read
  }

  push(chunk) {
    const base = this.total;
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.chunkStarts.push(base);
    let p = 0;
    if (this.carry) {
      const e = chunk.indexOf(NEWLINE);
      const joined = concatBytes(this.carry, e < 0 ? chunk : chunk.subarray(0, e));
      if (e < 0) {
        this.carry = joined;
        return;
      }
      this.carry = null;
      this.lineDone(joined, 0, joined.length, this.carryStart, true);
      p = e + 1;
    }
    const n = chunk.length;
    while (p < n) {
      // A loop, not indexOf: a call into the engine per line costs more
      // than looking at the line's hundred bytes.
      let e = p;
      while (e < n && chunk[e] !== NEWLINE) e++;
      if (e === n) {
        this.carry = chunk.slice(p);
        this.carryStart = base + p;
        break;
      }
      this.lineDone(chunk, p, e, base + p, false);
      p = e + 1;
    }
  }

  // lineDone takes the line buf[p, end), at offset start of the trace;
  // spilled says buf is a copy of it alone.
  lineDone(buf, p, end, start, spilled) {
    if (!this.ix) {
      this.ix = readHeader(buf, p, end, this.sizeHint);
      this.ix.reader = this;
      return;
    }
    if (end === p) return;
    if (spilled) this.ix.spilled.set(this.ix.count, buf);
    this.ix.addLine(buf, p, end, start);
  }

  // finish indexes the last line and returns the index.
  finish() {
    if (this.carry) {
      const line = this.carry;
      this.carry = null;
      this.lineDone(line, 0, line.length, this.carryStart, true);
    }
    if (!this.ix) throw new TraceError(1, "empty: not a raftkv trace");
    this.ix.finishBuild(this.total);
    return this.ix;
  }

  // locate points lineAt at the bytes of line i of ix.
  locate(ix, i) {
    const spilled = ix.spilled.get(i);
    if (spilled) {
      lineAt.buf = spilled;
      lineAt.p = 0;
      lineAt.end = spilled.length;
      return;
    }
    const start = ix.starts[i];
    const c = upperBound(this.chunkStarts, this.chunkStarts.length, start) - 1;
    const chunk = this.chunks[c];
    lineAt.buf = chunk;
    lineAt.p = start - this.chunkStarts[c];
    // A line not spilled ends in its chunk: at a newline, or at the end of
    // the trace.
    const nl = chunk.indexOf(NEWLINE, lineAt.p);
    lineAt.end = nl >= 0 ? nl : chunk.length;
  }
}

// lineAt is where TraceReader.locate leaves a line: buf[p, end).
const lineAt = { buf: null, p: 0, end: 0 };

// concatBytes joins two byte arrays.
function concatBytes(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// readHeader checks a trace's first line and starts its index.
function readHeader(bytes, p, end, sizeHint) {
  if (end === p) throw new TraceError(1, "empty: not a raftkv trace");
  let header;
  try {
    header = JSON.parse(textDecoder.decode(bytes.subarray(p, end)));
  } catch (e) {
    throw new TraceError(1, `not a raftkv trace (${e.message})`);
  }
  try {
    checkHeader(header);
  } catch (e) {
    throw new TraceError(1, e.message);
  }
  // Trace lines are 60 to 150 bytes long: start with room for lines of
  // 90, and grow if need be.
  return new TraceIndex(header, Math.ceil(sizeHint / 90));
}

// openTrace indexes a trace held whole (its bytes), a few megabytes at a
// time with onProgress(fraction) between them. It throws a TraceError for
// a trace it cannot show.
export async function openTrace(bytes, onProgress) {
  const reader = new TraceReader(bytes.length);
  const slice = 4 << 20;
  for (let p = 0; p < bytes.length; p += slice) {
    reader.push(bytes.subarray(p, p + slice));
    if (onProgress) {
      onProgress(Math.min(1, (p + slice) / bytes.length));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  return reader.finish();
}

// fetchTraceIndex fetches a trace and indexes it as it arrives.
export async function fetchTraceIndex(url, onProgress) {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  // The size of the trace itself (the download may be compressed).
  const size = Number(res.headers.get("X-Trace-Bytes")) || 0;
  const reader = new TraceReader(size);
  const stream = res.body.getReader();
  for (;;) {
    const { done, value } = await stream.read();
    if (done) break;
    reader.push(value);
    if (onProgress && size) onProgress(reader.total / size);
  }
  return reader.finish();
}

// TraceIndex is an opened trace.
export class TraceIndex {
  constructor(header, capacity) {
    this.header = header;
    this.reader = null; // the TraceReader that holds the bytes
    this.spilled = new Map(); // line -> its bytes, for lines split between chunks
    this.count = 0; // lines after the header
    // Per line (grown as lines come): where line i starts in the trace
    // (it ends before starts[i+1]); its event, time and kind.
    this.capacity = Math.max(capacity || 0, 1 << 14);
    this.starts = new Float64Array(this.capacity + 1);
    this.ns = new Float64Array(this.capacity);
    this.ts = new Float64Array(this.capacity);
    this.kinds = new Uint8Array(this.capacity);
    // partner links a send line to its deliver or drop line and back (-1:
    // none, or not a message line).
    this.partner = new Int32Array(this.capacity).fill(-1);
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
    // The pass's state: the model as of the last line, what is open.
    this.st = newClusterState(header);
    this.openOps = new Map();
    this.openFaults = new Map(); // "class/member" -> band
    this.openLeaders = new Map(); // member -> band
    this.lastN = 0;
  }

  // grow doubles the per-line arrays.
  grow() {
    const cap = this.capacity * 2;
    const grown = (Type, old, size) => {
      const a = new Type(size);
      a.set(old);
      return a;
    };
    this.starts = grown(Float64Array, this.starts, cap + 1);
    this.ns = grown(Float64Array, this.ns, cap);
    this.ts = grown(Float64Array, this.ts, cap);
    this.kinds = grown(Uint8Array, this.kinds, cap);
    const partner = new Int32Array(cap).fill(-1);
    partner.set(this.partner);
    this.partner = partner;
    this.capacity = cap;
  }

  // addLine indexes the next line, b[p, end), which starts at offset start
  // of the trace: the model moves on by it, a checkpoint every
  // CHECKPOINT_EVERY lines.
  addLine(b, p, end, start) {
    const st = this.st;
    const i = this.count;
    if (i === this.capacity) this.grow();
    if (i % CHECKPOINT_EVERY === 0) this.checkpoints.push(cloneState(st));
    this.starts[i] = start;
    // Message lines (most of them) are read from their head only.
    if (readHead(b, p, end)) {
      const { n, t, kind, id } = headScan;
      if (n < this.lastN) throw new TraceError(i + 2, `event ${n} after event ${this.lastN}: events go in order`);
      this.lastN = n;
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
      const l = parseLine(b, p, end, i);
      if (l.n < this.lastN) throw new TraceError(i + 2, `event ${l.n} after event ${this.lastN}: events go in order`);
      this.lastN = l.n || 0;
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
      if (m) this.noteLeader(m, leading, l, i, this.openLeaders);
      this.noteTimeline(l, i, this.openOps, this.openFaults);
    }
    this.count = i + 1;
  }

  // finishBuild closes what is still open at the end of the run (total:
  // the trace's size).
  finishBuild(total) {
    const i = this.count;
    this.starts[i] = total + 1;
    const lastT = i > 0 ? this.ts[i - 1] : 0;
    this.endUs = Math.max(this.endUs, lastT);
    for (const band of this.openLeaders.values()) band.t1 = this.endUs;
    for (const band of this.openFaults.values()) band.t1 = this.endUs;
    for (const op of this.openOps.values()) op.t1 = this.endUs;
    this.finalState = this.st;
    this.st = null;
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
        // A link fault (its line says which links are cut) ends when every
        // link is whole again, whatever the heal's class.
        const link = Array.isArray(l.cut);
        const band = { cls, member: l.member || 0, detail: l.detail || "", t0: l.t_us, t1: 0, line: i, endLine: -1, link };
        this.faultBands.push(band);
        openFaults.set(key, band);
        break;
      }
      case "heal":
      case "restart": {
        this.faultLines.push(i);
        const cls = l.kind === "restart" ? "crash" : l.class || "fault";
        const close = (key, band) => { band.t1 = l.t_us; band.endLine = i; openFaults.delete(key); };
        const linksWhole = Array.isArray(l.cut) && l.cut.length === 0;
        if (l.member) {
          const key = `${cls}/${l.member}`;
          if (openFaults.has(key)) close(key, openFaults.get(key));
        }
        for (const [key, band] of [...openFaults]) {
          if ((!l.member && band.cls === cls) || (linksWhole && band.link)) close(key, band);
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

  // line returns line i parsed (cached: the picture asks for the same
  // message lines frame after frame).
  line(i) {
    let l = this.parsed.get(i);
    if (l) return l;
    this.reader.locate(this, i);
    l = parseLine(lineAt.buf, lineAt.p, lineAt.end, i);
    if (this.parsed.size > 4096) this.parsed.clear();
    this.parsed.set(i, l);
    return l;
  }

  // text returns line i as written.
  text(i) {
    this.reader.locate(this, i);
    return lineText(lineAt.buf, lineAt.p, lineAt.end);
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
    this.reader.locate(this, k);
    if (readHead(lineAt.buf, lineAt.p, lineAt.end)) return headScan.id;
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

// lineText returns the text of b[p, end). TextDecoder costs microseconds a
// call in a browser, which a hundred thousand lines add up to: an ASCII
// line (nearly all of them) is made a string directly.
function lineText(b, p, end) {
  if (end - p > 8192) return textDecoder.decode(b.subarray(p, end));
  for (let k = p; k < end; k++) if (b[k] >= 128) return textDecoder.decode(b.subarray(p, end));
  return String.fromCharCode.apply(null, b.subarray(p, end));
}

// parseLine parses line i, b[p, end).
function parseLine(b, p, end, i) {
  const text = lineText(b, p, end);
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
