// The views: cluster, node, VM (with its console), storage, task list.
// Each returns {el, update, dispose}; update runs on every state change.
import * as api from "./api.js";
import { attempt, reload, showError, state } from "./app.js";
import { bytes, duration, h, replace, when } from "./dom.js";
import { openMigrate } from "./migrate.js";
import { taskView } from "./task.js";

const kv = (rows) =>
  h("dl.kv", rows.filter(Boolean).flatMap(([k, v]) => [h("dt", k), h("dd", v ?? "–")]));

function simple(build) {
  const el = h("section");
  const update = () => replace(el, build());
  update();
  return { el, update };
}

function cluster() {
  return simple(() => {
    const c = state.cluster || {};
    const members = (c.members || []).map((m) =>
      h("tr", h("td", m.name), h("td", m.reachable ? "yes" : "NO"),
        h("td", m.leader ? "leader" : ""), h("td", m.client_url)));
    const nodes = state.nodes.map((n) =>
      h("tr", h("td", h("a", { href: `#/node/${n.name}` }, n.name)),
        h("td", n.online ? "online" : "OFFLINE"),
        h("td", state.vms.filter((v) => v.node === n.name).length),
        h("td", bytes(n.info && n.info.memory_free)), h("td", bytes(n.info && n.info.memory_total)),
        h("td", n.info && n.info.version)));
    return [
      h("h2", `Cluster ${c.cluster_name || ""}`),
      h("div.actions", h("button", { onclick: openCreate, id: "create-btn" }, "Create VM…")),
      kv([["quorum", c.quorate ? "quorate" : `not quorate${c.reason ? ": " + c.reason : ""}`],
        ["leader", c.leader], ["members", `${c.members_reachable ?? "?"} of ${c.member_count ?? "?"} reachable`],
        ["etcd", c.etcd_version], ["answered by", c.node]]),
      h("h3", "Nodes"),
      h("table.grid", h("thead", h("tr", ["name", "status", "vms", "free", "memory", "version"].map((x) => h("th", x)))),
        h("tbody", nodes)),
      h("h3", "etcd members"),
      h("table.grid", h("thead", h("tr", ["name", "reachable", "", "client url"].map((x) => h("th", x)))),
        h("tbody", members)),
    ];
  });
}

// POST /vms makes the VM on the node that gets the request: the one that
// serves this page.
function openCreate() {
  const dlg = document.querySelector("#dialog");
  const known = state.vms.find((v) => v.config && v.config.kernel);
  const ids = state.vms.map((v) => v.id);
  const free = ids.length ? Math.max(...ids) + 1 : 100;
  const f = (label, input) => h("label.field", h("span", label), input);
  const err = h("p.error", { role: "alert" });
  const form = h("form#create-form", { method: "dialog" },
    h("h2", `Create a VM on ${state.cluster ? state.cluster.node : "this node"}`),
    f("id", h("input", { name: "id", type: "number", min: 100, value: free, required: true })),
    f("name", h("input", { name: "name", placeholder: "optional" })),
    f("memory (MiB)", h("input", { name: "memory", type: "number", min: 16, value: 128, required: true })),
    f("cpus", h("input", { name: "cpus", type: "number", min: 1, value: 1, required: true })),
    f("kernel", h("input", { name: "kernel", size: 40, required: true,
      value: known ? known.config.kernel : "", placeholder: "/usr/lib/tern/tern-guest" })),
    f("command line", h("input", { name: "cmdline", size: 40, placeholder: "optional" })),
    f("disk", h("span", h("select", { name: "storage" }, h("option", { value: "" }, "none"),
      state.storage.map((s) => h("option", { value: s.name }, s.name))), " ",
    h("input", { name: "size", type: "number", min: 1, value: 64 }), " MiB")),
    err,
    h("div.actions", h("button", { type: "submit" }, "Create"),
      h("button", { type: "button", onclick: () => dlg.close() }, "Close")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const body = { id: Number(v.id), memory_mib: Number(v.memory), cpus: Number(v.cpus), kernel: v.kernel };
    if (v.name) body.name = v.name;
    if (v.cmdline) body.cmdline = v.cmdline;
    if (v.storage) body.disks = [{ storage: v.storage, size_mib: Number(v.size) }];
    try {
      await api.post("/vms", body);
      dlg.close();
      reload("vms");
      location.hash = `#/vm/${body.id}`;
    } catch (x) { err.textContent = x.message; }
  });
  replace(dlg, form);
  dlg.showModal();
  // the list has no configs: the kernel of an existing VM as a default
  if (!known && state.vms.length)
    api.get(`/vms/${state.vms[0].id}`).then((v) => {
      if (!form.kernel.value && v.config) form.kernel.value = v.config.kernel;
    }, () => {});
}

function node([name]) {
  return simple(() => {
    const n = state.nodes.find((x) => x.name === name);
    if (!n) return h("p", `no node '${name}'`);
    const i = n.info || {};
    const vms = state.vms.filter((v) => v.node === name);
    return [
      h("h2", `Node ${name}`),
      kv([["status", n.online ? "online" : "OFFLINE"], ["version", i.version],
        ["memory", `${bytes(i.memory_free)} free of ${bytes(i.memory_total)}`],
        ["cpu", i.cpu_model], ["api", i.api_address], ["migration", i.migration_address],
        ["registered", when(i.registered)]]),
      h("h3", "VMs"),
      vmTable(vms),
    ];
  });
}

function vmTable(vms) {
  return h("table.grid",
    h("thead", h("tr", ["id", "name", "node", "status", "memory", "cpus", "uptime", "lock"].map((x) => h("th", x)))),
    h("tbody", vms.map((v) => h("tr",
      h("td", h("a", { href: `#/vm/${v.id}` }, v.id)), h("td", v.name), h("td", v.node),
      h("td", v.status), h("td", `${v.memory_mib} MiB`), h("td", v.cpus),
      h("td", v.uptime_s == null ? "–" : duration(v.uptime_s)), h("td", v.lock || "")))));
}

