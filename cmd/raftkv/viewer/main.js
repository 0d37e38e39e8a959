// The page: loads the trace (from the server, or from the page itself
// when it was written with raftkv view --out), and ties the picture, the
// timeline, the controls, the details panel, the tours and the lab
// together.
//
// The page's position is a line of the trace (the state shown is the
// state after it) and a virtual time (where the messages in flight are on
// their way). Stepping moves to a line; playing moves the time, and the
// line follows.
//
// window.raftkvView is for the browser test (and curious students in the
// console): see the end of this file.

import { htmlEl, fmtUs, shortMsg, clamp } from "./format.js";
import { publicState, leaderOf, logEntries } from "./model.js";
import { openTrace, fetchTraceIndex, KIND, upperBound, actionText } from "./index.js";
import { ClusterView } from "./draw.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

// view is the page's state.
const view = {
  ix: null, // the TraceIndex
  info: null, // /api/info
  st: null, // the state after line
  line: -1,
  t: 0,
  playing: false,
  speed: 0.02, // virtual seconds per real second
  selected: null,
  loads: 0, // traces loaded so far
  openMs: 0, // how long the last open took
  lastFrame: 0,
};

const picture = new ClusterView($("cluster"), select);
const timeline = new Timeline($("timeline-canvas"), (t) => { pause(); seekTime(t); }, select);

// embedded returns the text of a data script tag of a page written with
// --out (null when served).
function embedded(id) {
  const el = document.getElementById(id);
  return el ? el.textContent : null;
}

// fetchInfo gets the run's info: from the page, or from the server.
async function fetchInfo() {
  const text = embedded("raftkv-info");
  if (text !== null) return JSON.parse(text);
  const res = await fetch("api/info", { cache: "no-store" });
  if (!res.ok) throw new Error(`api/info: ${res.status} ${await res.text()}`);
  return res.json();
}

// fetchTrace gets the trace and indexes it: from the page, or from the
// server as it arrives.
async function fetchTrace(onProgress) {
  const text = embedded("raftkv-trace");
  if (text !== null) return openTrace(new TextEncoder().encode(text), onProgress);
  return fetchTraceIndex("trace", onProgress);
}

// load (re)loads the info and the trace, and moves to time keepT (or to
// the start).
async function load(keepT) {
  const started = performance.now();
  setStatus("loading the trace…");
  const progress = (f) => setStatus(`reading the trace… ${Math.round(f * 100)}%`);
  const [info, ix] = await Promise.all([fetchInfo(), fetchTrace(progress)]);
  view.info = info;
  view.ix = ix;
  view.st = null;
  view.line = -1;
  view.openMs = performance.now() - started;
  view.loads++;
  showRun();
  timeline.setTrace(ix, info.script ? info.script.captions : []);
  $("slider").max = String(Math.ceil(ix.endUs));
  const t = keepT === undefined ? 0 : clamp(keepT, 0, ix.endUs);
  seekTime(t);
  if (keepT === undefined) {
    // Start after the first event, where the members exist.
    if (ix.count > 0) seekLine(ix.lineAfterEvent(ix.ns[0]));
  }
  view.openMs = performance.now() - started;
  setStatus(`${ix.count.toLocaleString()} lines, ${countEvents(ix).toLocaleString()} events, opened in ${Math.round(view.openMs)} ms`);
}

function countEvents(ix) {
  if (ix.count === 0) return 0;
  return ix.ns[ix.count - 1] - ix.ns[0] + 1;
}

function setStatus(text) {
  $("load-status").textContent = text;
}

function showError(err) {
  const box = $("error");
  box.hidden = false;
  box.textContent = String(err && err.message ? err.message : err);
  setStatus("error");
}

// showRun fills in the header, the tours and the lab for a new trace.
function showRun() {
  const { ix, info } = view;
  const h = ix.header;
  $("run-name").textContent = info.script && info.script.title ? info.script.title : info.name || "";
  $("run-facts").textContent = `seed ${h.seed} · ${h.members} members (${h.member_kind}) · ${fmtUs(ix.endUs)}`;
  $("run-facts").title = h.params || "";
  // porcupine's page of the clients' history, linked from the header and
  // from the client lane.
  let historyURL = null;
  if (info.history) {
    const b64 = embedded("raftkv-history");
    historyURL = b64 !== null ? URL.createObjectURL(new Blob([Uint8Array.from(atob(b64.trim()), (c) => c.charCodeAt(0))], { type: "text/html" })) : "history.html";
  }
  for (const link of [$("history-link"), $("history-link-clients")]) {
    link.hidden = !historyURL;
    if (historyURL) link.href = historyURL;
  }
  showTours();
  showLab();
}

