/**
 * The examples in examples/ run as a user runs them: each is started as its own process (through
 * tsx, on port 0), driven over real WebSockets and HTTP, then stopped with SIGTERM, which must close
 * its clients with 1001 and exit 0.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { connect, refusedStatus, type TestClient } from "./helpers/client.js";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Generous: a cold tsx start on a loaded 2-core machine can take several seconds. */
const READY_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 15_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running example process and the URLs its ready line named. */
interface RunningExample {
  child: ChildProcess;
  /** The WebSocket endpoint, `ws://127.0.0.1:PORT/ws`. */
  ws: string;
  /** The HTTP base URL, for the examples that serve routes too. */
  http: string | undefined;
  /** Settles when the process has exited. */
  exited: Promise<Exit>;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr(): string;
}

const running = new Set<RunningExample>();

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return once(child, "exit").then(([code, signal]) => ({ code, signal }) as Exit);
}

/** Runs `node --import tsx examples/<name>.ts ...args` and resolves with its output. */
function runExample(name: string, args: string[], env: Record<string, string>): ChildProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, HOST: "127.0.0.1", ...env };
  // The test runner's marker would make a child that imported node:test report to us.
  delete childEnv.NODE_TEST_CONTEXT;
  return spawn(process.execPath, ["--import", "tsx", `examples/${name}.ts`, ...args], {
    cwd: root,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Starts an example on port 0 and waits for its one ready line. */
async function startExample(name: string, env: Record<string, string> = {}): Promise<RunningExample> {
  const child = runExample(name, ["0"], env);
  const exited = exitOf(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const example: RunningExample = { child, ws: "", http: undefined, exited, stderr: () => stderr };
  running.add(example);

  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: no ready line within ${READY_TIMEOUT_MS} ms; stderr: ${stderr}`)),
      READY_TIMEOUT_MS,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (text) => {
      if (!text.includes("listening on")) return;
      clearTimeout(timer);
      resolve(text);
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${JSON.stringify(exit)}) before it was ready; stderr: ${stderr}`));
    });
  });
  const ws = /ws:\/\/[^\s)]+/.exec(line)?.[0];
  assert.ok(ws, `ready line names a ws:// URL: ${line}`);
  assert.match(ws, /^ws:\/\/127\.0\.0\.1:[1-9]\d*\/ws$/, "the real port, not 0");
  example.ws = ws;
  example.http = /http:\/\/[^\s)]+/.exec(line)?.[0];
  return example;
}

/**
 * Sends SIGTERM and checks the graceful shutdown a user relies on: the connected client is closed
 * with 1001 and the process exits 0 on its own (nothing left holding the event loop).
 */
async function stopGracefully(example: RunningExample, client: TestClient): Promise<void> {
  example.child.kill("SIGTERM");
  assert.equal((await client.closed).code, 1001, "clients are told the server is going away");
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    example.exited,
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), EXIT_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  assert.deepEqual(exit, { code: 0, signal: null }, `exits 0 after SIGTERM; stderr: ${example.stderr()}`);
  running.delete(example);
}

after(async () => {
  // A failed test may leave its example running: end it so the suite never hangs.
  for (const example of running) {
    example.child.kill("SIGKILL");
    await example.exited;
  }
});

