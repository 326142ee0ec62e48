// The /chat page's presence and what the server keeps per user, in headless Chromium
// against the real outpost binary that tests/browser.rs started. bob watches alice come
// online and go offline — in their direct conversation and in a room — as alice opens and
// closes her page (another browser context: another WebSocket connection, ended when the
// context closes), each change shown once. bob's block list survives a reload. Unread
// counts agree between bob's phone and his laptop and on a page he opens afresh, through
// the server's read markers. dave (mosquitto_pub) writes the messages that are counted.
// Exits non-zero with a message on the first failure.
//
// Environment: BASE (http://127.0.0.1:PORT of the console), MQTT_PORT, OUT (screenshot
// folder), CHROMIUM (default /usr/bin/chromium). Users (made by tests/browser.rs): alice,
// bob and dave, each with the password "<name>-password".

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { WAIT, publish } from "./chat-peers.mjs";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`missing environment variable ${name}`);
  return value;
};
const BASE = env("BASE");
const MQTT_PORT = env("MQTT_PORT");
const OUT = env("OUT");
const password = (user) => `${user}-password`;
const as = (user, topic, text) => publish(MQTT_PORT, user, password(user), topic, text);
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
const LAPTOP = { viewport: { width: 1280, height: 800 } };

function check(condition, message) {
  if (!condition) throw new Error(message);
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const problems = [];

/// `user` logs in through the console in a browser context of its own and opens
/// `/chat#<room>`; resolves once the page is connected.
async function open(browser, user, room, options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "warning" || m.type() === "error") problems.push(`${user} console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${user} page error: ${e.message}`));
  await page.goto(`${BASE}/login`);
  await page.fill("#username", user);
  await page.fill("#password", password(user));
  await page.click("button[type=submit]");
  // The chat opens its first room and puts it in the address; once it has, the address is
  // pointed at `room` and the page shows that one. (Going there before the page picked its
  // first room raced with the page writing the address: a reload then opened the first
  // room, not `room`. One page, so one connection: a reload would also show the user
  // leaving and coming back to the others.) The load event (every subresource done) is
  // not waited for.
  await page.waitForURL(/\/chat(#.*)?$/, { waitUntil: "commit" });
  const shown = page.locator(".room[aria-current]");
  await shown.waitFor();
  if ((await shown.getAttribute("data-room")) !== room) {
    await page.goto(`${BASE}/chat#${encodeURIComponent(room)}`, { waitUntil: "commit" });
  }
  await page.locator(`.room[data-room="${room}"][aria-current]`).waitFor();
  await page.locator('#chat[data-link="up"]').waitFor();
  return page;
}

const member = (page, name, state) => page.locator(`#members li.${state}[data-name="${name}"]`);
const unread = (page, room) => page.locator(`.room[data-room="${room}"] .unread`);

/// Records on `page` each change of how `name` shows in the member list (online,
/// offline), so the test can check every change was shown once and nothing flickered.
async function recordPresence(page, name) {
  await page.evaluate((n) => {
    window.states = [];
    const log = () => {
      const li = document.querySelector(`#members li[data-name="${n}"]`);
      const state = li ? li.className : "absent";
      if (window.states[window.states.length - 1] !== state) window.states.push(state);
    };
    log();
    window.presenceLog?.disconnect();
    window.presenceLog = new MutationObserver(log);
    window.presenceLog.observe(document.getElementById("members"), { childList: true, subtree: true, attributes: true });
  }, name);
}
const states = (page) => page.evaluate(() => window.states);

mkdirSync(OUT, { recursive: true });
let browser = null;
let failed = false;
try {
  // A room and a direct conversation, before any page opens.
  as("alice", "chat/r/general", "morning");
  as("alice", "chat/d/bob", "psst");
  browser = await chromium.launch({
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
  });

  // bob reads the conversation: alice is not there.
  const bob = await open(browser, "bob", "@alice", PHONE);
  await bob.locator("#messages .message .text", { hasText: "psst" }).waitFor();
  await member(bob, "alice", "offline").waitFor();
  await recordPresence(bob, "alice");

  // alice opens her page (it joins general and reads her direct messages): bob sees her
  // online; she closes it: offline.
  let alice = await open(browser, "alice", "general", PHONE);
  await member(bob, "alice", "online").waitFor();
  // Her page has joined general once it lists her there (members comes after the join).
  await member(alice, "alice", "online").waitFor();
  await bob.screenshot({ path: join(OUT, "chat-presence-direct-online.png") });
  await alice.context().close();
  await member(bob, "alice", "offline").waitFor();
  check(same(await states(bob), ["offline", "online", "offline"]), `bob saw alice ${JSON.stringify(await states(bob))} in @alice`);

  // The same in general, where alice is a member now.
  await bob.click('.room[data-room="general"]');
  await member(bob, "alice", "offline").waitFor();
  await member(bob, "bob", "online").waitFor();
  await recordPresence(bob, "alice");
  alice = await open(browser, "alice", "general", PHONE);
  await member(bob, "alice", "online").waitFor();
  await member(alice, "bob", "online").waitFor();
  await alice.context().close();
  await member(bob, "alice", "offline").waitFor();
  check(same(await states(bob), ["offline", "online", "offline"]), `bob saw alice ${JSON.stringify(await states(bob))} in general`);

  // bob blocks alice; after a reload the page still knows.
  await bob.click('.room[data-room="@alice"]');
  await bob.locator('#block[aria-pressed="false"]', { hasText: "Block" }).waitFor();
  await bob.click("#block");
  await bob.locator('#block[aria-pressed="true"]', { hasText: "Unblock" }).waitFor();
  await bob.reload({ waitUntil: "domcontentloaded" });
  await bob.locator('#chat[data-link="up"]').waitFor();
  await bob.locator('.room[data-room="@alice"][aria-current]').waitFor();
  await bob.locator('#block[aria-pressed="true"]', { hasText: "Unblock" }).waitFor();

  // Unread counts agree across bob's devices: dave writes twice in kitchen, both of bob's
  // pages count 2; bob reads kitchen on his phone and the laptop's count goes too, also
  // after the laptop reloads; one more message counts 1 on a page bob opens afresh,
  // which never saw it.
  await bob.click('.room[data-room="general"]');
  const laptop = await open(browser, "bob", "general", LAPTOP);
  as("dave", "chat/r/kitchen", "soup is ready");
  as("dave", "chat/r/kitchen", "bring bowls");
  for (const page of [bob, laptop]) await unread(page, "kitchen").filter({ hasText: /^2$/ }).waitFor();
  await bob.click('.room[data-room="kitchen"]');
  await bob.locator("#messages .message .text", { hasText: "bring bowls" }).waitFor();
  await unread(laptop, "kitchen").waitFor({ state: "detached" });
  await laptop.reload({ waitUntil: "domcontentloaded" });
  await laptop.locator('#chat[data-link="up"]').waitFor();
  await laptop.locator('.room[data-room="kitchen"]').waitFor();
  check((await unread(laptop, "kitchen").count()) === 0, "kitchen unread on the laptop after bob read it on his phone");
  await bob.click('.room[data-room="general"]');
  await bob.locator('.room[data-room="general"][aria-current]').waitFor();
  as("dave", "chat/r/kitchen", "last call");
  for (const page of [bob, laptop]) await unread(page, "kitchen").filter({ hasText: /^1$/ }).waitFor();
  const fresh = await open(browser, "bob", "general", PHONE);
  await fresh.locator('.room[data-room="kitchen"]').waitFor();
  check((await unread(fresh, "kitchen").textContent()) === "1", "a fresh page's kitchen count");
  check((await unread(fresh, "@alice").count()) === 0, "a read conversation counted unread on a fresh page");
  check(/^\(1\) /.test(await fresh.title()), `a fresh page's title: ${await fresh.title()}`);
  await fresh.screenshot({ path: join(OUT, "chat-presence-fresh-unread.png") });
  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("OK");
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e.message}`);
  if (problems.length) console.error(problems.join("\n"));
} finally {
  if (browser) await browser.close();
}
process.exit(failed ? 1 : 0);
