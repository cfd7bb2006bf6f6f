import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Client, DisconnectReason } from "../src/index.js";
import { HeartbeatSweep, type HeartbeatTarget } from "../src/hub/heartbeat.js";
import { connect, type TestClient } from "./helpers/client.js";
import { rawUpgrade, serverFrames } from "./helpers/raw.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, waitFor, within } from "./helpers/wire.js";

const INTERVAL = 80;
const TIMEOUT = 400;

/** Resolves once the client has received `count` ping frames from the server. */
function pings(c: TestClient, count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const onPing = (): void => {
      if (++seen < count) return;
      c.ws.off("ping", onPing);
      resolve();
    };
    c.ws.on("ping", onPing);
  });
}

async function idOf(c: TestClient): Promise<string> {
  return (await c.request("status")).data.client_id as string;
}

describe("heartbeat", () => {
  let t: TestServer;
  const disconnects: Array<{ id: string; reason: DisconnectReason }> = [];
  before(async () => {
    t = await startServer({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT }, (server) => {
      server.on("disconnect", (client: Client, reason) => disconnects.push({ id: client.id, reason }));
    });
  });
  after(() => t.close());

  it("a client that answers pings stays connected long past heartbeatTimeout", async () => {
    const c = await connect(t.url);
    const id = await idOf(c);
    const quietSince = Date.now();
    // Count pings until the client has sent no message for two full timeouts: only its pongs keep it.
    let received = 0;
    while (Date.now() - quietSince < 2 * TIMEOUT + INTERVAL) {
      await within(pings(c, 1), 5000, "a heartbeat ping");
      received++;
    }
    assert.ok(received >= 3, `pinged ${received} times`);
    assert.equal(t.server.getClient(id)?.isOpen, true);
    assert.equal((await c.request("echo", "still here")).type, "echo");
    await c.close();
  });

  it("sends the first ping no earlier than firstPingAfter (here min(80, (400 - 80) / 2) = 80 ms) after the handshake", async () => {
    const c = await connect(t.url);
    const client = t.server.getClient(await idOf(c))!;
    await within(pings(c, 1), 5000, "the first heartbeat ping");
    const age = Date.now() - client.connectedAt.getTime();
    assert.ok(age >= INTERVAL, `first ping ${age} ms after the handshake`);
    await c.close();
  });

  it("last_heartbeat advances after a pong", async () => {
    const c = await connect(t.url);
    const { data } = await c.request("status");
    const before = Date.parse(data.last_heartbeat);
    const client = t.server.getClient(data.client_id)!;
    // The client sends nothing more; only its automatic pongs can move the time forward.
    await within(pings(c, 2), 5000, "two heartbeat pings");
    await waitFor(() => client.lastHeartbeat.getTime() > before, "a pong to update last_heartbeat");
    await c.close();
  });

  it("a client that answers no ping is terminated and removed from the hub and its rooms; members get member_left", async () => {
    const live = await connect(t.url);
    const silent = await connect(t.url, { autoPong: false });
    const [liveId, silentId] = [await idOf(live), await idOf(silent)];
    await live.request("join_room", { room: "hb" });
    await silent.request("join_room", { room: "hb" });
    await silent.request("join_room", { room: "hb-alone" });
    assert.equal((await live.next("member_joined")).data.client_id, silentId);
    // From here the silent client sends nothing and answers no ping.

    const closed = await within(silent.closed, 10_000, "the silent client to be terminated");
    assert.equal(closed.code, 1006, "terminated: the TCP connection ended without a close frame");
    assert.deepEqual(await live.next("member_left", 10_000), {
      type: "member_left",
      data: { room: "hb", client_id: silentId, user_id: null },
    });
    assert.deepEqual(
      disconnects.filter((d) => d.id === silentId),
      [{ id: silentId, reason: "heartbeat_timeout" }],
    );
    assert.equal(t.server.getClient(silentId), undefined);
    assert.deepEqual(
      t.server.getRoomClients("hb").map((c) => c.id),
      [liveId],
    );
    assert.deepEqual(t.server.rooms(), ["hb"], "the silent client's own room is deleted");
    assert.equal(t.server.clientCount, 1);
    assert.deepEqual(await drain(live), []);
    await live.close();
  });

  it("a raw peer that never answers is pinged, then its TCP connection is ended without a close frame", async () => {
    const peer = await rawUpgrade(t.port);
    await within(peer.closed, 10_000, "the raw peer's connection to end");
    const opcodes = serverFrames(peer.bytes()).map((frame) => frame.opcode);
    assert.ok(opcodes.includes(0x9), `received ping frames: ${opcodes.join(",")}`);
    assert.ok(!opcodes.includes(0x8), "no close frame: the server terminated the connection");
    await waitFor(() => t.server.clientCount === 0, "the hub to be empty");
    assert.equal(disconnects.at(-1)?.reason, "heartbeat_timeout");
  });
});

