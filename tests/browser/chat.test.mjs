// The /chat page in a real browser: Debian's chromium, headless, driven by playwright-core
// against the real outpost binary that tests/browser.rs started. Two people (two browser
// contexts, both phone-sized) log in through the console and open /chat (which logs in to
// the broker over WebSocket with a single-use token from POST /api/chat/token). They chat
// with each other and with two peers over TCP: carol, a paho-mqtt script speaking MQTT 5
// (tests/python/chat_peer.py), and dave, mosquitto_pub and mosquitto_sub. On the way:
// markup in a message stays text; likes and unlikes show their count on both pages; a
// message in another room marks it unread; the WebSocket listener is stopped mid-chat,
// messages typed meanwhile wait as "sending…" and go out once after the pages reconnect
// and catch up; a room made with the new-room form is joined from the other page; a
// refused message says why and can be retried or discarded; a room of 60 messages pages
// in with the "Older messages" button and by scrolling. At the end every observer — both
// pages, carol live and from the store's history, dave's mosquitto_sub — has exactly the
// same messages, each once, in the same order. Screenshots go to $OUT. Exits non-zero with
// a message on the first failure.
//
// Environment: BASE (http://127.0.0.1:PORT of the console), MQTT_PORT, OUT (screenshot
// folder), CHROMIUM (default /usr/bin/chromium). Users (made by tests/browser.rs): alice,
// bob, carol and dave, and the admin root, each with the password "<name>-password".

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { WAIT, eventually, listen, pahoPeer, publish } from "./chat-peers.mjs";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`missing environment variable ${name}`);
  return value;
};
const BASE = env("BASE");
const MQTT_PORT = env("MQTT_PORT");
const OUT = env("OUT");
const password = (user) => `${user}-password`;
const dave = (room, text) => publish(MQTT_PORT, "dave", password("dave"), `chat/r/${room}`, text);

