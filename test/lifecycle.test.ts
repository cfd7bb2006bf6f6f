import assert from "node:assert/strict";
import { connect as netConnect, type NetConnectOpts, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type WebSocket from "ws";
import type { Client, DisconnectReason } from "../src/index.js";
import { connect, type TestClient } from "./helpers/client.js";
import { rawUpgrade, serverFrames } from "./helpers/raw.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { waitFor, within } from "./helpers/wire.js";

/** Records the server's connection and disconnect events, and lets a test await one client's end. */
function recordEvents(t: TestServer) {
  const connected: Array<{ id: string; userId: string | null }> = [];
  const ended = new Map<string, DisconnectReason>();
  const waiters = new Map<string, (reason: DisconnectReason) => void>();
  t.server.on("connection", (client: Client) => connected.push({ id: client.id, userId: client.userId }));
  // Broken expectations are collected, not thrown: a throw here would surface inside the server.
  const problems: string[] = [];
  t.server.on("disconnect", (client: Client, reason) => {
    if (ended.has(client.id)) problems.push(`second disconnect event for ${client.id}`);
    // The event comes after the client has left the hub and every room.
    if (t.server.getClient(client.id) !== undefined) problems.push(`${client.id} still in the hub at its disconnect`);
    if (client.rooms.size !== 0) problems.push(`${client.id} still in rooms at its disconnect`);
    ended.set(client.id, reason);
    waiters.get(client.id)?.(reason);
  });
  return {
    connected,
    ended,
    problems,
    disconnected(id: string): Promise<DisconnectReason> {
      const known = ended.get(id);
      if (known !== undefined) return Promise.resolve(known);
      return within(new Promise((resolve) => waiters.set(id, resolve)), 10_000, `disconnect of ${id}`);
    },
  };
}

async function idOf(c: TestClient): Promise<string> {
  return (await c.request("status")).data.client_id as string;
}

/** The TCP socket of the last client connected with {@link keepSocket}: ws's public way to supply one. */
let keptSocket: Socket | undefined;
const keepSocket = (options: NetConnectOpts): Socket => {
  keptSocket = netConnect(options);
  return keptSocket;
};

interface Ending {
  name: string;
  connectOptions?: WebSocket.ClientOptions;
  end(c: TestClient, t: TestServer, id: string): void | Promise<void>;
  reason: DisconnectReason;
}

const endings: Ending[] = [
  { name: "close frame from the client", end: (c) => void c.ws.close(1000, "done"), reason: "client_closed" },
  { name: "TCP end without a close frame", end: (c) => c.ws.terminate(), reason: "client_closed" },
  {
    name: "TCP reset",
    // A reset is what a crashed peer or a middlebox produces.
    connectOptions: { createConnection: keepSocket as WebSocket.ClientOptions["createConnection"] },
    end: () => void keptSocket!.resetAndDestroy(),
    reason: "client_closed",
  },
  { name: "heartbeat timeout", connectOptions: { autoPong: false }, end: () => {}, reason: "heartbeat_timeout" },
  {
    name: "client.close() from server code",
    end: (_c, t, id) => t.server.getClient(id)!.close(4001, "bye"),
    reason: "server_closed",
  },
];

describe("lifecycle: every kind of end removes the client from the hub and every room", () => {
  let t: TestServer;
  let events: ReturnType<typeof recordEvents>;
  before(async () => {
    t = await startServer({ heartbeatInterval: 80, heartbeatTimeout: 400 });
    events = recordEvents(t);
  });
  after(() => t.close());

  for (const ending of endings) {
    it(ending.name, async () => {
      const c = await connect(t.url, ending.connectOptions ?? {});
      const id = await idOf(c);
      assert.deepEqual(events.connected.at(-1), { id, userId: null }, "connection event with the new client");
      for (const room of ["alpha", "beta"]) await c.request("join_room", { room });
      assert.deepEqual(t.server.rooms().sort(), ["alpha", "beta"]);
      assert.equal(t.server.clientCount, 1);

      await ending.end(c, t, id);
      assert.equal(await events.disconnected(id), ending.reason);
      assert.equal(t.server.clientCount, 0);
      assert.deepEqual(t.server.rooms(), [], "empty rooms are deleted");
      assert.deepEqual(t.server.getRoomClients("alpha"), []);
      assert.equal(await t.server.roomSize("beta"), 0);
      const closed = await within(c.closed, 10_000, "the client to see its connection end");
      if (ending.reason === "server_closed") assert.deepEqual(closed, { code: 4001, reason: "bye" });
      assert.deepEqual(events.problems, []);
    });
  }
});

describe("lifecycle: graceful shutdown", () => {
  it("sends close 1001 to every client after the messages queued before it, then resolves and refuses new connections", async () => {
    const t = await startServer();
    const events = recordEvents(t);
    const clients = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    const ids = await Promise.all(clients.map(idOf));
    await clients[0]!.request("join_room", { room: "r" });
    await clients[1]!.request("join_room", { room: "r" });
    await clients[0]!.next("member_joined");

    // What each client holds in its queue when it sees the close frame.
    const atClose = clients.map((c) => c.closed.then((info) => ({ info, types: c.received.map((m) => m.type) })));

    t.server.broadcastToRoom("r", "room-news", 1);
    t.server.broadcast("global-news", 2);
    const BURST = 300;
    for (let n = 0; n < BURST; n++) t.server.sendTo(ids[2]!, "item", { n, pad: "x".repeat(100) });
    await within(t.server.shutdown(), 10_000, "shutdown to resolve");

    const seen = await Promise.all(atClose);
    for (const [i, { info, types }] of seen.entries()) {
      assert.equal(info.code, 1001, `client ${i} gets close 1001`);
      assert.ok(types.includes("global-news"), `client ${i} got the broadcast before the close frame`);
    }
    assert.ok(seen[0]!.types.includes("room-news") && seen[1]!.types.includes("room-news"));
    assert.ok(!seen[2]!.types.includes("room-news"));
    const items = clients[2]!.received.filter((m) => m.type === "item").map((m) => m.data.n as number);
    assert.deepEqual(
      items,
      Array.from({ length: BURST }, (_, n) => n),
      "every queued message, in order, before the close",
    );

    assert.equal(t.server.clientCount, 0);
    assert.deepEqual(t.server.rooms(), []);
    for (const id of ids) assert.equal(events.ended.get(id), "server_shutdown");
    assert.deepEqual(events.problems, []);
    assert.equal(t.server.isShuttingDown, true);
    await assert.rejects(connect(t.url), "no connection after shutdown");
    assert.equal(t.server.shutdown(), t.server.shutdown(), "shutdown() is idempotent");
  });

  it("terminates a client that ignores the closing handshake after shutdownTimeout", async () => {
    const t = await startServer({ shutdownTimeout: 300 });
    const polite = await connect(t.url);
    const stubborn = await rawUpgrade(t.port);
    await waitFor(() => t.server.clientCount === 2, "both clients in the hub");

    await within(t.server.shutdown(), 10_000, "shutdown to resolve despite the stubborn peer");
    assert.equal((await polite.closed).code, 1001);
    await within(stubborn.closed, 10_000, "the stubborn peer's TCP connection to end");
    const closes = serverFrames(stubborn.bytes()).filter((frame) => frame.opcode === 0x8);
    assert.equal(closes.length, 1, "the stubborn peer was sent one close frame");
    assert.equal(closes[0]!.payload.readUInt16BE(0), 1001);
    assert.equal(t.server.clientCount, 0);
  });
});
