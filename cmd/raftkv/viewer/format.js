// Small helpers the other modules share: SVG elements, colours, numbers.

export const SVG_NS = "http://www.w3.org/2000/svg";

// svgEl makes an SVG element with attributes, appended to parent if given.
export function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// htmlEl makes an HTML element with attributes and text.
export function htmlEl(tag, attrs, text, parent) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// TERM_COLOURS colour log entries and leader bands by term (cycling).
const TERM_COLOURS = [
  "#8ecae6", "#ffb703", "#90be6d", "#f28482", "#b5838d", "#84a59d",
  "#cdb4db", "#f6bd60", "#43aa8b", "#e5989b", "#a2d2ff", "#ddbea9",
];

export function termColour(term) {
  if (!term) return "#e0e0e0";
  return TERM_COLOURS[(term - 1) % TERM_COLOURS.length];
}

// ROLE_COLOURS fill a member's node.
export const ROLE_COLOURS = {
  leader: "#f4a261",
  candidate: "#e76f51",
  precandidate: "#e9c46a",
  follower: "#a8dadc",
  "": "#eeeeee",
};

// OUTCOME_COLOURS colour client operations on the timeline.
export const OUTCOME_COLOURS = { ok: "#2a9d8f", failed: "#e63946", unknown: "#f4a261", "": "#adb5bd" };

// fmtUs writes a virtual time (microseconds) as seconds with six decimals.
export function fmtUs(us) {
  return `${(us / 1e6).toFixed(6)} s`;
}

// shortMsg drops raft's "Msg" prefix: MsgAppResp → AppResp.
export function shortMsg(type) {
  return (type || "?").replace(/^Msg/, "");
}

// clamp bounds v to [lo, hi].
export function clamp(v, lo, hi) {
  return Math.max(lo, Math.min(hi, v));
}
