// The /chat page in a real browser: Debian's chromium, headless, driven by playwright-core
// against the real outpost binary that tests/browser.rs started. Two people (two browser
// contexts, one phone-sized) log in through the console, open /chat (which logs in to
// the broker over WebSocket with a single-use token from POST /api/chat/token), see the
// room's history, chat with each other, and a mosquitto_sub peer over TCP hears them;
// markup in a message stays text; a like shows its count on both pages; a message in
// another room marks it unread; switching to a room of 60 messages pages in its history
// as the list scrolls up; the WebSocket
// listener is stopped and started mid-chat and both pages reconnect and catch up.
// Screenshots go to $OUT. Exits non-zero with a message on the first failure.
//
// Environment: BASE (http://127.0.0.1:PORT of the console), MQTT_PORT, OUT (screenshot
// folder), CHROMIUM (default /usr/bin/chromium). Users (made by tests/browser.rs): alice,
// bob and dave, and the admin root, each with the password "<name>-password".

import { chromium } from "playwright-core";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`missing environment variable ${name}`);
  return value;
};
const BASE = env("BASE");
const MQTT_PORT = env("MQTT_PORT");
const OUT = env("OUT");
const WAIT = 20000;
const password = (user) => `${user}-password`;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function publish(user, topic, message) {
  const result = spawnSync(
    "mosquitto_pub",
    ["-h", "127.0.0.1", "-p", MQTT_PORT, "-u", user, "-P", password(user), "-q", "1", "-t", topic, "-m", message],
    { encoding: "utf8", timeout: WAIT },
  );
  if (result.status !== 0) throw new Error(`mosquitto_pub failed: ${result.stderr}`);
}