async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe("examples", () => {
  it("quick-start: custom handler, welcome on connect, built-ins, graceful stop", async () => {
    const ex = await startExample("quick-start");
    const c = await connect(ex.ws);
    const welcome = await c.next("welcome");
    assert.equal(typeof welcome.data.client_id, "string");

    const hello = await c.request("hello", "Ada", "h1");
    assert.deepEqual(hello, { type: "hello", data: { greeting: "hello, Ada", client_id: welcome.data.client_id }, id: "h1" });
    const status = await c.request("status");
    assert.equal(status.data.client_id, welcome.data.client_id);
    await stopGracefully(ex, c);
  });

  it("chat: names from metadata, room broadcast, schema errors keep the connection", async () => {
    const ex = await startExample("chat");
    const ada = await connect(ex.ws);
    const bob = await connect(ex.ws);
    const outsider = await connect(ex.ws);

    assert.deepEqual(await ada.request("set_name", { name: "  Ada " }, "n1"), {
      type: "name_set",
      data: { name: "Ada" },
      id: "n1",
    });
    await ada.request("join_room", { room: "lobby" });
    await bob.request("join_room", { room: "lobby" });

    // The request with an id gets its ack; both members, sender included, get the copy without id.
    assert.deepEqual(await ada.request("chat", { room: "lobby", text: "hi all" }, "c1"), { type: "ack", id: "c1" });
    for (const member of [ada, bob]) {
      const chat = await member.next("chat");
      assert.equal(chat.id, undefined);
      assert.deepEqual({ ...chat.data, at: undefined }, { room: "lobby", from: "Ada", text: "hi all", at: undefined });
      assert.ok(!Number.isNaN(Date.parse(chat.data.at)));
    }

    // No name set: "anonymous".
    bob.send({ type: "chat", data: { room: "lobby", text: "who am I" } });
    assert.equal((await ada.next("chat")).data.from, "anonymous");

    // Too long: validation error naming the field, and the connection stays usable.
    const tooLong = await ada.request("chat", { room: "lobby", text: "x".repeat(501) });
    assert.equal(tooLong.type, "error");
    assert.equal(tooLong.data.code, "validation_failed");
    assert.match(tooLong.data.message, /^data\.text: /);
    const missing = await ada.request("chat", { text: "no room" });
    assert.equal(missing.data.code, "validation_failed");
    assert.match(missing.data.message, /^data\.room: /);

    // Chatting in a room one has not joined is refused.
    const notMember = await outsider.request("chat", { room: "lobby", text: "let me in" });
    assert.equal(notMember.data.code, "not_in_room");

    // The outsider received no chat: a copy would have been written before this reply.
    assert.equal((await outsider.request("ping")).type, "pong");
    assert.deepEqual(
      outsider.received.filter((m) => m.type === "chat"),
      [],
    );

    await bob.close();
    await outsider.close();
    await stopGracefully(ex, ada);
  });

  it("handlers: valibot schema, async, errors without internals, replaced built-in, binary, events", async () => {
    const ex = await startExample("handlers");
    const a = await connect(ex.ws);
    const { data: welcome } = await a.next("welcome");
    assert.deepEqual((await a.next("online")).data, { count: 1 });

    assert.deepEqual(await a.request("add", { a: 2, b: 3 }, "s1"), { type: "sum", data: 5, id: "s1" });
    const invalid = await a.request("add", { a: 2, b: "3" });
    assert.equal(invalid.data.code, "validation_failed");
    assert.match(invalid.data.message, /^data\.b: /);

    assert.deepEqual((await a.request("lookup", "answer")).data, { key: "answer", value: 42 });
    assert.deepEqual((await a.request("lookup", "question")).data, { code: "not_found", message: 'no entry named "question"' });
    const crash = await a.request("crash");
    assert.equal(crash.data.code, "handler_error");
    assert.doesNotMatch(JSON.stringify(crash), /hunter2|at .*\.ts/, "no internals reach the client");

    assert.equal((await a.request("join_room", { room: "private" })).data.code, "forbidden_room");
    assert.deepEqual((await a.request("join_room", { room: "public:news" }, "j")).data, { room: "public:news" });
    assert.deepEqual((await a.request("status")).data.rooms, ["public:news"]);

    a.ws.send(Buffer.from([1, 2, 3]));
    assert.deepEqual((await a.next("binary_received")).data, { bytes: 3 });

    // A second client: everyone hears the new count; a whisper reaches only its addressee.
    const b = await connect(ex.ws);
    assert.deepEqual((await a.next("online")).data, { count: 2 });
    assert.deepEqual((await b.request("whisper", { to: welcome.client_id, text: "psst" }, "w")).data, {
      to: welcome.client_id,
    });
    assert.deepEqual((await a.next("whisper")).data, { from: (await b.request("status")).data.client_id, text: "psst" });
    await b.close();
    assert.deepEqual((await a.next("online")).data, { count: 1, reason: "client_closed" });

    await stopGracefully(ex, a);
  });

  it("auth: HMAC tokens by query or header, user_id in status, 401 otherwise", async () => {
    const secret = "test-secret";
    const ex = await startExample("auth", { AUTH_SECRET: secret });
    // The token format the example documents, computed independently here.
    const token = `ada.${createHmac("sha256", secret).update("ada").digest("base64url")}`;

    assert.equal(await refusedStatus(ex.ws), 401, "no token");
    assert.equal(await refusedStatus(`${ex.ws}?token=ada.${"A".repeat(43)}`), 401, "bad signature");
    assert.equal(await refusedStatus(`${ex.ws}?token=${token.replace("ada.", "bob.")}`), 401, "signature of another user");

    const byQuery = await connect(`${ex.ws}?token=${encodeURIComponent(token)}`);
    assert.equal((await byQuery.request("status")).data.user_id, "ada");
    const byHeader = await connect(ex.ws, { headers: { Authorization: `Bearer ${token}` } });
    assert.deepEqual((await byHeader.request("whoami")).data, { user_id: "ada", from: "127.0.0.1" });
    await byHeader.close();

    // `auth.ts mint <user>` prints the same token.
    const mint = runExample("auth", ["mint", "ada"], { AUTH_SECRET: secret });
    let minted = "";
    mint.stdout!.setEncoding("utf8").on("data", (chunk: string) => (minted += chunk));
    assert.deepEqual(await exitOf(mint), { code: 0, signal: null });
    assert.equal(minted.trim(), token);

    await stopGracefully(ex, byQuery);
  });

  for (const name of ["express", "fastify"]) {
    it(`${name}: POST /notify reaches the room over the shared http.Server`, async () => {
      const ex = await startExample(name);
      assert.ok(ex.http, "the ready line names the HTTP URL");
      const member = await connect(ex.ws);
      const other = await connect(ex.ws);
      await member.request("join_room", { room: "lobby" });

      assert.deepEqual(await postJson(`${ex.http}/notify`, { room: "lobby", text: "deployed" }), {
        status: 200,
        json: { delivered: 1 },
      });
      assert.deepEqual(await member.next("notification"), { type: "notification", data: { text: "deployed" } });
      assert.equal((await other.request("ping")).type, "pong");
      assert.deepEqual(
        other.received.filter((m) => m.type === "notification"),
        [],
        "not a member",
      );

      assert.equal((await postJson(`${ex.http}/notify`, { room: "lobby" })).status, 400, "invalid body");
      const rooms = await fetch(`${ex.http}/rooms/lobby`);
      const { data: status } = await member.request("status");
      assert.deepEqual(await rooms.json(), { room: "lobby", members: [status.client_id] });

      // Upgrades for other paths are not conduit's.
      assert.equal(await refusedStatus(`${ex.ws.replace(/\/ws$/, "/elsewhere")}`), 400);

      await other.close();
      await stopGracefully(ex, member);
    });
  }

  it("plain-http: server.handler() routes upgrades beside the app's own routes", async () => {
    const ex = await startExample("plain-http");
    const health = await fetch(`${ex.http}/healthz`);
    assert.equal(health.status, 200);
    await health.text();
    assert.equal(await refusedStatus(`${ex.ws.replace(/\/ws$/, "/elsewhere")}`), 404);
    const c = await connect(ex.ws);
    assert.deepEqual(await c.request("echo", { n: 1 }, "e1"), { type: "echo", data: { original: { n: 1 } }, id: "e1" });
    await stopGracefully(ex, c);
  });
});
