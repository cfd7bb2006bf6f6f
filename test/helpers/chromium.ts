/**
 * Debian's Chromium for the browser tests, driven by playwright-core (never a downloaded browser):
 * where it is, how it is started on this machine, and what a test does when it is missing.
 */
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";
import { type Browser, chromium } from "playwright-core";

/** Debian's package installs it here. */
export const CHROMIUM = "/usr/bin/chromium";

/** Headless, and nothing that reaches for the network this machine does not have. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Whether Chromium is installed. */
export const haveChromium = existsSync(CHROMIUM);

/** Fails in CI, skips loudly elsewhere, when there is no Chromium to drive. */
export function requireChromium(t: TestContext): boolean {
  if (haveChromium) return true;
  if (process.env.CI === "true") throw new Error(`${CHROMIUM} is missing; CI must provide Debian's chromium`);
  t.skip(`${CHROMIUM} is missing`);
  return false;
}

/** Starts Chromium the way every browser test does. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
