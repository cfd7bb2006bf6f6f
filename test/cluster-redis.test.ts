/**
 * The Redis cluster across processes, and its faults: three node processes with clients spread over
 * them; Redis unreachable at start; Redis lost and restored while serving; Redis restarted with its
 * data lost, members not announced again; a node killed with SIGKILL, and the member_left announced
 * for its members by the node that reaps it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createServer } from "../src/index.js";
import { RedisAdapter } from "../src/adapter/redis/index.js";
import { waitUntil } from "./adapter-contract.js";
import { startNode, stopNode, type NodeProcess } from "./helpers/cluster.js";
import { connect, type TestClient } from "./helpers/client.js";
import { redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";
import { startServer, type TestServer } from "./helpers/server.js";

const skip = redisSkipReason();

/** Connects to `node`, keeps the client in `clients` for the suite's cleanup, and reads its id. */
async function openTracked(node: TestServer, clients: TestClient[]): Promise<{ client: TestClient; id: string }> {
  const client = await connect(node.url);
  clients.push(client);
  return { client, id: (await client.request("status")).data.client_id as string };
}

/** Waits for `marker` at each client, then counts `type` received before it. */
async function counts(clients: TestClient[], type: string, marker: string): Promise<number[]> {
  await Promise.all(clients.map((c) => c.next(marker, 10_000)));
  return clients.map((c) => c.received.filter((m) => m.type === type).length);
}

describe("redis cluster across processes", { skip }, () => {
  let redis: TestRedis;
  let nodes: NodeProcess[] = [];
  let observer: TestServer;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([startNode(redis.url), startNode(redis.url), startNode(redis.url)]);
    // An in-process node that watches the cluster's views (nodes(), with the same short timeouts).
    observer = await startServer({ adapter: new RedisAdapter({ url: redis.url, heartbeatInterval: 100, nodeTimeout: 1000 }) });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => stopNode(n)));
    await observer.close();
    await redis.stop();
  });

  it("room broadcasts and broadcasts to all arrive exactly once at exactly the right clients", async () => {
    const group: TestClient[] = [];
    for (let i = 0; i < 6; i++) group.push(await connect(nodes[i % 3]!.url));
    clients.push(...group);
    const members = group.slice(0, 4);
    const others = group.slice(4);
    for (const member of members) await member.request("join_room", { room: "procs" });
    for (const other of others) await other.request("join_room", { room: "elsewhere" });

    await members[1]!.request("broadcast", { room: "procs", type: "room-msg", payload: 1 });
    await members[1]!.request("broadcast", { room: "procs", type: "room-end", payload: null });
    assert.deepEqual(await counts(members, "room-msg", "room-end"), [1, 1, 1, 1]);

    await others[0]!.request("broadcast", { type: "all-msg", payload: 2 });
    await others[0]!.request("broadcast", { type: "all-end", payload: null });
    assert.deepEqual(await counts(group, "all-msg", "all-end"), [1, 1, 1, 1, 1, 1]);
    for (const other of others) assert.equal(other.received.filter((m) => m.type === "room-msg").length, 0);
  });

  it("a node killed with SIGKILL: the others keep serving, its clients reconnect elsewhere, it leaves the views", async () => {
    const victim = nodes[2]!;
    const survivor = await connect(nodes[0]!.url);
    const orphan = await connect(victim.url);
    clients.push(survivor, orphan);
    await survivor.request("join_room", { room: "kill" });
    await orphan.request("join_room", { room: "kill" });
    const orphanId: string = (await orphan.request("status")).data.client_id;
    const { data: before } = await survivor.request("presence", { room: "kill" });
    assert.equal(before.count, 2);
    assert.ok(
      (await observer.server.nodes()).some((n) => n.nodeId === victim.nodeId),
      "the victim is listed while alive",
    );

    await stopNode(victim, "SIGKILL");
    const closed = await orphan.closed;
    assert.equal(closed.code, 1006, "the orphan sees its connection drop");

    // The orphan reconnects to a surviving node and rejoins (what the SDK does by itself).
    const rejoined = await connect(nodes[1]!.url);
    clients.push(rejoined);
    await rejoined.request("join_room", { room: "kill" });
    await survivor.request("broadcast", { room: "kill", type: "after-kill", payload: null });
    assert.deepEqual((await rejoined.next("after-kill")).data, null);

    // Within nodeTimeout (1 s) plus a heartbeat, the dead node and its member leave every view.
    await waitUntil(async () => {
      const { data } = await survivor.request("presence", { room: "kill" });
      const ids = data.members.map((m: { client_id: string }) => m.client_id);
      return data.count === 2 && !ids.includes(orphanId);
    });
    await waitUntil(async () => !(await observer.server.nodes()).some((n) => n.nodeId === victim.nodeId));
    nodes = nodes.slice(0, 2);
  });
});

