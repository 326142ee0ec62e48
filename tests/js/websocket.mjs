// MQTT.js (the client most browser apps use) against Outpost's WebSocket listener, with an
// MQTT.js TCP client on the same broker: QoS 0/1/2 both ways, a retained message, a large
// payload and (MQTT 5) user properties.
//
// Usage: node websocket.mjs TCP_PORT WS_PORT VERSION   (VERSION is 4 for 3.1.1 or 5)
// Prints OK or FAIL: <reason>; exits 0 or 1.
import mqtt from "mqtt";

const [tcpPort, wsPort, version] = process.argv.slice(2).map(Number);
const TIMEOUT_MS = 5000;

function fail(message) {
  console.log(`FAIL: ${message}`);
  process.exit(1);
}

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function connect(url, clientId) {
  const client = mqtt.connect(url, { clientId, protocolVersion: version, reconnectPeriod: 0 });
  await within(
    new Promise((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
    }),
    `${clientId} connect`,
  );
  client.received = [];
  client.waiting = [];
  client.on("message", (topic, payload, packet) => {
    client.received.push({ topic, payload, packet });
    client.waiting.splice(0).forEach((wake) => wake());
  });
  return client;
}

async function nextMessage(client, what) {
  while (client.received.length === 0) {
    await within(new Promise((wake) => client.waiting.push(wake)), what);
  }
  return client.received.shift();
}

async function expectMessage(client, topic, payload, qos, what) {
  const m = await nextMessage(client, what);
  if (m.topic !== topic || !m.payload.equals(Buffer.from(payload)) || m.packet.qos !== qos) {
    fail(`${what}: got ${m.topic}, ${m.payload.length} bytes, QoS ${m.packet.qos}`);
  }
  return m;
}

async function main() {
  const wsUrl = `ws://127.0.0.1:${wsPort}/mqtt`;
  const tcpUrl = `mqtt://127.0.0.1:${tcpPort}`;
  const wsSub = await connect(wsUrl, `js-ws-sub-${version}`);
  const granted = await within(wsSub.subscribeAsync("js/to-ws/#", { qos: 2 }), "subscribe");
  if (granted[0].qos !== 2) fail(`granted ${JSON.stringify(granted)}`);
  const tcpSub = await connect(tcpUrl, `js-tcp-sub-${version}`);
  await within(tcpSub.subscribeAsync("js/to-tcp/#", { qos: 2 }), "tcp subscribe");
  const tcpPub = await connect(tcpUrl, `js-tcp-pub-${version}`);
  const wsPub = await connect(wsUrl, `js-ws-pub-${version}`);

  for (const qos of [0, 1, 2]) {
    await within(tcpPub.publishAsync(`js/to-ws/q${qos}`, `tcp to ws ${qos}`, { qos }), "publish");
    await expectMessage(wsSub, `js/to-ws/q${qos}`, `tcp to ws ${qos}`, qos, `TCP → WebSocket QoS ${qos}`);
    await within(wsPub.publishAsync(`js/to-tcp/q${qos}`, `ws to tcp ${qos}`, { qos }), "ws publish");
    await expectMessage(tcpSub, `js/to-tcp/q${qos}`, `ws to tcp ${qos}`, qos, `WebSocket → TCP QoS ${qos}`);
  }

  const big = Buffer.alloc(300_000, 7);
  await within(wsPub.publishAsync("js/to-ws/big", big, { qos: 1 }), "big publish");
  await expectMessage(wsSub, "js/to-ws/big", big, 1, "300 KB over WebSocket both ways");

  await within(wsPub.publishAsync("js/retained", "kept", { qos: 1, retain: true }), "retain");
  const late = await connect(wsUrl, `js-ws-late-${version}`);
  await within(late.subscribeAsync("js/retained", { qos: 1 }), "late subscribe");
  const kept = await expectMessage(late, "js/retained", "kept", 1, "retained message");
  if (!kept.packet.retain) fail("the retained message lost its retain flag");

  if (version === 5) {
    const properties = { userProperties: { from: "mqtt.js" }, contentType: "text/plain" };
    await within(wsPub.publishAsync("js/to-tcp/props", "p", { qos: 1, properties }), "props");
    const m = await expectMessage(tcpSub, "js/to-tcp/props", "p", 1, "MQTT 5 properties");
    const got = m.packet.properties || {};
    if (got.contentType !== "text/plain" || got.userProperties?.from !== "mqtt.js") {
      fail(`properties lost: ${JSON.stringify(got)}`);
    }
  }

  await Promise.all([wsSub, tcpSub, tcpPub, wsPub, late].map((c) => c.endAsync()));
  console.log("OK");
}

main().catch((e) => fail(e.message));
