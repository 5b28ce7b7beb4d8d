// Small SVG charts of a migration: lines over time (transfer rate against
// dirty rate) and bars per pass (what was left to send). No library: two
// charts do not earn one.
import { bytes } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 480, H = 140, PAD = 36;

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  kids.forEach((k) => el.append(k));
  return el;
}

function frame(title, max, unit) {
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title },
    svg("text", { x: 4, y: 12, class: "ct" }, title),
    svg("text", { x: 4, y: PAD - 8, class: "ca" }, `${bytes(max)}${unit}`),
    svg("line", { x1: PAD, y1: H - 14, x2: W - 4, y2: H - 14, class: "axis" }),
    svg("line", { x1: PAD, y1: PAD - 14, x2: PAD, y2: H - 14, class: "axis" }));
}

// series: [{name, cls, points: [[t, v]...]}]
export function lines(title, series) {
  const all = series.flatMap((s) => s.points);
  if (all.length < 2) return svg("svg", { viewBox: `0 0 ${W} 24`, class: "chart" },
    svg("text", { x: 4, y: 16, class: "ct" }, `${title}: waiting for figures`));
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const max = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD - 8);
  const y = (v) => H - 14 - (v / max) * (H - PAD);
  const el = frame(title, max, "/s");
  series.forEach((s, i) => {
    el.append(svg("polyline", { class: `l ${s.cls}`, fill: "none",
      points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    el.append(svg("text", { x: W - 150, y: 12 + 12 * i, class: `lg ${s.cls}` }, `— ${s.name}`));
  });
  return el;
}

// bars: [[label, value]...]
export function bars(title, data) {
  if (!data.length) return svg("svg", { viewBox: `0 0 ${W} 24`, class: "chart" },
    svg("text", { x: 4, y: 16, class: "ct" }, `${title}: waiting for figures`));
  const max = Math.max(1, ...data.map((d) => d[1]));
  const el = frame(title, max, "");
  const bw = Math.min(40, (W - PAD - 8) / data.length - 4);
  data.forEach(([label, v], i) => {
    const bh = (v / max) * (H - PAD);
    const bx = PAD + 4 + i * (bw + 4);
    el.append(svg("rect", { x: bx, y: H - 14 - bh, width: bw, height: bh, class: "pbar" },
      svg("title", {}, `pass ${label}: ${bytes(v)} left`)));
    el.append(svg("text", { x: bx + bw / 2, y: H - 2, class: "ca", "text-anchor": "middle" }, label));
  });
  return el;
}
