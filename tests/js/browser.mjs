// Shared by the Chromium scripts: starts the system's headless Chromium through
// puppeteer-core (no browser download), and the fail/timeout helpers.
import puppeteer from "puppeteer-core";

export const TIMEOUT_MS = 10000;

export function fail(message) {
  console.log(`FAIL: ${message}`);
  process.exit(1);
}

export function within(promise, what, ms = TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/// Chromium from $CHROMIUM, else the Debian package's.
export function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}
