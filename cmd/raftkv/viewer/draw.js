// The cluster picture: members in a ring, each member's log as a row of
// boxes coloured by term, and the messages in flight between members.
//
// Everything drawn carries data attributes (data-role, data-term,
// data-last, data-commit, data-msg, ...) with the values it shows, which
// is what the browser test reads back and compares with the trace.

import { svgEl, termColour, ROLE_COLOURS, shortMsg, clamp } from "./format.js";
import { KIND } from "./index.js";
import { leaderOf, logEntries, entryTerm } from "./model.js";

const RING = { cx: 230, cy: 225, r: 160, node: 40 };
const LOG = { x: 480, y: 40, row: 34, box: 17, width: 520 };
// LOG_WINDOW is how many entries each log row shows (the newest ones).
const LOG_WINDOW = Math.floor((LOG.width - 40) / LOG.box);
// DROP_LINGER_US is how long (virtual time) a dropped message's × stays.
const DROP_LINGER_US = 4000;
// MAX_DRAWN_MESSAGES bounds the messages drawn at once (a leader
// pipelining appends may have hundreds in flight).
const MAX_DRAWN_MESSAGES = 300;

// WHERE_DROPPED says how far along its way a dropped message dies, by why.
const WHERE_DROPPED = { cut: 0.5, loss: 0.5, down: 0.85, stale: 0.12, lost: 0.6, lab: 0.5, end: 0.5 };

// MSG_COLOURS colour messages by type; responses are lighter.
function msgColour(type) {
  if (/Heartbeat/.test(type)) return /Resp/.test(type) ? "#dee2e6" : "#adb5bd";
  if (/Snap/.test(type)) return "#b388eb";
  if (/PreVote/.test(type)) return /Resp/.test(type) ? "#fff3b0" : "#e9c46a";
  if (/Vote/.test(type)) return /Resp/.test(type) ? "#ffd6a5" : "#f4a261";
  if (/App/.test(type)) return /Resp/.test(type) ? "#caf0f8" : "#48cae4";
  return "#ced4da";
}

// memberXY places slot i of count on the ring (the first at the top).
function memberXY(i, count) {
  const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(count, 1);
  return [RING.cx + RING.r * Math.cos(a), RING.cy + RING.r * Math.sin(a)];
}

export class ClusterView {
  // svg is the <svg> to draw in; onSelect(what) is called on a click
  // ({type: "member", id} or {type: "message", line}).
  constructor(svg, onSelect) {
    this.svg = svg;
    this.onSelect = onSelect;
    svg.setAttribute("viewBox", "0 0 1010 460");
    // layer is redrawn for each picture; ghosts (entries leaving) stay
    // until their fade-out is over.
    this.layer = svgEl("g", { class: "picture" }, svg);
    this.ghosts = svgEl("g", { class: "ghosts" }, svg);
    this.prevLogs = null; // member id -> {first, last, runs, snap} as last drawn
    this.prevLine = -1;
    this.selected = 0;
  }

  // render draws the state st (after line, at virtual time t) of trace ix.
  render(ix, st, line, t) {
    const svg = this.svg;
    this.layer.replaceChildren();
    const leader = leaderOf(st);
    svg.dataset.line = line;
    svg.dataset.n = st.n;
    svg.dataset.t = t;
    svg.dataset.leader = leader;
    svg.dataset.commit = st.commit;
    const shown = st.members.filter((m) => m.status !== "");
    const slots = st.members.length;
    const pos = new Map();
    // Founders and added members keep their place: slot order on the ring.
    st.members.forEach((m, i) => pos.set(m.id, memberXY(i, slots)));
    this.drawCut(st, pos);
    const msgLayer = svgEl("g", { class: "messages" });
    for (const m of shown) this.drawMember(m, pos.get(m.id), leader);
    this.layer.appendChild(msgLayer);
    svg.dataset.inFlight = this.drawMessages(ix, st, line, t, pos, msgLayer);
    this.drawLogs(ix, st, line, shown);
  }

  // drawCut draws each cut link as a dashed red line.
  drawCut(st, pos) {
    const g = svgEl("g", { class: "cut" }, this.layer);
    for (const [from, to] of st.cut || []) {
      const a = pos.get(from);
      const b = pos.get(to);
      if (!a || !b) continue;
      // One-way cuts are drawn on the sender's half.
      svgEl("line", { x1: a[0], y1: a[1], x2: (a[0] + b[0]) / 2, y2: (a[1] + b[1]) / 2, class: "cut-link", "data-from": from, "data-to": to }, g);
    }
  }

