/**
 * Reliability, protocol violations and known attacks, in the spirit of the Autobahn
 * suite but against our configured server, with frames written by hand over a raw `net.Socket`:
 * reserved bits and opcodes, unmasked frames, bad control frames (1002); invalid UTF-8, also split
 * across fragments (1007); fragments and compressed frames that together pass `maxPayload` (1009,
 * memory bounded); handshake attacks (2,000 headers, a pathological Sec-WebSocket-Protocol); JSON
 * nested 10,000 deep; a peer that stops answering pings; and a peer whose close frame arrives while
 * broadcasts wait for it (no frame may follow the server's close frame).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { constants as zlib, deflateRawSync, inflateRawSync } from "node:zlib";
import { startChildServer, type ChildServer } from "./fixtures/child-server.js";
import { connect, type TestClient } from "./helpers/client.js";
import { closeCodeOf, closeFrame, encodeFrame, httpExchange, Opcode, RawWebSocket, textFrame } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { within } from "./helpers/wire.js";

const MiB = 1024 * 1024;
/** Bound on the child server's RSS growth while five 50 MiB deflate bombs arrive (docs/RELIABILITY.md). */
const BOMB_RSS_GROWTH_BOUND = 32 * MiB;

/** Waits for the server's close frame and returns its code. */
async function closeCode(peer: RawWebSocket): Promise<number | undefined> {
  await peer.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "a close frame");
  const code = closeCodeOf(peer.frames.find((frame) => frame.opcode === Opcode.Close)!);
  peer.destroy();
  return code;
}

function closePayload(code: number, reason: Buffer = Buffer.alloc(0)): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return Buffer.concat([payload, reason]);
}

/** `{"type":"echo","data":"` + bytes + `"}` split into two text fragments after `split` bytes of `middle`. */
function fragmentedEcho(middle: Buffer, split: number): Buffer {
  const head = Buffer.concat([Buffer.from('{"type":"echo","data":"'), middle.subarray(0, split)]);
  const tail = Buffer.concat([middle.subarray(split), Buffer.from('"}')]);
  return Buffer.concat([
    encodeFrame({ opcode: Opcode.Text, payload: head, fin: false }),
    encodeFrame({ opcode: Opcode.Continuation, payload: tail }),
  ]);
}

