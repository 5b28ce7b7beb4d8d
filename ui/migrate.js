// The migrate dialog: every node's pre-checks for this VM at once (one dry
// run per node, side by side), the options of POST /vms/ID/migrate, and
// Migrate, which opens the task's live view.
import * as api from "./api.js";
import { showError, state } from "./app.js";
import { $, h, replace } from "./dom.js";

const CHECKS = ["quorum", "lock", "vm", "target", "memory", "cpu", "version", "disks", "devices", "network"];

function options(form) {
  const o = { online: form.online.checked };
  const bw = Number(form.bwlimit.value);
  if (bw > 0) o.bwlimit_mib = bw;
  if (form.type.value) o.migration_type = form.type.value;
  if (form.network.value.trim()) o.migration_network = form.network.value.trim();
  const dt = Number(form.downtime.value);
  if (dt > 0) o.downtime_ms = dt;
  return o;
}

// One dry run: {ok, checks, error, target}; a refusal is an answer too.
async function dryRun(id, target, opts) {
  try {
    const r = await api.post(`/vms/${id}/migrate`, { ...opts, target, dry_run: true });
    return { ok: true, checks: r.checks || [], target: r.target, plan: r.plan };
  } catch (e) {
    if (e.status === 409 || e.status === 503)
      return { ok: false, checks: (e.body && e.body.checks) || [], error: e.message };
    return { ok: false, checks: [], error: e.message };
  }
}

function cell(result, name) {
  const c = result.checks.find((x) => x.check === name);
  if (!c) return h("td.na", { title: "not checked: an earlier check refused" }, "–");
  return h(`td.${c.ok ? "ok" : "bad"}`, { title: c.detail }, c.ok ? "✓" : "✗");
}

export async function openMigrate(id) {
  const dlg = $("#dialog");
  const vm = state.vms.find((v) => v.id === id);
  if (!vm) return;
  const targets = state.nodes.filter((n) => n.name !== vm.node).map((n) => n.name);
  const form = h("form#migrate-form", { method: "dialog" },
    h("h2", `Migrate vm ${id} from ${vm.node}`),
    h("div.opts",
      h("label", h("input", { type: "checkbox", name: "online", checked: vm.status !== "stopped" }), " online (live)"),
      h("label", "bandwidth limit ", h("input", { name: "bwlimit", type: "number", min: 0, size: 6, placeholder: "none" }), " MiB/s"),
      h("label", "type ", h("select", { name: "type" }, h("option", { value: "" }, "cluster default"),
        h("option", { value: "secure" }, "secure"), h("option", { value: "insecure" }, "insecure"))),
      h("label", "network ", h("input", { name: "network", size: 14, placeholder: "CIDR, optional" })),
      h("label", "downtime limit ", h("input", { name: "downtime", type: "number", min: 0, size: 6, placeholder: "100" }), " ms")),
    h("div#checks", h("p.muted", "checking every node…")),
    h("p#plan.muted"),
    h("p#migrate-error.error", { role: "alert" }),
    h("div.actions",
      h("button", { type: "submit", id: "do-migrate", disabled: true }, "Migrate"),
      h("button", { type: "button", onclick: () => dlg.close() }, "Close")));
  replace(dlg, form);
  dlg.showModal();
  let chosen = null, results = new Map(), round = 0;

  function draw() {
    const rows = [...targets, "auto"].map((t) => {
      const r = results.get(t);
      const ok = r && r.ok;
      return h("tr", { class: ok ? "" : "refused", dataset: { node: t } },
        h("td", h("input", { type: "radio", name: "target", value: t, disabled: !ok,
          checked: chosen === t, "aria-label": `target ${t}`,
          onchange: () => { chosen = t; drawPlan(); } })),
        h("th", { scope: "row" }, t === "auto" ? `auto${ok && r.target ? " → " + r.target : ""}` : t),
        r ? CHECKS.map((c) => cell(r, c)) : h("td", { colspan: CHECKS.length }, "…"),
        h("td.reason", r ? (ok ? "ok" : r.error) : ""));
    });
    replace($("#checks"), h("table.grid.checks",
      h("thead", h("tr", h("th", ""), h("th", "node"), CHECKS.map((c) => h("th", c)), h("th", "result"))),
      h("tbody", rows)));
    drawPlan();
  }
  function drawPlan() {
    const r = chosen && results.get(chosen);
    $("#plan").textContent = r && r.ok ? r.plan : "";
    $("#do-migrate").disabled = !(r && r.ok);
  }
  async function check() {
    const mine = ++round;
    results = new Map();
    draw();
    const opts = options(form);
    await Promise.all([...targets, "auto"].map(async (t) => {
      const r = await dryRun(id, t, opts);
      if (mine !== round) return;
      results.set(t, r);
      if (!chosen && r.ok && t !== "auto") chosen = t;
      if (chosen === t && !r.ok) chosen = null;
      draw();
    }));
  }
  form.addEventListener("change", (e) => { if (e.target.name !== "target") check(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!chosen) return;
    $("#do-migrate").disabled = true;
    try {
      const r = await api.post(`/vms/${id}/migrate`, { ...options(form), target: chosen });
      dlg.close();
      location.hash = `#/task/${encodeURIComponent(r.task)}`;
    } catch (err) {
      $("#migrate-error").textContent = err.message;
      $("#do-migrate").disabled = false;
      if (err.status === 401) { dlg.close(); showError(err); }
    }
  });
  check();
}
