/**
 * The adapter contract: one suite, run against every adapter (test/adapter-memory.test.ts,
 * test/adapter-redis.test.ts), so the implementations cannot drift apart.
 *
 * A "cluster" here is one or more servers built with the adapter under test; clients are spread over
 * them round-robin. For the memory adapter the cluster is one server; for Redis it is several, and the
 * same assertions must hold across nodes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Adapter } from "../src/index.js";
import { connect, type TestClient } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";

/** How the contract builds a cluster for an adapter. */
export interface ContractSetup {
  /** How many nodes to start (1 for adapters that do not cluster). */
  nodes: number;
  /** A fresh adapter for one node. */
  makeAdapter(): Adapter;
}

/** Registers the contract's tests for one adapter. */
export function runAdapterContract(name: string, setup: () => ContractSetup | Promise<ContractSetup>): void {
  describe(`adapter contract: ${name}`, () => {
    let nodes: TestServer[] = [];
    const clients: TestClient[] = [];
    let contract: ContractSetup | undefined;

    before(async () => {
      contract = await setup();
      const { nodes: count, makeAdapter } = contract;
      for (let i = 0; i < count; i++) {
        nodes.push(await startServer({ adapter: makeAdapter(), presenceEventsMaxMembers: 0 }));
      }
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(nodes.map((n) => n.close()));
      nodes = [];
    });

    /** Opens `count` clients spread over the nodes. */
    async function spread(count: number): Promise<TestClient[]> {
      const opened: TestClient[] = [];
      for (let i = 0; i < count; i++) opened.push(await connect(nodes[i % nodes.length]!.url));
      clients.push(...opened);
      return opened;
    }

    /** Waits for `marker` at every client, then returns how often each received `type` before it. */
    async function countUntilMarker(recipients: TestClient[], type: string, marker: string): Promise<number[]> {
      await Promise.all(recipients.map((c) => c.next(marker, 10_000)));
      return recipients.map((c) => c.received.filter((m) => m.type === type).length);
    }

    it("a room broadcast reaches every member on every node exactly once, and no one else", async () => {
      const [a, b, c, outsider] = await spread(4);
      for (const member of [a!, b!, c!]) await member.request("join_room", { room: "contract-1" });
      await outsider!.request("join_room", { room: "contract-other" });
      await a!.request("broadcast", { room: "contract-1", type: "hello", payload: { n: 1 } });
      await a!.request("broadcast", { room: "contract-1", type: "marker-1", payload: null });
      assert.deepEqual(await countUntilMarker([a!, b!, c!], "hello", "marker-1"), [1, 1, 1]);
      await outsider!.request("broadcast", { room: "contract-other", type: "marker-1b", payload: null });
      await outsider!.next("marker-1b");
      assert.equal(outsider!.received.filter((m) => m.type === "hello").length, 0);
      assert.deepEqual(
        b!.received.find((m) => m.type === "hello"),
        { type: "hello", data: { n: 1 } },
      );
    });

    it("a broadcast to all reaches every client on every node exactly once", async () => {
      const group = await spread(4);
      nodes[0]!.server.broadcast("everyone", { x: 1 });
      nodes[0]!.server.broadcast("marker-2", null);
      const counts = await countUntilMarker(group, "everyone", "marker-2");
      assert.deepEqual(counts, [1, 1, 1, 1]);
    });

    it("server.broadcastToRoom on one node reaches members on all nodes", async () => {
      const group = await spread(3);
      for (const member of group) await member.request("join_room", { room: "contract-3" });
      nodes[nodes.length - 1]!.server.broadcastToRoom("contract-3", "from-server", "hi");
      nodes[nodes.length - 1]!.server.broadcastToRoom("contract-3", "marker-3", null);
      assert.deepEqual(await countUntilMarker(group, "from-server", "marker-3"), [1, 1, 1]);
    });

    it("sendTo reaches a client on whichever node holds it", async () => {
      const group = await spread(nodes.length + 1);
      for (const target of group) {
        const { data } = await target.request("status");
        nodes[0]!.server.sendTo(data.client_id, "direct", { to: data.client_id });
        const got = await target.next("direct");
        assert.deepEqual(got.data, { to: data.client_id });
      }
    });

    it("room members and size are cluster-wide, and follow joins and leaves", async () => {
      const group = await spread(3);
      const ids: string[] = [];
      for (const member of group) {
        await member.request("join_room", { room: "contract-5" });
        ids.push((await member.request("status")).data.client_id);
      }
      for (const node of nodes) {
        assert.equal(await node.server.roomSize("contract-5"), 3);
        const members = await node.server.roomMembers("contract-5");
        assert.deepEqual(members.map((m) => m.clientId).sort(), [...ids].sort());
      }
      await group[1]!.request("leave_room", { room: "contract-5" });
      for (const node of nodes) await waitUntil(async () => (await node.server.roomSize("contract-5")) === 2);
      await group[2]!.close();
      await waitUntil(async () => (await nodes[0]!.server.roomSize("contract-5")) === 1);
    });

    it("the presence reply lists members from every node", async () => {
      const group = await spread(3);
      for (const member of group) await member.request("join_room", { room: "contract-6" });
      const { data } = await group[0]!.request("presence", { room: "contract-6" });
      assert.equal(data.room, "contract-6");
      assert.equal(data.count, 3);
      assert.equal(data.members.length, 3);
      for (const member of data.members) assert.deepEqual(Object.keys(member).sort(), ["client_id", "user_id"]);
    });

    it("nodes() lists every live node with its client count", async () => {
      const listed = await nodes[0]!.server.nodes();
      assert.deepEqual(listed.map((n) => n.nodeId).sort(), nodes.map((n) => n.server.nodeId).sort());
      for (const node of listed) assert.equal(typeof node.clients, "number");
    });

    // Users need an auth handler, and a server with one refuses the token-less clients above: these
    // cases run on nodes of their own (the token is the user id).
    describe("users and disconnects", () => {
      const userNodes: TestServer[] = [];
      const userClients: TestClient[] = [];

      before(async () => {
        for (let i = 0; i < contract!.nodes; i++) {
          userNodes.push(
            await startServer({ adapter: contract!.makeAdapter(), presenceEventsMaxMembers: 0 }, (server) =>
              server.setAuthHandler((_ctx, token) => token),
            ),
          );
        }
      });

      after(async () => {
        await Promise.all(userClients.map((c) => c.close()));
        await Promise.all(userNodes.map((n) => n.close()));
      });

      /** Opens one connection of `userId` on every node. */
      async function onEveryNode(userId: string): Promise<TestClient[]> {
        const opened = await Promise.all(userNodes.map((node) => connect(`${node.url}?token=${userId}`)));
        userClients.push(...opened);
        return opened;
      }

      it("sendToUser reaches every connection of the user on every node exactly once, and no one else", async () => {
        const alice = await onEveryNode("alice");
        const [bob] = await onEveryNode("bob");
        userNodes[0]!.server.sendToUser("alice", "for-alice", { n: 1 });
        userNodes[0]!.server.sendToUser("alice", "marker-u", null);
        assert.deepEqual(
          await countUntilMarker(alice, "for-alice", "marker-u"),
          alice.map(() => 1),
        );
        assert.deepEqual(
          alice[alice.length - 1]!.received.find((m) => m.type === "for-alice"),
          { type: "for-alice", data: { n: 1 } },
        );
        userNodes[0]!.server.sendToUser("bob", "marker-bob", null);
        await bob!.next("marker-bob");
        assert.equal(bob!.received.filter((m) => m.type === "for-alice").length, 0);
      });

      it("disconnectUser closes every connection of the user on every node with 4003", async () => {
        const carol = await onEveryNode("carol");
        const [dave] = await onEveryNode("dave");
        userNodes[userNodes.length - 1]!.server.disconnectUser("carol");
        for (const closed of await Promise.all(carol.map((c) => c.closed))) {
          assert.deepEqual(closed, { code: 4003, reason: "disconnected" });
        }
        assert.equal((await dave!.request("status")).type, "status");
      });

      it("disconnectClient closes the one client on whichever node holds it, with the code and reason given", async () => {
        const erin = await onEveryNode("erin");
        const target = erin[erin.length - 1]!;
        const { data } = await target.request("status");
        userNodes[0]!.server.disconnectClient(data.client_id, { code: 4010, reason: "moved" });
        assert.deepEqual(await target.closed, { code: 4010, reason: "moved" });
        for (const other of erin.slice(0, -1)) assert.equal((await other.request("status")).type, "status");
      });
    });
  });
}

/** Polls an async condition (for views that settle through another system, such as Redis). */
export async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
