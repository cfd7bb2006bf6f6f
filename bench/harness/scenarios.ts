/**
 * The four single-server scenarios, as the harness runs them against one server: spread the
 * connections over the load processes, run, and merge what the processes measured into one row per
 * server. The fan-out latency and throughput rounds are exported on their own, over connections
 * already open, for the cluster and scale scenarios (`cluster.ts`, `scale.ts`).
 *
 * @module
 */
import { now } from "../shared/clock.js";
import { rssKiB } from "../shared/procfs.js";
import type { ConnectResult, EchoResult, FanoutResult, MemoryReport, ServerKind, ThroughputResult } from "../shared/messages.js";
import type { EchoSize, FanoutSize } from "./config.js";
import {
  againstServer,
  connectAll,
  cpuShare,
  GRACE_MS,
  measured,
  ROOM,
  send,
  sum,
  type Context,
  type CpuShare,
  type Measured,
  type RunningServer,
} from "./session.js";
import { NativeClient } from "./native-client.js";
import type { Child } from "./processes.js";
import { split, summarise, type Summary } from "./stats.js";

/** The connect scenario against one server. */
export interface ConnectRow extends CpuShare {
  clients: number;
  opened: number;
  failed: number;
  errors: string[];
  openAllMs: number;
  serverCpuUsPerConnection: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssPerConnectionKiB: number;
  /** The server's own account of its memory before and after (JSON only): what the RSS is made of. */
  memoryBefore: MemoryReport;
  memoryAfter: MemoryReport;
}

/** A fan-out latency scenario against one server. */
export interface FanoutRow extends CpuShare {
  clients: number;
  intervalMs: number;
  broadcasts: number;
  expectedDeliveries: number;
  deliveries: number;
  missing: number;
  /** Per broadcast: ms from the send until the last member had it. */
  lastMemberMs: Summary;
  /**
   * Per broadcast: ms from the send until the first member had it, which is the server's reaction
   * before its first write (reading, routing, queueing). The gap to `lastMemberMs` is the time the
   * writes to every member took. JSON only; docs/BENCHMARKS.md, "What bounds the figures", reads it.
   */
  firstMemberMs: Summary;
}

/** The echo scenario against one server. */
export interface EchoRow extends CpuShare {
  clients: number;
  ratePerClient: number;
  durationMs: number;
  sent: number;
  received: number;
  missing: number;
  rttMs: Summary;
}

/** The throughput scenario against one server. */
export interface ThroughputRow extends CpuShare {
  members: number;
  window: number;
  durationMs: number;
  deliveries: number;
  deliveriesPerSecond: number;
  serverCpuSecondsPerMillion: number;
  /** The redis-server's CPU per million deliveries (cluster scenario only). */
  redisCpuSecondsPerMillion?: number;
  broadcasts: number;
  expectedDeliveries: number;
  totalDeliveries: number;
  missing: number;
}

/** A scenario that could not finish against a server (the run goes on with the next one). */
export interface FailedRow {
  error: string;
}

/** Opens the connections and measures time, server CPU and server RSS per connection. */
export function runConnect(ctx: Context, kind: ServerKind): Promise<ConnectRow> {
  const { clients, concurrency } = ctx.options.sizes.connect;
  return againstServer(ctx, kind, async (server) => {
    const counts = split(clients, ctx.options.sizes.clientsPerProcess);
    const loads = ctx.loads.slice(0, counts.length);
    const memoryBefore = await server.child.request<MemoryReport>({ op: "gc" }, 30_000);
    const rssBeforeKiB = rssKiB(server.child.pid);
    const startAt = now() + 200;
    const perProcess = Math.max(1, Math.round(concurrency / loads.length));
    const work = Promise.all(
      loads.map((load, i) =>
        send<ConnectResult>(
          load,
          { op: "connect", kind: server.clientKind, url: server.url, count: counts[i]!, concurrency: perProcess, startAt },
          600_000,
        ),
      ),
    );
    const { value: results, cpu } = await measured(ctx, { serverPids: [server.child.pid] }, loads, startAt, work);
    const memoryAfter = await server.child.request<MemoryReport>({ op: "gc" }, 30_000);
    const rssAfterKiB = rssKiB(server.child.pid);
    const opened = sum(results.map((result) => result.opened));
    return {
      ...cpu,
      clients,
      opened,
      failed: sum(results.map((result) => result.failed)),
      errors: results.flatMap((result) => result.errors),
      openAllMs: Math.max(...results.map((result) => result.finishedAt)) - startAt,
      serverCpuUsPerConnection: (1000 * cpu.serverCpuMs) / opened,
      rssBeforeKiB,
      rssAfterKiB,
      rssPerConnectionKiB: (rssAfterKiB - rssBeforeKiB) / opened,
      memoryBefore,
      memoryAfter,
    };
  });
}

