/**
 * Reliability, slow consumers: a client that stops reading is closed with 1013
 * once its unsent bytes pass `maxBufferedBytes`, the server's memory stays bounded, the other members
 * keep receiving; droppable sends skip such a client instead of costing it its connection.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import type { Client, DisconnectReason } from "../src/index.js";
import { startChildServer, type ChildServer } from "./fixtures/child-server.js";
import { connect } from "./helpers/client.js";
import { closeCodeOf, Opcode, RawWebSocket } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { fence, within } from "./helpers/wire.js";

const MiB = 1024 * 1024;
/** The bound on the child server's RSS growth while 100 MiB passes through it (see docs/RELIABILITY.md). */
const RSS_GROWTH_BOUND = 48 * MiB;

/**
 * A reading member that counts `chunk` messages without parsing or keeping them (100 MiB of them
 * would otherwise sit in the test process), and answers requests by id.
 */
class CountingReader {
  chunks = 0;
  readonly #replies = new Map<string, (text: string) => void>();
  readonly #progress: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw: Buffer) => {
      if (raw.subarray(0, 16).toString() === '{"type":"chunk",') {
        this.chunks++;
        for (const wake of this.#progress.splice(0)) wake();
        return;
      }
      const text = raw.toString();
      const id = (JSON.parse(text) as { id?: string }).id;
      if (id !== undefined) this.#replies.get(id)?.(text);
    });
  }

  static async open(url: string): Promise<CountingReader> {
    const ws = new WebSocket(url);
    await once(ws, "open");
    return new CountingReader(ws);
  }

  request(type: string, data: unknown, id: string): Promise<{ type: string; data?: any; id?: string }> {
    const reply = new Promise<string>((resolve) => this.#replies.set(id, resolve));
    this.ws.send(JSON.stringify({ type, data, id }));
    return within(reply, 30_000, `the reply to ${id}`).then((text) => JSON.parse(text));
  }

  async atLeast(count: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.chunks < count) {
      if (Date.now() > deadline) throw new Error(`reader has ${this.chunks} chunks, expected ${count}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.#progress.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.ws.close();
    if (this.ws.readyState !== WebSocket.CLOSED) await once(this.ws, "close");
  }
}

describe("slow consumers: 100 MiB broadcast to a room with a member that never reads", () => {
  let child: ChildServer;
  before(async () => {
    // shutdownTimeout is also ws's closeTimeout: how long a closing socket may keep its unsent bytes.
    // It is long here so the test can watch the slow member read its way to the close frame.
    child = await startChildServer({ maxBufferedBytes: MiB, shutdownTimeout: 60_000 });
  });
  after(() => child.stop());

  it("closes the member with 1013, keeps RSS growth bounded, and the other members receive every chunk", async () => {
    const slow = await RawWebSocket.connect(child.port);
    assert.equal((await slow.request("join_room", { room: "big" })).type, "room_joined");
    slow.pause();
    const readers = [await CountingReader.open(child.url), await CountingReader.open(child.url)];
    for (const [i, reader] of readers.entries()) {
      assert.equal((await reader.request("join_room", { room: "big" }, `join-${i}`)).type, "room_joined");
    }

    const start = await child.stats(true);
    await child.mark();
    // 200 bursts of 8 × 64 KiB = 100 MiB. Each burst waits for both readers, so only the member that
    // does not read can fall behind.
    const batches = 200;
    const perBatch = 8;
    for (let batch = 0; batch < batches; batch++) {
      const ack = await readers[0]!.request("burst", { room: "big", count: perBatch, size: 64 * 1024 }, `burst-${batch}`);
      assert.equal(ack.type, "ack");
      await readers[1]!.atLeast(perBatch * (batch + 1));
    }
    const end = await child.stats();

    assert.deepEqual(
      readers.map((reader) => reader.chunks),
      [batches * perBatch, batches * perBatch],
      "the reading members received every chunk",
    );
    const growth = end.maxRss - start.rss;
    assert.ok(growth < RSS_GROWTH_BOUND, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB while 100 MiB passed`);
    assert.equal(end.clients, 2, "the slow member left the hub");
    console.log(
      `# slow consumer: server RSS ${(start.rss / MiB).toFixed(1)} MiB -> peak ${(end.maxRss / MiB).toFixed(1)} MiB (growth ${(growth / MiB).toFixed(1)} MiB)`,
    );

    // The close frame was queued behind the bytes the member had not read: it sees 1013 once it reads.
    slow.resume();
    await slow.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame", 30_000);
    assert.equal(closeCodeOf(slow.frames.at(-1)!), 1013);
    slow.destroy();
    const chunks = slow.frames.filter((frame) => frame.opcode === Opcode.Text).length;
    assert.ok(chunks < batches * perBatch, `the slow member got ${chunks} chunks before its close frame`);
    assert.equal(slow.frames.at(-1)?.opcode, Opcode.Close, "the close frame is the last frame");

    for (const reader of readers) await reader.close();
    // A reader's close completes on its side before the server has seen the socket close.
    await within(child.empty(), 10_000, "the hub to have no client left");
    const after = await child.stats();
    assert.deepEqual([after.clients, after.rooms], [0, 0]);
  });
});

