/**
 * Direct reads (src/hub/fast-receive.ts): whole text frames are read off the socket before `ws`'s
 * receiver, everything else goes to `ws`. What a client relies on, over raw sockets: every message
 * answered in the order sent, however frames share or split TCP reads, with pings, fragments and
 * long frames in between; a bad frame closed with the RFC 6455 code and nothing after it served;
 * the same answers with `directReads: false`.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import { PassThrough, type Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { FastReceive } from "../src/hub/fast-receive.js";
import { createServer as createConduitServer } from "../src/index.js";
import { closeCodeOf, encodeFrame, Opcode, RawWebSocket, textFrame } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";

const echo = (n: number | string): Buffer => textFrame({ type: "echo", data: n, id: `e${n}` });
/** Writes `bytes` in one write; resolves with the server's close code and the ids it answered first. */
async function closedAfter(port: number, bytes: Buffer): Promise<{ code: number | undefined; answered: string[] }> {
  const peer = await RawWebSocket.connect(port);
  peer.write(bytes);
  await peer.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame");
  const code = closeCodeOf(peer.frames.find((frame) => frame.opcode === Opcode.Close)!);
  peer.destroy();
  return { code, answered: ids(peer) };
}

const ids = (peer: RawWebSocket): string[] => peer.messages().flatMap((message) => (message.id === undefined ? [] : [message.id]));

describe("direct reads: the reader itself, on this ws version", () => {
  it("takes over ws's socket listener: text frames reach it, a ping still gets ws's pong", async () => {
    const received: string[] = [];
    const reader = new FastReceive(function (this: WebSocket, data, isBinary) {
      assert.equal(isBinary, false);
      received.push(data.toString());
    });
    const http = createServer();
    const wss = new WebSocketServer({ noServer: true });
    const installed: boolean[] = [];
    const fromWs: string[] = [];
    http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(request, socket, head, (ws) => {
        ws.on("message", (data) => fromWs.push(String(data)));
        installed.push(reader.install(ws, socket));
      });
    });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    try {
      const peer = await RawWebSocket.connect((http.address() as { port: number }).port, { path: "/" });
      peer.write(Buffer.concat([textFrame("one"), encodeFrame({ opcode: Opcode.Ping, payload: "p" }), textFrame("two")]));
      // ws answers the ping and reads "two" in the same call, before the pong can reach the peer.
      await peer.until((frames) => frames.some((frame) => frame.opcode === Opcode.Pong), "the pong");
      assert.deepEqual(installed, [true], "installed on the first socket");
      // "one" is read here; the ping stops the reader, so ws reads the ping and "two".
      assert.deepEqual(received, ["one"]);
      assert.deepEqual(fromWs, ["two"]);
      peer.destroy();
    } finally {
      wss.close();
      http.close();
    }
  });
});

describe("direct reads: another ws", () => {
  it("leaves the socket to ws's listener when the internals are not as expected, and reports them unavailable", () => {
    const reader = new FastReceive(() => assert.fail("nothing is read here"));
    assert.equal(reader.available, undefined, "not known before the first socket");
    const socket = new PassThrough();
    const wsListener = function socketOnData(): void {};
    socket.on("data", wsListener);
    // A WebSocket without the receiver fields this version of ws has.
    const otherWs = { readyState: 1, _receiver: { _state: 0 } } as unknown as WebSocket;
    assert.equal(reader.install(otherWs, socket), false);
    assert.equal(reader.available, false);
    assert.deepEqual(socket.listeners("data"), [wsListener]);
  });
});

describe("direct reads: the hub", () => {
  it("reads its clients' sockets itself, and leaves them to ws with directReads: false", async () => {
    for (const directReads of [true, false]) {
      const http = createServer();
      const conduit = createConduitServer({ directReads }).attach(http);
      const sockets: Duplex[] = [];
      http.on("upgrade", (_request: IncomingMessage, socket: Duplex) => sockets.push(socket));
      http.listen(0, "127.0.0.1");
      await once(http, "listening");
      try {
        const peer = await RawWebSocket.connect((http.address() as { port: number }).port);
        assert.equal((await peer.request("echo", "hi")).type, "echo");
        const listeners = sockets[0]!.listeners("data").map((listener) => listener.name);
        assert.deepEqual(listeners, [directReads ? "onSocketData" : "socketOnData"], `directReads: ${directReads}`);
        peer.destroy();
      } finally {
        await conduit.shutdown();
        http.close();
      }
    }
  });
});

