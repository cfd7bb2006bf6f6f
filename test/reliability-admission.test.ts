/**
 * Reliability, admission: `maxConnections` holds under a storm of parallel handshakes
 * whose auth is still running; many slowloris sockets (silent, half-sent, trickling) are all closed by
 * `handshakeTimeout` while real clients are served; `maxRoomsPerClient` bounds what one client can make
 * the server hold. The single-case checks (one 503, one half request, room-name rules) live in
 * test/auth.test.ts and test/rooms.test.ts.
 */
import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import { connect, refusedStatus, type TestClient } from "./helpers/client.js";
import { openRaw } from "./helpers/raw.js";
import { closeCodeOf, Opcode, RawWebSocket } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { waitFor, within } from "./helpers/wire.js";

describe("admission: maxConnections under a handshake storm", () => {
  let t: TestServer;
  let inAuth = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  before(async () => {
    t = await startServer({ maxConnections: 5 }, (server) => {
      server.setAuthHandler(async () => {
        inAuth++;
        await gate;
        return "user";
      });
    });
  });
  after(() => t.close());

  it("30 parallel handshakes, auth still pending: exactly 5 get in, 25 get 503; after they leave, 5 get in again", async () => {
    const attempts = Array.from({ length: 30 }, () =>
      connect(`${t.url}?token=t`).then(
        (client) => ({ client, status: 101 }),
        (error: { status?: number }) => ({ client: undefined, status: error.status ?? 0 }),
      ),
    );
    // Handshakes waiting in the auth handler count against the limit too.
    await waitFor(() => inAuth === 5, "5 handshakes in the auth handler", 10_000);
    release();
    const outcomes = await Promise.all(attempts);
    const statuses = outcomes.map((o) => o.status).sort();
    assert.deepEqual(statuses, [...Array(5).fill(101), ...Array(25).fill(503)]);
    assert.equal(inAuth, 5, "refused handshakes never reached the auth handler");
    assert.equal(t.server.clientCount, 5);

    const accepted = outcomes.flatMap((o) => (o.client ? [o.client] : []));
    for (const client of accepted) await client.close();
    await waitFor(() => t.server.clientCount === 0, "the hub to empty");
    const again: TestClient[] = [];
    for (let i = 0; i < 5; i++) again.push(await connect(`${t.url}?token=t`));
    assert.equal(await refusedStatus(`${t.url}?token=t`), 503);
    for (const client of again) await client.close();
  });
});