describe("protocol violations close the connection with the RFC 6455 code", () => {
  let t: TestServer;
  let bystander: TestClient;
  before(async () => {
    t = await startServer({ maxPayload: 1024 });
    bystander = await connect(t.url);
  });
  after(async () => {
    await bystander.close();
    await t.close();
  });

  const text = (payload: string | Buffer, extra: Partial<Parameters<typeof encodeFrame>[0]> = {}): Buffer =>
    encodeFrame({ opcode: Opcode.Text, payload, ...extra });
  const invalidUtf8 = Buffer.from([0xe2, 0x82, 0x28]); // a 3-byte sequence with a bad continuation byte

  const cases: Array<[string, Buffer, number]> = [
    ["RSV1 without negotiated compression", text('{"type":"ping"}', { rsv1: true }), 1002],
    ["RSV2 set", text('{"type":"ping"}', { rsv2: true }), 1002],
    ["RSV3 set", text('{"type":"ping"}', { rsv3: true }), 1002],
    ["reserved data opcode 0x3", encodeFrame({ opcode: 0x3, payload: "x" }), 1002],
    ["reserved data opcode 0x7", encodeFrame({ opcode: 0x7 }), 1002],
    ["reserved control opcode 0xB", encodeFrame({ opcode: 0xb }), 1002],
    ["unmasked client frame", text('{"type":"ping"}', { mask: false }), 1002],
    ["ping with a 126-byte payload", encodeFrame({ opcode: Opcode.Ping, payload: Buffer.alloc(126) }), 1002],
    ["fragmented ping (FIN clear)", encodeFrame({ opcode: Opcode.Ping, payload: "p", fin: false }), 1002],
    ["close frame with a 1-byte payload", encodeFrame({ opcode: Opcode.Close, payload: Buffer.from([3]) }), 1002],
    ["close frame with reserved code 1005", encodeFrame({ opcode: Opcode.Close, payload: closePayload(1005) }), 1002],
    ["close frame with code 999", encodeFrame({ opcode: Opcode.Close, payload: closePayload(999) }), 1002],
    ["continuation without a first fragment", encodeFrame({ opcode: Opcode.Continuation, payload: "x" }), 1002],
    ["a new text frame inside a fragmented message", Buffer.concat([text('{"type":', { fin: false }), text('{"type":"ping"}')]), 1002],
    ["invalid UTF-8 in a text frame", text(Buffer.concat([Buffer.from('{"type":"'), invalidUtf8, Buffer.from('"}')])), 1007],
    ["invalid UTF-8 split across fragments", fragmentedEcho(invalidUtf8, 2), 1007],
    ["truncated UTF-8 at the end of the last fragment", fragmentedEcho(Buffer.from([0xe2, 0x82]), 1), 1007],
    ["an overlong UTF-8 encoding", text(Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])), 1007],
    [
      "a UTF-16 surrogate encoded in UTF-8",
      text(Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])),
      1007,
    ],
    [
      "invalid UTF-8 in a close reason",
      encodeFrame({ opcode: Opcode.Close, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }),
      1007,
    ],
    [
      "fragments that together pass maxPayload (3 × 400 bytes, limit 1024)",
      Buffer.concat([
        text("a".repeat(400), { fin: false }),
        encodeFrame({ opcode: Opcode.Continuation, payload: "a".repeat(400), fin: false }),
        encodeFrame({ opcode: Opcode.Continuation, payload: "a".repeat(400) }),
      ]),
      1009,
    ],
    ["a frame header announcing 2^40 bytes (nothing follows)", lengthOnlyHeader(2 ** 40), 1009],
  ];

  for (const [name, bytes, expected] of cases) {
    it(`${name} → ${expected}`, async () => {
      const peer = await RawWebSocket.connect(t.port);
      peer.write(bytes);
      assert.equal(await closeCode(peer), expected);
    });
  }

  it("the hub is left with the bystander only, who is still served", async () => {
    // Every violating peer was removed from the hub when its socket closed.
    const deadline = Date.now() + 10_000;
    while (t.server.clientCount !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(t.server.clientCount, 1);
    assert.equal((await bystander.request("echo", "still here")).type, "echo");
  });

  it("valid edge cases are served: UTF-8 split inside a character, a ping between fragments, fragments exactly at the limit", async () => {
    const peer = await RawWebSocket.connect(t.port, { autoPong: true });
    peer.write(fragmentedEcho(Buffer.from("€", "utf8"), 2));
    await peer.until(() => peer.messages().some((m) => m.type === "echo"), "the echo");
    assert.deepEqual(peer.messages()[0], { type: "echo", data: { original: "€" } });

    peer.write(
      Buffer.concat([
        encodeFrame({ opcode: Opcode.Text, payload: '{"type":"echo",', fin: false }),
        encodeFrame({ opcode: Opcode.Ping, payload: "mid" }),
        encodeFrame({ opcode: Opcode.Continuation, payload: '"id":"f","data":1}' }),
      ]),
    );
    await peer.until(() => peer.messages().some((m) => m.id === "f"), "the fragmented echo");
    assert.ok(peer.frames.some((frame) => frame.opcode === Opcode.Pong && frame.payload.toString() === "mid"));

    // 1024 bytes in total over three fragments: exactly maxPayload.
    const message = JSON.stringify({ type: "echo", id: "limit", data: "" });
    const filler = "z".repeat(1024 - message.length);
    const full = Buffer.from(JSON.stringify({ type: "echo", id: "limit", data: filler }));
    assert.equal(full.length, 1024);
    peer.write(
      Buffer.concat([
        encodeFrame({ opcode: Opcode.Text, payload: full.subarray(0, 300), fin: false }),
        encodeFrame({ opcode: Opcode.Continuation, payload: full.subarray(300, 700), fin: false }),
        encodeFrame({ opcode: Opcode.Continuation, payload: full.subarray(700) }),
      ]),
    );
    await peer.until(() => peer.messages().some((m) => m.id === "limit"), "the echo at the limit");
    peer.destroy();
  });
});

