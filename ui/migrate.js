// The migrate dialog: every node's pre-checks for this VM at once (one dry
// run per node, side by side), the options of POST /vms/ID/migrate, and
// Migrate, which opens the task's live view.
import * as api from "./api.js";
import { showError, state } from "./app.js";
import { $, bytes, h, rate, replace, when } from "./dom.js";

const CHECKS = ["quorum", "lock", "vm", "target", "maintenance", "memory", "cpu", "version", "disks",
  "devices", "bridges", "network"];

function options(form) {
  const o = { online: form.online.checked };
  if (form.localdisks.checked) o.with_local_disks = true;
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
    return { ok: true, checks: r.checks || [], target: r.target, plan: r.plan,
      forecast: r.forecast, forecastError: r.forecast_error };
  } catch (e) {
    if (e.status === 409 || e.status === 503)
      return { ok: false, checks: (e.body && e.body.checks) || [], error: e.message };
    return { ok: false, checks: [], error: e.message };
  }
}

const BASIS = { "last-migration": "the last migration there", bwlimit: "the bandwidth limit",
  default: "a default: no migration there yet" };

// The dry run's forecast: from the dirty rate tern-vmm measured and the
// link rate, the passes played with the engine's rule (docs/api.md).
function forecastText(r) {
  const f = r.forecast;
  if (!f) return r.forecastError ? `no forecast: ${r.forecastError}` : "";
  const head = f.converges
    ? `forecast: ${(f.total_ms / 1000).toFixed(2)} s in total, downtime ${f.downtime_ms.toFixed(1)} ms, ${f.passes} pass(es)`
    : `forecast: does not converge (would give up after ${(f.total_ms / 1000).toFixed(0)} s)`;
  const thr = f.throttle_pct ? `, throttled to ${f.throttle_pct}%` : "";
  return `${head}${thr}; the guest dirties ${f.dirty_rate_mib_s.toFixed(1)} MiB/s, ` +
    `the link ${f.link_mib_s.toFixed(1)} MiB/s (${BASIS[f.basis] || f.basis})`;
}

// What the last migration of this VM took, beside the forecast.
function lastMigration(id) {
  const t = state.tasks.find((x) => x.vmid === id && x.type === "migrate" && x.figures);
  if (!t) return null;
  const f = t.figures;
  return h("p.muted", { id: "last-migration" },
    `last migration of vm ${id} (${when(t.start)}): ${f.passes} passes, ` +
    `${(f.total_ms / 1000).toFixed(2)} s, downtime ${Number(f.downtime_ms).toFixed(1)} ms, ` +
    `${bytes(f.transferred)} at ${rate(f.average_rate)}`);
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
      h("label", h("input", { type: "checkbox", name: "localdisks" }), " with local disks"),
      h("label", "downtime limit ", h("input", { name: "downtime", type: "number", min: 0, size: 6, placeholder: "100" }), " ms")),
    h("div#checks"),
    h("p#plan.muted"),
    h("p#forecast"),
    lastMigration(id),
    h("p#migrate-error.error", { role: "alert" }),
    h("div.actions",
      h("button", { type: "submit", id: "do-migrate", disabled: true }, "Migrate"),
      h("button", { type: "button", onclick: () => dlg.close() }, "Close")));
  replace(dlg, form);
  dlg.showModal();
  // results stay while a new round of checks runs (a radio being clicked
  // stays clickable); fresh says which are of the current options
  let chosen = null, round = 0;
  const results = new Map(), fresh = new Set();

  // The table is built once and its cells change in place: a radio the
  // user is clicking is never replaced under the pointer.
  const rows = new Map();
  const tbody = h("tbody");
  for (const t of [...targets, "auto"]) {
    const radio = h("input", { type: "radio", name: "target", value: t, disabled: true,
      "aria-label": `target ${t}`, onchange: () => { chosen = t; drawPlan(); } });
    const name = h("th", { scope: "row" }, t);
    const cells = CHECKS.map((c) => h("td.na", { dataset: { check: c } }, "…"));
    const reason = h("td.reason");
    rows.set(t, { radio, name, cells, reason });
    tbody.append(h("tr", { dataset: { node: t } }, h("td", radio), name, cells, reason));
  }
  replace($("#checks"), h("table.grid.checks",
    h("thead", h("tr", h("th", ""), h("th", "node"), CHECKS.map((c) => h("th", c)), h("th", "result"))),
    tbody));

  function draw() {
    for (const [t, row] of rows) {
      const r = results.get(t);
      const ok = !!(r && r.ok);
      row.radio.disabled = !ok;
      row.radio.checked = chosen === t;
      row.name.parentElement.className = r && !ok ? "refused" : "";
      row.name.textContent = t === "auto" && ok && r.target ? `auto → ${r.target}` : t;
      CHECKS.forEach((c, i) => {
        const cell = row.cells[i];
        const x = r && r.checks.find((k) => k.check === c);
        cell.className = !r ? "na" : !x ? "na" : x.ok ? "ok" : "bad";
        cell.textContent = !r ? "…" : !x ? "–" : x.ok ? "✓" : "✗";
        cell.title = !r ? "checking" : !x ? "not checked: no node or vm to check against" : x.detail;
      });
      // every refusal of the node, not only the first (the api's answer)
      const why = r && !ok ? r.checks.filter((k) => !k.ok).map((k) => k.detail) : [];
      row.reason.textContent = (r ? (ok ? "ok" : why.length ? why.join("; ") : r.error) : "") +
        (fresh.has(t) ? "" : " (checking…)");
    }
    drawPlan();
  }
  function drawPlan() {
    const r = chosen && results.get(chosen);
    $("#plan").textContent = r && r.ok ? r.plan + (fresh.has(chosen) ? "" : " (checking…)") : "";
    $("#forecast").textContent = r && r.ok ? forecastText(r) : "";
    $("#do-migrate").disabled = !(r && r.ok && fresh.has(chosen));
  }
  let checked = "", timer = 0;
  // Options changed: check again, once typing pauses, and only when they
  // really differ (leaving a field fires change with the same values).
  function recheck() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (JSON.stringify(options(form)) !== checked) check();
    }, 300);
  }
  async function check() {
    checked = JSON.stringify(options(form));
    const mine = ++round;
    fresh.clear();
    draw();
    const opts = options(form);
    await Promise.all([...targets, "auto"].map(async (t) => {
      const r = await dryRun(id, t, opts);
      if (mine !== round) return;
      results.set(t, r);
      fresh.add(t);
      if (!chosen && r.ok && t !== "auto") chosen = t;
      if (chosen === t && !r.ok) chosen = null;
      draw();
    }));
  }
  form.addEventListener("change", (e) => { if (e.target.name !== "target") recheck(); });
  form.addEventListener("input", (e) => { if (e.target.name !== "target") recheck(); });
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
