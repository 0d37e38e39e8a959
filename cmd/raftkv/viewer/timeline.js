// The timeline under the picture: who led in which term (bands coloured
// by term), the faults from their start to their heal, every client
// operation as a bar from its call to its return coloured by outcome, and
// marks for lab actions, tour captions and phases. It is drawn on a
// canvas, since a long run has tens of thousands of bars; a click moves
// the picture there, or selects the bar under it.

import { termColour, OUTCOME_COLOURS, clamp } from "./format.js";

const AXIS_H = 18;
const LEADER_H = 20;
const FAULT_LANE_H = 12;
const CLIENT_LANE_H = 7;
const LABEL_W = 70;

// FAULT_COLOURS colour fault bands by class.
const FAULT_COLOURS = { crash: "#6c757d", pause: "#9d8189", partition: "#e63946", isolate: "#d62828", oneway: "#f77f00", torn: "#7209b7", full: "#3a0ca3" };

export class Timeline {
  // canvas is the <canvas>; onSeek(t) moves the picture to virtual time
  // t; onSelect(what) selects an operation or a fault band.
  constructor(canvas, onSeek, onSelect) {
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.ix = null;
    this.window = [0, 1];
    this.zoomUs = 0; // 0: the whole run
    this.cursor = 0;
    this.captions = [];
    canvas.addEventListener("click", (ev) => this.click(ev));
  }

  // setTrace lays the lanes out for a trace.
  setTrace(ix, captions) {
    this.ix = ix;
    this.captions = captions || [];
    // Fault bands share lanes when they do not overlap.
    this.faultLane = [];
    const laneEnds = [];
    for (const band of ix.faultBands) {
      let lane = laneEnds.findIndex((end) => end <= band.t0);
      if (lane < 0) { lane = laneEnds.length; laneEnds.push(0); }
      laneEnds[lane] = Math.max(band.t1, band.t0 + 1);
      this.faultLane.push(lane);
    }
    this.faultLanes = Math.max(1, laneEnds.length);
    this.clientLane = new Map();
    this.maxOpUs = 0;
    for (const op of ix.ops) {
      if (!this.clientLane.has(op.client)) this.clientLane.set(op.client, this.clientLane.size);
      this.maxOpUs = Math.max(this.maxOpUs, op.t1 - op.t0);
    }
    this.clientLanes = Math.max(1, this.clientLane.size);
    this.leaderY = AXIS_H;
    this.faultY = this.leaderY + LEADER_H + 6;
    this.clientY = this.faultY + this.faultLanes * FAULT_LANE_H + 6;
    this.height = this.clientY + this.clientLanes * CLIENT_LANE_H + 4;
    this.canvas.dataset.leaderBands = ix.leaderBands.length;
    this.canvas.dataset.faultBands = ix.faultBands.length;
    this.canvas.dataset.ops = ix.ops.length;
  }

  // setZoom shows zoomUs of virtual time around the cursor (0: all).
  setZoom(zoomUs) {
    this.zoomUs = zoomUs;
  }

  // draw redraws the timeline with the cursor at t. What is under the
  // cursor is drawn once per window and kept (a long run has tens of
  // thousands of bars; playing redraws only the cursor).
  draw(t) {
    const ix = this.ix;
    if (!ix) return;
    this.cursor = t;
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 900;
    if (canvas.width !== Math.round(cssW * ratio) || canvas.height !== Math.round(this.height * ratio)) {
      canvas.width = Math.round(cssW * ratio);
      canvas.height = Math.round(this.height * ratio);
      canvas.style.height = `${this.height}px`;
    }
    const end = Math.max(ix.endUs, 1);
    let w0 = 0;
    let w1 = end;
    if (this.zoomUs > 0 && this.zoomUs < end) {
      w0 = clamp(t - this.zoomUs / 2, 0, end - this.zoomUs);
      w1 = w0 + this.zoomUs;
    }
    this.window = [w0, w1];
    const plotW = cssW - LABEL_W;
    const x = (us) => LABEL_W + ((us - w0) / (w1 - w0)) * plotW;
    this.x = x;
    const key = `${w0}/${w1}/${canvas.width}/${canvas.height}`;
    if (this.backgroundKey !== key || this.backgroundIx !== ix) {
      this.background = document.createElement("canvas");
      this.background.width = canvas.width;
      this.background.height = canvas.height;
      const bg = this.background.getContext("2d");
      bg.setTransform(ratio, 0, 0, ratio, 0, 0);
      this.drawRun(bg, x, w0, w1, plotW);
      this.backgroundKey = key;
      this.backgroundIx = ix;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(this.background, 0, 0);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.strokeStyle = "#d00000";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x(t), 0);
    ctx.lineTo(x(t), this.height);
    ctx.stroke();
    canvas.dataset.t = t;
  }

  // drawRun draws the lanes of the run in the window [w0, w1].
  drawRun(ctx, x, w0, w1, plotW) {
    const ix = this.ix;
    this.drawLabels(ctx);
    this.drawAxis(ctx, x, w0, w1, plotW);
    for (const band of ix.leaderBands) {
      if (band.t1 < w0 || band.t0 > w1) continue;
      const x0 = Math.max(x(band.t0), LABEL_W);
      const x1 = Math.max(x(band.t1), x0 + 1);
      ctx.fillStyle = termColour(band.term);
      ctx.fillRect(x0, this.leaderY, x1 - x0, LEADER_H);
      if (x1 - x0 > 34) {
        ctx.fillStyle = "#222";
        ctx.font = "11px sans-serif";
        ctx.fillText(`S${band.member} t${band.term}`, x0 + 3, this.leaderY + 14);
      }
    }
    ix.faultBands.forEach((band, k) => {
      if (band.t1 < w0 || band.t0 > w1) return;
      const y = this.faultY + this.faultLane[k] * FAULT_LANE_H;
      const x0 = Math.max(x(band.t0), LABEL_W);
      const x1 = Math.max(x(band.t1), x0 + 2);
      ctx.fillStyle = FAULT_COLOURS[band.cls] || "#e76f51";
      ctx.fillRect(x0, y, x1 - x0, FAULT_LANE_H - 2);
      if (x1 - x0 > 60) {
        ctx.fillStyle = "#fff";
        ctx.font = "9px sans-serif";
        ctx.fillText(`${band.cls}${band.member ? " S" + band.member : ""}`, x0 + 2, y + 8);
      }
    });
    this.drawOps(ctx, x, w0, w1);
    this.drawMarks(ctx, x, w0, w1);
  }

