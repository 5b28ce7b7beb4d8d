// The web UI in Debian's chromium or firefox-esr (headless), driven by puppeteer-core,
// against the real cluster test_ui.sh started. Prints TAP lines; every
// step saves a screenshot in $SHOTS. Environment: URL (https://n1),
// TOKEN (n1's admin token), VMID, LOCALVM (stopped, a disk on storage that
// is not shared), SOURCE, TARGET, FAR (the third node),
// NETWORK (a CIDR holding TARGET's address and not FAR's), SHOTS.
import puppeteer from "puppeteer-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const [URL, TOKEN, VMID, LOCALVM, SOURCE, TARGET, FAR, NETWORK, SHOTS] =
  ["URL", "TOKEN", "VMID", "LOCALVM", "SOURCE", "TARGET", "FAR", "NETWORK", "SHOTS"].map(env);

let page, failed = 0, n = 0;
async function step(name, fn) {
  n++;
  try {
    await fn();
    console.log(`ok - ${tag}${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${tag}${name}`);
    for (const l of String(e && e.stack || e).split("\n").slice(0, 4)) console.log(`# ${l}`);
  }
  if (page) await page.screenshot({ path: `${SHOTS}/${String(n).padStart(2, "0")}.png` }).catch(() => {});
}
const text = (sel) => page.$eval(sel, (el) => el.textContent);
// the element of sel, found and clicked in one turn (see clickButton)
const clickSel = (sel) => page.waitForFunction((s) => {
  const el = document.querySelector(s);
  if (el && !el.disabled) el.click();
  return !!el && !el.disabled;
}, { timeout: 15000, polling: 100 }, sel);
// found and clicked in one turn of the page's loop: the view re-renders on
// events, and a button found first and clicked later may be gone by then
async function clickButton(label) {
  await page.waitForFunction((l) => {
    const b = [...document.querySelectorAll("main .actions button")]
      .find((x) => x.textContent === l && !x.disabled);
    if (b) b.click();
    return !!b;
  }, { timeout: 15000, polling: 100 }, label);
}
const waitText = (sel, re, timeout = 15000) =>
  page.waitForFunction((s, r) => {
    const el = document.querySelector(s);
    return el && new RegExp(r).test(el.textContent);
  }, { timeout, polling: 100 }, sel, re.source);