describe("redis faults", { skip }, () => {
  it("Redis unreachable at start: start() rejects with a clear error naming the address", async () => {
    const server = createServer({ adapter: new RedisAdapter({ url: "redis://127.0.0.1:1", connectTimeout: 500 }) });
    await assert.rejects(server.start(), /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    await server.shutdown();
  });

  describe("Redis lost while serving", () => {
    let redis: TestRedis;
    let a: TestServer;
    let b: TestServer;
    let adapterA: RedisAdapter;
    let adapterB: RedisAdapter;
    before(async () => {
      redis = await startRedis();
      adapterA = new RedisAdapter({ url: redis.url });
      adapterB = new RedisAdapter({ url: redis.url });
      a = await startServer({ adapter: adapterA });
      b = await startServer({ adapter: adapterB });
    });
    after(async () => {
      await a.close();
      await b.close();
      await redis.stop();
    });

    it("local delivery continues, publications are dropped not queued, cross-node delivery resumes after reconnect", async () => {
      const onA1 = await connect(a.url);
      const onA2 = await connect(a.url);
      const onB = await connect(b.url);
      for (const c of [onA1, onA2, onB]) await c.request("join_room", { room: "outage" });

      await redis.stop();
      await waitUntil(() => !adapterA.stats.connected);
      const failedBefore = adapterA.stats.publishFailed;
      await onA1.request("broadcast", { room: "outage", type: "during", payload: 1 });
      assert.deepEqual((await onA2.next("during")).data, 1, "a local member still receives");
      assert.ok(adapterA.stats.publishFailed > failedBefore, "the cross-node copy was dropped and counted");
      // A join during the outage is answered at once, not held until Redis returns.
      const joined = await onA2.request("join_room", { room: "outage-2" });
      assert.equal(joined.type, "room_joined");

      await redis.restart();
      await waitUntil(() => adapterA.stats.connected && adapterB.stats.connected);
      // Resubscription happens right after reconnect; retry the probe until B's member hears A again.
      let probe = 0;
      await waitUntil(async () => {
        probe++;
        await onA1.request("broadcast", { room: "outage", type: "after", payload: probe });
        return onB.received.some((m) => m.type === "after");
      });
      await Promise.all([onA1.close(), onA2.close(), onB.close()]);
    });
  });
});

describe("presence events across nodes", { skip }, () => {
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    a = await startServer({ adapter: new RedisAdapter({ url: redis.url }), presenceEventsMaxMembers: 2 });
    b = await startServer({ adapter: new RedisAdapter({ url: redis.url }), presenceEventsMaxMembers: 2 });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await a.close();
    await b.close();
    await redis.stop();
  });

  const open = (node: TestServer): Promise<{ client: TestClient; id: string }> => openTracked(node, clients);

  /** The client ids `client` was told joined, once `marker` (broadcast after the joins) arrived. */
  async function joinsSeen(client: TestClient, marker: string): Promise<string[]> {
    await client.next(marker, 10_000);
    return client.received.filter((m) => m.type === "member_joined").map((m) => (m.data as { client_id: string }).client_id);
  }

  it("a join on one node is announced to the members on another", async () => {
    const onB = await open(b);
    const onA = await open(a);
    await onB.client.request("join_room", { room: "small" });
    await onA.client.request("join_room", { room: "small" });
    await onA.client.request("broadcast", { room: "small", type: "small-end", payload: null });
    assert.deepEqual(await joinsSeen(onB.client, "small-end"), [onA.id]);
  });

  it("presenceEventsMaxMembers applies per node: a node holding more of the room than that pushes none", async () => {
    // Node B holds three members of "large" (above the limit of 2), node A two (at the limit).
    const onB = [await open(b), await open(b), await open(b)];
    const onA = [await open(a), await open(a)];
    for (const { client } of [...onB, ...onA]) await client.request("join_room", { room: "large" });
    await onA[1]!.client.request("broadcast", { room: "large", type: "large-end", payload: null });
    // B announced its second member to its first and no more; none of A's joins reached B's members.
    assert.deepEqual(await joinsSeen(onB[0]!.client, "large-end"), [onB[1]!.id]);
    assert.deepEqual(await joinsSeen(onB[1]!.client, "large-end"), []);
    assert.deepEqual(await joinsSeen(onB[2]!.client, "large-end"), []);
    // A, at the limit, still announces A's second member to A's first.
    assert.deepEqual(await joinsSeen(onA[0]!.client, "large-end"), [onA[1]!.id]);
  });
});