function showTours() {
  const tours = view.info.tours || [];
  $("tours").hidden = tours.length === 0 || view.info.standalone;
  const list = $("tour-list");
  list.replaceChildren();
  for (const tour of tours) {
    const li = htmlEl("li", {}, null, list);
    const b = htmlEl("button", { "data-tour": tour.name }, tour.title || tour.name, li);
    if (view.info.script && view.info.script.name === tour.name) b.classList.add("current");
    b.addEventListener("click", () => openTour(tour.name));
    if (tour.summary) htmlEl("p", { class: "summary" }, tour.summary, li);
  }
}

async function openTour(name) {
  pause();
  setStatus(`running tour ${name}…`);
  try {
    await post(`api/tour?name=${encodeURIComponent(name)}`);
    await load();
  } catch (err) {
    showError(err);
  }
}

// post sends a POST to the server and returns its JSON answer.
async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? "" : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(await res.text());
  return res.json();
}

// ---- the lab ----

function showLab() {
  const lab = view.info.lab && !view.info.standalone;
  $("lab").hidden = !lab;
  if (!lab) return;
  $("lab-save").href = "api/lab/script";
  const ids = view.ix.finalState.members.filter((m) => m.status !== "").map((m) => m.id);
  for (const id of ["lab-member", "lab-to"]) {
    const sel = $(id);
    const was = sel.value;
    sel.replaceChildren();
    for (const m of ids) htmlEl("option", { value: m }, `S${m}`, sel);
    if (ids.includes(Number(was))) sel.value = was;
  }
  if ($("lab-to").value === $("lab-member").value && ids.length > 1) $("lab-to").value = String(ids[1]);
}

// labAction carries out action do at the current virtual time: the server
// reruns the Script with it, and the page reloads the run where it was.
async function labAction(what) {
  const member = Number($("lab-member").value);
  const to = Number($("lab-to").value);
  const a = { do: what, t_us: Math.round(view.t) };
  switch (what) {
    case "cut":
    case "drop-next":
      if (member === to) {
        $("lab-status").textContent = `${what}: a link joins two members: pick another "to"`;
        return;
      }
      a.member = member;
      a.to = to;
      break;
    case "partition":
      a.groups = $("lab-groups").value.split("|").map((g) => g.split(",").map((s) => Number(s.trim())).filter((n) => n > 0));
      break;
    case "write":
      a.member = member;
      a.key = $("lab-key").value;
      a.value = $("lab-value").value;
      break;
    case "read":
    case "read-local":
      a.member = member;
      a.key = $("lab-key").value;
      break;
    case "heal":
    case "add":
      break;
    default:
      a.member = member;
  }
  await labRequest(`${actionText(a)} at ${fmtUs(a.t_us)}`, () => post("api/lab/action", a));
}

// labRequest runs one lab request and reloads the run, keeping the time.
async function labRequest(what, request) {
  const wasPlaying = view.playing;
  pause();
  const status = $("lab-status");
  status.textContent = `${what}: running…`;
  try {
    await request();
    await load(view.t);
    status.textContent = `${what}: done`;
    if (wasPlaying) play();
  } catch (err) {
    status.textContent = `${what}: ${err.message}`;
  }
}

for (const b of document.querySelectorAll("button[data-lab]")) {
  b.addEventListener("click", () => labAction(b.dataset.lab));
}
$("lab-further").addEventListener("click", () => labRequest("run further", () => post("api/lab/further")));
$("lab-reset").addEventListener("click", () => labRequest("reset", () => post("api/lab/reset")));

// ---- moving through the run ----

// seekLine shows the state after line (and the time of that line).
function seekLine(line) {
  const ix = view.ix;
  line = clamp(line, -1, ix.count - 1);
  moveTo(line, line >= 0 ? ix.ts[line] : 0);
}

// seekTime shows the run at virtual time t.
function seekTime(t) {
  const ix = view.ix;
  t = clamp(t, 0, ix.endUs);
  moveTo(ix.lineAtTime(t), t);
}

function moveTo(line, t) {
  const ix = view.ix;
  if (!view.st || line !== view.line) {
    view.st = ix.stateAfterLine(line, view.st, view.line);
    view.line = line;
  }
  view.t = t;
  render();
}

