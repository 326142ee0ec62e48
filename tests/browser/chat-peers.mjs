// The MQTT peers of the chat page test, over plain TCP: mosquitto_pub and mosquitto_sub
// (MQTT 3.1.1) and the paho-mqtt script tests/python/chat_peer.py (MQTT 5), each logged in
// as its own chat user.

import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const WAIT = 20000;

/// Resolves once test() holds; throws after WAIT, or at once when stop() says why.
export async function eventually(what, test, stop = () => null) {
  const end = Date.now() + WAIT;
  while (!test()) {
    const why = stop();
    if (why) throw new Error(`${what}: ${why}`);
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/// mosquitto_pub at QoS 1: one message, or with `lines` one message per line.
export function publish(port, user, password, topic, message, lines = false) {
  const args = ["-h", "127.0.0.1", "-p", port, "-u", user, "-P", password, "-q", "1", "-t", topic];
  const result = spawnSync("mosquitto_pub", lines ? [...args, "-l"] : [...args, "-m", message], {
    encoding: "utf8",
    input: lines ? message : undefined,
    timeout: WAIT,
  });
  if (result.status !== 0) throw new Error(`mosquitto_pub failed: ${result.stderr}`);
}

/// A mosquitto_sub peer in one room; `output` is everything it printed (`-v`: topic, then
/// the payload).
export function listen(port, user, password, room) {
  const child = spawn(
    "mosquitto_sub",
    ["-h", "127.0.0.1", "-p", port, "-u", user, "-P", password, "-q", "1", "-t", `chat/r/${room}`, "-v"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.output = "";
  child.stdout.on("data", (d) => (child.output += d));
  child.stderr.on("data", (d) => (child.output += d));
  return child;
}

/// The paho-mqtt peer: `events` are the JSON lines it printed (room events and answers),
/// `log` everything it printed. `ask` sends a command and resolves with the first new
/// event that `answer` accepts.
export function pahoPeer(port, user, password) {
  const script = fileURLToPath(new URL("../python/chat_peer.py", import.meta.url));
  const child = spawn("python3", [script, port, user, password], { stdio: ["pipe", "pipe", "pipe"] });
  const peer = { events: [], log: "", exit: null };
  createInterface({ input: child.stdout }).on("line", (line) => {
    peer.log += `${line}\n`;
    if (line.startsWith("{")) peer.events.push(JSON.parse(line));
  });
  child.stderr.on("data", (d) => (peer.log += d));
  child.on("exit", (code) => (peer.exit = code));
  const gone = () => (peer.exit === null ? null : `the paho peer exited (${peer.exit}):\n${peer.log}`);
  peer.find = (what, test, from = 0) =>
    eventually(`paho peer: ${what}`, () => peer.events.slice(from).some(test), gone).then(() =>
      peer.events.slice(from).find(test),
    );
  peer.ask = (command, answer) => {
    const from = peer.events.length;
    child.stdin.write(`${JSON.stringify(command)}\n`);
    return peer.find(JSON.stringify(command), answer, from);
  };
  /// Resolves once the peer has exited with OK after its last command.
  peer.finished = () =>
    eventually("the paho peer exits", () => peer.exit !== null).then(() => {
      if (peer.exit !== 0 || !peer.log.trimEnd().endsWith("OK")) throw new Error(`paho peer failed:\n${peer.log}`);
    });
  peer.kill = () => child.kill();
  return peer;
}
