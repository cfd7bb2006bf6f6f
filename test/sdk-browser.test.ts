/**
 * The browser build of the client SDK (`dist/client/index.js`, loaded as plain ES modules by a page in
 * Debian's Chromium) against a library server that emulates the server's side of token expiry
 * (helpers/token-server.ts): a refresh before the token expires, and a reconnect with a new token
 * after close 4001. `npm run build` must have run.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { StateChange } from "../src/client/index.js";
import { haveChromium, launchChromium, requireChromium } from "./helpers/chromium.js";
import { type PageServer, startPageServer } from "./helpers/page-server.js";
import { emulateTokenExpiry, type TokenEmulation } from "./helpers/token-server.js";

/** Generous: the machine is small and shared. */
const WAIT = 15_000;

/** What a page's client is built with: the token lifetimes it hands out, in order (the last repeats). */
interface PageClientOptions {
  lifetimes: number[];
  refreshBefore: number | false;
}

/**
 * Opens a blank page of `site`, imports the SDK from `/sdk/index.js` and starts a client whose token
 * function makes unsigned JWT-shaped tokens; its state changes collect in `window.states`.
 */
async function pageClient(t: TestContext, browser: Browser, site: PageServer, options: PageClientOptions): Promise<Page> {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  t.after(() => assert.deepEqual(errors, [], "the page threw"));
  await page.goto(`${site.http}blank`);
  // The constructor reports "connecting" before a listener can be added: the states start at "open".
  // A string, not a function: the test runner's transpiler would add helpers the page does not have.
  await page.evaluate(`(async () => {
    const { ConduitClient } = await import("/sdk/index.js");
    const { lifetimes, refreshBefore } = ${JSON.stringify(options)};
    const part = (value) => btoa(JSON.stringify(value)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    let calls = 0;
    const token = () => {
      const ms = lifetimes[Math.min(calls++, lifetimes.length - 1)];
      return part({ alg: "none" }) + "." + part({ sub: "ada", exp: (Date.now() + ms) / 1000 }) + ".unsigned";
    };
    window.states = [];
    window.ids = [];
    const client = new ConduitClient("/ws", { token, refreshBefore: refreshBefore ?? false, reconnect: { initialDelay: 50, maxDelay: 500 } });
    client.onState((change) => {
      window.states.push(change);
      if (change.state === "open") window.ids.push(client.id);
    });
    window.client = client;
  })()`);
  return page;
}

/** The page's state changes so far. */
function statesOf(page: Page): Promise<StateChange[]> {
  return page.evaluate(() => (window as unknown as { states: StateChange[] }).states);
}

describe("client SDK in Chromium: token expiry", () => {
  let browser: Browser | undefined;
  before(async () => {
    if (haveChromium) browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  /** A page server with the emulation; `cap` bounds the expiry it grants (ms). */
  async function site(t: TestContext, cap?: number): Promise<{ site: PageServer; emulation: TokenEmulation }> {
    let emulation!: TokenEmulation;
    const started = await startPageServer({}, (server) => (emulation = emulateTokenExpiry(server, cap)));
    t.after(() => started.close());
    return { site: started, emulation };
  }

  it("refreshes a 3 s token before it expires, twice, on the same connection", async (t) => {
    if (!requireChromium(t)) return;
    const { site: s, emulation } = await site(t, 3000);
    const page = await pageClient(t, browser!, s, { lifetimes: [3000, 3_600_000], refreshBefore: 2000 });
    const [first, second] = await emulation.refreshCount(2);
    for (const refresh of [first!, second!]) {
      assert.ok(refresh.accepted);
      assert.ok(refresh.at < refresh.expiredAt, `refreshed ${refresh.expiredAt - refresh.at} ms before the expiry`);
      assert.notEqual(refresh.token, emulation.handshakes[0]);
    }
    assert.equal(first!.clientId, second!.clientId);
    assert.equal(emulation.handshakes.length, 1, "never reconnected");
    assert.deepEqual(
      (await statesOf(page)).map((change) => change.state),
      ["open"],
    );
  });

  it("after close 4001 gets a new token and reconnects", async (t) => {
    if (!requireChromium(t)) return;
    const { site: s, emulation } = await site(t);
    // The first token lives half a second and is not refreshed: the server closes with 4001.
    const page = await pageClient(t, browser!, s, { lifetimes: [500, 60_000], refreshBefore: false });
    await page.waitForFunction(() => (window as unknown as { ids: unknown[] }).ids.length === 2);
    const states = await statesOf(page);
    assert.deepEqual(
      states.map(({ state, code, reason }) => ({ state, code, reason })),
      [
        { state: "open", code: undefined, reason: undefined },
        { state: "reconnecting", code: 4001, reason: "token_expired" },
        { state: "open", code: undefined, reason: undefined },
      ],
    );
    assert.equal(emulation.handshakes.length, 2);
    assert.notEqual(emulation.handshakes[0], emulation.handshakes[1], "a new token for the reconnect");
    assert.deepEqual(emulation.refreshes, []);
    const ids = await page.evaluate(() => (window as unknown as { ids: string[] }).ids);
    assert.equal(new Set(ids).size, 2, "the client's id changed with the connection");
  });
});