function storage([name]) {
  return simple(() => {
    const s = state.storage.find((x) => x.name === name);
    if (!s) return h("p", `no storage '${name}'`);
    const users = state.vms.filter((v) => (v.config && v.config.disks || []).some((d) => d.storage === name));
    return [h("h2", `Storage ${name}`), kv([["path", s.path], ["shared", s.shared ? "yes" : "no (local to each node)"]]),
      users.length ? vmTable(users) : null];
  });
}

// The console, streamed (GET /vms/ID/console/stream, docs/api.md): the
// output from its start, then as the guest writes; EventSource resumes by
// itself after a break (Last-Event-ID carries the node and the offset). A
// migrated VM's output goes on from its new node's start, marked.
function consolePane(id) {
  const pre = h("pre.console", { tabindex: 0, "aria-label": "console output", "aria-live": "off" });
  const es = api.stream(`/vms/${id}/console/stream`, (c) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (c.reset) pre.append(`\n--- vm ${id} now runs on node ${c.node} ---\n`);
    if (c.data) pre.append(c.data);
    if (pre.textContent.length > 200000) pre.textContent = pre.textContent.slice(-100000);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  });
  return { el: pre, dispose: () => es.close() };
}

function vm([idText]) {
  const id = Number(idText);
  const el = h("section");
  const cons = consolePane(id);
  const act = (verb) => attempt(async () => {
    const r = await api.post(`/vms/${id}/${verb}`);
    if (r && r.task) location.hash = `#/task/${encodeURIComponent(r.task)}`;
  });
  const destroy = () => {
    if (!confirm(`Destroy vm ${id} and its disks?`)) return;
    attempt(async () => { await api.del(`/vms/${id}`); location.hash = "#/"; reload("vms"); });
  };
  let detail = null;
  async function fetchDetail() {
    detail = await api.get(`/vms/${id}`).catch((e) => (showError(e), null));
    update();
  }
  // The buttons and the console are built once (a click never lands on a
  // button being replaced); the rest is redrawn on each change.
  const title = h("h2"), info = h("div");
  const buttons = {
    start: h("button", { onclick: () => act("start") }, "Start"),
    stop: h("button", { onclick: () => act("stop") }, "Stop"),
    migrate: h("button", { onclick: () => openMigrate(id), id: "migrate-btn" }, "Migrate…"),
    destroy: h("button.danger", { onclick: destroy }, "Destroy"),
  };
  replace(el, title, h("div.actions", Object.values(buttons)), info, h("h3", "Console"), cons.el);
  function update(ev) {
    const v = state.vms.find((x) => x.id === id);
    if (ev && ev.type === "vm-state" && ev.vmid === id) fetchDetail();
    if (!v) {
      replace(title, `VM ${id}`);
      return replace(info, h("p", `no vm ${id}`));
    }
    const conf = (detail && detail.config) || {};
    const stopped = v.status === "stopped";
    replace(title, `VM ${id}${v.name ? " " + v.name : ""}`);
    buttons.start.disabled = !stopped;
    buttons.stop.disabled = stopped;
    buttons.migrate.disabled = !!v.lock;
    buttons.destroy.disabled = !stopped;
    replace(info,
      kv([["status", h(`span.st.${v.status}`, v.status)], ["node", v.node],
        ["uptime", v.uptime_s == null ? "–" : duration(v.uptime_s)],
        ["memory", `${v.memory_mib} MiB`], ["cpus", v.cpus], ["lock", v.lock],
        ["kernel", conf.kernel], ["cmdline", conf.cmdline],
        ["disks", (conf.disks || []).map((d) => `${d.storage}:${d.volume} (${d.size_mib} MiB)`).join(", ") || "none"],
        ["nics", (conf.nets || []).map((n) => `${n.mac} on ${n.bridge}`).join(", ") || "none"],
        ["last exit", v.last_exit]]));
  }
  fetchDetail();
  update();
  return { el, update, dispose: cons.dispose };
}

function tasks() {
  const el = h("section");
  const f = { vmid: "", node: "", type: "", status: "" };
  const filters = h("form.filters", { onsubmit: (e) => e.preventDefault() },
    ["vmid", "node", "type", "status"].map((k) =>
      h("label", k, " ", h("input", { name: k, size: 8, oninput: (e) => { f[k] = e.target.value.trim(); draw(); } }))));
  const table = h("div");
  function draw() {
    const rows = state.tasks.filter((t) =>
      (!f.vmid || String(t.vmid) === f.vmid) && (!f.node || t.node === f.node) &&
      (!f.type || t.type === f.type) && (!f.status || (t.status || "").toLowerCase().includes(f.status.toLowerCase())));
    replace(table, h("table.grid",
      h("thead", h("tr", ["started", "node", "type", "vm", "duration", "status"].map((x) => h("th", x)))),
      h("tbody", rows.map((t) => h("tr",
        h("td", h("a", { href: `#/task/${encodeURIComponent(t.id)}` }, when(t.start))),
        h("td", t.node), h("td", t.type), h("td", t.vmid),
        h("td", duration((t.end || Date.now() / 1000) - t.start)),
        h("td", { class: t.status === "OK" ? "ok" : t.status === "running" ? "" : "bad" },
          t.status === "running" && t.progress ? `running ${t.progress.percent}%` : t.status))))));
  }
  replace(el, h("h2", "Tasks"), filters, table);
  draw();
  return { el, update: draw };
}

export const views = { cluster, node, vm, storage, tasks, task: taskView };
