// The console's client tools in a real browser at desktop (1280×800) and phone (390×844)
// sizes: a persistent mosquitto_sub with a will connects; the admin opens it from the
// clients list, sees its will, subscription and live message rates; bans its client id
// (asked first), which disconnects it and refuses it (mosquitto_sub: "Banned"); its
// session is then listed under Offline sessions and deleted (asked first); the ban is
// lifted and it connects again. A second admin page, open all along, sees the ban and the
// offline session come and go without a reload. On the way, the topic tree finds the topic it gets and
// watches it. Screenshots go to $OUT.
//
// Environment: BASE, MQTT_PORT, ADMIN_USER, ADMIN_PASSWORD, OUT, CHROMIUM (optional).

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
const MQTT = ["-h", "127.0.0.1", "-p", MQTT_PORT, "-V", "mqttv5"];

function mosquitto(tool, args) {
  const r = spawnSync(tool, [...MQTT, ...args], { encoding: "utf8", timeout: WAIT });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function clientTools(context, page, problems, size, name) {
  await page.setViewportSize(size);
  const id = `dev-${name}`;
  // A persistent client (session expiry 600 s) with a will, subscribed to site/+/temp.
  const sub = spawn("mosquitto_sub", [...MQTT, "-i", id, "-c", "-x", "600", "-q", "1",
    "-t", "site/+/temp", "--will-topic", `status/${id}`, "--will-payload", "gone", "--will-qos", "1"],
  { stdio: ["ignore", "pipe", "pipe"] });
  sub.stdout.resume();
  sub.stderr.resume();
  const subEnded = new Promise((resolve) => sub.on("exit", resolve));
  try {
    await page.goto(`${BASE}/admin#clients`);
    await page.locator("#live:not([hidden])").waitFor();
    const link = page.locator("#client-rows a", { hasText: id });
    await link.waitFor();
    await link.click();
    await page.waitForURL(/\/admin\/client\?id=/);
    await page.locator("#will", { hasText: `status/${id}` }).waitFor();
    await page.locator("#subscriptions", { hasText: "site/+/temp" }).waitFor();
    await page.locator("#live:not([hidden])").waitFor();
    // Messages arrive while the page measures: the rates come from the live counters.
    for (let i = 0; i < 5; i++) mosquitto("mosquitto_pub", ["-i", `pub-${name}`, "-q", "1", "-t", "site/1/temp", "-m", `2${i}.5`]);
    await page.locator('[data-field="messages_out"]', { hasText: "5" }).waitFor();
    await page.locator("#rates-hint", { hasText: "Rates measured over" }).waitFor();
    await page.screenshot({ path: join(OUT, `clients-${name}-detail.png`), fullPage: true });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= size.width, `the client page is ${wide}px wide at ${size.width}px`);

    // The topic tree finds it by search: the site node counts the messages, and Watch on
    // the temp leaf starts a watch of site/1/temp.
    await page.goto(`${BASE}/admin#tree`);
    await page.locator("#live:not([hidden])").waitFor();
    await page.fill("#tree-search", "1/temp");
    const site = page.locator('#topic-tree li[data-path="site"]');
    await site.waitFor();
    const count = Number(await site.locator(".tree-count").first().textContent());
    check(count >= 5, `the site node counts its messages: ${count}`);
    check(/ago$/.test(await site.locator(".tree-age").first().textContent()), "the node shows the age of its last message");
    const leaf = page.locator('#topic-tree li[data-path="site/1/temp"]');
    await leaf.waitFor();
    check((await page.locator('#topic-tree li[data-path^="status"]').count()) === 0, "the search hides other topics");
    await leaf.locator("button", { hasText: "Watch" }).click();
    await page.locator("#watch-state", { hasText: "watching site/1/temp" }).waitFor();
    await page.locator("#tree").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, `clients-${name}-tree.png`) });
    // Collapsed nodes stay collapsed through the live refreshes once the search is cleared.
    await page.fill("#tree-search", "");
    const details = site.locator("details").first();
    check(!(await details.evaluate((d) => d.open)), "without a search the tree starts collapsed");
    await site.locator("summary").first().click();
    await page.waitForTimeout(3500);
    check(await details.evaluate((d) => d.open), "an opened node stays open after a refresh");
    await page.click("#watch-stop");
    // A second admin page, open before the ban: its Bans and Offline sessions panels
    // follow what happens without a reload.
    const panel = await context.newPage();
    watchProblems(panel, problems);
    await panel.goto(`${BASE}/admin#bans`);
    await panel.locator("#live:not([hidden])").waitFor();
    check((await panel.locator("#ban-rows tr", { hasText: id }).count()) === 0, "not banned yet");
    await page.goto(`${BASE}/admin/client?id=${id}`);

    // Ban its client id from here: it is disconnected and refused.
    await page.locator("#actions button", { hasText: `Ban client id ${id}` }).click();
    await page.waitForURL(/\/admin$/);
    await page.locator(".notice", { hasText: `Banned client id ${id} until lifted (1 client disconnected).` }).waitFor();
    await subEnded;
    const again = mosquitto("mosquitto_sub", ["-i", id, "-t", "x", "-C", "1", "-W", "3"]);
    check(/Banned/.test(again.output), `a banned client is refused: ${again.output}`);
    const banRow = page.locator("#ban-rows tr", { hasText: id });
    await banRow.waitFor();
    await panel.locator("#ban-rows tr", { hasText: id }).waitFor();
    await panel.locator("#session-rows tr", { hasText: id }).waitFor();

    // Its session stays, offline, until deleted.
    await page.reload();
    const sessionRow = page.locator("#session-rows tr", { hasText: id });
    await sessionRow.waitFor();
    check((await sessionRow.textContent()).includes("site/+/temp"), "the offline session lists its subscription");
    await page.locator("#sessions").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, `clients-${name}-sessions.png`) });
    await sessionRow.locator("button", { hasText: "Delete" }).click();
    await page.locator(".notice", { hasText: `Deleted the session of ${id}.` }).waitFor();
    check((await page.locator("#session-rows tr", { hasText: id }).count()) === 0, "the session is gone");

    // Lift the ban: it may connect again.
    await page.locator("#ban-rows tr", { hasText: id }).locator("button", { hasText: "Lift" }).click();
    await page.locator(".notice", { hasText: `Lifted the ban on client id ${id}.` }).waitFor();
    await page.locator("#bans").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, `clients-${name}-bans.png`) });
    const back = mosquitto("mosquitto_sub", ["-i", id, "-t", "x", "-C", "1", "-W", "1"]);
    check(!/Banned|refused/i.test(back.output), `lifted: ${back.output}`);
    // The other page saw the session deleted and the ban lifted.
    await panel.locator("#session-rows tr", { hasText: id }).waitFor({ state: "detached" });
    await panel.locator("#ban-rows tr", { hasText: id }).waitFor({ state: "detached" });
    await panel.close();
  } finally {
    if (sub.exitCode === null) sub.kill("SIGKILL");
  }
}

const { context, profile } = await openDesktop(OUT, WAIT);
const problems = [];
const dialogs = [];
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  watchProblems(page, problems);
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.accept();
  });
  await page.goto(`${BASE}/login`);
  await page.fill("#username", ADMIN_USER);
  await page.fill("#password", ADMIN_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/admin$/);

  await clientTools(context, page, problems, { width: 1280, height: 800 }, "desktop");
  await clientTools(context, page, problems, { width: 390, height: 844 }, "phone");
  for (const asked of ["Ban client id dev-desktop?", "Delete the session of dev-desktop with its", "Lift the ban on client id dev-desktop?"]) {
    check(dialogs.some((d) => d.startsWith(asked)), `asked "${asked}": ${dialogs.join(" | ")}`);
  }
  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("browser client tools passed; screenshots in", OUT);
} catch (e) {
  failed = true;
  console.error("browser client tools failed:", e.message);
  for (const p of problems) console.error(p);
  try {
    const page = context.pages()[0];
    await page.screenshot({ path: join(OUT, "clients-failure.png"), fullPage: true });
    console.error("page at failure:", page.url(), "screenshot", join(OUT, "clients-failure.png"));
  } catch {}
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