  // drawMember draws one member's node: role as the colour, status as the
  // outline, term, vote and commit inside.
  drawMember(m, [x, y], leader) {
    const g = svgEl("g", {
      class: `member status-${m.status} role-${m.role}` + (m.id === this.selected ? " selected" : ""),
      transform: `translate(${x},${y})`,
      "data-id": m.id, "data-status": m.status, "data-role": m.role, "data-term": m.term,
      "data-vote": m.vote, "data-lead": m.lead, "data-commit": m.commit, "data-applied": m.applied,
      "data-last": m.last,
    }, this.layer);
    g.addEventListener("click", () => this.onSelect({ type: "member", id: m.id }));
    const fill = m.status === "up" || m.status === "paused" ? ROLE_COLOURS[m.role] || "#eee" : "#d9d9d9";
    svgEl("circle", { r: RING.node, fill, class: "node" }, g);
    if (m.id === leader) svgEl("circle", { r: RING.node + 6, class: "leader-ring" }, g);
    svgEl("text", { y: -12, class: "node-id" }, g).textContent = `S${m.id}`;
    svgEl("text", { y: 6, class: "node-term" }, g).textContent = `term ${m.term}`;
    svgEl("text", { y: 20, class: "node-small" }, g).textContent = `vote ${m.vote || "–"} · ci ${m.commit}`;
    const label = m.status === "up" ? m.role : m.status;
    svgEl("text", { y: RING.node + 16, class: `node-role label-${m.status}` }, g).textContent = label;
    if (m.status === "down" || m.status === "failed" || m.status === "removed") {
      svgEl("path", { d: "M-22,-22L22,22M22,-22L-22,22", class: `x-${m.status}` }, g);
    } else if (m.status === "paused") {
      svgEl("path", { d: "M-8,-32v14M4,-32v14", class: "pause-mark" }, g);
    }
  }

  // drawMessages draws the messages in flight at time t, and the ones
  // dropped a moment ago as a × where they died. It returns how many are
  // in flight.
  drawMessages(ix, st, line, t, pos, layer) {
    // How many messages each directed link has drawn so far: the next one
    // goes beside them, not on top.
    this.perLink = new Map();
    let drawn = 0;
    for (const sendLine of st.inFlight.values()) {
      if (drawn >= MAX_DRAWN_MESSAGES) break;
      if (this.drawMessage(ix, sendLine, t, pos, layer, false)) drawn++;
    }
    // Recently dropped: walk back over the last moment's lines.
    for (let k = line, seen = 0; k >= 0 && seen < 5000 && ix.ts[k] >= t - DROP_LINGER_US; k--, seen++) {
      if (ix.kinds[k] === KIND.drop && ix.partner[k] >= 0) this.drawMessage(ix, ix.partner[k], t, pos, layer, true);
    }
    return st.inFlight.size;
  }

  // drawMessage draws the message sent on sendLine at time t.
  drawMessage(ix, sendLine, t, pos, layer, dropped) {
    const s = ix.line(sendLine);
    const endLine = ix.partner[sendLine];
    const e = endLine >= 0 ? ix.line(endLine) : null;
    const a = pos.get(s.from);
    const b = pos.get(s.to);
    if (!a || !b) return false;
    const t0 = s.t_us;
    const t1 = e ? e.t_us : ix.endUs;
    let f = t1 > t0 ? clamp((t - t0) / (t1 - t0), 0, 1) : 1;
    if (e && e.kind === "drop") f *= WHERE_DROPPED[e.why] || 0.5;
    // Messages each way of a link travel side by side, not on top.
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1;
    const link = `${s.from}>${s.to}`;
    const nth = this.perLink.get(link) || 0;
    this.perLink.set(link, nth + 1);
    const off = (s.from < s.to ? 1 : -1) * (8 + 17 * (nth % 4));
    const ox = (-dy / len) * off;
    const oy = (dx / len) * off;
    const start = RING.node / len;
    const along = start + f * (1 - 2 * start);
    const x = a[0] + dx * along + ox;
    const y = a[1] + dy * along + oy;
    const g = svgEl("g", {
      class: "msg" + (dropped ? " dropped" : "") + (s.dup ? " dup" : "") + (s.reject ? " reject" : ""),
      transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
      "data-id": s.id, "data-msg": s.msg, "data-from": s.from, "data-to": s.to, "data-line": sendLine,
      "data-state": dropped ? "dropped" : "flying",
    }, layer);
    g.addEventListener("click", (ev) => { ev.stopPropagation(); this.onSelect({ type: "message", line: sendLine }); });
    if (dropped) {
      svgEl("path", { d: "M-7,-7L7,7M7,-7L-7,7", class: "drop-x" }, g);
      svgEl("text", { y: -10, class: "msg-label" }, g).textContent = `${shortMsg(s.msg)} ✗ ${e.why || ""}`;
      return true;
    }
    const label = shortMsg(s.msg) + (s.entries ? ` ${s.entries}` : "") + (s.dup ? " dup" : "");
    const w = 8 + label.length * 5.6;
    svgEl("rect", { x: -w / 2, y: -8, width: w, height: 16, rx: 5, fill: msgColour(s.msg), class: "msg-box" }, g);
    svgEl("text", { y: 4, class: "msg-label" }, g).textContent = label;
    return true;
  }

