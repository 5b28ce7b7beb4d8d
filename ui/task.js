// One task, live: for a migration the progress bar with percent, ETA and
// figures from the task's progress, charts of the rates and of what each
// pass left, at the end the downtime split; for every task its log,
// followed as events about the task arrive, and Cancel.
import * as api from "./api.js";
import { attempt, state } from "./app.js";
import { bars, lines } from "./chart.js";
import { bytes, duration, h, rate, replace, when } from "./dom.js";

const DOWNTIME_PARTS = ["pause_ms", "last_pages_ms", "state_save_ms", "transfer_ms", "load_ms",
  "commit_ms", "resume_ms"];

function progressBlock(t) {
  const p = t.progress;
  const done = t.status !== "running";
  const pct = done ? (t.status === "OK" ? 100 : (p ? p.percent : 0)) : (p ? p.percent : 0);
  const bar = h("div.bar", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
    "aria-valuenow": pct, "aria-label": "migration progress" },
  h("div.fill", { style: `width:${pct}%`, class: `fill ${done ? (t.status === "OK" ? "ok" : "bad") : ""}` }));
  const rows = p ? [
    ["pass", p.pass], ["sent", `${bytes(p.transferred)} of ${bytes(p.total)} RAM (${(p.ram_ratio || 0).toFixed(2)}×)`],
    ["left in this pass", bytes(p.remaining)], ["rate", rate(p.rate)], ["dirty rate", rate(p.dirty_rate)],
    ["throttle", `${p.throttle_pct}%`],
    ["expected downtime", p.expected_downtime_ms ? `${p.expected_downtime_ms} ms` : "–"], ["eta", p.eta_s == null ? "unknown" : duration(p.eta_s)],
  ] : [];
  return [h("div.pct", h("span#pct", `${pct}%`), done ? "" : p && p.eta_s != null ? ` · ETA ${duration(p.eta_s)}` : ""), bar,
    disksBlock(t, done), h("dl.kv", rows.flatMap(([k, v]) => [h("dt", k), h("dd", v)]))];
}

// One bar per mirrored local disk: copied until in sync, then mirrored
// (guest writes reach both copies) until the handover.
function disksBlock(t, done) {
  const ds = (t.progress && t.progress.disks) || (t.figures && t.figures.disks) || [];
  if (!ds.length) return null;
  return h("div.disks", ds.map((d) => {
    const pct = done && t.status === "OK" ? 100 : d.percent != null ? d.percent : 100;
    const what = d.synced || d.sync_ms > 0 ? `in sync${d.active ? ", mirrored" : ""}` :
      `${bytes(d.done || 0)} of ${bytes(d.total)}, ${rate(d.rate)}`;
    return h("div.disk", { dataset: { disk: d.name } },
      h("div.pct", h("span.name", d.name), ` ${pct}% · ${what}`),
      h("div.bar.small", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
        "aria-valuenow": pct, "aria-label": `${d.name} progress` },
      h("div.fill", { style: `width:${pct}%` })));
  }));
}

function chartsBlock(id) {
  const s = state.samples.get(id) || [];
  const perPass = new Map();
  s.forEach((x) => perPass.set(x.pass, Math.max(perPass.get(x.pass) || 0, x.remaining)));
  return h("div.charts",
    lines("transfer rate against dirty rate", [
      { name: "rate", cls: "rate", points: s.map((x) => [x.t, x.rate]) },
      { name: "dirty rate", cls: "dirty", points: s.map((x) => [x.t, x.dirty_rate]) }]),
    bars("left to send, per pass (at its start)", [...perPass.entries()]));
}

const partName = (k) => k.replace(/_ms$/, "").replace(/_/g, " ");

function figuresBlock(f) {
  if (!f) return null;
  const d = f.downtime || {};
  const parts = DOWNTIME_PARTS.filter((k) => d[k] !== undefined);
  const total = parts.reduce((a, k) => a + d[k], 0) || 1;
  return h("div",
    h("h3", "Figures"),
    h("dl.kv", [["passes", f.passes], ["total time", `${(f.total_ms / 1000).toFixed(2)} s`],
      ["downtime", `${Number(f.downtime_ms).toFixed(1)} ms`], ["sent", bytes(f.transferred)],
      ["average rate", rate(f.average_rate)]].flatMap(([k, v]) => [h("dt", k), h("dd", v)])),
    parts.length ? [
      h("div.split", { role: "img", "aria-label": "downtime split" }, parts.map((k, i) =>
        h(`span.p${i}`, { style: `flex:${Math.max(d[k], total / 100)}`, title: `${partName(k)} ${d[k]} ms` }))),
      h("ul.legend", parts.map((k, i) => h("li", h(`span.sw.p${i}`), `${partName(k)} ${Number(d[k]).toFixed(1)} ms`)))]
      : null);
}

export function taskView([id]) {
  const el = h("section");
  const logEl = h("pre.log", { tabindex: 0, "aria-label": "task log" });
  let next = 0, busy = false, again = false, gone = false, task = null;
  const cancel = () => {
    if (!confirm("Cancel this task?")) return;
    attempt(async () => {
      await api.post(`/tasks/${encodeURIComponent(id)}/cancel`);
      note.textContent = "cancelling…";
    });
  };
  const note = h("span.muted");
  async function followLog() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const l = await api.get(`/tasks/${encodeURIComponent(id)}/log?start=${next}`);
        if (l.lines.length) logEl.append(l.lines.join("\n") + "\n");
        next = l.next;
        logEl.scrollTop = logEl.scrollHeight;
        if (l.lines.length >= 500) again = true;
      } while (again && !gone);
    } catch (e) { if (e.status !== 404) note.textContent = e.message; }
    busy = false;
  }
  // The parts a user may act on (Cancel, the log's scroll) are built once;
  // what progress changes is redrawn inside them.
  const title = h("h2"), sub = h("p.muted");
  const cancelBtn = h("button.danger", { onclick: cancel, id: "cancel-btn", hidden: true }, "Cancel…");
  const result = h("p.result", { id: "task-result", hidden: true });
  const live = h("div");
  replace(el, title, sub, h("div.actions", cancelBtn, note), result, live, h("h3", "Log"), logEl);
  function draw() {
    task = state.tasks.find((t) => t.id === id) || task;
    if (!task) return replace(title, "Task ", h("span.muted", id));
    const running = task.status === "running";
    replace(title, `${task.type} of vm ${task.vmid}`, " ", h("span.muted", `on ${task.node}`));
    replace(sub, task.id, " · started ", when(task.start));
    cancelBtn.hidden = !running;
    result.hidden = running;
    result.className = `result ${task.status === "OK" ? "ok" : "bad"}`;
    result.textContent = running ? "" : task.status === "OK" ? "TASK OK" : `TASK ${task.status}`;
    replace(live, task.type === "migrate" ? [progressBlock(task), chartsBlock(id), figuresBlock(task.figures)] : null);
  }
  async function load() {
    task = await api.get(`/tasks/${encodeURIComponent(id)}`).catch(() => null);
    if (task) {
      const i = state.tasks.findIndex((t) => t.id === id);
      if (i >= 0) state.tasks[i] = { ...state.tasks[i], ...task };
      else state.tasks.unshift(task);
    }
    draw();
    followLog();
  }
  load();
  return {
    el,
    update(ev) {
      if (ev && ev.task && ev.task.id === id) {
        if (ev.type === "task-ended") load(); else followLog();
      }
      draw();
    },
    dispose() { gone = true; },
  };
}