function check(condition, message) {
  if (!condition) throw new Error(message);
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

const problems = [];
// While the WebSocket listener is stopped, Chromium logs the token endpoint's 503 and
// failed WebSocket connections: expected then, and only then.
let outage = false;
const expected = (m) =>
  outage &&
  m.type() === "error" &&
  ((m.text().startsWith("Failed to load resource") && m.location().url.endsWith("/api/chat/token")) ||
    /^WebSocket connection to 'ws:\/\/[^']+\/mqtt' failed/.test(m.text()));

/// A page's MQTT link runs through Playwright's WebSocket route, which forwards every
/// frame between the page and the broker unless told to lose some: `cut` drops all the
/// broker sends, `drop` the page's PUBLISH holding that text (`dropped` says it came).
/// `hold` (which stays set across connections) keeps back, in order, everything the page
/// sends from its first frame holding that text on, until `release()`. `close()` ends the
/// current connection on both sides, as a lost link would. Each new connection starts
/// clean otherwise.
async function relay(page) {
  const link = { cut: false, drop: null, dropped: false, hold: null, held: [], current: null };
  await page.routeWebSocket(/\/mqtt$/, (ws) => {
    const server = ws.connectToServer();
    Object.assign(link, { cut: false, drop: null, dropped: false, held: [], current: { ws, server } });
    ws.onMessage((m) => {
      if (link.drop && typeof m !== "string" && m[0] >> 4 === 3 && m.includes(link.drop)) link.dropped = true;
      else if (link.held.length || (link.hold && typeof m !== "string" && m.includes(link.hold))) link.held.push(m);
      else server.send(m);
    });
    server.onMessage((m) => link.cut || ws.send(m));
  });
  link.release = () => {
    const held = link.held;
    Object.assign(link, { hold: null, held: [] });
    for (const m of held) link.current.server.send(m);
  };
  link.close = async () => {
    const { ws, server } = link.current;
    await ws.close({ code: 4000, reason: "link lost in the test" });
    await server.close();
  };
  return link;
}

async function open(browser, user, options, route = false) {
  const context = await browser.newContext({ ...options, permissions: ["notifications"] });
  context.setDefaultTimeout(WAIT);
  // Notifications the page raises are recorded; `window.hideTab(true)` makes the tab hidden.
  await context.addInitScript(() => {
    const Real = window.Notification;
    window.shown = [];
    function Recorded(title, options) {
      window.shown.push({ title, body: options && options.body });
      try {
        return new Real(title, options);
      } catch {
        return {};
      }
    }
    // What the context granted, as the Permissions API reports it: a headless-shell build
    // (Ubuntu's npm Chromium 133) grants it there but keeps `Notification.permission` at
    // "denied".
    let permission = Real.permission;
    navigator.permissions.query({ name: "notifications" }).then((status) => {
      const follow = () => (permission = status.state === "prompt" ? "default" : status.state);
      follow();
      status.onchange = follow;
    });
    Object.defineProperty(Recorded, "permission", { get: () => permission });
    Recorded.requestPermission = () => Real.requestPermission();
    window.Notification = Recorded;
    let hidden = false;
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    window.hideTab = (h) => {
      hidden = h;
      document.dispatchEvent(new Event("visibilitychange"));
    };
  });
  const page = await context.newPage();
  if (route) page.link = await relay(page);
  page.on("console", (m) => {
    if ((m.type() === "warning" || m.type() === "error") && !expected(m)) problems.push(`${user} console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${user} page error: ${e.message}`));
  await page.goto(`${BASE}/login`);
  await page.fill("#username", user);
  await page.fill("#password", password(user));
  await page.click("button[type=submit]");
  // A user who is not an admin lands on the chat, which opens its first room and puts it
  // in the address; once it has, the address is pointed at #general (the page follows it)
  // and the test reloads it, for a page that opened #general afresh. (Going there before
  // the page picked its first room raced with the page writing the address: the reload
  // then opened the first room, not general.)
  await page.waitForURL(/\/chat(#.*)?$/);
  const shown = page.locator(".room[aria-current]");
  await shown.waitFor();
  if ((await shown.getAttribute("data-room")) !== "general") await page.goto(`${BASE}/chat#general`);
  await page.locator('.room[data-room="general"][aria-current]').waitFor();
  await page.reload();
  await page.locator('.room[data-room="general"][aria-current]').waitFor();
  await page.locator('#chat[data-link="up"]').waitFor();
  return page;
}

/// The delivered messages shown, oldest first (the outbox's pending ones not included).
const texts = (page) => page.locator("#messages .message:not(.pending) .text").allTextContents();
const senders = (page) => page.locator("#messages .message:not(.pending) .sender").allTextContents();
const message = (page, text) =>
  page.locator("#messages .message:not(.pending)").filter({ has: page.locator(".text", { hasText: text }) });
const pending = (page) => page.locator("#messages .message.pending");
const likes = (page, text, n) => message(page, text).locator(".like", { hasText: new RegExp(`^[♥♡] ${n}$`) });
const pressed = (page, text) => message(page, text).locator(".like").getAttribute("aria-pressed");

/// The message's like control lies inside the visible part of the list (not cut off).
async function fullyVisible(page, text) {
  const list = await page.locator("#messages").boundingBox();
  const like = await message(page, text).locator(".like").boundingBox();
  return like.y >= list.y && like.y + like.height <= list.y + list.height + 0.5;
}
const title = (page) => page.locator("#room-title").textContent();

async function send(page, text) {
  await page.fill("#text", text);
  await page.click("#send button");
  await page.waitForFunction(() => document.getElementById("text").value === "");
}

async function openRoom(page, name) {
  await page.fill("#new-room-name", name);
  await page.click("#new-room button");
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

/// What dave's mosquitto_sub printed for the room, as [sender, text] pairs.
const heard = (sub, room) =>
  [...sub.output.matchAll(new RegExp(`^chat/r/${room} \\d+ \\d+ (\\S+) (.*)$`, "gm"))].map((m) => [m[1], m[2]]);

mkdirSync(OUT, { recursive: true });
const carol = pahoPeer(MQTT_PORT, "carol", password("carol"));
const sub = listen(MQTT_PORT, "dave", password("dave"), "general");
let browser = null;
let failed = false;
try {
  await carol.find("logged in", (e) => e.ready === "carol");
  // mosquitto_sub has subscribed once it hears the first message; carol is in every room.
  dave("general", "welcome to general");
  await eventually("mosquitto_sub hears the welcome", () => sub.output.includes("welcome to general"));
  // Sixty messages in room archive, for history paging.
  const early = Array.from({ length: 60 }, (_, i) => `early ${i + 1}`);
  publish(MQTT_PORT, "dave", password("dave"), "chat/r/archive", `${early.join("\n")}\n`, true);
  await carol.find("the archive", (e) => e.room === "archive" && e.text === "early 60");

  browser = await chromium.launch({
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
  });
  // Two phones, as on the site's Wi-Fi: an Android-sized one and an iPhone-sized one.
  const alice = await open(browser, "alice", { viewport: { width: 412, height: 915 }, isMobile: true, hasTouch: true }, true);
  const bob = await open(browser, "bob", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }, true);
  const pages = [[alice, "alice"], [bob, "bob"]];

  // History: the message sent before either page opened.
  for (const [page, who] of pages) {
    await message(page, "welcome to general").waitFor();
    check((await title(page)) === "general", `${who}'s room title`);
  }

  // Live, both ways, and to both peers.
  await send(alice, "hello from alice");
  await message(bob, "hello from alice").waitFor();
  await carol.find("hears alice", (e) => e.room === "general" && e.sender === "alice" && e.text === "hello from alice");
  await eventually("mosquitto_sub hears alice", () => /chat\/r\/general \d+ \d+ alice hello from alice/.test(sub.output));
  const evil = `<img src=x onerror="document.title='pwned'"> & <b>bold</b>`;
  await send(bob, evil);
  await alice.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .message .text")].some((p) => p.textContent === t),
    evil,
  );
  check((await alice.locator("#messages img, #messages b").count()) === 0, "a message's markup reached the DOM");
  check((await alice.title()) !== "pwned", "a message's script ran");
  await carol.find("hears bob", (e) => e.sender === "bob" && e.text === evil);

  // The peers speak over TCP; both pages show it.
  dave("general", "dave here, over plain MQTT");
  await carol.ask({ say: "general", text: "carol here, over MQTT 5 with paho" }, (e) => e.said);
  for (const [page] of pages) {
    await message(page, "dave here, over plain MQTT").waitFor();
    await message(page, "carol here, over MQTT 5 with paho").waitFor();
  }

  // Likes: bob's, then carol's, then bob's again, which takes his back; both pages and
  // carol see the count go 1, 2, 1.
  const hello = (await carol.find("alice's id", (e) => e.text === "hello from alice")).id;
  await message(bob, "hello from alice").locator(".like").click();
  for (const [page] of pages) await likes(page, "hello from alice", 1).waitFor();
  check((await pressed(bob, "hello from alice")) === "true", "bob's own like is not shown pressed");
  check((await pressed(alice, "hello from alice")) === "false", "alice sees bob's like as hers");
  check(
    (await message(alice, "hello from alice").locator(".like").getAttribute("title")) === "liked by bob",
    "the likers' names on hover",
  );
  check(
    (await message(alice, "dave here, over plain MQTT").locator(".like").textContent()) === "♡",
    "an unliked message's like control is not compact",
  );
  const liked = await carol.ask({ like: "hello from alice" }, (e) => e.liked);
  check(liked.reply === "ok liked", `carol's like: ${liked.reply}`);
  for (const [page] of pages) await likes(page, "hello from alice", 2).waitFor();
  await message(bob, "hello from alice").locator(".like").click();
  for (const [page] of pages) await likes(page, "hello from alice", 1).waitFor();
  check((await pressed(bob, "hello from alice")) === "false", "bob's taken-back like still pressed");
  const counts = () => carol.events.filter((e) => e.like === hello).map((e) => e.likes);
  await eventually("carol sees the unlike", () => counts().length === 3);
  check(same(counts(), [1, 2, 1]), `carol saw like counts ${JSON.stringify(counts())}`);

  // A message in another room marks it unread on bob's page.
  dave("kitchen", "soup is ready");
  await bob.locator('.room[data-room="kitchen"] .unread', { hasText: /^1$/ }).waitFor();

  // The WebSocket listener stops mid-chat (from the admin API): both pages notice. The
  // peers keep talking over TCP, and what alice and bob send meanwhile waits on their
  // pages as "sending…". Once the listener is back both pages reconnect with a fresh
  // token, catch up on what they missed, then send what waited: each message once.
  const admin = await api("/login", null, null, { username: "root", password: password("root") });
  const cookie = admin.headers.get("set-cookie").split(";")[0];
  const { csrf } = await admin.json();
  const listeners = await (await fetch(`${BASE}/api/listeners`, { headers: { Cookie: cookie } })).json();
  const ws = listeners.find((l) => l.kind === "websocket");
  check(ws, `no websocket listener in ${JSON.stringify(listeners)}`);
  outage = true;
  await api(`/listeners/${ws.id}/stop`, cookie, csrf);
  for (const [page, who] of pages) {
    await page.locator('#chat[data-link="down"]').waitFor();
    const banner = await page.locator("#status").textContent();
    check(/^offline, retrying in \d+ s$/.test(banner), `${who}'s offline banner: ${banner}`);
    check(await page.locator("#reconnect").isVisible(), `${who} has no Retry button`);
  }
  const missed = ["while you were away 1", "while you were away 2"];
  for (const text of missed) dave("general", text);
  await carol.ask({ say: "general", text: "carol: the pages are down" }, (e) => e.said);
  const offline = { alice: ["typed offline 1", "typed offline 2"], bob: ["bob typed offline"] };
  for (const [page, who] of pages) {
    for (const text of offline[who]) await send(page, text);
    const marks = await pending(page).locator(".state").allTextContents();
    check(same(marks, offline[who].map(() => "sending…")), `${who}'s pending marks: ${JSON.stringify(marks)}`);
    const waiting = await pending(page).locator(".text").allTextContents();
    check(same(waiting, offline[who]), `${who}'s pending texts: ${JSON.stringify(waiting)}`);
  }
  await alice.screenshot({ path: join(OUT, "chat-alice-offline.png") });
  // Long enough that the first retry finds the listener down and backs off.
  await alice.waitForTimeout(2500);
  // What bob typed goes out once alice's page is back, and reaches her live before she
  // asks for her catch-up (her page's requests from `blocks` on are held until then): the
  // catch-up must still bring what was said while the pages were down, not only what
  // came after bob's message.
  alice.link.hold = "chat/x/blocks";
  bob.link.hold = offline.bob[0];
  await api(`/listeners/${ws.id}/start`, cookie, csrf);
  await alice.locator('#chat[data-link="up"]').waitFor();
  bob.link.release();
  await message(alice, offline.bob[0]).waitFor();
  alice.link.release();
  for (const [page, who] of pages) {
    await page.locator('#chat[data-link="up"]').waitFor();
    for (const text of [...missed, "carol: the pages are down", ...offline.alice, ...offline.bob]) {
      await message(page, text).waitFor();
    }
  }
  for (const [page, who] of pages) {
    await page.waitForFunction(() => document.querySelectorAll("#messages .message.pending").length === 0);
    check((await pending(page).count()) === 0, `${who} still shows pending messages`);
  }
  for (const text of [...offline.alice, ...offline.bob]) await carol.find(`hears ${text}`, (e) => e.text === text);
  outage = false;
  await send(bob, "back online");
  await message(alice, "back online").waitFor();
  await carol.find("hears back online", (e) => e.text === "back online");

  // A link lost with a message in flight. First the broker stores it but its PUBACK and
  // the room's copy never reach alice's page: after reconnecting, the page finds it in
  // the catch-up and does not send it again. Then the PUBLISH itself is lost: the
  // catch-up does not have it, so the page sends it again, once.
  alice.link.cut = true;
  await send(alice, "sent, ack lost");
  await carol.find("hears the message whose ack was lost", (e) => e.text === "sent, ack lost");
  check(same(await pending(alice).locator(".text").allTextContents(), ["sent, ack lost"]), "the unacked message is not pending");
  await alice.link.close();
  await message(alice, "sent, ack lost").waitFor();
  await alice.locator('#chat[data-link="up"]').waitFor();
  alice.link.drop = "sent, publish lost";
  await send(alice, "sent, publish lost");
  await eventually("the page's PUBLISH reaches the relay", () => alice.link.dropped);
  await alice.link.close();
  await message(alice, "sent, publish lost").waitFor();
  await carol.find("hears the message whose PUBLISH was lost", (e) => e.text === "sent, publish lost");
  await message(bob, "sent, publish lost").waitFor();
  await alice.waitForFunction(() => document.querySelectorAll("#messages .message.pending").length === 0);

  // general, as everyone must have it. The three messages typed offline went out after
  // the reconnects, alice's and bob's in whichever order the pages came back, alice's
  // own two in the order she typed them.
  const lost = ["sent, ack lost", "sent, publish lost"];
  const before = [
    "welcome to general", "hello from alice", evil, "dave here, over plain MQTT",
    "carol here, over MQTT 5 with paho", ...missed, "carol: the pages are down",
  ];
  const shown = await texts(alice);
  const tail = shown.slice(before.length, before.length + 3);
  check(
    same(shown.slice(0, before.length), before) &&
      same([...tail].sort(), [...offline.alice, ...offline.bob].sort()) &&
      same(tail.filter((t) => offline.alice.includes(t)), offline.alice) &&
      same(shown.slice(before.length + 3), ["back online", ...lost]),
    `alice shows ${JSON.stringify(shown)}`,
  );
  const general = (await senders(alice)).map((s, i) => [s, shown[i]]);
  const want = {
    alice: ["hello from alice", ...offline.alice, ...lost], bob: [evil, ...offline.bob, "back online"],
    carol: ["carol here, over MQTT 5 with paho", "carol: the pages are down"],
  };
  for (const [s, t] of general) {
    check(s === "dave" ? !Object.values(want).flat().includes(t) : want[s].includes(t), `${t} sent by ${s}`);
  }
  check(same(await texts(bob), shown), `bob shows ${JSON.stringify(await texts(bob))}`);
  check(same(await senders(bob), await senders(alice)), "bob's senders differ from alice's");
  await eventually("mosquitto_sub hears the last", () => sub.output.includes("alice sent, publish lost"));
  check(same(heard(sub, "general"), general), `mosquitto_sub heard ${JSON.stringify(heard(sub, "general"))}`);
  await bob.screenshot({ path: join(OUT, "chat-bob-phone.png") });

  // A new room from the form: a bad name is refused and changes nothing; "porch" opens
  // empty, alice's first message makes it, bob's page lists it as unread, and bob joins
  // it from the form too (it shows its history); carol is in it already.
  await openRoom(alice, "bad name!");
  check(!(await alice.locator("#new-room-name").evaluate((i) => i.validity.valid)), "a bad room name passed");
  check((await title(alice)) === "general", "a bad room name switched rooms");
  check((await alice.locator('.room[data-room="bad name!"]').count()) === 0, "a bad room name was listed");
  await openRoom(alice, "porch");
  await alice.locator('.room[data-room="porch"][aria-current]').waitFor();
  check((await title(alice)) === "porch", "alice's title in the new room");
  check((await alice.locator("#messages .message").count()) === 0, "a new room shows messages");
  check(await alice.locator("#older").isHidden(), "a new room offers older messages");
  await send(alice, "anyone on the porch?");
  await message(alice, "anyone on the porch?").waitFor();
  await bob.locator('.room[data-room="porch"] .unread', { hasText: /^1$/ }).waitFor();
  await openRoom(bob, "porch");
  await message(bob, "anyone on the porch?").waitFor();
  check((await title(bob)) === "porch", "bob's title in the joined room");
  await send(bob, "on my way");
  await carol.ask({ say: "porch", text: "carol is here too" }, (e) => e.said);
  const porch = ["anyone on the porch?", "on my way", "carol is here too"];
  for (const [page, who] of pages) {
    await message(page, "carol is here too").waitFor();
    check(same(await texts(page), porch), `${who}'s porch: ${JSON.stringify(await texts(page))}`);
  }
  await bob.screenshot({ path: join(OUT, "chat-bob-porch.png") });
  // The form opens a room that exists with its history: archive, which bob's page has
  // heard nothing from.
  await openRoom(bob, "archive");
  await message(bob, "early 60").waitFor();
  check(same(await texts(bob), early.slice(40)), `bob's archive from the form: ${JSON.stringify(await texts(bob))}`);
  check(await fullyVisible(bob, "early 60"), "the newest message of a long room opens cut off");

  // A message the service refuses (600 two-byte letters, over chat_max_text's 1000 bytes)
  // says why instead of "sending…"; Retry sends it again (refused again), Discard drops it.
  const long = "é".repeat(600);
  await send(alice, long);
  const refusal = "not sent: the message is longer than 1000 bytes";
  const refused = pending(alice).filter({ has: alice.locator(".state", { hasText: refusal }) });
  await refused.waitFor();
  await refused.evaluate((li) => {
    window.marks = [];
    const log = () => window.marks.push(li.querySelector(".state").textContent);
    new MutationObserver(log).observe(li, { subtree: true, childList: true, characterData: true });
  });
  await refused.locator(".retry").click();
  await alice.waitForFunction((r) => window.marks.slice(window.marks.indexOf("sending…") + 1).includes(r) && window.marks.includes("sending…"), refusal);
  check((await pending(alice).count()) === 1, "the refused message shows more than once");
  check(same(await pending(alice).locator(".state").allTextContents(), [refusal]), "the retried message's mark");
  await alice.screenshot({ path: join(OUT, "chat-alice-refused.png") });
  await refused.locator(".discard").click();
  check((await pending(alice).count()) === 0, "discard left the message");
  check(same(await texts(alice), porch), "the refused message was delivered");

  // archive: the newest page first; "Older messages" brings the page before it, then
  // scrolling to the top pages in the rest, until all sixty are there, in order, and the
  // button goes.
  await alice.click('.room[data-room="archive"]');
  await message(alice, "early 60").waitFor();
  check((await title(alice)) === "archive", "alice's room title after the switch");
  check(same(await texts(alice), early.slice(40)), `archive's first page: ${JSON.stringify(await texts(alice))}`);
  await alice.locator("#older").waitFor();
  check(await fullyVisible(alice, "early 60"), "the newest message of archive opens cut off");
  // The button belongs to the room shown: not in porch, which has no older messages.
  await alice.locator("#older").waitFor();
  await alice.click('.room[data-room="porch"]');
  await alice.locator("#older").waitFor({ state: "hidden" });
  await alice.click('.room[data-room="archive"]');
  await alice.locator("#older").click();
  await message(alice, "early 21").waitFor();
  check(same(await texts(alice), early.slice(20)), `archive after the button: ${JSON.stringify(await texts(alice))}`);
  for (let i = 0; i < 20 && !(await texts(alice)).includes("early 1"); i++) {
    await alice.locator("#messages").evaluate((l) => {
      l.scrollTop = 0;
      l.dispatchEvent(new Event("scroll"));
    });
    await alice.waitForTimeout(200);
  }
  check(same(await texts(alice), early), `archive after paging: ${JSON.stringify(await texts(alice))}`);
  await alice.locator("#older").waitFor({ state: "hidden" });
  // The same page on a laptop's screen, for the desktop layout.
  await alice.setViewportSize({ width: 1280, height: 800 });
  await alice.screenshot({ path: join(OUT, "chat-alice-desktop.png") });
  await alice.click('.room[data-room="general"]');
  await message(alice, "back online").waitFor();
  check(await alice.locator("#older").isHidden(), "general offers older messages it does not have");

  // Presence: in general, both pages show the other online.
  await alice.locator('#members li.online[data-name="bob"]').waitFor();
  await bob.click('.room[data-room="general"]');
  await bob.locator('#members li.online[data-name="alice"]').waitFor();

  // A direct message: bob's tab is hidden; alice writes to @bob from the form. bob's page
  // lists the conversation as unread, counts it in the title and raises a notification
  // (permission granted in the test's browser context); opened, it shows the message.
  // Nobody else has it: carol's and dave's clients are checked below to have only rooms.
  await bob.evaluate(() => window.hideTab(true));
  await openRoom(alice, "@bob");
  await alice.locator('.room[data-room="@bob"][aria-current]').waitFor();
  await send(alice, "psst, the key is under the mat");
  await message(alice, "psst, the key is under the mat").waitFor();
  await bob.locator('.room[data-room="@alice"] .unread', { hasText: /^1$/ }).waitFor();
  await bob.waitForFunction(() => /^\(\d+\) /.test(document.title));
  await bob.waitForFunction(() => window.shown.some((n) => n.body === "psst, the key is under the mat" && n.title === "alice"));
  // An @mention in a room notifies too; a muted room does not.
  await alice.click('.room[data-room="general"]');
  await send(alice, "@bob can you bring the nets?");
  await bob.waitForFunction(() => window.shown.some((n) => n.body === "@bob can you bring the nets?"));
  await bob.evaluate(() => window.hideTab(false));
  await bob.click('.room[data-room="general"]');
  await bob.click("#mute");
  check((await bob.locator("#mute").getAttribute("aria-pressed")) === "true", "mute not pressed");
  await bob.evaluate(() => window.hideTab(true));
  await send(alice, "@bob muted rooms stay quiet");
  await message(bob, "@bob muted rooms stay quiet").waitFor();
  await bob.waitForTimeout(300);
  check(!(await bob.evaluate(() => window.shown.some((n) => n.body === "@bob muted rooms stay quiet"))), "a muted room notified");
  await bob.evaluate(() => window.hideTab(false));
  await bob.click('.room[data-room="@alice"]');
  await message(bob, "psst, the key is under the mat").waitFor();
  check((await title(bob)) === "alice (direct)", `bob's direct room title: ${await title(bob)}`);
  await send(bob, "thanks!");
  await alice.locator('.room[data-room="@bob"] .unread', { hasText: /^1$/ }).waitFor();
  await alice.click('.room[data-room="@bob"]');
  await message(alice, "thanks!").waitFor();
  await bob.screenshot({ path: join(OUT, "chat-bob-direct.png") });
  // bob blocks alice: her next direct message is refused on her page, and never reaches his.
  await bob.click("#block");
  await bob.locator('#block[aria-pressed="true"]').waitFor();
  await send(alice, "are you ignoring me?");
  await pending(alice).filter({ has: alice.locator(".state", { hasText: "not sent: this user does not take your direct messages" }) }).waitFor();
  await pending(alice).locator(".discard").click();
  await bob.waitForTimeout(300);
  check((await message(bob, "are you ignoring me?").count()) === 0, "a blocked direct message arrived");
  check(!sub.output.includes("psst"), "mosquitto_sub (dave, every room) heard the direct message");
  check(!carol.log.includes("psst"), "carol heard the direct message");

  // carol checks what she heard, room by room, against her own history requests.
  await carol.ask(
    {
      check: {
        general: [...general, ["alice", "@bob can you bring the nets?"], ["alice", "@bob muted rooms stay quiet"]],
        kitchen: [["dave", "soup is ready"]],
        porch: [["alice", porch[0]], ["bob", porch[1]], ["carol", porch[2]]],
        archive: early.map((t) => ["dave", t]),
      },
    },
    (e) => e.checked,
  );
  await carol.finished();
  check(problems.length === 0, `browser problems:\n${problems.join("\n")}`);
  console.log("OK");
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e.message}`);
  if (problems.length) console.error(problems.join("\n"));
  console.error(`mosquitto_sub saw:\n${sub.output}`);
  console.error(`the paho peer printed:\n${carol.log}`);
} finally {
  sub.kill();
  carol.kill();
  if (browser) await browser.close();
}
process.exit(failed ? 1 : 0);
