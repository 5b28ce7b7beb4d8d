// A few helpers to build DOM without a framework: h("div.cls", {attrs},
// children...). Text is always set as text, never as HTML.

export function h(tag, attrs, ...kids) {
  const [nameId, ...classes] = tag.split(".");
  const [name, id] = nameId.split("#");
  const el = document.createElement(name || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  const isKid = attrs !== null && attrs !== undefined &&
    (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs));
  if (isKid) { // h("td", 0): a child, not attributes
    kids.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") setStyle(el, v); // CSSOM: the CSP allows no style attributes
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, kids);
  return el;
}

function setStyle(el, text) {
  for (const decl of String(text).split(";")) {
    const i = decl.indexOf(":");
    if (i > 0) el.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
  }
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

export function replace(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
}

export const $ = (sel) => document.querySelector(sel);

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function bytes(n) {
  if (n === null || n === undefined || isNaN(n)) return "–";
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export const rate = (n) => (n === null || n === undefined ? "–" : `${bytes(n)}/s`);

export function duration(s) {
  if (s === null || s === undefined || isNaN(s)) return "–";
  s = Math.max(0, Math.round(s));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const p = (x) => String(x).padStart(2, "0");
  return hh ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

export function when(epoch_s) {
  return epoch_s ? new Date(epoch_s * 1000).toLocaleString() : "–";
}