// render draws the picture, the timeline and the controls for the
// current position.
function render() {
  const { ix, st, line, t } = view;
  picture.render(ix, st, line, t);
  timeline.draw(t);
  $("slider").value = String(Math.round(t));
  const leader = leaderOf(st);
  $("clock").textContent = `${fmtUs(t)} · event ${st.n} · line ${line + 2} · leader ${leader ? "S" + leader : "none"} · commit ${st.commit}`;
  showCaption(t);
  if (view.selected && view.selected.type === "member") showMember(view.selected.id);
}

// showCaption shows the tour's caption for time t (the last one before).
function showCaption(t) {
  const captions = (view.info.script && view.info.script.captions) || [];
  let shown = null;
  for (const c of captions) if (c.t_us <= t) shown = c;
  const box = $("caption");
  box.hidden = !shown;
  if (!shown) return;
  $("caption-text").textContent = shown.text;
  $("caption-code").textContent = shown.code || "";
  box.dataset.t = shown.t_us;
}

// step moves to the next (dir 1) or previous (dir -1) line of a kind.
function step(what, dir) {
  pause();
  const ix = view.ix;
  const line = view.line;
  let target = -2;
  if (what === "event") {
    if (dir > 0) {
      const next = upperBound(ix.ns, ix.count, line >= 0 ? ix.ns[line] : -1);
      if (next < ix.count) target = ix.lineAfterEvent(ix.ns[next]);
    } else if (line >= 0) {
      target = ix.lineAfterEvent(ix.ns[line] - 1);
    }
  } else if (what === "message") {
    const isMsg = (k) => ix.kinds[k] === KIND.send || ix.kinds[k] === KIND.deliver || ix.kinds[k] === KIND.drop;
    for (let k = line + dir; k >= 0 && k < ix.count; k += dir) if (isMsg(k)) { target = k; break; }
  } else {
    const lines = { leader: ix.leaderChanges, fault: ix.faultLines, commit: ix.commitLines }[what];
    if (dir > 0) {
      const k = upperBound(lines, lines.length, line);
      if (k < lines.length) target = lines[k];
    } else {
      const k = upperBound(lines, lines.length, line - 1) - 1;
      if (k >= 0) target = lines[k];
    }
  }
  if (target >= -1) seekLine(target);
}

for (const b of document.querySelectorAll("button[data-step]")) {
  b.addEventListener("click", () => step(b.dataset.step, Number(b.dataset.dir)));
}

function play() {
  if (view.playing) return;
  if (view.t >= view.ix.endUs) seekTime(0);
  view.playing = true;
  $("play").textContent = "⏸ pause";
  view.lastFrame = performance.now();
  requestAnimationFrame(frame);
}

function pause() {
  view.playing = false;
  $("play").textContent = "▶ play";
}

// frame moves the time on by the real time since the last frame times the
// speed.
function frame(now) {
  if (!view.playing) return;
  const dt = Math.min(now - view.lastFrame, 100);
  view.lastFrame = now;
  const t = view.t + dt * 1000 * view.speed;
  if (t >= view.ix.endUs) {
    seekTime(view.ix.endUs);
    pause();
    return;
  }
  seekTime(t);
  requestAnimationFrame(frame);
}

$("play").addEventListener("click", () => (view.playing ? pause() : play()));
$("speed").addEventListener("change", (e) => { view.speed = Number(e.target.value); });
$("slider").addEventListener("input", (e) => { pause(); seekTime(Number(e.target.value)); });
$("zoom").addEventListener("change", (e) => { timeline.setZoom(Number(e.target.value)); timeline.draw(view.t); });
window.addEventListener("resize", () => view.ix && render());
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  if (e.key === " ") { e.preventDefault(); view.playing ? pause() : play(); }
  if (e.key === "ArrowRight") step("event", 1);
  if (e.key === "ArrowLeft") step("event", -1);
});

// ---- details ----

// select shows what was clicked in the details panel.
function select(what) {
  view.selected = what;
  picture.selected = what.type === "member" ? what.id : 0;
  if (what.type === "member") showMember(what.id);
  if (what.type === "message") showMessage(what.line);
  if (what.type === "op") showOp(what.op);
  if (what.type === "fault") showFault(what.band);
  if (what.type === "member") picture.render(view.ix, view.st, view.line, view.t);
}

// fieldTable writes rows of [name, value] as a table.
function fieldTable(rows, parent) {
  const table = htmlEl("table", { class: "fields" }, null, parent);
  for (const [k, v] of rows) {
    const tr = htmlEl("tr", {}, null, table);
    htmlEl("th", {}, k, tr);
    htmlEl("td", {}, v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v), tr);
  }
  return table;
}

function detailsBody(title) {
  const body = $("details-body");
  body.replaceChildren();
  htmlEl("h3", {}, title, body);
  return body;
}

