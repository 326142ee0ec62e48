// The admin console as the MQTT Explorer / dashboard replacement, in a real browser at
// desktop (1280×800) and phone (390×844) sizes: publish a JSON message from the page while
// the page watches a wildcard over MQTT-over-WebSocket (it sees the message), find it in
// the topic history by search and the retained list with its pretty-printed payload, delete it (after a confirmation),
// add a user and an ACL rule for them, and see a real mosquitto client logged in as that
// user refused where the rule says; finally delete the rule. Screenshots go to $OUT.
//
// Environment: BASE, MQTT_PORT, ADMIN_USER, ADMIN_PASSWORD, OUT, CHROMIUM (optional).

import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { check, env, openDesktop, watchProblems } from "./harness.mjs";

const BASE = env("BASE");
const MQTT_PORT = env("MQTT_PORT");
const ADMIN_USER = env("ADMIN_USER");
const ADMIN_PASSWORD = env("ADMIN_PASSWORD");
const OUT = env("OUT");
const WAIT = 20000;

/** mosquitto_sub/pub with `args`; returns { status, output }. */
function mosquitto(tool, args) {
  const r = spawnSync(tool, ["-h", "127.0.0.1", "-p", MQTT_PORT, "-V", "mqttv5", ...args], {
    encoding: "utf8",
    timeout: WAIT,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function walk(page, size, name) {
  const { width, height } = size;
  await page.setViewportSize({ width, height });
  const user = `walker-${name}`;
  const topic = `walk/${name}/temp`;
  await page.goto(`${BASE}/admin`);
  await page.locator("#live:not([hidden])").waitFor();

  // Watch a wildcard, then publish from the form: the watch sees the message.
  await page.fill("#watch-filter", "walk/+/temp");
  await page.click("#watch-start");
  await page.locator("#watch-state", { hasText: "watching walk/+/temp" }).waitFor();
  await page.fill("#pub-topic", topic);
  await page.fill("#pub-payload", '{"celsius": 21.50, "ok": true}');
  await page.selectOption("#pub-format", "json");
  await page.check("#pub-retain");
  await page.click("#pub-send");
  await page.locator("#publish-result.notice", { hasText: `Published to ${topic} (QoS 1, retained).` }).waitFor();
  const seen = page.locator("#watch-rows tr", { hasText: topic });
  await seen.waitFor();
  const shown = await seen.locator("pre.payload").textContent();
  check(shown.includes('"celsius": 21.5'), `the watched payload is pretty-printed JSON: ${shown}`);
  // The watch speaks MQTT 5: the message's properties are shown, and a hex dump on demand.
  const props = await seen.locator("dl.props").textContent();
  check(props.includes("application/json") && props.includes("UTF-8 text"), `the watched message's properties: ${props}`);
  await seen.locator("details.hex summary").click();
  const dump = await seen.locator("details.hex pre").textContent();
  check(dump.startsWith("000000  7b 22 63 65"), `the hex view: ${dump.slice(0, 60)}`);
  // Pause holds new messages back until resumed.
  await page.click("#watch-pause");
  await page.fill("#pub-payload", '{"celsius": 22}');
  await page.click("#pub-send");
  await page.locator("#watch-state", { hasText: "(1 held)" }).waitFor();
  check((await page.locator("#watch-rows tr").count()) === 1, "paused: nothing new shown");
  await page.click("#watch-pause");
  await page.locator("#watch-rows tr", { hasText: '"celsius": 22' }).waitFor();
  await page.screenshot({ path: join(OUT, `walk-${name}-watch.png`), fullPage: true });
  await page.locator("#watch").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, `walk-${name}-watch-view.png`) });

  // The topic history's search box narrows the live table.
  const topicRow = page.locator("#topic-rows tr", { hasText: topic });
  await topicRow.waitFor();
  const topicFilter = page.locator('.table-filter[data-rows="topic-rows"]');
  await topicFilter.fill("no-such-topic");
  await topicRow.waitFor({ state: "hidden" });
  await topicFilter.fill(`${name}/temp`);
  await topicRow.waitFor();

  // Its "Last 10 messages" shows the message with its MQTT 5 properties, as the watch does
  // (the live refresh has redrawn the table once #live shows).
  await page.goto(`${BASE}/admin?topic=${encodeURIComponent(topic)}#last`);
  await page.locator("#live:not([hidden])").waitFor();
  const lastProps = await page.locator("#message-rows tr").first().locator("dl.props").textContent();
  check(lastProps.includes("application/json") && lastProps.includes("UTF-8 text"),
    `the last message's properties: ${lastProps}`);

  // The retained list finds it by prefix; its detail shows the payload and properties.
  await page.goto(`${BASE}/admin?prefix=${encodeURIComponent(`walk/${name}/`)}#retained`);
  const row = page.locator("#retained-rows tr", { hasText: topic });
  await row.waitFor();
  await row.locator("a").click();
  await page.locator("#retained-detail", { hasText: "application/json" }).waitFor();
  await page.screenshot({ path: join(OUT, `walk-${name}-retained.png`), fullPage: true });

  // Delete it (the page asks first), and the notice says what went.
  await page.locator("#retained-rows tr", { hasText: topic }).locator("button", { hasText: "Delete" }).click();
  await page.locator(".notice", { hasText: `Deleted the retained message of ${topic}.` }).waitFor();
  await page.reload();
  check((await page.locator(".notice").count()) === 0, "the notice does not come back on reload");

  // Add a user and a rule that lets them only read walk/#.
  await page.fill("#new-user", user);
  await page.fill("#new-password", `${user}-password`);
  await page.click("#add-user");
  await page.locator(".notice", { hasText: `Added user ${user}.` }).waitFor();
  await page.selectOption("#rule-user", user);
  await page.selectOption("#rule-access", "read");
  await page.fill("#rule-topic", "walk/#");
  await page.click("#add-rule");
  const added = page.locator(".notice", { hasText: `: ${user} read walk/#.` });
  await added.waitFor();
  const ruleId = /Added ACL rule (\d+)/.exec(await added.textContent())[1];
  await page.screenshot({ path: join(OUT, `walk-${name}-users.png`), fullPage: true });
  await page.locator("#users").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, `walk-${name}-users-view.png`) });

  // The new user is refused where the rule says: other/# cannot be read, walk/# can.
  const login = ["-u", user, "-P", `${user}-password`];
  const refused = mosquitto("mosquitto_sub", [...login, "-i", `${user}-1`, "-t", "other/#", "-C", "1", "-W", "5"]);
  // mosquitto_sub says so and gives up (its exit status is 0 either way).
  check(/All subscription requests were denied/.test(refused.output),
    `${user} may not read other/#: ${refused.status} ${refused.output}`);
  const allowed = mosquitto("mosquitto_sub", [...login, "-i", `${user}-2`, "-t", "walk/#", "-C", "1", "-W", "2"]);
  check(!/denied|not authori/i.test(allowed.output), `${user} may read walk/#: ${allowed.output}`);

  // Remove the rule again (asked first), so the admin is not held to rules either.
  await page.locator("#rule-rows tr", { hasText: user }).locator("button", { hasText: "Delete" }).click();
  await page.locator(".notice", { hasText: `Deleted ACL rule ${ruleId}.` }).waitFor();
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

  await walk(page, { width: 1280, height: 800 }, "desktop");
  await walk(page, { width: 390, height: 844 }, "phone");
  // Nothing on the phone page is wider than the screen but what scrolls inside its box.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 390, `the phone page is ${wide}px wide`);
  check(dialogs.some((d) => d.startsWith("Delete the retained message of walk/desktop/temp?")),
    `the delete asked first: ${dialogs.join(" | ")}`);
  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("browser console walk passed; screenshots in", OUT);
} catch (e) {
  failed = true;
  console.error("browser console walk failed:", e.message);
  for (const p of problems) console.error(p);
  try {
    const page = context.pages()[0];
    await page.screenshot({ path: join(OUT, "walk-failure.png"), fullPage: true });
    console.error("page at failure:", page.url(), "screenshot", join(OUT, "walk-failure.png"));
  } catch {}
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