/// A mosquitto_sub peer over TCP, logged in as dave, in room general.
function listen() {
  const child = spawn(
    "mosquitto_sub",
    ["-h", "127.0.0.1", "-p", MQTT_PORT, "-u", "dave", "-P", password("dave"), "-q", "1", "-t", "chat/r/general", "-v"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.output = "";
  child.stdout.on("data", (d) => (child.output += d));
  child.stderr.on("data", (d) => (child.output += d));
  return child;
}

async function eventually(what, test) {
  const end = Date.now() + WAIT;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const problems = [];
// While the WebSocket listener is stopped, Chromium logs the token endpoint's 503 and
// failed WebSocket connections: expected then, and only then.
let outage = false;
const expected = (m) =>
  outage &&
  m.type() === "error" &&
  ((m.text().startsWith("Failed to load resource") && m.location().url.endsWith("/api/chat/token")) ||
    /^WebSocket connection to 'ws:\/\/[^']+\/mqtt' failed/.test(m.text()));

async function open(browser, user, options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on("console", (m) => {
    if ((m.type() === "warning" || m.type() === "error") && !expected(m)) problems.push(`${user} console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${user} page error: ${e.message}`));
  await page.goto(`${BASE}/login`);
  await page.fill("#username", user);
  await page.fill("#password", password(user));
  await page.click("button[type=submit]");
  await page.waitForURL(/\/account/);
  await page.goto(`${BASE}/chat#general`);
  await page.locator('#chat[data-link="up"]').waitFor();
  return page;
}

const texts = (page) => page.locator("#messages .message .text").allTextContents();
const message = (page, text) =>
  page.locator("#messages .message").filter({ has: page.locator(".text", { hasText: text }) });

async function send(page, text) {
  await page.fill("#text", text);
  await page.click("#send button");
  await page.waitForFunction(() => document.getElementById("text").value === "");
}

/// A JSON POST to the console's API as another site cannot send it.
async function api(path, cookie, csrf, body) {
  const headers = { "Content-Type": "application/json", Origin: BASE };
  if (cookie) headers.Cookie = cookie;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const reply = await fetch(`${BASE}/api${path}`, { method: "POST", headers, body: JSON.stringify(body || {}) });
  if (!reply.ok) throw new Error(`POST /api${path}: ${reply.status} ${await reply.text()}`);
  return reply;
}

mkdirSync(OUT, { recursive: true });
publish("dave", "chat/r/general", "welcome to general");
// Sixty messages in room archive, for history paging.
{
  const lines = Array.from({ length: 60 }, (_, i) => `early ${i + 1}`).join("\n") + "\n";
  const result = spawnSync(
    "mosquitto_pub",
    ["-h", "127.0.0.1", "-p", MQTT_PORT, "-u", "dave", "-P", password("dave"), "-q", "1", "-t", "chat/r/archive", "-l"],
    { encoding: "utf8", input: lines, timeout: WAIT },
  );
  if (result.status !== 0) throw new Error(`mosquitto_pub -l failed: ${result.stderr}`);
}
const peer = listen();
const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
let failed = false;
try {
  const alice = await open(browser, "alice", { viewport: { width: 1280, height: 800 } });
  const bob = await open(browser, "bob", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  // History: the message sent before either page opened.
  for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
    await message(page, "welcome to general").waitFor();
    check((await page.locator("#room-title").textContent()) === "general", `${who}'s room title`);
  }

  // Live, both ways, and to the MQTT peer.
  await send(alice, "hello from alice");
  await message(bob, "hello from alice").waitFor();
  await eventually("mosquitto_sub hears alice", () => /chat\/r\/general \d+ \d+ alice hello from alice/.test(peer.output));
  const evil = `<img src=x onerror="document.title='pwned'"> & <b>bold</b>`;
  await send(bob, evil);
  await alice.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .message .text")].some((p) => p.textContent === t),
    evil,
  );
  check((await alice.locator("#messages img, #messages b").count()) === 0, "a message's markup reached the DOM");
  check((await alice.title()) !== "pwned", "a message's script ran");
  await eventually("mosquitto_sub hears bob", () => peer.output.includes(`bob ${evil}`));

  // The peer speaks over TCP; both pages show it.
  publish("dave", "chat/r/general", "dave here, over plain MQTT");
  await message(alice, "dave here, over plain MQTT").waitFor();
  await message(bob, "dave here, over plain MQTT").waitFor();

  // A like from bob: both pages count it.
  await message(bob, "hello from alice").locator(".like").click();
  await message(alice, "hello from alice").locator(".like", { hasText: "♥ 1" }).waitFor();
  await message(bob, "hello from alice").locator(".like", { hasText: "♥ 1" }).waitFor();

  // A message in another room marks it unread on bob's page.
  publish("dave", "chat/r/kitchen", "soup is ready");
  await bob.locator('.room[data-room="kitchen"] .unread', { hasText: "1" }).waitFor();

  // The WebSocket listener stops mid-chat (from the admin API): both pages notice, dave
  // keeps talking over TCP, and once it starts again both pages reconnect with a fresh
  // token and catch up on what they missed, each message once and in order.
  const admin = await api("/login", null, null, { username: "root", password: password("root") });
  const cookie = admin.headers.get("set-cookie").split(";")[0];
  const { csrf } = await admin.json();
  const listeners = await (await fetch(`${BASE}/api/listeners`, { headers: { Cookie: cookie } })).json();
  const ws = listeners.find((l) => l.kind === "websocket");
  check(ws, `no websocket listener in ${JSON.stringify(listeners)}`);
  outage = true;
  await api(`/listeners/${ws.id}/stop`, cookie, csrf);
  for (const page of [alice, bob]) await page.locator('#chat[data-link="down"]').waitFor();
  await alice.screenshot({ path: join(OUT, "chat-alice-offline.png") });
  const missed = ["while you were away 1", "while you were away 2"];
  for (const text of missed) publish("dave", "chat/r/general", text);
  // Long enough that the first retry finds the listener down and backs off.
  await alice.waitForTimeout(2500);
  await api(`/listeners/${ws.id}/start`, cookie, csrf);
  for (const page of [alice, bob]) {
    await page.locator('#chat[data-link="up"]').waitFor();
    for (const text of missed) await message(page, text).waitFor();
  }
  outage = false;
  await send(bob, "back online");
  await message(alice, "back online").waitFor();

  const want = ["welcome to general", "hello from alice", evil, "dave here, over plain MQTT", ...missed, "back online"];
  for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
    const shown = await texts(page);
    check(JSON.stringify(shown) === JSON.stringify(want), `${who} shows ${JSON.stringify(shown)}`);
  }
  await bob.screenshot({ path: join(OUT, "chat-bob-phone.png") });

  // Switching rooms: archive shows its newest page first; scrolling to the top pages in
  // the older ones until all sixty are there, in order.
  await alice.click('.room[data-room="archive"]');
  await message(alice, "early 60").waitFor();
  check((await alice.locator("#room-title").textContent()) === "archive", "alice's room title after the switch");
  check(!(await texts(alice)).includes("early 1"), "the first page reaches back to message 1");
  for (let i = 0; i < 20 && !(await texts(alice)).includes("early 1"); i++) {
    await alice.locator("#messages").evaluate((l) => {
      l.scrollTop = 0;
      l.dispatchEvent(new Event("scroll"));
    });
    await alice.waitForTimeout(200);
  }
  const early = await texts(alice);
  const all = Array.from({ length: 60 }, (_, i) => `early ${i + 1}`);
  check(JSON.stringify(early) === JSON.stringify(all), `archive after paging: ${JSON.stringify(early)}`);
  await alice.screenshot({ path: join(OUT, "chat-alice-desktop.png") });
  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("OK");
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e.message}`);
  if (problems.length) console.error(problems.join("\n"));
  console.error(`mosquitto_sub saw:\n${peer.output}`);
} finally {
  peer.kill();
  await browser.close();
}
process.exit(failed ? 1 : 0);
