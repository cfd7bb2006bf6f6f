/**
 * The cluster scenario: what the hop through Redis costs a broadcast. The same room is
 * served by one node, then by two nodes joined by Redis (conduit-ws with its `RedisAdapter`, Socket.IO
 * with `@socket.io/redis-adapter`); the ws hub has no cluster mode and is left out.
 *
 * - One node: every member on node A, the sender too; A still runs the Redis adapter (it publishes
 *   every broadcast, which only A hears), so that the two configurations differ only by the spread.
 * - Two nodes: members spread evenly over A and B, the sender on A; B's members are reached through
 *   Redis.
 *
 * Both nodes are pinned to the servers' CPU, Redis to the load generators' CPU: the server side has
 * the same one core in both configurations, so the cost of the second node and of the Redis hop shows
 * up as CPU (summed over both nodes) and as latency, not hidden by a second core.
 *
 * Each configuration starts its own redis-server and nodes, opens the members in one load process
 * (the throughput flow control needs to see them all), runs the fan-out latency round, then the
 * throughput round on the same connections.
 *
 * @module
 */
import { now } from "../shared/clock.js";
import type { ConnectResult, ServerKind } from "../shared/messages.js";
import { startRedis, type BenchRedis } from "./external.js";
import { log } from "./log.js";
import { fanoutRound, throughputRound, type FanoutRow, type ThroughputRow } from "./scenarios.js";
import { releaseReusedServers, ROOM, send, startServer, stopServer, type Context, type RunningServer } from "./session.js";
import { split } from "./stats.js";

/** One configuration (one node or two) of the cluster scenario against one server. */
export interface ClusterRow {
  nodes: number;
  members: number;
  /** Members on node A, then node B. */
  membersPerNode: number[];
  /** The fan-out latency round; its server CPU is summed over the nodes. */
  latency: FanoutRow;
  /** The throughput round; its server CPU is summed over the nodes. */
  throughput: ThroughputRow;
}

const NODE_NAMES = ["A", "B"];

/** Runs one configuration of the cluster scenario against `kind` (conduit or socketio). */
export async function runCluster(ctx: Context, kind: ServerKind, nodes: 1 | 2): Promise<ClusterRow> {
  const size = ctx.options.sizes.cluster;
  if (size.members > ctx.options.sizes.clientsPerProcess) {
    throw new Error("the cluster scenario needs every member in one load process (its throughput flow control sees them all)");
  }
  await releaseReusedServers(ctx);
  const [load] = ctx.loads;
  let redis: BenchRedis | undefined;
  const servers: RunningServer[] = [];
  try {
    redis = await startRedis(ctx.options.loadCpu, ctx.options.verbose);
    log(`redis-server started: pid ${redis.pid}, ${redis.url}`);
    const url = redis.url;
    const started = await Promise.allSettled(Array.from({ length: nodes }, () => startServer(ctx, kind, { redisUrl: url })));
    for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
    const failed = started.find((result) => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    for (const [i, server] of servers.entries()) log(`${kind} node ${NODE_NAMES[i]} is pid ${server.child.pid}`);
    // Node A first: the sender is the first connection of the load process.
    const membersPerNode = split(size.members, Math.ceil(size.members / nodes));
    for (const [i, server] of servers.entries()) {
      const command = {
        op: "connect",
        kind: server.clientKind,
        url: server.url,
        count: membersPerNode[i]!,
        concurrency: 100,
        startAt: now(),
      } as const;
      const result = await send<ConnectResult>(load!, command, 300_000);
      if (result.failed > 0) throw new Error(`${result.failed} connections to node ${NODE_NAMES[i]} failed: ${result.errors.join("; ")}`);
    }
    await send(load!, { op: "join", room: ROOM }, 120_000);
    const pids = { serverPids: servers.map((server) => server.child.pid), redisPid: redis.pid };
    const latency = await fanoutRound(ctx, [load!], pids, { ...size, clients: size.members });
    const throughput = await throughputRound(ctx, load!, pids, size);
    return { nodes, members: size.members, membersPerNode, latency, throughput };
  } finally {
    try {
      await send(load!, { op: "reset" }, 60_000);
    } finally {
      await Promise.all(servers.map((server) => stopServer(ctx, server)));
      await redis?.stop(10_000);
    }
  }
}