describe("heartbeat sweep in slices", () => {
  /**
   * A stand-in client: the sweep only reads its times, pings it or terminates it. Unless a test says
   * otherwise it connected long ago, so its age never holds back a ping.
   */
  class Target implements HeartbeatTarget {
    pings = 0;
    terminated = false;
    constructor(
      readonly sequence: number,
      public lastHeartbeatMs: number,
      readonly hub: Map<number, Target>,
      readonly connectedAtMs = -1e9,
    ) {}
    ping(): void {
      this.pings++;
    }
    terminate(): void {
      this.terminated = true;
      this.hub.delete(this.sequence);
    }
  }

  function hubOf(count: number, lastHeartbeatMs: number): Map<number, Target> {
    const hub = new Map<number, Target>();
    for (let id = 0; id < count; id++) hub.set(id, new Target(id, lastHeartbeatMs, hub));
    return hub;
  }

  function sweepOf(hub: Map<number, Target>, interval: number, timeout: number): HeartbeatSweep {
    return new HeartbeatSweep(
      interval,
      timeout,
      () => hub.values(),
      () => hub.size,
    );
  }

  it("at the default 30 s, pings a thirtieth of the clients per tick and every client once per pass", () => {
    const hub = hubOf(100, 0);
    const sweep = sweepOf(hub, 30_000, 60_000);
    assert.equal(sweep.slices, 30);
    const perTick: number[] = [];
    let before = 0;
    for (let tick = 0; tick < 25; tick++) {
      sweep.tick(1000);
      const total = [...hub.values()].reduce((sum, target) => sum + target.pings, 0);
      perTick.push(total - before);
      before = total;
    }
    assert.deepEqual(perTick, Array(25).fill(4), "⌈100 / 30⌉ = 4 a tick");
    assert.deepEqual(new Set([...hub.values()].map((target) => target.pings)), new Set([1]), "each pinged once");
    sweep.tick(1000);
    assert.deepEqual(
      [...hub.values()].slice(0, 5).map((target) => target.pings),
      [2, 2, 2, 2, 1],
      "the next pass starts over",
    );
  });

  it("terminates the silent when their turn comes, pings the rest, and goes on past the removed", () => {
    const hub = hubOf(60, 10_000);
    hub.get(1)!.lastHeartbeatMs = 0;
    hub.get(40)!.lastHeartbeatMs = 0;
    const sweep = sweepOf(hub, 3000, 5000); // 30 slices: 2 clients a tick at first
    for (let tick = 0; tick < 30; tick++) sweep.tick(10_000);
    assert.equal(hub.has(1) || hub.has(40), false);
    const survivors = [...hub.values()];
    assert.equal(survivors.length, 58);
    assert.ok(
      survivors.every((target) => target.pings >= 1 && !target.terminated),
      "every other client was pinged",
    );
  });

  it("reaches clients that connect during a pass in that pass", () => {
    const hub = hubOf(30, 0);
    const sweep = sweepOf(hub, 30_000, 60_000);
    sweep.tick(1000);
    hub.set(30, new Target(30, 0, hub));
    for (let tick = 1; tick < 30; tick++) sweep.tick(1000);
    assert.equal(hub.get(30)!.pings, 1);
  });

  it("with an interval below two ticks' minimum, visits every client every tick", () => {
    const hub = hubOf(5, 0);
    const sweep = sweepOf(hub, INTERVAL, TIMEOUT);
    assert.equal(sweep.slices, 1);
    sweep.tick(100);
    sweep.tick(200);
    assert.deepEqual(
      [...hub.values()].map((target) => target.pings),
      [2, 2, 2, 2, 2],
    );
  });

  it("does not ping a client younger than half the slack between timeout and interval, but still ends it if silent", () => {
    const hub = new Map<number, Target>();
    // Connected at 0 and heard from at 0; a second one connected at 0 and then silent.
    hub.set(0, new Target(0, 0, hub, 0));
    const sweep = sweepOf(hub, 1000, 3000); // a slice is at least one client: this one, every tick
    assert.equal(sweep.firstPingAfter, 1000, "min(interval, (3000 - 1000) / 2)");
    sweep.tick(999);
    assert.equal(hub.get(0)!.pings, 0, "999 ms old: not pinged");
    sweep.tick(1000);
    assert.equal(hub.get(0)!.pings, 1, "1,000 ms old: pinged");
    // Its silence counts from the handshake: without a pong it is ended past the timeout all the same.
    const client = hub.get(0)!;
    sweep.tick(3001);
    assert.equal(client.terminated, true);

    // Defaults: 15 s; and with the timeout equal to the interval there is no slack, so pings start at once.
    assert.equal(sweepOf(hub, 30_000, 60_000).firstPingAfter, 15_000);
    assert.equal(sweepOf(hub, 30_000, 30_000).firstPingAfter, 0);
    assert.equal(sweepOf(hub, 1000, 10_000).firstPingAfter, 1000, "never more than an interval");
  });

  it("holds no removed client between ticks (nothing of a closed client stays on the heap)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const hub = hubOf(1000, 0);
    const sweep = sweepOf(hub, 30_000, 60_000);
    sweep.tick(1000); // a pass is under way: 34 of 1,000 visited
    const removed = [...hub.values()].map((target) => new WeakRef(target));
    hub.clear();
    for (let id = 1000; id < 1100; id++) hub.set(id, new Target(id, 0, hub));
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const alive = removed.filter((ref) => ref.deref() !== undefined).length;
    // A sweep that kept the map's iterator between ticks kept a quarter of them (V8 keeps the tables
    // a live iterator points into).
    assert.ok(alive < 10, `${alive} of 1,000 removed clients still on the heap`);
    sweep.tick(1000);
    assert.equal(hub.get(1000)!.pings, 1, "the pass goes on with the clients that came after");
  });
});