for (const directReads of [true, false]) {
  describe(`direct reads: what a client sees (directReads: ${directReads})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ directReads, maxPayload: 8 * 1024 }, (server) => {
        server.registerHandler("leave", (ctx, client) => {
          ctx.reply("bye");
          client.close(4000, "asked to leave");
        });
      });
    });
    after(() => t.close());

    it("answers frames sharing one write in order, with a ping, a fragmented and a long message between them", async () => {
      const peer = await RawWebSocket.connect(t.port);
      const long = "x".repeat(3000); // over the 1 KiB read directly: the 16-bit length form, read by ws
      peer.write(
        Buffer.concat([
          echo(1),
          echo(2),
          encodeFrame({ opcode: Opcode.Ping, payload: "p" }),
          echo(3),
          encodeFrame({ opcode: Opcode.Text, payload: '{"type":"echo","id":"e4",', fin: false }),
          encodeFrame({ opcode: Opcode.Continuation, payload: '"data":"fragmented"}' }),
          echo(5),
          textFrame({ type: "echo", data: long, id: "e6" }),
          textFrame({ type: "echo", data: "é ✓ 😀", id: "e7" }),
          echo(8),
        ]),
      );
      await peer.until(() => ids(peer).length === 8, "eight replies");
      assert.deepEqual(ids(peer), ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"]);
      const pongAt = peer.frames.findIndex((frame) => frame.opcode === Opcode.Pong);
      const thirdAt = peer.frames.findIndex((frame) => frame.opcode === Opcode.Text && frame.payload.includes('"e3"'));
      assert.ok(pongAt >= 0 && pongAt < thirdAt, "the pong comes before the reply to the frame after the ping");
      const replies = peer.messages();
      assert.equal(replies[3]!.data.original, "fragmented");
      assert.equal(replies[5]!.data.original, long);
      assert.equal(replies[6]!.data.original, "é ✓ 😀");
      peer.destroy();
    });

    it("answers frames cut anywhere by the reads, one byte at a time included", async () => {
      const peer = await RawWebSocket.connect(t.port);
      const stream = Buffer.concat([echo(1), echo(2), echo(3)]);
      // A whole frame and half of the next, then the rest of it and the third.
      const cut = echo(1).length + 7;
      peer.write(stream.subarray(0, cut));
      await peer.until(() => ids(peer).length === 1, "the first reply");
      peer.write(stream.subarray(cut));
      await peer.until(() => ids(peer).length === 3, "three replies");
      // Then a frame dribbled byte by byte, each byte its own TCP segment.
      peer.socket.setNoDelay(true);
      for (const byte of echo(4)) await new Promise((resolve) => peer.socket.write(Buffer.from([byte]), resolve));
      await peer.until(() => ids(peer).length === 4, "the fourth reply");
      assert.deepEqual(ids(peer), ["e1", "e2", "e3", "e4"]);
      peer.destroy();
    });

    it("closes with 1007 at invalid UTF-8 and serves nothing after it; the frames before it are answered", async () => {
      const invalid = encodeFrame({ opcode: Opcode.Text, payload: Buffer.from([0x7b, 0x22, 0xe2, 0x82, 0x28, 0x22, 0x7d]) });
      assert.deepEqual(await closedAfter(t.port, Buffer.concat([echo(1), invalid, echo(2)])), { code: 1007, answered: ["e1"] });
    });

    it("closes with 1009 at a frame over maxPayload", async () => {
      assert.deepEqual(await closedAfter(t.port, Buffer.concat([echo(1), textFrame("y".repeat(9000)), echo(2)])), {
        code: 1009,
        answered: ["e1"],
      });
    });

    it("a handler that closes the connection mid-write: its reply and the close frame, nothing after", async () => {
      const bytes = Buffer.concat([echo(1), textFrame({ type: "leave", id: "l" }), echo(2)]);
      assert.deepEqual(await closedAfter(t.port, bytes), { code: 4000, answered: ["e1", "l"] });
    });

    it("text after a close frame in the same write is not served", async () => {
      const peer = await RawWebSocket.connect(t.port);
      const close = Buffer.alloc(2);
      close.writeUInt16BE(1000);
      peer.write(Buffer.concat([echo(1), encodeFrame({ opcode: Opcode.Close, payload: close }), echo(2)]));
      const end = await peer.ended;
      assert.equal(end.code, 1000);
      assert.deepEqual(ids(peer), ["e1"]);
    });
  });
}