describe("admission: a peer that resets its connection while its auth is pending", () => {
  let t: TestServer;
  let pending: Duplex | undefined;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  before(async () => {
    t = await startServer({}, (server) => {
      server.setAuthHandler(async (ctx) => {
        pending ??= ctx.request?.socket;
        await gate;
        return "user";
      });
    });
  });
  after(() => t.close());

  it("the reset is absorbed (no uncaught socket error), the handshake is dropped, and the next client is served", async () => {
    const peer = await openRaw(t.port);
    peer.socket.write(
      "GET /ws?token=t HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await waitFor(() => pending !== undefined, "the auth handler to start");
    const serverSide = pending!;
    // Not events.once(): it would listen for "error" itself.
    const closed = new Promise<void>((resolve) => serverSide.once("close", () => resolve()));
    peer.socket.resetAndDestroy();
    await within(closed, 5000, "the server's socket to close after the reset");
    // node reports the reset as an "error" on the server's socket (this test adds no listener of its
    // own): had the server none either, the process would have ended here.
    assert.ok(serverSide.listenerCount("error") > 0, "the server listens for errors on a socket in its handshake");
    release();
    const next = await connect(`${t.url}?token=t`);
    assert.equal((await next.request("echo", "served")).type, "echo");
    assert.equal(t.server.clientCount, 1);
    await next.close();
  });
});

describe("admission: closing connections still count", () => {
  let t: TestServer;
  before(async () => {
    // A long shutdownTimeout (ws's closeTimeout) keeps a closed slow consumer's socket, and its
    // unsent bytes, around until it reads its close frame.
    t = await startServer({ maxConnections: 2, maxBufferedBytes: 64 * 1024, droppableBufferedBytes: 0, shutdownTimeout: 30_000 });
  });
  after(() => t.close());

  it("a slow consumer closed with 1013 holds its place under maxConnections until its socket is gone", async () => {
    const slow = await RawWebSocket.connect(t.port);
    await slow.request("join_room", { room: "r" });
    slow.pause();
    const left = new Promise((resolve) => t.server.once("disconnect", resolve));
    const chunk = "c".repeat(16 * 1024);
    for (let i = 0; i < 5000 && t.server.clientCount > 0; i++) {
      t.server.broadcastToRoom("r", "chunk", chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await within(left, 10_000, "the slow consumer to leave the hub");
    assert.equal(t.server.clientCount, 0, "it left the hub at once");

    // Its socket is still open, holding up to maxBufferedBytes: it counts as one of the two.
    const a = await connect(t.url);
    assert.equal(await refusedStatus(t.url), 503);

    // Once it reads its close frame and goes, its place is free again.
    slow.resume();
    await slow.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame", 30_000);
    assert.equal(closeCodeOf(slow.frames.at(-1)!), 1013);
    slow.destroy();
    let b: TestClient | undefined;
    // No event tells the test when the server has seen the socket close: retry, bounded.
    for (let attempt = 0; attempt < 100 && b === undefined; attempt++) {
      b = await connect(t.url).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return undefined;
      });
    }
    assert.ok(b, "accepted again once the closing socket is gone");
    await a.close();
    await b.close();
  });
});

describe("admission: slowloris", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ handshakeTimeout: 500 });
  });
  after(() => t.close());

  function open(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: "127.0.0.1", port });
      const closed = new Promise<void>((done) => socket.once("close", () => done()));
      // Read what the server sends (node's own header timeout answers 408 before it closes): a socket
      // whose received bytes are never read does not report the end of its connection.
      socket.resume();
      socket.on("error", () => {});
      socket.once("connect", () => resolve({ socket, closed }));
      socket.once("error", reject);
    });
  }

  it("50 silent, 50 half-sent and 5 trickling sockets are all closed, while a real client connects and is served", async () => {
    const silent = await Promise.all(Array.from({ length: 50 }, () => open(t.port)));
    const half = await Promise.all(Array.from({ length: 50 }, () => open(t.port)));
    for (const { socket } of half) socket.write("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
    // Tricklers send a header byte every 50 ms: data does not extend the deadline.
    const trickle = await Promise.all(Array.from({ length: 5 }, () => open(t.port)));
    const request = `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${"a".repeat(10_000)}`;
    const timers = trickle.map(({ socket }) => {
      let sent = 0;
      const timer = setInterval(() => {
        if (socket.writable && sent < request.length) socket.write(request[sent++]!);
      }, 50);
      socket.once("close", () => clearInterval(timer));
      return timer;
    });

    try {
      const real = await connect(t.url);
      assert.equal((await real.request("echo", "served")).type, "echo");
      await within(Promise.all([...silent, ...half, ...trickle].map((s) => s.closed)), 20_000, "every slowloris socket to be closed");
      // The real client's connection outlived the handshake timeout and is unaffected.
      assert.equal((await real.request("echo", "still")).type, "echo");
      assert.equal(t.server.clientCount, 1);
      await real.close();
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });
});

describe("admission: what one client can make the server hold", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ rateLimit: false });
  });
  after(() => t.close());

  it("joining 1,000 rooms: the default maxRoomsPerClient (100) are joined, the rest refused, and leaving frees them all", async () => {
    const c = await connect(t.url);
    for (let i = 0; i < 1000; i++) c.send({ type: "join_room", data: { room: `room-${i}` }, id: `j${i}` });
    const replies = [];
    for (let i = 0; i < 1000; i++) replies.push(await c.next((m) => m.id === `j${i}`));
    assert.equal(replies.filter((m) => m.type === "room_joined").length, 100);
    assert.deepEqual(new Set(replies.slice(100).map((m) => m.data.code)), new Set(["too_many_rooms"]));
    assert.equal(t.server.rooms().length, 100);
    await c.close();
    await waitFor(() => t.server.rooms().length === 0, "every room to be deleted");
  });

  it("room names are measured in UTF-16 code units: 64 emoji (128 units) are accepted, 65 refused", async () => {
    const c = await connect(t.url);
    assert.equal((await c.request("join_room", { room: "😀".repeat(64) })).type, "room_joined");
    assert.equal((await c.request("join_room", { room: "😀".repeat(65) })).data.code, "invalid_room");
    // Bidirectional overrides are not control characters; a long run of them is still bounded by length.
    assert.equal((await c.request("join_room", { room: "\u202e".repeat(129) })).data.code, "invalid_room");
    await c.close();
  });
});