describe("a node that stops reporting: its members announced gone, and back if it was only stalled", { skip }, () => {
  let redis: TestRedis;
  let survivor: TestServer;
  let doomed: NodeProcess;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    // Both with the fault tests' short liveness settings (a report every 100 ms, dead after 1 s).
    survivor = await startServer({
      adapter: new RedisAdapter({ url: redis.url, heartbeatInterval: 100, nodeTimeout: 1000 }),
      presenceEventsMaxMembers: 10,
    });
    doomed = await startNode(redis.url, 10);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stopNode(doomed);
    await survivor.close();
    await redis.stop();
  });

  /**
   * A watcher on the survivor and a member on the doomed node in `room`; resolves once the watcher
   * was told the member joined, with what presence events about the member carry.
   */
  async function watchedMember(room: string): Promise<{ watcher: TestClient; remote: TestClient; member: object }> {
    const watcher = await connect(survivor.url);
    const remote = await connect(doomed.url);
    clients.push(watcher, remote);
    await watcher.request("join_room", { room });
    const member = { room, client_id: (await remote.request("status")).data.client_id as string, user_id: null };
    await remote.request("join_room", { room });
    assert.deepEqual((await watcher.next("member_joined", 10_000)).data, member);
    return { watcher, remote, member };
  }

  it("a node stalled past nodeTimeout (SIGSTOP) is reaped; when it resumes it rejoins and announces its members again", async () => {
    const { watcher, remote: stalled, member } = await watchedMember("stall");

    doomed.child.kill("SIGSTOP");
    try {
      assert.deepEqual((await watcher.next("member_left", 10_000)).data, member);
      assert.equal((await watcher.request("presence", { room: "stall" })).data.count, 1);
    } finally {
      doomed.child.kill("SIGCONT");
    }
    // On its next report it finds itself removed, writes its memberships back and says so.
    assert.deepEqual((await watcher.next("member_joined", 10_000)).data, member);
    assert.equal((await watcher.request("presence", { room: "stall" })).data.count, 2);
    // Its client was never disconnected, and never told about itself.
    assert.equal((await stalled.request("echo", "still here")).type, "echo");
    assert.equal(stalled.received.filter((m) => m.type === "member_left" || m.type === "member_joined").length, 0);
    await watcher.request("leave_room", { room: "stall" });
  });

  it("a node killed with SIGKILL cannot say its members left: the node that reaps it says it for them", async () => {
    const { watcher, member } = await watchedMember("wake");
    await stopNode(doomed, "SIGKILL");
    // Within nodeTimeout (1 s) plus a report, the survivor reaps the dead node and announces its member.
    assert.deepEqual((await watcher.next("member_left", 10_000)).data, member);
    const { data } = await watcher.request("presence", { room: "wake" });
    assert.equal(data.count, 1);
  });
});

