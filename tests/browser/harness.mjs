// What the admin page tests share: their environment, a check, the browser they open and
// what counts as a problem on a page.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** An environment variable, or `fallback`; a missing one without fallback is an error. */
export function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`missing environment variable ${name}`);
  return value;
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/**
 * Debian's chromium (or $CHROMIUM), headless, at desktop size, in a fresh profile that the
 * caller removes at the end; `out` (the screenshot folder) is made if missing. `options`
 * adds to the context's (ignoreHTTPSErrors, say).
 */
export async function openDesktop(out, wait, options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "outpost-chromium-"));
  mkdirSync(out, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    ...options,
  });
  context.setDefaultTimeout(wait);
  return { context, profile };
}

/**
 * Adds to `problems` every console warning or error (a CSP violation included) but a failed
 * load (error pages such as 401 are expected on refusals), and every page error.
 */
export function watchProblems(page, problems) {
  page.on("console", (m) => {
    if (m.type() === "warning" || (m.type() === "error" && !m.text().startsWith("Failed to load resource"))) {
      problems.push(`console ${m.type()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
}