// showMember shows a member's whole state: Figure 2's persistent and
// volatile state, its configuration, its snapshot and its log.
function showMember(id) {
  const m = view.st.members[id - 1];
  const body = detailsBody(`member S${id}`);
  body.dataset.member = id;
  fieldTable([
    ["status", m.status || "not started"], ["role", m.role], ["currentTerm", m.term], ["votedFor", m.vote || "–"],
    ["leader known", m.lead || "–"], ["commitIndex", m.commit], ["lastApplied", m.applied],
    ["voters", (m.voters || []).join(", ")], ["learners", (m.learners || []).join(", ")],
    ["outgoing voters (joint)", (m.outgoing || []).join(", ")],
    ["snapshot", m.snap_index ? `up to index ${m.snap_index} (term ${m.snap_term})` : "none"],
    ["log", m.last >= m.first ? `entries ${m.first}..${m.last}` : "empty"],
  ], body);
  const log = htmlEl("div", { class: "log-list" }, null, body);
  const from = Math.max(m.first, m.last - 199);
  if (from > m.first) htmlEl("span", { class: "more" }, `… ${from - m.first} older entries`, log);
  const typeNames = { n: "", e: " (empty: the leader's first)", c: " (conf change)" };
  logEntries(m, from, m.last, (k, term, type) => {
    htmlEl("span", { class: "log-item" + (k <= m.commit ? " committed" : ""), title: `index ${k}, term ${term}${typeNames[type] || ""}` }, `${k}:${term}${type === "n" ? "" : type}`, log);
  });
}

// showMessage shows a message's fields and what became of it.
function showMessage(sendLine) {
  const ix = view.ix;
  const s = ix.line(sendLine);
  const body = detailsBody(`message ${s.id}: ${shortMsg(s.msg)} S${s.from} → S${s.to}`);
  const rows = Object.entries(s).filter(([k]) => k !== "kind");
  const end = ix.partner[sendLine];
  if (end >= 0) {
    const e = ix.line(end);
    rows.push(["fate", e.kind === "deliver" ? `delivered at ${fmtUs(e.t_us)} (event ${e.n})` : `dropped at ${fmtUs(e.t_us)} (event ${e.n}): ${e.why}`]);
  }
  fieldTable(rows, body);
  htmlEl("pre", { class: "raw" }, ix.text(sendLine), body);
}

// showOp shows a client operation: its call and its return.
function showOp(op) {
  const body = detailsBody(`client ${op.client}: ${op.op}`);
  fieldTable([
    ["id", op.id], ["sent to", `S${op.member}`], ["called", fmtUs(op.t0)],
    ["returned", op.endLine >= 0 ? fmtUs(op.t1) : "never"], ["outcome", op.outcome || "pending"], ["result", op.result],
  ], body);
  const go = htmlEl("button", {}, "go to the call", body);
  go.addEventListener("click", () => seekLine(op.line));
}

function showFault(band) {
  const body = detailsBody(`fault: ${band.cls}${band.member ? " S" + band.member : ""}`);
  fieldTable([["class", band.cls], ["member", band.member || "–"], ["detail", band.detail], ["from", fmtUs(band.t0)], ["healed", band.endLine >= 0 ? fmtUs(band.t1) : "never"]], body);
  const go = htmlEl("button", {}, "go to its start", body);
  go.addEventListener("click", () => seekLine(band.line));
}

// ---- for the browser test ----

const ready = (async () => {
  try {
    await load();
  } catch (err) {
    showError(err);
    throw err;
  }
})();

window.raftkvView = {
  // ready resolves when the first trace is shown (rejects with the
  // trace's error).
  ready,
  // stateAfter returns the state after event n in the JSON shape of
  // simulator.ClusterState, without moving the picture.
  stateAfter(n) {
    return publicState(view.ix.stateAfterLine(view.ix.lineAfterEvent(n)));
  },
  // seek shows the state after event n.
  seek(n) {
    pause();
    seekLine(view.ix.lineAfterEvent(n));
    return this.position();
  },
  seekTime(t) {
    pause();
    seekTime(t);
    return this.position();
  },
  step,
  // line returns line i of the trace (after the header), parsed.
  line(i) {
    return view.ix.line(i);
  },
  position() {
    return { line: view.line, n: view.st.n, t: view.t, loads: view.loads };
  },
  events() {
    return view.ix.events();
  },
  header() {
    return view.ix.header;
  },
  info() {
    return view.info;
  },
  openMs() {
    return view.openMs;
  },
  loads() {
    return view.loads;
  },
};
