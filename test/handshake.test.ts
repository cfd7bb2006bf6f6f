/**
 * conduit-ws leaves the handshake itself to `ws`: after its own checks (path, admission, origin,
 * token), a request gets byte for byte the reply a plain `ws` server gives it, plain or with a
 * subprotocol, malformed or of another version; and bytes that arrive with the request are read.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { openRaw } from "./helpers/raw.js";
import { textFrame } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { within } from "./helpers/wire.js";

/** RFC 6455 §1.3's example key and the accept value it gives. */
const RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

function request(port: number, extraHeaders: Record<string, string> = {}, key = RFC_KEY, method = "GET"): string {
  const headers: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": key,
    "Sec-WebSocket-Version": "13",
    ...extraHeaders,
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `${method} /ws HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

/** Sends `text` in one write and resolves with everything received until the server ends or `enough` says so. */
async function exchange(port: number, text: (port: number) => string | Buffer, enough: (received: string) => boolean): Promise<string> {
  const peer = await openRaw(port);
  peer.socket.write(text(port));
  const received = (): string => peer.bytes().toString("latin1");
  await within(
    Promise.race([peer.closed, new Promise<void>((resolve) => peer.socket.on("data", () => enough(received()) && resolve()))]),
    5000,
    "the server's reply",
  );
  peer.socket.destroy();
  return received();
}

/** The reply's head (status line and headers), for requests that get a whole head back. */
function head(reply: string): string {
  return reply.slice(0, reply.indexOf("\r\n\r\n") + 4);
}

const headComplete = (received: string): boolean => received.includes("\r\n\r\n");
/** A refusal from `ws` is a head and a body of Content-Length bytes, then the end of the connection. */
const untilEnd = (): boolean => false;

describe("the handshake, answered by ws", () => {
  let conduit: TestServer;
  let plain: WebSocketServer;
  let plainPort: number;
  before(async () => {
    conduit = await startServer({});
    plain = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/ws" });
    await once(plain, "listening");
    plainPort = (plain.address() as AddressInfo).port;
  });
  after(async () => {
    await conduit.close();
    for (const ws of plain.clients) ws.terminate();
    await new Promise((resolve) => plain.close(resolve));
  });

  it("replies to RFC 6455's example key with its accept value, byte for byte as ws does", async () => {
    const ours = head(await exchange(conduit.port, (port) => request(port), headComplete));
    const theirs = head(await exchange(plainPort, (port) => request(port), headComplete));
    assert.equal(
      ours,
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${RFC_ACCEPT}\r\n\r\n`,
    );
    assert.equal(ours, theirs);
  });

  const cases: Array<[string, (port: number) => string, (received: string) => boolean]> = [
    ["a subprotocol offer (ws picks the first)", (port) => request(port, { "Sec-WebSocket-Protocol": "chat, superchat" }), headComplete],
    ["version 8", (port) => request(port, { "Sec-WebSocket-Version": "8" }), headComplete],
    ["Upgrade in capitals", (port) => request(port, { Upgrade: "WebSocket" }), headComplete],
    ["a key of the wrong length", (port) => request(port, {}, "c2hvcnQ="), untilEnd],
    ["version 12", (port) => request(port, { "Sec-WebSocket-Version": "12" }), untilEnd],
    ["POST", (port) => request(port, {}, RFC_KEY, "POST"), untilEnd],
  ];
  for (const [name, text, enough] of cases) {
    it(`${name}: the same reply as ws's`, async () => {
      const ours = await exchange(conduit.port, text, enough);
      const theirs = await exchange(plainPort, text, enough);
      assert.equal(enough === headComplete ? head(ours) : ours, enough === headComplete ? head(theirs) : theirs);
      assert.match(ours, /^HTTP\/1\.1 (101|400|405) /);
    });
  }

  it("a frame that arrives in the same packet as the request is read, not lost", async () => {
    const reply = await exchange(
      conduit.port,
      (port) => Buffer.concat([Buffer.from(request(port)), textFrame({ type: "echo", data: "with the request", id: "r1" })]),
      (received) => received.includes("with the request"),
    );
    assert.match(reply, /^HTTP\/1\.1 101 /);
    assert.ok(reply.includes('"id":"r1"'), JSON.stringify(reply));
  });
});
