/**
 * The demo chat page end to end: the real standalone server (`node dist/cli/main.js`, so `npm run
 * build` must have run, as `npm test` does) and Debian's Chromium driven by playwright-core. The page
 * loads the browser SDK from the server's `/sdk/index.js`, so this also proves that the compiled SDK
 * runs in a browser as plain ES modules.
 *
 * Screenshots go to `test-artifacts/` (gitignored).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { after, before, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import type { Browser, Page } from "playwright-core";
import { ConduitClient } from "../src/client/node.js";
import { CHROMIUM, haveChromium, launchChromium, requireChromium } from "./helpers/chromium.js";
import { startPageServer } from "./helpers/page-server.js";

const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
/** Generous: the machine is small and shared. */
const WAIT = 15_000;

if (!haveChromium && process.env.CI !== "true") {
  process.stderr.write(`\n*** browser tests SKIPPED: ${CHROMIUM} is missing (apt-get install chromium) ***\n\n`);
}

/** A running `conduit-ws` process. */
interface Cli {
  /** `http://127.0.0.1:PORT/` */
  http: string;
  /** `ws://127.0.0.1:PORT/ws` */
  ws: string;
  stop(): Promise<void>;
}

/** Starts the standalone server (on a free port unless given one) and waits for its ready line. */
async function startCli(args: string[] = [], port = 0): Promise<Cli> {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`);
  // The server reads its configuration from the environment too: start it from a clean one.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("CONDUIT_") && !["PORT", "HOST", "REDIS_URL"].includes(key)),
  );
  const child = spawn(process.execPath, [CLI, "--port", String(port), "--host", "127.0.0.1", "--log-level", "warn", ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(() => reject(new Error(`no ready line within ${WAIT} ms; stderr: ${stderr}`)), WAIT);
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /conduit-ws listening on (\S+)/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`conduit-ws exited before it was ready: ${stderr}`));
      });
    });
    return { http: `http://${new URL(url).host}/`, ws: url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The URL of every WebSocket each page opened, in order. */
const socketsOf = new WeakMap<Page, string[]>();

/** A fresh browser context and page (its own sessionStorage), closed when the test ends. */
async function openPage(t: TestContext, browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const sockets: string[] = [];
  socketsOf.set(page, sockets);
  page.on("websocket", (socket) => sockets.push(socket.url()));
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  t.after(() => assert.deepEqual(errors, [], "the page threw"));
  await page.goto(url);
  return page;
}

/** Waits until the page has read GET /config (or given up on it): its Join button is enabled then. */
async function configured(page: Page): Promise<void> {
  await page.locator("#join:enabled").waitFor();
}

async function join(page: Page, name: string, room: string, token?: string): Promise<void> {
  await page.fill("#name", name);
  await page.fill("#room", room);
  if (token !== undefined) await page.fill("#token", token);
  await page.click("#join");
}

/** Waits until the state indicator says connected and the member list has `count` entries. */
async function connectedWith(page: Page, count: number): Promise<void> {
  await page.locator('#state[data-state="open"]').waitFor();
  await page.locator("#member-count", { hasText: new RegExp(`^${count}$`) }).waitFor();
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.click("#send");
}

async function sees(page: Page, text: string): Promise<void> {
  await page.locator("#messages li", { hasText: text }).first().waitFor();
}

async function memberNames(page: Page): Promise<string[]> {
  return (await page.locator("#members li").allTextContents()).map((s) => s.trim()).sort();
}

describe("demo chat page in Chromium, served by the conduit-ws CLI", () => {
  let browser: Browser | undefined;
  let cli: Cli | undefined;
  before(async () => {
    if (!haveChromium) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    cli = await startCli();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await cli?.stop();
  });

  it("two pages join one room, see each other in the member list and each other's messages", async (t) => {
    if (!requireChromium(t)) return;
    const ada = await openPage(t, browser!, cli!.http);
    const grace = await openPage(t, browser!, cli!.http);
    assert.equal(await ada.title(), "conduit-ws chat");
    await configured(ada);
    assert.equal(await ada.locator("#token-row").isHidden(), true, "no token asked when the server needs none");

    await join(ada, "Ada", "lobby");
    await connectedWith(ada, 1);
    await join(grace, "Grace", "lobby");
    await connectedWith(grace, 2);
    await connectedWith(ada, 2);
    // Names travel in each page's "hello" broadcast; wait until both lists show both.
    await ada.locator("#members li", { hasText: "Grace" }).waitFor();
    await grace.locator("#members li", { hasText: "Ada" }).waitFor();
    assert.deepEqual(await memberNames(ada), ["Ada (you)", "Grace"]);
    assert.deepEqual(await memberNames(grace), ["Ada", "Grace (you)"]);

    await say(ada, "Hello from Ada. Is the analytical engine ready?");
    await sees(grace, "Hello from Ada");
    await say(grace, "Hi Ada! Compiling the first program now.");
    await sees(ada, "Compiling the first program now.");
    await say(ada, "Wonderful — send me the results.");
    await sees(grace, "send me the results");
    await sees(ada, "send me the results");
    assert.equal(await ada.locator("#messages li.mine").count(), 2, "own messages are marked");
    assert.equal(await ada.locator("#state").textContent(), "connected");

    const file = `${ARTIFACTS}demo-chat.png`;
    await ada.screenshot({ path: file });
    assert.ok(statSync(file).size > 10_000, "the screenshot was written");
  });

  it("a reload reconnects to the same room and receives again", async (t) => {
    if (!requireChromium(t)) return;
    const carol = await openPage(t, browser!, cli!.http);
    await join(carol, "Carol", "reload-room");
    await connectedWith(carol, 1);
    // The other member is the Node SDK (a second page would cost a renderer process).
    const dave = new ConduitClient<{ chat: { name: string; text: string } }>(cli!.ws);
    t.after(() => dave.close());
    const heard: string[] = [];
    let onHeard: () => void = () => {};
    dave.on("chat", (data) => {
      heard.push(data.text);
      onHeard();
    });
    await dave.join("reload-room");
    await connectedWith(carol, 2);

    await carol.reload();
    // Back without typing anything: the tab remembers its name and room.
    await connectedWith(carol, 2);
    assert.equal(await carol.locator("#where").textContent(), "#reload-room as Carol");

    dave.send("broadcast", { room: "reload-room", type: "chat", payload: { name: "Dave", text: "Carol, are you back?" } });
    await sees(carol, "Carol, are you back?");
    const daveHears = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Dave heard only ${JSON.stringify(heard)}`)), WAIT);
      onHeard = () => {
        if (!heard.includes("Yes, after a reload.")) return;
        clearTimeout(timer);
        resolve();
      };
    });
    await say(carol, "Yes, after a reload.");
    await sees(carol, "Yes, after a reload.");
    await daveHears;
    await carol.screenshot({ path: `${ARTIFACTS}demo-after-reload.png` });
  });

  it("shows the connection state while the server restarts, and comes back into the room by itself", async (t) => {
    if (!requireChromium(t)) return;
    const first = await startCli();
    t.after(() => first.stop());
    const page = await openPage(t, browser!, first.http);
    await join(page, "Frank", "restart-room");
    await connectedWith(page, 1);

    await first.stop();
    await page.locator('#state[data-state="reconnecting"]').waitFor();
    await page.locator("#messages li.system", { hasText: "connection lost" }).waitFor();

    const second = await startCli([], Number(new URL(first.http).port));
    t.after(() => second.stop());
    await page.locator("#messages li.system", { hasText: "reconnected" }).waitFor();
    await connectedWith(page, 1);
    // The room was joined again on the new server: a broadcast to it comes back.
    await say(page, "still here");
    await sees(page, "still here");
  });

  it("without a token requirement, a refused connect says it is retrying and never asks for a token", async (t) => {
    if (!requireChromium(t)) return;
    // ?ws= overrides the path from /config; nothing listens there, so every handshake is refused (400).
    const page = await openPage(t, browser!, `${cli!.http}?ws=/nowhere`);
    await join(page, "Gus", "lost");
    await page.locator("#join-error", { hasText: "Cannot connect to the server; retrying" }).waitFor();
    // A second attempt comes after the page has asked /config about the first failure.
    await page.locator("#state", { hasText: "attempt 2" }).waitFor();
    assert.equal(await page.locator("#token-row").isHidden(), true, "no token prompt when the server needs none");
    assert.equal(await page.locator("#join-error").textContent(), "Cannot connect to the server; retrying…");
    const sockets = socketsOf.get(page)!;
    assert.ok(sockets.length >= 2, "it keeps trying");
    assert.ok(
      sockets.every((url) => new URL(url).pathname === "/nowhere"),
      sockets.join(", "),
    );
  });

  it("a room the server refuses shows the server's reason under the room field; another room can then be joined", async (t) => {
    if (!requireChromium(t)) return;
    // The library's server behind the same routes as the CLI's, with a join_room that refuses one room.
    const site = await startPageServer({}, (server) => {
      server.registerHandler("join_room", (ctx, client, message) => {
        const room = (message.data as { room?: unknown } | undefined)?.room;
        if (room === "vault") return ctx.replyError("forbidden", "the vault is for staff only");
        if (typeof room !== "string") return ctx.replyError("invalid_room", "a room name is a string");
        const outcome = client.joinRoom(room);
        if (!outcome.ok) return ctx.replyError(outcome.code, outcome.reason);
        ctx.reply("room_joined", { room });
      });
    });
    t.after(() => site.close());
    const page = await openPage(t, browser!, site.http);
    await configured(page);
    await join(page, "Ivy", "vault");
    const refused = page.locator("#room-error");
    await refused.waitFor();
    assert.equal(await refused.textContent(), "You cannot join #vault: the vault is for staff only (forbidden).");
    assert.equal(await page.locator("#room").getAttribute("aria-invalid"), "true");
    assert.equal(await page.locator("#join-form").isVisible(), true, "back at the form, not in an empty chat");
    assert.equal(await page.locator("#state").getAttribute("data-state"), "closed");
    await page.screenshot({ path: `${ARTIFACTS}demo-room-refused.png` });

    await page.fill("#room", "lobby");
    assert.equal(await refused.isHidden(), true, "editing the room clears the message");
    await page.click("#join");
    await connectedWith(page, 1);
    await say(page, "in the lobby instead");
    await sees(page, "in the lobby instead");
  });

  it("with --jwt-secret the page shows the token field before connecting, then joins with a token as that user", async (t) => {
    if (!requireChromium(t)) return;
    // At least 32 bytes: the CLI refuses shorter HS256 secrets.
    const secret = "browser-test-secret-of-at-least-32-bytes";
    // A custom path too: the page must learn it from /config, without ?ws=.
    const secured = await startCli(["--jwt-secret", secret, "--path", "/secure"]);
    t.after(() => secured.stop());
    const sign = (key: string): Promise<string> =>
      new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("erin-42")
        .setIssuedAt()
        .setExpirationTime("10m")
        .sign(new TextEncoder().encode(key));
    const token = await sign(secret);

    const page = await openPage(t, browser!, secured.http);
    await configured(page);
    // Known from /config, before any connection was tried.
    assert.equal(await page.locator("#token-row").isVisible(), true, "the token field is shown up front");
    assert.equal(await page.locator("#token-hint").isVisible(), true);
    assert.deepEqual(socketsOf.get(page), [], "no connection attempted yet");

    // A token signed with another secret is refused: the page stops retrying and says why.
    await join(page, "Erin", "secure", await sign("not-the-server-secret"));
    await page.locator("#join-error", { hasText: "token may be wrong" }).waitFor();
    assert.equal(await page.locator("#state").getAttribute("data-state"), "closed");

    await page.fill("#token", token);
    await page.click("#join");
    await connectedWith(page, 1);
    assert.ok(
      socketsOf.get(page)!.every((url) => new URL(url).pathname === "/secure"),
      "the path came from /config",
    );
    assert.deepEqual(await memberNames(page), ["Erin (you) · erin-42"], "the user id comes from the token's sub");
    await say(page, "signed in");
    await sees(page, "signed in");
  });
});
