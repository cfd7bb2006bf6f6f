/**
 * The server API across two nodes over a real Redis: each node is the standalone server's serve() in
 * this process, with its own API, so a call to node 1 must act on node 2's clients too.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { ConduitApi, ConduitApiError } from "../src/api/index.js";
import { parseConfig, type CliConfig } from "../src/cli/config.js";
import { serve, type RunningServer } from "../src/cli/serve.js";
import { silentLogger } from "../src/logger.js";
import { waitUntil } from "./adapter-contract.js";
import { connect, type TestClient } from "./helpers/client.js";
import { redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";

const KEY = "cluster-api-key-0123456789abcdef";
const SECRET = "a-jwt-secret-of-at-least-32-bytes-for-tests";
const skip = redisSkipReason();

function token(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).sign(new TextEncoder().encode(SECRET));
}

describe("server API on two nodes over Redis", { skip }, () => {
  let redis: TestRedis;
  const nodes: RunningServer[] = [];
  const apis: ConduitApi[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const outcome = parseConfig(
        ["--port", "0", "--host", "127.0.0.1", "--redis", redis.url, "--api-key", KEY, "--jwt-secret", SECRET],
        {},
      );
      const node = await serve((outcome as { config: CliConfig }).config, silentLogger);
      nodes.push(node);
      apis.push(new ConduitApi({ url: node.url.replace(/^ws:/, "http:").replace(/\/ws$/, ""), apiKey: KEY }));
    }
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  async function open(node: number, userId: string): Promise<TestClient> {
    const client = await connect(`${nodes[node]!.url}?token=${await token(userId)}`);
    clients.push(client);
    return client;
  }

  it("a publish through node 1's API reaches the members on node 2 exactly once", async () => {
    const [local, remote] = [await open(0, "p1"), await open(1, "p2")];
    for (const member of [local, remote]) await member.request("join_room", { room: "game:7" });
    assert.deepEqual(await apis[0]!.publish("game:7", "move", { to: "e4" }), {});
    await apis[0]!.publish("game:7", "marker", null);
    for (const member of [local, remote]) {
      await member.next("marker");
      assert.deepEqual(
        member.received.filter((m) => m.type === "move"),
        [{ type: "move", data: { to: "e4" } }],
      );
    }
    const presence = await apis[1]!.presence("game:7");
    assert.equal(presence.count, 2);
    assert.deepEqual(presence.members.map((m) => m.user_id).sort(), ["p1", "p2"]);
  });

  it("a broadcast through node 2's API reaches clients on both nodes once", async () => {
    const [a, b] = [await open(0, "b1"), await open(1, "b2")];
    await apis[1]!.broadcast("siren", 1);
    await apis[1]!.broadcast("marker-b", null);
    for (const client of [a, b]) {
      await client.next("marker-b");
      assert.equal(client.received.filter((m) => m.type === "siren").length, 1);
    }
  });

  it("a user's connections on both nodes each get a send once, and a disconnect closes them all", async () => {
    const connections = [await open(0, "uma"), await open(1, "uma"), await open(1, "uma")];
    const bystander = await open(0, "vic");
    await apis[0]!.send({ userId: "uma" }, "notice", { unread: 3 });
    await apis[0]!.send({ userId: "uma" }, "marker-u", null);
    for (const client of connections) {
      await client.next("marker-u");
      assert.deepEqual(
        client.received.filter((m) => m.type === "notice"),
        [{ type: "notice", data: { unread: 3 } }],
      );
    }
    const { data } = await connections[2]!.request("status");
    await apis[0]!.send({ clientId: data.client_id }, "just-you", null);
    await connections[2]!.next("just-you");

    await apis[1]!.disconnect({ userId: "uma" });
    for (const closed of await Promise.all(connections.map((c) => c.closed))) {
      assert.deepEqual(closed, { code: 4003, reason: "disconnected" });
    }
    assert.equal((await bystander.request("status")).type, "status");
    const other = await open(1, "wes");
    const { data: otherStatus } = await other.request("status");
    await apis[0]!.disconnect({ clientId: otherStatus.client_id }, { code: 4100, reason: "moved" });
    assert.deepEqual(await other.closed, { code: 4100, reason: "moved" });
  });

  it("info counts both nodes and their connections", async () => {
    const open0 = clients.filter((c) => c.ws.readyState === c.ws.OPEN);
    // The other node's count is the one it last reported (every heartbeat), so it may lag.
    await waitUntil(async () => {
      const info = await apis[0]!.info();
      return info.nodes.length === 2 && info.connections === open0.length;
    }, 15_000);
    const info = await apis[1]!.info();
    assert.equal(info.nodes.length, 2);
    assert.equal(info.connections, info.nodes[0]!.connections + info.nodes[1]!.connections);
  });

  it("info is 503 unavailable rather than this node alone while Redis is unreachable (runs last: it stops Redis)", async () => {
    await redis.stop();
    // The node learns of the loss from its connection's close event: poll until it has.
    let last: unknown;
    await waitUntil(async () => {
      try {
        await apis[0]!.info();
        return false;
      } catch (error) {
        last = error;
        return true;
      }
    });
    assert.ok(last instanceof ConduitApiError);
    assert.deepEqual([last.status, last.code], [503, "unavailable"]);
  });
});