describe("slow consumers: droppable sends", () => {
  let t: TestServer;
  const disconnects: Array<{ id: string; reason: DisconnectReason }> = [];
  before(async () => {
    t = await startServer({ maxBufferedBytes: 256 * 1024, droppableBufferedBytes: 64 * 1024 });
    t.server.on("disconnect", (client: Client, reason) => disconnects.push({ id: client.id, reason }));
  });
  after(() => t.close());

  it("a ticker of droppable messages skips a member that is not reading instead of closing it", async () => {
    const slow = await RawWebSocket.connect(t.port);
    const slowId = (await slow.request("status")).data.client_id as string;
    await slow.request("join_room", { room: "ticks" });
    slow.pause();
    const reader = await connect(t.url);
    await reader.request("join_room", { room: "ticks" });

    // 1,600 ticks of 16 KiB (25 MiB): far past maxBufferedBytes had they all been queued.
    const tick = "t".repeat(16 * 1024);
    let readerTicks = 0;
    for (let batch = 0; batch < 400; batch++) {
      for (let i = 0; i < 4; i++) t.server.broadcastToRoom("ticks", "tick", tick, { droppable: true });
      await fence(reader);
      readerTicks += reader.received.splice(0).filter((m) => m.type === "tick").length;
    }
    assert.ok(readerTicks > 0, "the reading member receives ticks");
    assert.ok(t.server.getClient(slowId)?.isOpen, "the member that does not read is still connected");
    assert.ok(t.server.getClient(slowId)!.bufferedAmount <= 256 * 1024, "and its unsent bytes stay under maxBufferedBytes");
    assert.deepEqual(
      disconnects.filter((d) => d.id === slowId),
      [],
    );

    // Reading again, it gets the ticks that were queued for it, then answers as before.
    slow.resume();
    assert.equal((await slow.request("ping", "back", "back")).type, "pong");
    const received = slow.messages().filter((m) => m.type === "tick").length;
    assert.ok(received > 0 && received < 1600, `the slow member received ${received} of 1600 ticks`);
    slow.destroy();
    await reader.close();
  });

  it("a droppable message that alone would pass maxBufferedBytes is dropped, never a close", async () => {
    const c = await connect(t.url);
    const { data } = await c.request("status");
    await c.request("join_room", { room: "huge" });
    const huge = "h".repeat(300 * 1024);
    assert.equal(t.server.broadcastToRoom("huge", "huge", huge, { droppable: true }), 0, "dropped for the member");
    assert.equal(t.server.getClient(data.client_id)!.send("huge", huge, { droppable: true }), false);
    await fence(c);
    assert.ok(t.server.getClient(data.client_id)?.isOpen, "still connected");
    assert.deepEqual(
      c.received.filter((m) => m.type === "huge"),
      [],
    );

    // Without droppable, a message that can never fit is a slow-consumer close: 1013.
    t.server.broadcastToRoom("huge", "huge", huge);
    assert.equal((await within(c.closed, 10_000, "the close")).code, 1013);
    assert.deepEqual(
      disconnects.filter((d) => d.id === data.client_id).map((d) => d.reason),
      ["slow_consumer"],
    );
  });

  it("a compressed connection that stops reading is closed with 1013 too", async () => {
    const z = await startServer({ enableCompression: true, maxBufferedBytes: 256 * 1024 });
    try {
      const slow = await RawWebSocket.connect(z.port, { headers: { "Sec-WebSocket-Extensions": "permessage-deflate" } });
      assert.match(slow.responseHead, /permessage-deflate/i, "compression was negotiated");
      const slowId = (await waitForClient(z)).id;
      z.server.getClient(slowId)!.joinRoom("z");
      slow.pause();
      const left = new Promise<DisconnectReason>((resolve) => z.server.on("disconnect", (_c, reason) => resolve(reason)));
      // Random (incompressible) data, so the deflated bytes pile up as fast as the plain ones would.
      let sent = 0;
      while (z.server.getClient(slowId) !== undefined && sent < 2000) {
        z.server.broadcastToRoom("z", "noise", randomBytes(24 * 1024).toString("base64"));
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(await within(left, 10_000, "the disconnect"), "slow_consumer");
      slow.resume();
      await slow.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame", 30_000);
      assert.equal(closeCodeOf(slow.frames.at(-1)!), 1013);
      slow.destroy();
    } finally {
      await z.close();
    }
  });
});

describe("slow consumers: one message per write", () => {
  // Each broadcast here is alone in its turn, so each leaves in a write of its own; once the
  // kernel's buffer is full, those writes wait in the socket.
  it("closes a member that stops reading with 1013", async () => {
    const t = await startServer({ maxBufferedBytes: 256 * 1024 });
    try {
      const slow = await RawWebSocket.connect(t.port);
      const slowId = (await waitForClient(t)).id;
      t.server.getClient(slowId)!.joinRoom("one");
      slow.pause();
      const left = new Promise<DisconnectReason>((resolve) => t.server.on("disconnect", (_c, reason) => resolve(reason)));
      const chunk = "c".repeat(16 * 1024);
      let sent = 0;
      let peak = 0;
      while (t.server.getClient(slowId) !== undefined && sent < 4000) {
        t.server.broadcastToRoom("one", "chunk", chunk);
        peak = Math.max(peak, t.server.getClient(slowId)?.bufferedAmount ?? 0);
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(await within(left, 10_000, "the disconnect"), "slow_consumer", `after ${sent} messages`);
      assert.ok(peak > 0 && peak <= 256 * 1024, `the unsent bytes it was charged peaked at ${peak}`);
      slow.resume();
      await slow.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame", 30_000);
      assert.equal(closeCodeOf(slow.frames.at(-1)!), 1013);
      const chunks = slow.frames.filter((frame) => frame.opcode === Opcode.Text).length;
      assert.ok(chunks > 0 && chunks < sent, `it read ${chunks} of ${sent} chunks, then the close frame`);
      slow.destroy();
    } finally {
      await t.close();
    }
  });
});

async function waitForClient(t: TestServer): Promise<Client> {
  const existing = t.server.clients().next().value;
  if (existing !== undefined) return existing;
  const [client] = (await once(t.server, "connection")) as [Client];
  return client;
}
