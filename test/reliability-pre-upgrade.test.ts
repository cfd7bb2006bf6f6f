/**
 * Reliability, sockets before their upgrade: a plain HTTP request that announces a large body and
 * trickles it is closed within the handshake timeout on the servers conduit-ws creates (`listen()` and
 * the standalone server); sockets not yet upgraded count toward `maxConnections`, so a flood of them
 * gets upgrades refused with 503 instead of taking every file descriptor; node drops sockets past
 * `maxConnections` plus a headroom at accept; each kind of refusal is logged once per interval.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/cli/config.js";
import { serve, type RunningServer } from "../src/cli/serve.js";
import type { Logger } from "../src/index.js";
import { OPEN_FILE_RESERVE, SOCKET_HEADROOM } from "../src/upgrade/socket-limit.js";
import { connect, refusedStatus } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { within } from "./helpers/wire.js";

/** A logger that keeps every line as `message {fields}`. */
function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const capture = (fields: Record<string, unknown>, message: string): void => {
    lines.push(`${message} ${JSON.stringify(fields)}`);
  };
  return { logger: { info: capture, warn: capture, error: capture, debug: capture }, lines };
}

/** A raw client socket, what it received, and when its connection ended. */
interface Peer {
  socket: Socket;
  /** Every byte received so far, as latin1 text. */
  received(): string;
  /** Resolves with the milliseconds from the connection to its end. */
  closed: Promise<number>;
}

/** Opens a TCP connection; resolves once connected. Reads everything, so it sees the end. */
function open(port: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const socket = netConnect({ host: "127.0.0.1", port });
    let text = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => {});
    const closed = new Promise<number>((done) => socket.once("close", () => done(Date.now() - startedAt)));
    socket.once("connect", () => resolve({ socket, received: () => text, closed }));
    socket.once("error", reject);
  });
}

/** Resolves once `peer` has received a whole response head; rejects if the connection ends first. */
function responseHead(peer: Peer): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const text = peer.received();
      if (!text.includes("\r\n\r\n")) return;
      peer.socket.off("data", check);
      resolve(text.slice(0, text.indexOf("\r\n")));
    };
    peer.socket.on("data", check);
    peer.closed.then(() => reject(new Error(`closed before a response: ${JSON.stringify(peer.received())}`)));
    check();
  });
}

/**
 * A plain HTTP request that announces 100 MB and sends its body a byte every 100 ms (at most 3,000
 * bytes, so the loop is bounded). Resolves once the server has answered it, so the server holds it.
 */
async function trickle(port: number, path = "/"): Promise<Peer> {
  const peer = await open(port);
  peer.socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n`);
  let sent = 0;
  const timer = setInterval(() => {
    if (peer.socket.writable && sent++ < 3000) peer.socket.write("x");
  }, 100);
  peer.socket.once("close", () => clearInterval(timer));
  await responseHead(peer);
  return peer;
}

function lineCount(lines: readonly string[], message: string): number {
  return lines.filter((line) => line.startsWith(message)).length;
}

describe("pre-upgrade: a trickled plain HTTP body on the server listen() creates", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ handshakeTimeout: 1000 });
  });
  after(() => t.close());

  it("50 requests announcing 100 MB and trickling it are closed within the handshake timeout, while a client connects and is served", async () => {
    const peers = await Promise.all(Array.from({ length: 50 }, () => trickle(t.port)));
    const real = await connect(t.url);
    assert.equal((await real.request("echo", "served")).type, "echo");
    // Node's default request timeout would hold them for five minutes.
    const held = await within(Promise.all(peers.map((peer) => peer.closed)), 10_000, "every trickling request to be closed");
    console.log(`# trickling requests held ${Math.min(...held)}–${Math.max(...held)} ms (handshakeTimeout 1000 ms)`);
    assert.ok(Math.max(...held) < 3000, `held at most 3 s, got ${Math.max(...held)} ms`);
    assert.ok(
      peers.every((peer) => /HTTP\/1\.1 408 /.test(peer.received())),
      "node answers 408 after the server's own 426",
    );
    assert.equal((await real.request("echo", "still")).type, "echo");
    await real.close();
  });
});

describe("pre-upgrade: sockets not yet upgraded count toward maxConnections", () => {
  let t: TestServer;
  const { logger, lines } = capturingLogger();
  before(async () => {
    t = await startServer({ maxConnections: 10, handshakeTimeout: 1500, logger });
  });
  after(() => t.close());

  it("10 trickling requests fill the limit: 20 upgrades get 503 with one log line; once they are closed, a client gets in", async () => {
    const peers = await Promise.all(Array.from({ length: 10 }, () => trickle(t.port)));
    for (let i = 0; i < 20; i++) assert.equal(await refusedStatus(t.url), 503);
    assert.equal(lineCount(lines, "connection refused: at maxConnections"), 1, lines.join("\n"));
    assert.match(lines.find((line) => line.startsWith("connection refused: at maxConnections"))!, /"refused":1\b/);
    await within(Promise.all(peers.map((peer) => peer.closed)), 10_000, "the trickling requests to be closed");
    const real = await connect(t.url);
    assert.equal((await real.request("echo", "in")).type, "echo");
    assert.equal(lineCount(lines, "connection refused: at maxConnections"), 1, "no line for the refusals within the interval");
    await real.close();
  });
});

