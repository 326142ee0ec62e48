// The web console in a real browser: Debian's chromium, headless, driven by playwright-core
// against the real outpost binary that tests/browser.rs started. It does what a person
// does on first use: register, log in as the admin, watch a mosquitto_sub client appear
// with its subscription, see a mosquitto_pub message in the topic's last 10, stop the
// listener (a new mosquitto_sub is refused) and start it again (it connects). Screenshots
// go to $OUT (desktop and phone sizes). Exits non-zero with a message on the first failure.
//
// Environment: BASE (http://127.0.0.1:PORT of the console), MQTT_PORT, ADMIN_USER,
// ADMIN_PASSWORD, OUT (screenshot folder), CHROMIUM (default /usr/bin/chromium).

import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { check, env, openDesktop, watchProblems } from "./harness.mjs";

const BASE = env("BASE");
const MQTT_PORT = env("MQTT_PORT");
const ADMIN_USER = env("ADMIN_USER");
const ADMIN_PASSWORD = env("ADMIN_PASSWORD");
const OUT = env("OUT");
const WAIT = 20000;

const children = [];
function mosquitto(tool, args) {
  const child = spawn(tool, ["-h", "127.0.0.1", "-p", MQTT_PORT, "-V", "mqttv5", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.output = "";
  child.stdout.on("data", (d) => (child.output += d));
  child.stderr.on("data", (d) => (child.output += d));
  child.done = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  children.push(child);
  return child;
}

function publish(topic, message) {
  const result = spawnSync(
    "mosquitto_pub",
    ["-h", "127.0.0.1", "-p", MQTT_PORT, "-V", "mqttv5", "-q", "1", "-t", topic, "-m", message],
    { encoding: "utf8", timeout: WAIT },
  );
  if (result.status !== 0) throw new Error(`mosquitto_pub failed: ${result.stderr}`);
}

async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const { context, profile } = await openDesktop(OUT, WAIT);

const problems = [];
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  watchProblems(page, problems);
  // Stop and Disconnect ask first; a person says yes.
  page.on("dialog", (d) => d.accept());
  // Every failed request is a problem, but one the browser cancelled because the page
  // navigated away after it started (a 3 s refresh under way when a form is sent or a
  // link followed: net::ERR_ABORTED): that is the page leaving, not a failure.
  let navigations = 0;
  const startedAt = new Map();
  page.on("request", (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigations += 1;
    else startedAt.set(r, navigations);
  });
  page.on("requestfailed", (r) => {
    const left = r.failure()?.errorText === "net::ERR_ABORTED" && startedAt.get(r) < navigations;
    if (!left) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  if (process.env.TRACE) {
    const t0 = Date.now();
    page.on("request", (r) => console.log(Date.now() - t0, "->", r.method(), r.url()));
    page.on("response", (r) => console.log(Date.now() - t0, "<-", r.status(), r.url()));
  }

  // Register a chat user: a refusal first, then the account page.
  await page.goto(`${BASE}/register`);
  await page.fill("#username", "carol");
  await page.fill("#password", "short");
  await page.fill("#repeat", "short");
  await page.click("button[type=submit]");
  await page.locator(".error", { hasText: "at least 8 characters" }).waitFor();
  await page.fill("#password", "carol-password");
  await page.fill("#repeat", "carol-password");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/account/);
  await page.locator(".notice", { hasText: "Welcome" }).waitFor();
  await page.screenshot({ path: join(OUT, "account-desktop.png"), fullPage: true });
  await page.click("text=Log out");
  await page.waitForURL(/\/login/);

  // Log in as the admin: a wrong password is explained, the right one opens /admin.
  await page.fill("#username", ADMIN_USER);
  await page.fill("#password", "wrong-password");
  await page.click("button[type=submit]");
  await page.locator(".error", { hasText: "wrong user name or password" }).waitFor();
  await page.fill("#password", ADMIN_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/admin$/);
  await page.locator("#live:not([hidden])").waitFor();

  // A mosquitto_sub client appears, with its subscription, without reloading the page.
  const watcher = mosquitto("mosquitto_sub", ["-i", "browser-sub", "-q", "1", "-t", "sensors/#", "-v"]);
  const row = page.locator("#client-rows tr", { hasText: "browser-sub" });
  await row.waitFor();
  await row.locator("code", { hasText: "sensors/#" }).waitFor();
  await page.locator("#filter-rows tr", { hasText: "sensors/#" }).waitFor();

  // A published message shows in the topic history and in the topic's last 10, as text.
  const payload = "21.5 <b>C</b> <script>alert(1)</script>";
  publish("sensors/temp", payload);
  await within(WAIT, "mosquitto_sub receives the message", (async () => {
    while (!watcher.output.includes("sensors/temp")) await new Promise((r) => setTimeout(r, 50));
  })());
  const topicLink = page.locator("#topic-rows a", { hasText: "sensors/temp" });
  await topicLink.waitFor();
  await topicLink.click();
  await page.waitForURL(/topic=sensors%2Ftemp/);
  const message = page.locator("#message-rows pre.payload", { hasText: "21.5 <b>C</b>" });
  await message.waitFor();
  check((await message.textContent()) === payload, "the payload shows as sent, as text");
  check((await page.locator("#message-rows b").count()) === 0, "no markup from the payload");
  for (let i = 0; i < 3; i++) publish("sensors/temp", `reading ${i}`);
  await page.locator("#message-rows tr", { hasText: "reading 2" }).waitFor();
  // The charts have drawn lines from successive snapshots.
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#chart-messages polyline")].some((l) => l.getAttribute("points").split(" ").length >= 2));
  await page.screenshot({ path: join(OUT, "admin-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.locator("#live:not([hidden])").waitFor();
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#chart-connections polyline")].some((l) => l.getAttribute("points").split(" ").length >= 2));
  await page.screenshot({ path: join(OUT, "admin-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  // Stop the MQTT listener (the WebSocket one has its own row): the client is
  // disconnected and a new mosquitto_sub is refused.
  const mqttRow = () => page.locator("#listener-rows tr", { hasText: "mqtt" });
  await mqttRow().locator("button", { hasText: "Stop" }).click();
  await page.locator(".notice", { hasText: "Stopped the mqtt listener on 127.0.0.1:" }).waitFor();
  await mqttRow().locator(".state-stopped").waitFor();
  await page.locator("#client-rows td.empty").waitFor();
  const refused = mosquitto("mosquitto_sub", ["-i", "refused-sub", "-t", "sensors/#", "-C", "1"]);
  const refusedCode = await within(WAIT, "mosquitto_sub gives up", refused.done);
  check(refusedCode !== 0, `mosquitto_sub should be refused, exited ${refusedCode}: ${refused.output}`);
  await page.screenshot({ path: join(OUT, "admin-stopped.png"), fullPage: true });

  // Start it again: a new mosquitto_sub connects, shows up, and gets the next message.
  await mqttRow().locator("button", { hasText: "Start" }).click();
  await page.locator(".notice", { hasText: "Started the mqtt listener on 127.0.0.1:" }).waitFor();
  await mqttRow().locator(".state-running").waitFor();
  const again = mosquitto("mosquitto_sub", ["-i", "after-start", "-q", "1", "-t", "sensors/#", "-C", "1", "-W", "30"]);
  await page.locator("#client-rows tr", { hasText: "after-start" }).waitFor();
  publish("sensors/temp", "back again");
  const againCode = await within(WAIT, "mosquitto_sub gets a message after the start", again.done);
  check(againCode === 0 && again.output.includes("back again"), `after start: ${againCode} ${again.output}`);

  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("browser console test passed; screenshots in", OUT);
} catch (e) {
  failed = true;
  console.error("browser console test failed:", e.message);
  for (const p of problems) console.error(p);
  try {
    const page = context.pages()[0];
    await page.screenshot({ path: join(OUT, "failure.png"), fullPage: true });
    console.error("page at failure:", page.url(), "screenshot", join(OUT, "failure.png"));
  } catch {}
} finally {
  for (const child of children) child.kill();
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
