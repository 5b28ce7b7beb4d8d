// The tern web UI: login, the state of the cluster kept current by the
// event stream (no polling), the tree, and routing to the views.
import * as api from "./api.js";
import { $, h, replace } from "./dom.js";
import { views } from "./views.js";

export const state = {
  cluster: null, nodes: [], vms: [], storage: [], tasks: [],
  samples: new Map(), // task id -> progress samples for its charts
  live: false,
};

let stream = null;
const listeners = new Set();
export const onChange = (fn) => (listeners.add(fn), () => listeners.delete(fn));

// ---- errors: one line, as the API said it
let errTimer = 0;
export function showError(e) {
  if (e && e.status === 401) return showLogin(e.message); // the session ended
  const el = $("#error");
  el.textContent = e && e.message ? e.message : String(e);
  el.hidden = false;
  clearTimeout(errTimer);
  errTimer = setTimeout(() => (el.hidden = true), 10000);
}
export async function attempt(fn) {
  try { return await fn(); } catch (e) { showError(e); return undefined; }
}

// ---- state from the API
const loaders = {
  cluster: async () => (state.cluster = await api.get("/cluster/status")),
  nodes: async () => (state.nodes = (await api.get("/nodes")).nodes),
  vms: async () => (state.vms = (await api.get("/vms")).vms),
  storage: async () => (state.storage = (await api.get("/storage")).storage),
  tasks: async () => (state.tasks = (await api.get("/tasks?limit=200")).tasks),
};

const pending = new Set();
let pendingTimer = 0;
// Events come in bursts: one reload of each part a little later.
export function reload(...parts) {
  parts.forEach((p) => pending.add(p));
  clearTimeout(pendingTimer);
  pendingTimer = setTimeout(async () => {
    const todo = [...pending];
    pending.clear();
    await Promise.all(todo.map((p) => loaders[p]().catch(showError)));
    render();
  }, 150);
}

async function loadAll() {
  await Promise.all(Object.values(loaders).map((l) => l().catch(showError)));
  render();
}

function mergeTask(ev) {
  const t = ev.task;
  if (!t || !t.id) return;
  const i = state.tasks.findIndex((x) => x.id === t.id);
  if (i >= 0) state.tasks[i] = { ...state.tasks[i], ...t };
  else state.tasks.unshift(t);
  if (ev.type === "task-ended") delete state.tasks[i >= 0 ? i : 0].progress;
  if (t.progress) {
    const s = state.samples.get(t.id) || [];
    s.push({ t: ev.time, ...t.progress });
    if (s.length > 600) s.shift();
    state.samples.set(t.id, s);
  }
}

function onEvent(ev) {
  switch (ev.type) {
    case "task-started":
    case "task-progress":
    case "task-ended":
      mergeTask(ev);
      if (ev.type !== "task-progress") reload("vms");
      break;
    case "vm-state": {
      const vm = state.vms.find((v) => v.id === ev.vmid);
      if (vm) Object.assign(vm, { status: ev.status, node: ev.node || vm.node });
      reload("vms");
      break;
    }
    case "vm-created":
    case "vm-destroyed": reload("vms"); break;
    case "storage-added":
    case "storage-removed": reload("storage"); break;
    case "node-up":
    case "node-down": reload("nodes", "cluster"); break;
    case "quorum": reload("cluster", "nodes"); break;
    case "resync": loadAll(); return;
  }
  render(ev);
}

// ---- the tree: cluster -> nodes -> VMs, storages
const icon = { running: "▶", stopped: "■", paused: "❚❚", migrating: "⇄", incoming: "⇄",
  starting: "…", unknown: "?" };
function renderTree() {
  const here = location.hash || "#/";
  const link = (href, ...kids) =>
    h("a", { href, "aria-current": here === href ? "page" : null }, ...kids);
  const c = state.cluster;
  const nodes = state.nodes.map((n) =>
    h("li", link(`#/node/${n.name}`, h(`span.dot.${n.online ? "ok" : "bad"}`), n.name),
      h("ul", state.vms.filter((v) => v.node === n.name).map((v) =>
        h("li", link(`#/vm/${v.id}`, h(`span.st.${v.status}`, { title: v.status },
          icon[v.status] || "?"), ` ${v.id}${v.name ? " " + v.name : ""}`))))));
  const stores = state.storage.map((s) =>
    h("li", link(`#/storage/${s.name}`, "▤ ", s.name, s.shared ? " (shared)" : "")));
  replace($("#tree"), h("ul.tree",
    h("li", link("#/", h(`span.dot.${c && c.quorate ? "ok" : "bad"}`),
      `cluster ${c && c.cluster_name ? c.cluster_name : ""}`),
      h("ul", nodes),
      h("ul", h("li.muted", "storage"), stores))));
  $("#cluster-line").textContent = c
    ? `${c.cluster_name || ""} · ${c.quorate ? "quorate" : "NOT QUORATE"} · leader ${c.leader || "none"} · via ${c.node}`
    : "";
}

let current = null; // {name, params, el, update}
function route() {
  const parts = (location.hash || "#/").slice(2).split("/").map(decodeURIComponent);
  const name = parts[0] || "cluster";
  const view = views[name] || views.cluster;
  if (current && current.dispose) current.dispose();
  current = { name, params: parts.slice(1) };
  Object.assign(current, view(current.params) || {});
  replace($("#view"), current.el);
  renderTree();
}

export function render(ev) {
  renderTree();
  if (current && current.update) current.update(ev);
  listeners.forEach((fn) => fn(ev));
}

function setLive(live) {
  state.live = live;
  $("#live").className = live ? "live on" : "live off";
  $("#live").title = live ? "event stream connected" : "event stream reconnecting";
  // EventSource gives up on an answer other than 200 (a 401 once the
  // session ended, a 503): ask why, then log in again or open a new stream
  // (a new one has no Last-Event-ID: the state is loaded again)
  if (!live && stream && stream.readyState === EventSource.CLOSED) {
    const dead = stream;
    setTimeout(() => api.resume().then(() => {
      if (stream !== dead) return;
      stream = api.events(onEvent, setLive);
      loadAll();
    }, (e) => showLogin(e.status === 404 ? "the session ended: log in again" : e.message)), 2000);
  }
}

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  if (stream) stream.close();
  stream = api.events(onEvent, setLive);
  await loadAll();
  route();
}

function showLogin(msg) {
  if (stream) stream.close();
  stream = null;
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = msg || "";
  $("#token").focus();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api.login($("#token").value.trim());
    $("#token").value = "";
    await start();
  } catch (err) {
    showLogin(err.message);
  }
});
$("#logout").addEventListener("click", async () => {
  await attempt(api.logout);
  showLogin("logged out");
});
window.addEventListener("hashchange", route);
// a 401 anywhere (expired session) brings the login back
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.status === 401) showLogin(e.reason.message);
});

api.resume().then(start, () => showLogin(""));
