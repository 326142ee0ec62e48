// assets/mqtt-ws.js (the chat page's MQTT client) in headless Chromium against Outpost's
// WebSocket listener, with an MQTT.js TCP client on the same broker: QoS 0 and 1 both
// ways, a 200 KB message (many WebSocket frames), keep alive over a quiet spell, a refused
// login, and the close event when the broker goes away.
//
// Usage: node browser_client.mjs TCP_PORT WS_PORT USER PASSWORD   (an account the broker has)
// Prints OK or FAIL: <reason>; exits 0 or 1.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import mqtt from "mqtt";
import { launch, fail, within } from "./browser.mjs";

const [tcpPort, wsPort] = process.argv.slice(2, 4).map(Number);
const [user, password] = process.argv.slice(4, 6);
const client = readFileSync(new URL("../../assets/mqtt-ws.js", import.meta.url), "utf8");

async function main() {
  const browser = await launch();
  const page = await browser.newPage();
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  // The page comes from the broker's own host, as the console's pages do: the WebSocket
  // listener admits browsers only from there (or from ws_allowed_origins).
  const site = createServer((_, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>mqtt-ws test</title>");
  });
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  await page.goto(`http://localhost:${site.address().port}/`);
  site.close();
  await page.addScriptTag({ content: client });

  const tcp = mqtt.connect(`mqtt://127.0.0.1:${tcpPort}`, { clientId: "bc-tcp", protocolVersion: 4, reconnectPeriod: 0 });
  await within(new Promise((ok, no) => { tcp.once("connect", ok); tcp.once("error", no); }), "tcp connect");
  const tcpGot = [];
  tcp.on("message", (topic, payload, packet) => tcpGot.push([topic, payload.toString(), packet.qos]));
  await tcp.subscribeAsync("bc/up/#", { qos: 1 });

  // Connect in the page, subscribe, and collect what arrives.
  const granted = await within(page.evaluate(async (url, username, password) => {
    window.got = [];
    window.closedWith = null;
    window.c = new MqttWs({ url, clientId: "bc-page", username, password, keepAlive: 2 });
    c.onmessage = (topic, bytes, { qos }) => got.push([topic, bytes.length, new TextDecoder().decode(bytes.subarray(0, 32)), qos]);
    c.onclose = (reason) => { window.closedWith = reason; };
    await c.connect();
    return c.subscribe(["bc/down/#", 1], ["bc/q0", 0]);
  }, `ws://127.0.0.1:${wsPort}/mqtt`, user, password), "page connect and subscribe");
  if (JSON.stringify(granted) !== "[1,0]") fail(`granted ${JSON.stringify(granted)}`);

  await tcp.publishAsync("bc/down/one", "héllo", { qos: 1 });
  await tcp.publishAsync("bc/q0", "zero", { qos: 0 });
  const big = Buffer.alloc(200_000, 0x61);
  await tcp.publishAsync("bc/down/big", big, { qos: 1 });
  const got = await within(page.waitForFunction(() => got.length >= 3 && got, { polling: 50 }), "page receives");
  const seen = await got.jsonValue();
  const want = [["bc/down/one", 6, "héllo", 1], ["bc/q0", 4, "zero", 0], ["bc/down/big", 200000, "a".repeat(32), 1]];
  if (JSON.stringify(seen) !== JSON.stringify(want)) fail(`page got ${JSON.stringify(seen)}`);

  await within(page.evaluate(async () => {
    await c.publish("bc/up/q1", "from the page", { qos: 1 });
    await c.publish("bc/up/q0", "fire and forget");
  }), "page publishes");
  await within((async () => { while (tcpGot.length < 2) await new Promise((r) => setTimeout(r, 20)); })(), "tcp receives");
  const up = JSON.stringify(tcpGot.sort());
  if (up !== JSON.stringify([["bc/up/q0", "fire and forget", 0], ["bc/up/q1", "from the page", 1]])) fail(`tcp got ${up}`);

  // Keep alive 2 s: a quiet 5 s must not cost the connection (the broker allows 3 s).
  await new Promise((r) => setTimeout(r, 5000));
  const alive = await page.evaluate(async () => { await c.publish("bc/up/alive", "still here", { qos: 1 }); return closedWith; });
  if (alive !== null) fail(`closed during a quiet spell: ${alive}`);

  // A refused login rejects connect() with the CONNACK's reason.
  const refused = await within(page.evaluate(async (url, username) => {
    const bad = new MqttWs({ url, clientId: "bc-bad", username, password: "wrong password" });
    try { await bad.connect(); return "accepted"; } catch (e) { return e.message; }
  }, `ws://127.0.0.1:${wsPort}/mqtt`, user), "refused login");
  if (refused !== "bad user name or password") fail(`refused login: ${refused}`);

  await tcp.endAsync();
  await browser.close();
  console.log("OK");
}

main().catch((e) => fail(e.stack || e.message));