/**
 * One room, a broadcast every `intervalMs`: how long until the last member has each one. The members
 * are the native client's (`--latency-client native`, the default) or the node load processes'.
 */
export function runFanout(ctx: Context, kind: ServerKind, size: FanoutSize): Promise<FanoutRow> {
  return againstServer(ctx, kind, async (server) => {
    if (ctx.options.latencyClient === "native") return nativeFanoutRound(ctx, server, size);
    const loads = await connectAll(ctx, server, size.clients);
    await Promise.all(loads.map((load) => send(load, { op: "join", room: ROOM }, 120_000)));
    return fanoutRound(ctx, loads, { serverPids: [server.child.pid] }, size);
  });
}

type RoundSize = Pick<FanoutSize, "clients" | "intervalMs" | "broadcasts" | "warmup">;

/**
 * Runs `body` with `count` connections to `server` in one native client (bench/native/latency-client.c),
 * joined to `room` when one is given; closes the client afterwards.
 */
async function withNativeClient<T>(
  ctx: Context,
  server: RunningServer,
  count: number,
  room: string | undefined,
  body: (client: NativeClient) => Promise<T>,
): Promise<T> {
  const client = await NativeClient.open({
    url: server.url,
    clientKind: server.clientKind,
    count,
    room,
    cpu: ctx.options.loadCpu,
    timeoutMs: 300_000,
  });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** A fan-out round with every member in one native client. */
function nativeFanoutRound(ctx: Context, server: RunningServer, size: RoundSize): Promise<FanoutRow> {
  return withNativeClient(ctx, server, size.clients, ROOM, async (client) => {
    const round = {
      startAt: now() + 300,
      warmup: size.warmup,
      broadcasts: size.broadcasts,
      intervalMs: size.intervalMs,
      graceMs: GRACE_MS,
    };
    const work = client.fanout(round, roundMs(size) + 60_000).then((result) => [result]);
    return fanoutRow(size, await measured(ctx, { serverPids: [server.child.pid] }, [client], round.startAt, work));
  });
}

/** How long a round may take: its scheduled sends, then the grace period for late deliveries. */
function roundMs(size: RoundSize): number {
  return (size.warmup + size.broadcasts) * size.intervalMs + GRACE_MS;
}

/**
 * One fan-out latency run over the connections the load processes hold, all members of {@link ROOM};
 * the first connection of the first process sends. `clients` is how many members there are.
 */
export async function fanoutRound(ctx: Context, loads: Child[], pids: Measured, size: RoundSize): Promise<FanoutRow> {
  const graceMs = GRACE_MS;
  const startAt = now() + 300;
  const work = Promise.all(
    loads.map((load, i) =>
      send<FanoutResult>(
        load,
        {
          op: "fanout",
          room: ROOM,
          broadcasts: size.broadcasts,
          warmup: size.warmup,
          intervalMs: size.intervalMs,
          startAt,
          sender: i === 0,
          graceMs,
        },
        roundMs(size) + 60_000,
      ),
    ),
  );
  return fanoutRow(size, await measured(ctx, pids, loads, startAt, work));
}

/** Merges what every receiving process measured into one row. */
function fanoutRow(size: RoundSize, { value: results, cpu }: { value: FanoutResult[]; cpu: CpuShare }): FanoutRow {
  const deliveries = sum(results.map((result) => sum(result.counts)));
  const lastMember = Array.from({ length: size.broadcasts }, (_, k) => Math.max(...results.map((result) => result.lastMs[k]!)));
  const firstMember = Array.from({ length: size.broadcasts }, (_, k) => {
    const arrivals = results.map((result) => result.firstMs[k]!).filter((ms) => ms >= 0);
    return arrivals.length === 0 ? -1 : Math.min(...arrivals);
  });
  return {
    ...cpu,
    clients: size.clients,
    intervalMs: size.intervalMs,
    broadcasts: size.broadcasts,
    expectedDeliveries: size.broadcasts * size.clients,
    deliveries,
    missing: size.broadcasts * size.clients - deliveries,
    lastMemberMs: summarise(lastMember.filter((ms) => ms >= 0)),
    firstMemberMs: summarise(firstMember.filter((ms) => ms >= 0)),
  };
}

/**
 * Every client sends echoes at a steady rate: round-trip times. The connections are the native
 * client's (`--latency-client native`, the default) or the node load processes'.
 */
export function runEcho(ctx: Context, kind: ServerKind): Promise<EchoRow> {
  const size = ctx.options.sizes.echo;
  const round = { ratePerClient: size.ratePerClient, warmupMs: size.warmupMs, durationMs: size.durationMs, graceMs: GRACE_MS };
  const timeoutMs = size.warmupMs + size.durationMs + GRACE_MS + 60_000;
  return againstServer(ctx, kind, async (server) => {
    const serverPids = { serverPids: [server.child.pid] };
    if (ctx.options.latencyClient === "native") {
      return withNativeClient(ctx, server, size.clients, undefined, async (client) => {
        const startAt = now() + 300;
        const work = client.echo({ ...round, startAt }, timeoutMs).then((result) => [result]);
        return echoRow(size, await measured(ctx, serverPids, [client], startAt, work));
      });
    }
    const loads = await connectAll(ctx, server, size.clients);
    const startAt = now() + 300;
    const work = Promise.all(loads.map((load) => send<EchoResult>(load, { op: "echo", ...round, startAt }, timeoutMs)));
    return echoRow(size, await measured(ctx, serverPids, loads, startAt, work));
  });
}

/** Merges what every sending process measured into one row. */
function echoRow(size: EchoSize, { value: results, cpu }: { value: EchoResult[]; cpu: CpuShare }): EchoRow {
  const sent = sum(results.map((result) => result.sent));
  const received = sum(results.map((result) => result.received));
  return {
    ...cpu,
    clients: size.clients,
    ratePerClient: size.ratePerClient,
    durationMs: size.durationMs,
    sent,
    received,
    missing: sent - received,
    rttMs: summarise(results.flatMap((result) => result.samplesMs)),
  };
}

/** One room, broadcasts as fast as every member keeps up: deliveries per second and their CPU cost. */
export function runThroughput(ctx: Context, kind: ServerKind): Promise<ThroughputRow> {
  const size = ctx.options.sizes.throughput;
  if (size.members > ctx.options.sizes.clientsPerProcess) {
    throw new Error("throughput needs every member in one load process (its flow control sees them all)");
  }
  return againstServer(ctx, kind, async (server) => {
    const [load] = await connectAll(ctx, server, size.members);
    await send(load!, { op: "join", room: ROOM }, 120_000);
    return throughputRound(ctx, load!, { serverPids: [server.child.pid] }, size);
  });
}

/**
 * One throughput run over the connections `load` holds, all members of {@link ROOM}; its first
 * connection sends. With a Redis pid, its CPU per million deliveries is reported too.
 */
export async function throughputRound(
  ctx: Context,
  load: Child,
  pids: Measured,
  size: Pick<ThroughputRow, "window" | "durationMs"> & { warmupMs: number },
): Promise<ThroughputRow> {
  const graceMs = GRACE_MS;
  const result = await send<ThroughputResult>(
    load,
    {
      op: "throughput",
      room: ROOM,
      window: size.window,
      warmupMs: size.warmupMs,
      durationMs: size.durationMs,
      startAt: now() + 300,
      graceMs,
      serverPids: [...pids.serverPids],
      redisPid: pids.redisPid,
      ticksPerSecond: ctx.ticksPerSecond,
    },
    size.warmupMs + size.durationMs + graceMs + 60_000,
  );
  const expectedDeliveries = result.broadcasts * result.members;
  const perMillion = (cpuMs: number): number => cpuMs / 1000 / (result.deliveries / 1e6);
  const redis = pids.redisPid === undefined ? undefined : result.redisCpuMs;
  return {
    ...cpuShare(result.elapsedMs, result.serverCpuMs, result.loadCpuMs, 1, redis),
    members: result.members,
    window: size.window,
    durationMs: size.durationMs,
    deliveries: result.deliveries,
    deliveriesPerSecond: (1000 * result.deliveries) / result.elapsedMs,
    serverCpuSecondsPerMillion: perMillion(result.serverCpuMs),
    ...(redis === undefined ? {} : { redisCpuSecondsPerMillion: perMillion(redis) }),
    broadcasts: result.broadcasts,
    expectedDeliveries,
    totalDeliveries: result.totalDeliveries,
    missing: expectedDeliveries - result.totalDeliveries,
  };
}
