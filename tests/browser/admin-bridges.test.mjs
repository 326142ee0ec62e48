// The admin page's bridge panel in a real browser: Debian's chromium, headless, driven by
// playwright-core against the real outpost binary that tests/browser.rs started with two
// bridges to a real Mosquitto. Bridge "up" (plain) shows connected, and its forwarded
// count moves, without a reload, when a mosquitto_pub message crosses to an upstream
// mosquitto_sub. Bridge "hostile" (TLS) is refused because the upstream's certificate is
// for a name made of markup; the error that quotes it shows as text, and nothing in the
// panel becomes an element or runs. Screenshots go to $OUT (admin-bridges*.png).
//
// Environment: BASE (http://127.0.0.1:PORT of the console), MQTT_PORT (Outpost),
// UPSTREAM_PORT (Mosquitto, plain), ADMIN_USER, ADMIN_PASSWORD, MARKUP (the certificate's
// name), OUT, CHROMIUM (default /usr/bin/chromium). Exits non-zero on the first failure.

import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { check, env as need, openDesktop, watchProblems } from "./harness.mjs";

const BASE = need("BASE");
const OUT = need("OUT");
const MARKUP = need("MARKUP");
const WAIT = 20000;

const { context, profile } = await openDesktop(OUT, WAIT);

// The upstream side: a mosquitto_sub that takes one message and exits (stdbuf: each line
// as it comes; "close": after its output is read, not only when the process is gone).
const upstream = spawn(
  "stdbuf",
  ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", need("UPSTREAM_PORT"), "-d", "-q", "1", "-t", "site1/sensors/#", "-v", "-C", "1", "-W", "60"],
  { stdio: ["ignore", "pipe", "pipe"] },
);
upstream.output = "";
upstream.stdout.on("data", (d) => (upstream.output += d));
upstream.stderr.on("data", (d) => (upstream.output += d));
const received = new Promise((resolve) => upstream.on("close", resolve));

const problems = [];
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // Any page problem, or a dialog (an onerror=alert that ran), is a failure.
  watchProblems(page, problems);
  page.on("dialog", (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });

  await page.goto(`${BASE}/login`);
  await page.fill("#username", need("ADMIN_USER"));
  await page.fill("#password", need("ADMIN_PASSWORD"));
  await page.click("button[type=submit]");
  await page.waitForURL(/\/admin$/);
  await page.locator("#live:not([hidden])").waitFor();

  const row = (name) => page.locator(`#bridge-rows tr[data-bridge="${name}"]`);
  const cell = (name, label) => row(name).locator(`td[data-label="${label}"]`);
  await cell("up", "link").locator("text=/^connected since /").waitFor();
  check((await cell("up", "link").locator("span.state-connected").count()) === 1, "up: marked connected");
  check((await cell("up", "forwarded").textContent()) === "0", "up: nothing forwarded yet");
  check((await cell("up", "upstream").textContent()) === `127.0.0.1:${need("UPSTREAM_PORT")}`, "up: its address");
  check((await cell("up", "MQTT").textContent()) === "5", "up: MQTT 5");
  check((await cell("up", "disk budget").textContent()) === "512.0 MiB, drop_oldest", "up: the budget");

  // A QoS 1 message crosses to the upstream; the count follows without a reload.
  for (const end = Date.now() + WAIT; !upstream.output.includes("received SUBACK");) {
    check(Date.now() < end, `the upstream mosquitto_sub did not subscribe: ${upstream.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pub = spawnSync(
    "mosquitto_pub",
    ["-h", "127.0.0.1", "-p", need("MQTT_PORT"), "-q", "1", "-t", "sensors/t", "-m", "21.5"],
    { encoding: "utf8", timeout: WAIT },
  );
  check(pub.status === 0, `mosquitto_pub failed: ${pub.stderr}`);
  const code = await received;
  check(code === 0 && upstream.output.includes("site1/sensors/t 21.5"), `upstream got: ${code} ${upstream.output}`);
  await page.waitForFunction(
    () => document.querySelector('#bridge-rows tr[data-bridge="up"] td[data-label="forwarded"]')?.textContent === "1",
  );
  check((await cell("up", "queued").textContent()) === "0 (0 B)", "up: the queue is empty again");

  // The hostile upstream's certificate name shows in the error as text, never as markup.
  const error = cell("hostile", "last error");
  await page.waitForFunction(
    (markup) => document.querySelector('#bridge-rows tr[data-bridge="hostile"] td[data-label="last error"]')
      ?.textContent.includes(markup),
    MARKUP,
  );
  const text = await error.textContent();
  check(text.startsWith("TLS: ") && text.includes(`DnsName("${MARKUP}")`), `hostile: the error reads ${text}`);
  check((await cell("hostile", "link").locator("span.state-down").textContent()) === "down", "hostile: down");
  check((await page.locator("#bridges img").count()) === 0, "no element made from the error");
  await page.screenshot({ path: join(OUT, "admin-bridges.png"), fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.locator("#live:not([hidden])").waitFor();
  await cell("hostile", "last error").waitFor();
  check((await page.locator("#bridges img").count()) === 0, "no element made from the error after a reload");
  await page.locator("#bridges").screenshot({ path: join(OUT, "admin-bridges-phone.png") });

  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("admin bridge panel test passed; screenshots in", OUT);
} catch (e) {
  failed = true;
  console.error("admin bridge panel test failed:", e.message);
  for (const p of problems) console.error(p);
  try {
    await context.pages()[0].screenshot({ path: join(OUT, "admin-bridges-failure.png"), fullPage: true });
  } catch {}
} finally {
  upstream.kill();
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