/** A masked frame header that announces `length` bytes of payload, without the payload. */
function lengthOnlyHeader(length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x80 | Opcode.Binary;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

describe("compression bombs (enableCompression: true)", () => {
  let child: ChildServer;
  before(async () => {
    child = await startChildServer({ enableCompression: true, maxPayload: 64 * 1024 });
  });
  after(() => child.stop());

  it("a 48 KB compressed frame that inflates to 50 MiB closes with 1009; five at once leave RSS bounded", async () => {
    // 50 MiB of zeros deflate to about 50 KB: under maxPayload on the wire, 800 times over it inflated.
    const bomb = deflateRawSync(Buffer.alloc(50 * MiB), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
    assert.ok(bomb.length < 64 * 1024, `compressed size ${bomb.length}`);
    const frame = encodeFrame({ opcode: Opcode.Text, payload: bomb, rsv1: true });
    const peers = await Promise.all(
      Array.from({ length: 5 }, () => RawWebSocket.connect(child.port, { headers: { "Sec-WebSocket-Extensions": "permessage-deflate" } })),
    );
    for (const peer of peers) assert.match(peer.responseHead, /permessage-deflate/i);
    const start = await child.stats(true);
    await child.mark();
    for (const peer of peers) peer.write(frame);
    assert.deepEqual(await Promise.all(peers.map(closeCode)), [1009, 1009, 1009, 1009, 1009]);
    const end = await child.stats();
    const growth = end.maxRss - start.rss;
    console.log(`# deflate bombs: server RSS growth ${(growth / MiB).toFixed(1)} MiB for 5 × 50 MiB`);
    assert.ok(growth < BOMB_RSS_GROWTH_BOUND, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);

    // A normal compressed message still works on a new connection.
    const ok = await RawWebSocket.connect(child.port, { headers: { "Sec-WebSocket-Extensions": "permessage-deflate" } });
    const small = deflateRawSync(Buffer.from('{"type":"ping","id":"z"}'), { finishFlush: zlib.Z_SYNC_FLUSH }).subarray(0, -4);
    ok.write(encodeFrame({ opcode: Opcode.Text, payload: small, rsv1: true }));
    await ok.until((frames) => frames.some((f) => f.opcode === Opcode.Text), "a reply");
    const reply = ok.frames.find((f) => f.opcode === Opcode.Text)!;
    assert.equal(reply.rsv1, true, "the reply is compressed too");
    assert.match(
      inflateRawSync(Buffer.concat([reply.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.Z_SYNC_FLUSH }).toString(),
      /"type":"pong"/,
    );
    ok.destroy();
  });
});

describe("handshake attacks", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  const upgradeHeaders = (port: number): string =>
    `Host: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n`;

  it("2,000 request headers before the WebSocket ones (the class of CVE-2024-37890): refused, no crash", async () => {
    const junk = Array.from({ length: 2000 }, (_, i) => `a${i % 10}: b\r\n`).join("");
    const answer = await httpExchange(t.port, `GET /ws HTTP/1.1\r\n${junk}${upgradeHeaders(t.port)}\r\n`);
    assert.ok(answer.status >= 400 && answer.status < 500, `answered ${answer.head}`);
    const c = await connect(t.url);
    assert.equal((await c.request("echo", "alive")).type, "echo");
    await c.close();
  });

  it("request headers past node's 16 KiB limit: 431", async () => {
    const answer = await httpExchange(t.port, `GET /ws HTTP/1.1\r\n${upgradeHeaders(t.port)}X-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    assert.equal(answer.status, 431);
  });

  it("Sec-WebSocket-Protocol of 'b' + 32,000 spaces + 'x' (the class of CVE-2021-32640) is answered, also below the header limit", async () => {
    for (const spaces of [32_000, 15_000]) {
      const protocol = `b${" ".repeat(spaces)}x`;
      const answer = await httpExchange(t.port, `GET /ws HTTP/1.1\r\n${upgradeHeaders(t.port)}Sec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
      assert.ok(answer.status > 0, `answered (${spaces} spaces): ${answer.head.split("\r\n")[0]}`);
    }
    const c = await connect(t.url);
    assert.equal((await c.request("echo", "alive")).type, "echo");
    await c.close();
  });
});

describe("JSON nested 10,000 deep", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  it("arrays, objects, and arrays with an escape: invalid_message for each, and the connection keeps working", async () => {
    const c = await connect(t.url);
    const depth = 10_000;
    const bodies = [
      `${"[".repeat(depth)}${"]".repeat(depth)}`,
      `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
      `${"[".repeat(depth)}"\\u0061"${"]".repeat(depth)}`,
    ];
    for (const body of bodies) {
      for (const type of ["echo", "status"]) {
        const text = `{"type":"${type}","id":"deep","data":${body}}`;
        assert.ok(Buffer.byteLength(text) < 64 * 1024);
        c.send(text);
        // Refused before it is parsed, so the id cannot be read.
        const reply = await c.next((m) => m.type === "error", 10_000);
        assert.equal(reply.data.code, "invalid_message");
        assert.equal(reply.id, undefined);
      }
    }
    assert.equal((await c.request("echo", "alive")).type, "echo");
    assert.equal(t.server.clientCount, 1);
    await c.close();
  });
});

describe("heartbeat faults", () => {
  let t: TestServer;
  const interval = 100;
  const timeout = 350;
  before(async () => {
    t = await startServer({ heartbeatInterval: interval, heartbeatTimeout: timeout });
  });
  after(() => t.close());

  it("a peer that stops answering pings is terminated within heartbeatTimeout + one interval (counted in sweeps) and leaves no membership", async () => {
    const member = await connect(t.url);
    await member.request("join_room", { room: "hb" });
    const peer = await RawWebSocket.connect(t.port);
    const peerId = (await peer.request("status")).data.client_id as string;
    await peer.request("join_room", { room: "hb" });
    await peer.request("join_room", { room: "hb-own" });
    const framesAtSilence = peer.frames.length;
    // From here the peer sends nothing, not even pongs.

    const ended = await within(peer.ended, 10_000, "the silent peer's connection to end");
    assert.equal(ended.closeFrame, undefined, "terminated: no closing handshake");
    // One ping per sweep; the first sweep that finds more than `timeout` ms of silence terminates.
    // Sweeps are at least `interval` apart, so at most ⌈timeout / interval⌉ pings can come first.
    const pings = peer.frames.slice(framesAtSilence).filter((frame) => frame.opcode === Opcode.Ping).length;
    assert.ok(pings >= 1 && pings <= Math.ceil(timeout / interval), `${pings} pings before termination`);

    assert.deepEqual((await member.next("member_left", 10_000)).data, { room: "hb", client_id: peerId, user_id: null });
    assert.equal(t.server.getClient(peerId), undefined);
    assert.deepEqual(t.server.rooms(), ["hb"]);
    assert.equal(t.server.getRoomClients("hb").length, 1);
    await member.close();
  });
});

describe("a peer's close frame while broadcasts wait for it", () => {
  let t: TestServer;
  before(async () => {
    // Room for everything the paused peer is sent below, so that it is never closed as slow.
    t = await startServer({
      maxBufferedBytes: 256 * MiB,
      rateLimit: false,
      instrumentation: {
        messageIn(type) {
          if (type === "broadcast" && ++broadcastsRead === 2) bothRead();
        },
      },
    });
  });
  let broadcastsRead = 0;
  let bothRead: () => void = () => {};
  after(() => t.close());

  it("sends no data frame after its close frame, even with frames queued in the same turn behind a full socket", async () => {
    const peer = await RawWebSocket.connect(t.port);
    await peer.request("join_room", { room: "closing" });
    peer.pause();
    // 32 MiB: more than the loopback socket's kernel buffers hold (about 10 MiB at most), so the
    // server's close frame will wait in the server's own buffers behind the rest.
    const chunk = "x".repeat(256 * 1024);
    for (let i = 0; i < 128; i++) t.server.broadcastToRoom("closing", "fill", chunk);
    // In one write: two broadcasts to the room (the second queued for the end of the turn, since a
    // broadcast precedes it in the turn) and the close frame, which the server answers at once.
    const broadcast = (n: number): Buffer => textFrame({ type: "broadcast", data: { room: "closing", type: "late", payload: n } });
    const read = new Promise<void>((resolve) => (bothRead = resolve));
    peer.write(Buffer.concat([broadcast(1), broadcast(2), closeFrame(1000)]));
    // The server reads the three frames in one callback, the close frame right after the second
    // broadcast; only then may the peer read, or its buffers could drain before the close is answered.
    await read;
    peer.resume();
    const end = await within(peer.ended, 30_000, "the connection to end");
    assert.equal(end.code, 1000, "the server answered the close frame");
    const closeAt = peer.frames.findIndex((frame) => frame.opcode === Opcode.Close);
    const framesAfterClose = peer.frames.slice(closeAt + 1).map((frame) => frame.opcode);
    assert.deepEqual(framesAfterClose, [], "RFC 6455 §5.5.1: no frame after the close frame");
    assert.equal(peer.messages().filter((message) => message.type === "fill").length, 128, "every frame before the close arrived");
  });
});