describe("a Redis restart that lost its data", { skip }, () => {
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  let adapterA: RedisAdapter;
  let adapterB: RedisAdapter;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    adapterA = new RedisAdapter({ url: redis.url });
    adapterB = new RedisAdapter({ url: redis.url });
    a = await startServer({ adapter: adapterA });
    b = await startServer({ adapter: adapterB });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await a.close();
    await b.close();
    await redis.stop();
  });

  const open = (node: TestServer): Promise<{ client: TestClient; id: string }> => openTracked(node, clients);

  /** The presence events `client` has received so far, as "member_joined <client id>". */
  function presenceEvents(client: TestClient): string[] {
    return client.received
      .filter((m) => m.type === "member_joined" || m.type === "member_left")
      .map((m) => `${m.type} ${(m.data as { client_id: string }).client_id}`);
  }

  /** Broadcasts `marker` to `room` from `from` and waits until every one of `to` has it. */
  async function fence(from: TestClient, to: TestClient[], room: string, marker: string): Promise<void> {
    await from.request("broadcast", { room, type: marker, payload: null });
    await Promise.all(to.map((c) => c.next(marker, 10_000)));
  }

  /** Restarts Redis (every key lost), then waits until each node's members hear the other node again. */
  async function restartRedis(room: string, onA: TestClient, onB: TestClient, stopped?: () => Promise<void>): Promise<void> {
    await redis.stop();
    await waitUntil(() => !adapterA.stats.connected && !adapterB.stats.connected);
    await stopped?.();
    await redis.restart();
    await waitUntil(() => adapterA.stats.connected && adapterB.stats.connected);
    // Resubscription follows the reconnect: probe each way until the other node's member hears it.
    for (const [from, to] of [
      [onA, onB],
      [onB, onA],
    ] as const) {
      let probe = 0;
      await waitUntil(async () => {
        probe++;
        await from.request("broadcast", { room, type: "probe", payload: probe });
        return to.received.some((m) => m.type === "probe");
      });
    }
  }

  it("members who never left are not announced again; broadcasts cross nodes again; a later join is announced once", async () => {
    const room = "restart";
    const members = [await open(a), await open(a), await open(b), await open(b)];
    for (const { client } of members) await client.request("join_room", { room });
    const all = members.map((m) => m.client);
    await fence(all[3]!, all, room, "joined");
    const before = all.map(presenceEvents);

    await restartRedis(room, all[0]!, all[2]!);
    // Every node is listed again and wrote its members back: the cluster's view is whole.
    await waitUntil(async () => (await a.server.roomSize(room)) === 4 && (await b.server.roomSize(room)) === 4);
    await fence(all[0]!, all, room, "after-restart");

    // A member who really joins after the restart is announced, once, on both nodes.
    const late = await open(b);
    await late.client.request("join_room", { room });
    await fence(late.client, [...all, late.client], room, "late-joined");
    const since = all.map((client, i) => presenceEvents(client).slice(before[i]!.length));
    assert.deepEqual(since, [
      [`member_joined ${late.id}`],
      [`member_joined ${late.id}`],
      [`member_joined ${late.id}`],
      [`member_joined ${late.id}`],
    ]);
    assert.deepEqual(presenceEvents(late.client), []);
  });

  it("a leave and a join while Redis was away are announced to the other node once it is back", async () => {
    const room = "restart-outage";
    const [a1, a2, b1, b2] = [await open(a), await open(a), await open(b), await open(b)];
    for (const { client } of [a1, a2, b1, b2]) await client.request("join_room", { room });
    await fence(b2.client, [a1.client, a2.client, b1.client, b2.client], room, "joined");
    const watchers = [a1.client, a2.client, b1.client];
    const before = watchers.map(presenceEvents);

    let a3: { client: TestClient; id: string } | undefined;
    await restartRedis(room, a1.client, b1.client, async () => {
      // While Redis is away: one member on B leaves, a new one joins on A.
      await b2.client.close();
      a3 = await open(a);
      await a3.client.request("join_room", { room });
    });
    const joiner = a3!;
    // Each node tells the other what it could not publish during the outage, a few seconds later.
    await a1.client.next((m) => m.type === "member_left" && m.data.client_id === b2.id, 10_000);
    await b1.client.next((m) => m.type === "member_joined" && m.data.client_id === joiner.id, 10_000);
    await fence(a1.client, [...watchers, joiner.client], room, "settled");
    const since = watchers.map((client, i) => presenceEvents(client).slice(before[i]!.length));
    assert.deepEqual(since, [
      [`member_joined ${joiner.id}`], // a1: the join was local; the leave was consumed above
      [`member_joined ${joiner.id}`, `member_left ${b2.id}`],
      [`member_left ${b2.id}`], // b1: the leave was local; the join was consumed above
    ]);
    // a1, a2, a3 and b1, seen alike from both nodes.
    for (const { client } of [a1, b1]) {
      const { data } = await client.request("presence", { room });
      const ids = data.members.map((m: { client_id: string }) => m.client_id).sort();
      assert.deepEqual(ids, [a1.id, a2.id, joiner.id, b1.id].sort());
    }
  });
});
