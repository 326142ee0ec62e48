// The console over HTTPS and the chat over wss in a real browser: Debian's chromium,
// headless, against the real outpost binary that tests/browser.rs started with
// `web_tls = "on"` and a generated self-signed certificate (accepted here with
// ignoreHTTPSErrors, as a person does after comparing the fingerprint). The admin logs in
// (the session cookie is Secure), sees the certificate's fingerprint on the admin page,
// opens /chat, which connects to the broker with wss:// (never ws://), and a message sent
// to a new room there comes back through the broker. Exits non-zero with a message on the first failure.
//
// Environment: BASE (https://127.0.0.1:PORT of the console), FINGERPRINT (from the log),
// ADMIN_USER, ADMIN_PASSWORD, OUT (screenshot folder), CHROMIUM (default /usr/bin/chromium).

import { rmSync } from "node:fs";
import { join } from "node:path";
import { check, env, openDesktop, watchProblems } from "./harness.mjs";

const BASE = env("BASE");
const FINGERPRINT = env("FINGERPRINT");
const OUT = env("OUT");
const WAIT = 15000;

check(BASE.startsWith("https://"), `BASE is not https: ${BASE}`);
const { context, profile } = await openDesktop(OUT, WAIT, { ignoreHTTPSErrors: true });
const problems = [];
try {
  const page = await context.newPage();
  watchProblems(page, problems);
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  await page.goto(`${BASE}/login`);
  await page.fill("#username", env("ADMIN_USER"));
  await page.fill("#password", env("ADMIN_PASSWORD"));
  await page.click("button[type=submit]");
  await page.waitForURL(/\/admin/);
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === "outpost_session");
  check(session, `no session cookie: ${JSON.stringify(cookies)}`);
  check(session.secure, "the session cookie is not Secure over HTTPS");

  const shown = await page.locator("#certificate code").textContent();
  check(shown === FINGERPRINT, `admin page shows ${shown}, the log said ${FINGERPRINT}`);
  await page.screenshot({ path: join(OUT, "https-admin.png") });

  await page.goto(`${BASE}/chat#general`);
  await page.locator('#chat[data-link="up"]').waitFor();
  check(sockets.length > 0, "the chat page opened no WebSocket");
  check(
    sockets.every((url) => url.startsWith("wss://")),
    `the chat page over HTTPS opened ${sockets.join(", ")}`,
  );
  await page.fill("#new-room-name", "secure");
  await page.click("#new-room button");
  const text = `over wss ${Date.now()}`;
  await page.fill("#text", text);
  await page.click("#send button");
  await page
    .locator("#messages .message:not(.pending) .text", { hasText: text })
    .waitFor();
  await page.screenshot({ path: join(OUT, "https-chat.png") });
  check(problems.length === 0, `problems on the pages:\n${problems.join("\n")}`);
  console.log(`https console and wss chat ok (${sockets[0]})`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