describe("pre-upgrade: node drops sockets past maxConnections plus the headroom", () => {
  let t: TestServer;
  const { logger, lines } = capturingLogger();
  before(async () => {
    t = await startServer({ maxConnections: 2, handshakeTimeout: 3000, logger });
  });
  after(() => t.close());

  it(`with ${2 + SOCKET_HEADROOM} sockets held, 10 more are closed at accept without a byte, logged once`, async () => {
    const held = await Promise.all(Array.from({ length: 2 + SOCKET_HEADROOM }, () => trickle(t.port)));
    const extra = await Promise.all(Array.from({ length: 10 }, () => open(t.port)));
    const times = await within(Promise.all(extra.map((peer) => peer.closed)), 2500, "the sockets past the limit to be dropped");
    console.log(`# sockets past the limit closed after ${Math.max(...times)} ms at most`);
    assert.ok(
      extra.every((peer) => peer.received() === ""),
      "dropped at accept: not even a 408",
    );
    assert.equal(lineCount(lines, "connection dropped"), 1, lines.join("\n"));
    assert.match(lines.find((line) => line.startsWith("connection dropped"))!, new RegExp(`"limit":${2 + SOCKET_HEADROOM}\\b`));
    await within(Promise.all(held.map((peer) => peer.closed)), 10_000, "the held sockets to be closed");
    const real = await connect(t.url);
    await real.close();
  });
});

describe("pre-upgrade: the standalone server", () => {
  let running: RunningServer;
  const { logger, lines } = capturingLogger();
  before(async () => {
    const outcome = parseConfig(["--port", "0", "--host", "127.0.0.1", "--max-connections", "4"], {});
    assert.equal(outcome.kind, "run");
    if (outcome.kind !== "run") return;
    running = await serve(outcome.config, logger);
  });
  after(() => running.stop());

  it("trickled request bodies are closed within the handshake timeout (10 s), a client is served meanwhile, and sockets past the limit are dropped", async () => {
    const port = Number(new URL(running.url).port);
    const first = await Promise.all(Array.from({ length: 2 }, () => trickle(port, "/healthz")));
    const real = await connect(running.url);
    assert.equal((await real.request("echo", "served")).type, "echo");
    const rest = await Promise.all(Array.from({ length: 4 + SOCKET_HEADROOM - 3 }, () => trickle(port, "/healthz")));
    const extra = await Promise.all(Array.from({ length: 5 }, () => open(port)));
    await within(Promise.all(extra.map((peer) => peer.closed)), 2500, "the sockets past the limit to be dropped");
    assert.equal(lineCount(lines, "connection dropped"), 1, lines.join("\n"));
    const held = await within(Promise.all([...first, ...rest].map((peer) => peer.closed)), 20_000, "the trickling requests to be closed");
    console.log(`# standalone server: trickling requests held ${Math.min(...held)}–${Math.max(...held)} ms`);
    assert.ok(Math.max(...held) < 13_000, `held at most 13 s, got ${Math.max(...held)} ms`);
    assert.equal((await real.request("echo", "still")).type, "echo");
    await real.close();
  });
});

describe("pre-upgrade: the standalone server under an open-file limit", () => {
  const OPEN_FILES = 256;
  const FLOOD = 300;
  const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
  let child: ChildProcessWithoutNullStreams | undefined;
  let stdout = "";
  let stderr = "";
  /** Resolves once the server's output matches `pattern`; rejects if it exits first. */
  function output(pattern: RegExp, what: string): Promise<void> {
    const server = child!;
    return within(
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(stdout + stderr)) resolve();
        };
        server.stdout.on("data", check);
        server.stderr.on("data", check);
        server.once("exit", () => reject(new Error(`the server exited: ${stderr}`)));
        check();
      }),
      20_000,
      what,
    );
  }
  before(() => {
    // exec: the shell becomes the server, so killing the child kills the server.
    child = spawn("sh", ["-c", `ulimit -n ${OPEN_FILES} && exec "$0" "$1" --port 0 --host 127.0.0.1`, process.execPath, cli]);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  });
  after(() => {
    child?.kill("SIGKILL");
  });

  it(`sockets are capped below the open-file limit: ${FLOOD} sockets, the ones past the cap are dropped and logged once, and a client gets in after them`, async (t) => {
    if (process.platform !== "linux") return t.skip("the open-file limit is read from Linux's /proc");
    await output(/listening on ws:/, "the server to listen");
    const url = /listening on (ws:\/\/\S+)/.exec(stdout)![1]!;
    const port = Number(new URL(url).port);
    const sockets = OPEN_FILES - OPEN_FILE_RESERVE;
    assert.match(stderr, new RegExp(`"sockets":${sockets}\\b.*"msg":"the open-file limit`), "the cap is logged at start");
    // More than the process could accept at all: without the cap, libuv itself would close the ones
    // past the open-file limit and nothing would be logged.
    let closed = 0;
    let allDropped: () => void = () => {};
    const dropped = new Promise<void>((resolve) => (allDropped = resolve));
    const peers = await Promise.all(
      Array.from({ length: FLOOD }, async () => {
        const peer = await open(port);
        peer.closed.then(() => ++closed === FLOOD - sockets && allDropped());
        return peer;
      }),
    );
    await within(dropped, 5000, "the sockets past the cap to be closed");
    await output(/connection dropped/, "the drop to be logged");
    assert.equal(child!.exitCode, null, "the server is still running");
    assert.equal((stderr.match(/connection dropped/g) ?? []).length, 1, stderr);
    assert.equal(closed, FLOOD - sockets, "the sockets under the cap are held");
    for (const peer of peers) peer.socket.destroy();
    await Promise.all(peers.map((peer) => peer.closed));
    const real = await connect(url);
    assert.equal((await real.request("echo", "in")).type, "echo");
    await real.close();
  });
});