  // drawLogs draws each member's log: the newest LOG_WINDOW entries of the
  // cluster, aligned by index, the commit index marked, entries a member
  // dropped from its log's end leaving (fading out).
  drawLogs(ix, st, line, shown) {
    const g = svgEl("g", { class: "logs" }, this.layer);
    let end = 0;
    for (const m of shown) end = Math.max(end, m.last);
    const startIndex = Math.max(1, end - LOG_WINDOW + 1);
    svgEl("text", { x: LOG.x, y: LOG.y - 18, class: "log-title" }, g).textContent =
      `logs: entries ${startIndex}..${Math.max(end, startIndex)} (colour: term; | commit)`;
    const boxX = (index) => LOG.x + 34 + (index - startIndex) * LOG.box;
    const rowY = new Map();
    shown.forEach((m, r) => rowY.set(m.id, LOG.y + r * LOG.row));
    for (const m of shown) {
      const y = rowY.get(m.id);
      const row = svgEl("g", {
        class: "log-row", "data-id": m.id, "data-first": m.first, "data-last": m.last,
        "data-commit": m.commit, "data-snap": m.snap_index,
      }, g);
      row.addEventListener("click", () => this.onSelect({ type: "member", id: m.id }));
      svgEl("text", { x: LOG.x, y: y + 13, class: "log-label" }, row).textContent = `S${m.id}`;
      if (m.snap_index >= startIndex || (m.first > startIndex && m.snap_index > 0)) {
        const upTo = Math.min(m.snap_index, end);
        svgEl("rect", { x: boxX(startIndex), y, width: (upTo - startIndex + 1) * LOG.box - 1, height: 18, class: "log-snap" }, row);
      }
      logEntries(m, startIndex, m.last, (k, term, type) => {
        svgEl("rect", {
          x: boxX(k), y, width: LOG.box - 2, height: 18, fill: termColour(term),
          class: `entry type-${type}` + (k <= m.commit ? " committed" : ""),
        }, row);
        svgEl("text", { x: boxX(k) + (LOG.box - 2) / 2, y: y + 13, class: "entry-term" }, row).textContent = type === "c" ? "c" : term;
      });
      if (m.commit >= startIndex - 1 && m.commit > 0) {
        const x = boxX(m.commit + 1) - 1;
        svgEl("line", { x1: x, y1: y - 3, x2: x, y2: y + 21, class: "commit-mark", "data-commit": m.commit }, row);
      }
      if (m.last > 0) {
        svgEl("text", { x: boxX(Math.min(m.last, end) + 1) + 4, y: y + 13, class: "log-last" }, row).textContent = m.last;
      }
    }
    svgEl("text", { x: LOG.x + 34, y: LOG.y + shown.length * LOG.row + 6, class: "log-index" }, g).textContent = startIndex;
    this.noteLeaving(st, line, shown, boxX, rowY, startIndex);
  }

  // noteLeaving starts the fade-out of entries a member dropped from the
  // end of its log since the last picture (a conflicting suffix it
  // truncated), when the picture moved on by a little.
  noteLeaving(st, line, shown, boxX, rowY, startIndex) {
    const now = new Map(shown.map((m) => [m.id, { id: m.id, first: m.first, last: m.last, runs: m.runs.slice(), snap_index: m.snap_index }]));
    const prev = this.prevLogs;
    const forward = line > this.prevLine && line - this.prevLine < 5000;
    if (prev && forward) {
      for (const [id, p] of prev) {
        const m = now.get(id);
        if (!m || !rowY.has(id)) continue;
        for (let k = Math.max(p.first, m.snap_index + 1, startIndex); k <= p.last; k++) {
          const had = entryTerm(p, k);
          const has = entryTerm(m, k);
          if (had !== has) {
            const box = svgEl("rect", { x: boxX(k), y: rowY.get(id), width: LOG.box - 2, height: 18, fill: termColour(had), class: "entry leaving" }, this.ghosts);
            setTimeout(() => box.remove(), 1600);
          }
        }
      }
    }
    this.prevLogs = now;
    this.prevLine = line;
  }
}