// BROWSER=firefox (with FIREFOX, its binary) drives Debian's firefox-esr
// over WebDriver BiDi instead
const firefox = process.env.BROWSER === "firefox";
const browser = await puppeteer.launch(firefox ? {
  browser: "firefox",
  executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  acceptInsecureCerts: true,
} : {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  acceptInsecureCerts: true, // the node's self-signed certificate
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server",
    "--window-size=1280,800"],
});
const tag = firefox ? "firefox: " : "";
try {
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const urls = [];
  page.on("request", (r) => urls.push(r.url()));
  page.on("dialog", (d) => d.accept()); // the confirmations (Cancel…)

  await step("the login page is served (no token needed for the app)", async () => {
    await page.goto(URL + "/", { waitUntil: "load" });
    await page.waitForSelector("#login:not([hidden])", { timeout: 10000 });
  });
  await step("a bad token is refused with the api's one line", async () => {
    await page.type("#token", "0".repeat(64));
    await page.click("#login-form button");
    await waitText("#login-error", /missing or wrong token/);
  });
  await step("login with the admin token (keyboard only): three nodes online, quorate", async () => {
    await page.$eval("#token", (el) => (el.value = ""));
    await page.type("#token", TOKEN);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#app:not([hidden])", { timeout: 10000 });
    await waitText("#cluster-line", /quorate/);
    await page.waitForFunction(() => document.querySelectorAll("#tree .dot.ok").length >= 4,
      { timeout: 10000 }); // the cluster and its three nodes
    const tree = await text("#tree");
    for (const nd of [SOURCE, TARGET, FAR]) if (!tree.includes(nd)) throw new Error(`no ${nd} in the tree: ${tree}`);
    if (/NOT QUORATE/.test(await text("#cluster-line"))) throw new Error("not quorate");
  });
  await step("the event stream is connected", async () => {
    await page.waitForSelector("#live.on", { timeout: 10000 });
  });
  await step(`vm ${VMID} runs on ${SOURCE}; its console streams the guest's output`, async () => {
    await page.goto(`${URL}/#/vm/${VMID}`);
    await waitText("main", new RegExp(`node${SOURCE}`));
    await waitText("main dd .st", /running/);
    await waitText("pre.console", /HB \d+/, 20000);
    if (!urls.some((u) => u.includes(`/vms/${VMID}/console/stream`))) throw new Error("no console stream");
    const polls = urls.filter((u) => /\/console\?offset=/.test(u));
    if (polls.length) throw new Error(`the console was polled: ${polls[0]}`);
  });
  await step("the migrate dialog: a pre-check table with a row per node", async () => {
    await page.click("#migrate-btn");
    await page.waitForSelector("dialog[open] table.checks", { timeout: 10000 });
    await page.waitForFunction((t) => {
      const r = document.querySelector(`tr[data-node="${t}"] td.reason`);
      return r && r.textContent === "ok";
    }, { timeout: 20000 }, TARGET);
    const rows = await page.$$eval("table.checks tbody tr", (trs) => trs.map((t) => t.dataset.node));
    if (!rows.includes(TARGET) || !rows.includes(FAR) || !rows.includes("auto"))
      throw new Error(`rows: ${rows}`);
  });
  await step(`with a migration network only ${TARGET} is in: ${FAR} refused with its reason`, async () => {
    await page.type("input[name=network]", NETWORK);
    await page.$eval("input[name=network]", (el) => el.dispatchEvent(new Event("change", { bubbles: true })));
    await page.waitForFunction((f) => {
      const r = document.querySelector(`tr[data-node="${f}"] td.reason`);
      return r && /no address in migration network/.test(r.textContent);
    }, { timeout: 20000 }, FAR);
    await page.waitForFunction((t) => {
      const r = document.querySelector(`tr[data-node="${t}"] td.reason`);
      return r && r.textContent === "ok";
    }, { timeout: 20000 }, TARGET);
    const bad = await page.$eval(`tr[data-node="${FAR}"] td.bad`, (td) => td.title);
    if (!/migration network/.test(bad)) throw new Error(`the refused cell says '${bad}'`);
  });
  let t0 = 0;
  await step(`migrate to ${TARGET}: the progress bar reaches 100% and TASK OK`, async () => {
    await page.click(`tr[data-node="${TARGET}"] input[type=radio]`);
    await waitText("#plan", new RegExp(`to node '${TARGET}'.*unlimited$`), 10000);
    await page.waitForSelector("#do-migrate:not([disabled])", { timeout: 5000 });
    // the guest dirties 20 MiB/s (tern.rate=20): the forecast says what tern-vmm measured
    const fc = await text("#forecast");
    console.log(`# ${fc}`);
    const m = /^forecast: [0-9.]+ s in total, downtime [0-9.]+ ms, \d+ pass\(es\).*the guest dirties ([0-9.]+) MiB\/s, the link [0-9.]+ MiB\/s/.exec(fc);
    if (!m || Number(m[1]) < 8 || Number(m[1]) > 40) throw new Error(`forecast: '${fc}'`);
    t0 = Date.now();
    await page.click("#do-migrate");
    await page.waitForSelector("#task-result:not([hidden])", { timeout: 60000 });
    const result = await text("#task-result");
    if (result !== "TASK OK") throw new Error(result);
    console.log(`# live migration: Migrate clicked to TASK OK on the page in ${Date.now() - t0} ms`);
    const pct = await text("#pct");
    if (pct !== "100%") throw new Error(`the bar says ${pct}`);
    const now = await page.$eval(".bar", (b) => b.getAttribute("aria-valuenow"));
    if (now !== "100") throw new Error(`aria-valuenow ${now}`);
    await waitText("pre.log", /TASK OK/);
    await waitText("pre.log", new RegExp(`to node '${TARGET}'`));
  });
  await step("the task view shows the figures and the downtime split", async () => {
    await waitText("main", /downtime/);
    await page.waitForSelector(".split span", { timeout: 10000 });
  });
  await step(`vm ${VMID} now runs on ${TARGET} (the tree follows the events)`, async () => {
    await page.waitForFunction((t, id) => {
      const li = [...document.querySelectorAll("#tree li")].find((l) => l.firstChild.textContent.endsWith(t));
      return li && [...li.querySelectorAll("a")].some((a) => a.getAttribute("href") === `#/vm/${id}`);
    }, { timeout: 20000 }, TARGET, VMID);
  });
  await step("a slow migration (1 MiB/s) cancelled from the page: TASK ERROR, the vm stays", async () => {
    await page.goto(`${URL}/#/vm/${VMID}`);
    await waitText("main", new RegExp(`node${TARGET}`));
    await page.waitForSelector("#migrate-btn:not([disabled])", { timeout: 10000 });
    await page.click("#migrate-btn");
    await waitText("#last-migration", /\d+ passes, [0-9.]+ s, downtime [0-9.]+ ms/, 5000);
    await page.type("input[name=bwlimit]", "1");
    await page.$eval("input[name=bwlimit]", (el) => el.dispatchEvent(new Event("change", { bubbles: true })));
    await page.waitForFunction((s) => {
      const r = document.querySelector(`tr[data-node="${s}"] td.reason`);
      return r && r.textContent === "ok";
    }, { timeout: 20000 }, SOURCE);
    await page.click(`tr[data-node="${SOURCE}"] input[type=radio]`);
    await waitText("#plan", new RegExp(`to node '${SOURCE}'.*1 MiB/s$`), 10000);
    await page.waitForSelector("#do-migrate:not([disabled])", { timeout: 10000 });
    await page.click("#do-migrate");
    await page.waitForSelector("#cancel-btn", { timeout: 20000 });
    await page.waitForSelector("#pct", { timeout: 20000 });
    await waitText("pre.log", new RegExp(`to node '${SOURCE}'`), 10000);
    await waitText(".pct", /ETA/, 20000); // a rate is known: the bar moves
    await page.screenshot({ path: `${SHOTS}/slow-migration.png` });
    await page.click("#cancel-btn"); // the confirmation is accepted above
    await page.waitForSelector("#task-result:not([hidden])", { timeout: 30000 });
    const result = await text("#task-result");
    if (!/^TASK ERROR/.test(result)) throw new Error(result);
    console.log(`# ${result}`);
    await page.goto(`${URL}/#/vm/${VMID}`);
    await waitText("main", new RegExp(`node${TARGET}`));
    await waitText("main dd .st", /running/, 20000);
    await waitText("pre.console", /HB \d+/, 20000); // streamed from its new node
  });
  await step("the task list shows both migrations", async () => {
    await page.goto(`${URL}/#/tasks`);
    await page.type("input[name=type]", "migrate");
    await page.waitForFunction(() => document.querySelectorAll("main tbody tr").length >= 2, { timeout: 10000 });
  });
  await step(`vm ${LOCALVM} (a local disk): each node's every check, the disk refused everywhere`, async () => {
    await page.goto(`${URL}/#/vm/${LOCALVM}`);
    await page.waitForSelector("#migrate-btn", { timeout: 10000 });
    await page.click("#migrate-btn");
    await page.type("input[name=network]", NETWORK);
    await page.$eval("input[name=network]", (el) => el.dispatchEvent(new Event("change", { bubbles: true })));
    const outcome = (node) => page.$$eval(`tr[data-node="${node}"] td[data-check]`,
      (tds) => Object.fromEntries(tds.map((td) => [td.dataset.check, td.className])));
    await page.waitForFunction((f) => {
      const r = document.querySelector(`tr[data-node="${f}"] td.reason`);
      return r && /not shared/.test(r.textContent) && /no address in migration network/.test(r.textContent) &&
        !/checking/.test(r.textContent);
    }, { timeout: 20000 }, FAR);
    const far = await outcome(FAR), near = await outcome(TARGET);
    const want = (o, bad) => Object.keys(o).length === 12 &&
      Object.entries(o).every(([c, cls]) => cls === (bad.includes(c) ? "bad" : "ok"));
    if (!want(far, ["disks", "network"])) throw new Error(`${FAR}: ${JSON.stringify(far)}`);
    if (!want(near, ["disks"])) throw new Error(`${TARGET}: ${JSON.stringify(near)}`);
    const title = await page.$eval(`tr[data-node="${TARGET}"] td[data-check=disks]`, (td) => td.title);
    if (!/disk0 is on storage 'local', which is not shared/.test(title)) throw new Error(title);
    await page.screenshot({ path: `${SHOTS}/local-disk-checks.png` });
  });
  await step(`vm ${LOCALVM} migrated with its local disk to ${TARGET}: a bar for disk0`, async () => {
    await page.$eval("input[name=network]", (el) => (el.value = ""));
    await page.click("input[name=localdisks]");
    await page.select("select[name=type]", "insecure");
    await page.waitForFunction((t) => {
      const r = document.querySelector(`tr[data-node="${t}"] td.reason`);
      return r && r.textContent === "ok";
    }, { timeout: 20000 }, TARGET);
    await page.click(`tr[data-node="${TARGET}"] input[type=radio]`);
    await waitText("#plan", /local disk\(s\) mirrored over nbd first/, 10000);
    await page.waitForSelector("#do-migrate:not([disabled])", { timeout: 10000 });
    await page.click("#do-migrate");
    await page.waitForSelector('.disks .disk[data-disk="disk0"]', { timeout: 30000 });
    await page.waitForSelector("#task-result:not([hidden])", { timeout: 60000 });
    const result = await text("#task-result");
    if (result !== "TASK OK") throw new Error(result);
    const now = await page.$eval('.disks .disk[data-disk="disk0"] .bar', (b) => b.getAttribute("aria-valuenow"));
    if (now !== "100") throw new Error(`disk0's bar at ${now}`);
    await waitText("pre.log", /disk0: synchronous after/);
  });
  await step("create vm 101 from the page, start it, stop it, destroy it", async () => {
    await page.goto(`${URL}/#/`);
    await clickSel("#create-btn");
    await page.waitForSelector("dialog[open] #create-form");
    await page.$eval("input[name=id]", (el) => (el.value = "101"));
    await page.$eval("input[name=memory]", (el) => (el.value = "64"));
    await page.waitForFunction(() => document.querySelector("input[name=kernel]").value !== "",
      { timeout: 5000 }); // taken from vm 100
    await clickSel("#create-form button[type=submit]");
    await page.waitForFunction(() => location.hash === "#/vm/101", { timeout: 10000 });
    await page.waitForSelector('#tree a[href="#/vm/101"]', { timeout: 10000 });
    await waitText("main dd .st", /stopped/);
    await clickButton("Start");
    await waitText("#task-result:not([hidden])", /^TASK OK$/, 30000);
    await page.goto(`${URL}/#/vm/101`);
    // a loaded 2-core machine boots a guest slowly (cluster_lib.sh's vm_on: 30 s)
    await waitText("main dd .st", /running/, 45000);
    await clickButton("Stop");
    await page.waitForSelector("#task-result:not([hidden])", { timeout: 30000 });
    await page.goto(`${URL}/#/vm/101`);
    await waitText("main dd .st", /stopped/, 20000);
    await clickButton("Destroy"); // the confirmation is accepted above
    await page.waitForFunction(() => !document.querySelector('#tree a[href="#/vm/101"]'), { timeout: 10000 });
  });
  await step("log out: back to the login page", async () => {
    await page.click("#logout");
    await page.waitForSelector("#login:not([hidden])", { timeout: 10000 });
  });
  await step("no script error on the page", async () => {
    if (pageErrors.length) throw new Error(pageErrors.join("; "));
  });
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