  drawLabels(ctx) {
    ctx.fillStyle = "#444";
    ctx.font = "11px sans-serif";
    ctx.fillText("leader", 4, this.leaderY + 14);
    ctx.fillText("faults", 4, this.faultY + 10);
    ctx.fillText("clients", 4, this.clientY + 10);
  }

  drawAxis(ctx, x, w0, w1, plotW) {
    const span = w1 - w0;
    // A tick step of 1, 2 or 5 times a power of ten, about 100 px apart.
    const raw = span / Math.max(plotW / 100, 1);
    const pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    const step = [1, 2, 5, 10].map((k) => k * pow).find((s) => s >= raw) || raw;
    ctx.fillStyle = "#666";
    ctx.strokeStyle = "#ddd";
    ctx.lineWidth = 1;
    ctx.font = "10px sans-serif";
    for (let tick = Math.ceil(w0 / step) * step; tick <= w1; tick += step) {
      const px = x(tick);
      ctx.beginPath();
      ctx.moveTo(px, AXIS_H - 4);
      ctx.lineTo(px, this.height);
      ctx.stroke();
      ctx.fillText(fmtTick(tick, step), px + 2, 10);
    }
  }

  // drawOps draws the client operations in the window.
  drawOps(ctx, x, w0, w1) {
    const ops = this.ix.ops;
    // ops are in call order: start from the first that may reach w0.
    let lo = 0;
    let hi = ops.length;
    const from = w0 - this.maxOpUs;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ops[mid].t0 < from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < ops.length && ops[k].t0 <= w1; k++) {
      const op = ops[k];
      if (op.t1 < w0) continue;
      const y = this.clientY + this.clientLane.get(op.client) * CLIENT_LANE_H;
      const x0 = Math.max(x(op.t0), LABEL_W);
      const x1 = Math.max(x(op.t1 || this.ix.endUs), x0 + 1.5);
      ctx.fillStyle = OUTCOME_COLOURS[op.outcome] || OUTCOME_COLOURS[""];
      ctx.fillRect(x0, y, x1 - x0, CLIENT_LANE_H - 2);
    }
  }

  // drawMarks draws lab actions and phases (triangles) and captions
  // (diamonds) on the axis.
  drawMarks(ctx, x, w0, w1) {
    for (const m of this.ix.markers) {
      if (m.t < w0 || m.t > w1) continue;
      const px = x(m.t);
      ctx.fillStyle = m.kind === "action" ? "#1d3557" : "#999";
      ctx.beginPath();
      ctx.moveTo(px - 4, AXIS_H - 6);
      ctx.lineTo(px + 4, AXIS_H - 6);
      ctx.lineTo(px, AXIS_H);
      ctx.fill();
    }
    for (const c of this.captions) {
      if (c.t_us < w0 || c.t_us > w1) continue;
      const px = x(c.t_us);
      ctx.fillStyle = "#2a9d8f";
      ctx.beginPath();
      ctx.moveTo(px, AXIS_H - 8);
      ctx.lineTo(px + 4, AXIS_H - 4);
      ctx.lineTo(px, AXIS_H);
      ctx.lineTo(px - 4, AXIS_H - 4);
      ctx.fill();
    }
  }

  // click selects the operation or fault under the pointer, or moves the
  // picture to the time clicked.
  click(ev) {
    if (!this.ix || !this.x) return;
    const rect = this.canvas.getBoundingClientRect();
    const px = ev.clientX - rect.left;
    const py = ev.clientY - rect.top;
    if (px < LABEL_W) return;
    const [w0, w1] = this.window;
    const t = w0 + ((px - LABEL_W) / (rect.width - LABEL_W)) * (w1 - w0);
    const slack = ((w1 - w0) / (rect.width - LABEL_W)) * 2; // two pixels
    if (py >= this.clientY) {
      const lane = Math.floor((py - this.clientY) / CLIENT_LANE_H);
      const op = this.ix.ops.find((o) => this.clientLane.get(o.client) === lane && o.t0 - slack <= t && (o.t1 || this.ix.endUs) + slack >= t);
      if (op) { this.onSelect({ type: "op", op }); return; }
    } else if (py >= this.faultY) {
      const lane = Math.floor((py - this.faultY) / FAULT_LANE_H);
      const k = this.ix.faultBands.findIndex((b, j) => this.faultLane[j] === lane && b.t0 - slack <= t && b.t1 + slack >= t);
      if (k >= 0) { this.onSelect({ type: "fault", band: this.ix.faultBands[k] }); return; }
    }
    this.onSeek(clamp(t, 0, this.ix.endUs));
  }
}

// fmtTick writes an axis label with as many decimals as the step needs.
function fmtTick(us, step) {
  if (step >= 1e6) return `${(us / 1e6).toFixed(0)} s`;
  if (step >= 1e3) return `${(us / 1e3).toFixed(0)} ms`;
  return `${(us / 1e3).toFixed(3)} ms`;
}
