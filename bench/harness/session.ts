/**
 * What every scenario needs around its own work: the servers under test (started, reused in quick
 * mode, stopped), the load processes (connections opened and closed), and the CPU accounting of a
 * measured window.
 *
 * @module
 */
import { now, until } from "../shared/clock.js";
import { cpuMs, stealMs } from "../shared/procfs.js";
import { BENCH_NAMESPACE_NAMES, BENCH_ROOM } from "../shared/namespaces.js";
import type { ClientKind, ConnectResult, LoadCommand, ServerKind } from "../shared/messages.js";
import { PRESENCE_ATTACKERS, type BenchOptions } from "./config.js";
import { log } from "./log.js";
import { Child } from "./processes.js";
import { split } from "./stats.js";

/** Who used the CPU during a scenario's measured window (percentages are of one core). */
export interface CpuShare {
  windowMs: number;
  /** Summed over the server's processes (a cluster's nodes, the CLI's primary and workers). */
  serverCpuMs: number;
  serverCpuPct: number;
  loadCpuMs: number;
  loadCpuPct: number;
  loadProcesses: number;
  /** The redis-server between a cluster's nodes; only in the scenarios that run one. */
  redisCpuMs?: number;
  redisCpuPct?: number;
  /**
   * Steal time during the window on the server's and the load's CPU (/proc/stat): how long the
   * hypervisor took those virtual CPUs away. Only when both sides are pinned; JSON only.
   */
  stealMs?: { serverCpu: number; loadCpu: number };
}

/** What the scenarios share: options, the pool of load processes, the clock-tick rate. */
export interface Context {
  options: BenchOptions;
  loads: Child[];
  ticksPerSecond: number;
  /**
   * Quick mode starts each server once and keeps it here for every scenario, because starting a
   * server costs more than a quick scenario; a full run starts a fresh one per scenario.
   */
  reusedServers: Map<ServerKind, RunningServer> | undefined;
}

/** The script of each server under test. */
export const SCRIPTS: Record<ServerKind, string> = {
  conduit: "bench/servers/conduit.ts",
  ws: "bench/servers/ws-hub.ts",
  socketio: "bench/servers/socketio.ts",
};
const READY_TIMEOUT_MS = 30_000;
/** The one room every scenario uses (`--namespaces` lists its namespace, bench/shared/namespaces.ts). */
export const ROOM = BENCH_ROOM;
/**
 * How long after its last send a scenario still waits for deliveries and replies before it counts
 * the rest as missing. It only costs time when something is missing.
 */
export const GRACE_MS = 10_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A server under test and how to reach it. */
export interface RunningServer {
  child: Child;
  url: string;
  clientKind: ClientKind;
}

/** How a server under test is configured, beyond what its script always sets. */
export interface ServerMode {
  /** One node of a cluster over this Redis (conduit-ws and Socket.IO only: the ws hub has none). */
  redisUrl?: string;
  /**
   * conduit-ws with every option at its default (rate limit and work budget on), for the noisy
   * neighbour scenario; the other servers have no such limits and run as always.
   */
  defaultLimits?: boolean;
}

/** Starts a server under test, as the benchmark configures it unless `mode` says otherwise. */
export async function startServer(ctx: Context, kind: ServerKind, mode: ServerMode = {}): Promise<RunningServer> {
  const { redisUrl, defaultLimits = false } = mode;
  if (redisUrl !== undefined && kind === "ws") throw new Error("the ws hub has no cluster mode");
  const child = new Child({
    script: SCRIPTS[kind],
    args: [
      ...(redisUrl === undefined ? [] : [redisUrl]),
      ...(defaultLimits && kind === "conduit" ? ["--default-limits"] : []),
      ...(ctx.options.namespaces && kind === "conduit" ? ["--namespaces"] : []),
    ],
    cpu: ctx.options.serverCpu,
    nodeArgs: [
      "--expose-gc",
      ...ctx.options.serverNodeFlags,
      ...(ctx.options.profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${ctx.options.profile}`]),
    ],
    label: `${kind} server`,
    verbose: ctx.options.verbose,
  });
  const ready = await withTimeout(child.ready, READY_TIMEOUT_MS, `${kind} server start`).catch(async (error: unknown) => {
    await child.kill();
    throw error;
  });
  log(`${kind} server started: pid ${child.pid}, port ${ready.port}${ready.namespaces === undefined ? "" : ", namespaces loaded"}`);
  if (ctx.options.namespaces && kind === "conduit") {
    // A figure labelled "with namespaces" must come from a server that has the whole table.
    const loaded = JSON.stringify(ready.namespaces ?? null);
    if (loaded !== JSON.stringify(BENCH_NAMESPACE_NAMES)) {
      await child.kill();
      throw new Error(`conduit server started without the namespace table: it reports ${loaded}`);
    }
  }
  const base = `127.0.0.1:${ready.port}`;
  return kind === "socketio"
    ? { child, url: `http://${base}`, clientKind: "socketio" }
    : { child, url: `ws://${base}/ws`, clientKind: "ws-protocol" };
}

/** Ends a server: killed at once, or left to exit by itself when its CPU profile must be written. */
export function stopServer(ctx: Context, server: RunningServer): Promise<void> {
  return ctx.options.profile === undefined ? server.child.kill() : server.child.stop(10_000);
}

/**
 * Runs `body` against a fresh server (or the quick mode's running one), then closes every load
 * connection and kills the server unless quick mode keeps it.
 */
export async function againstServer<T>(ctx: Context, kind: ServerKind, body: (server: RunningServer) => Promise<T>): Promise<T> {
  const reused = ctx.reusedServers;
  const server = reused?.get(kind) ?? (await startServer(ctx, kind));
  reused?.set(kind, server);
  let failed = true;
  try {
    const result = await body(server);
    failed = false;
    return result;
  } finally {
    // A server that failed a scenario may be in any state: never reuse it.
    if (reused === undefined || failed) {
      reused?.delete(kind);
      await stopServer(ctx, server);
    }
    await Promise.all(ctx.loads.map((load) => load.request({ op: "reset" } satisfies LoadCommand, 60_000)));
  }
}

/** Stops the servers quick mode kept for reuse: the scenarios that start their own do not need them. */
export async function releaseReusedServers(ctx: Context): Promise<void> {
  const reused = ctx.reusedServers;
  if (reused === undefined) return;
  const servers = [...reused.values()];
  reused.clear();
  await Promise.all(servers.map((server) => stopServer(ctx, server)));
}

/** Sends a command to a load process and awaits its result. */
export function send<R>(load: Child, command: LoadCommand, timeoutMs: number): Promise<R> {
  return load.request<R>(command, timeoutMs);
}

/** Opens `total` connections spread over the first load processes; every one must open. */
export async function connectAll(ctx: Context, server: RunningServer, total: number): Promise<Child[]> {
  const counts = split(total, ctx.options.sizes.clientsPerProcess);
  const loads = ctx.loads.slice(0, counts.length);
  const startAt = now();
  const results = await Promise.all(
    loads.map((load, i) =>
      send<ConnectResult>(
        load,
        { op: "connect", kind: server.clientKind, url: server.url, count: counts[i]!, concurrency: 100, startAt },
        300_000,
      ),
    ),
  );
  const failed = results.reduce((sum, result) => sum + result.failed, 0);
  if (failed > 0) throw new Error(`${failed} of ${total} connections failed: ${results.flatMap((r) => r.errors).join("; ")}`);
  return loads;
}

/** The processes whose CPU a window accounts for: the server's (summed) and, for a cluster, Redis. */
export interface Measured {
  serverPids: readonly number[];
  redisPid?: number;
}

/**
 * Measures the server's and the load processes' CPU from `startAt` until `work` settles.
 * `work` must already be running (its commands sent) so that every process starts at `startAt`.
 */
export async function measured<T>(
  ctx: Context,
  pids: Measured,
  loads: readonly { readonly pid: number }[],
  startAt: number,
  work: Promise<T>,
): Promise<{ value: T; cpu: CpuShare }> {
  work.catch(() => {}); // observed below; this only keeps an early failure from counting as unhandled
  const ticks = ctx.ticksPerSecond;
  const sample = (): { at: number; server: number; redis: number | undefined; loads: number } => ({
    at: now(),
    server: sum(pids.serverPids.map((pid) => cpuMs(pid, ticks))),
    redis: pids.redisPid === undefined ? undefined : cpuMs(pids.redisPid, ticks),
    loads: sum(loads.map((load) => cpuMs(load.pid, ticks))),
  });
  const { serverCpu, loadCpu } = ctx.options;
  const pinned = serverCpu === undefined || loadCpu === undefined ? undefined : [serverCpu, loadCpu];
  const steal = (): number[] | undefined => (pinned === undefined ? undefined : stealMs(pinned, ticks));
  await until(startAt);
  const begin = sample();
  const stealBegin = steal();
  const value = await work;
  const end = sample();
  const stealEnd = steal();
  const redis = end.redis === undefined ? undefined : end.redis - begin.redis!;
  const cpu = cpuShare(end.at - begin.at, end.server - begin.server, end.loads - begin.loads, loads.length, redis);
  if (stealBegin !== undefined && stealEnd !== undefined) {
    cpu.stealMs = { serverCpu: stealEnd[0]! - stealBegin[0]!, loadCpu: stealEnd[1]! - stealBegin[1]! };
  }
  return { value, cpu };
}

/** CPU times over a window, with the percentages of one core. */
export function cpuShare(windowMs: number, serverCpuMs: number, loadCpuMs: number, loadProcesses: number, redisCpuMs?: number): CpuShare {
  return {
    windowMs,
    serverCpuMs,
    serverCpuPct: (100 * serverCpuMs) / windowMs,
    loadCpuMs,
    loadCpuPct: (100 * loadCpuMs) / windowMs,
    loadProcesses,
    ...(redisCpuMs === undefined ? {} : { redisCpuMs, redisCpuPct: (100 * redisCpuMs) / windowMs }),
  };
}

/** The sum of `values`. */
export function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/**
 * Runs the load generators' code once per client kind before anything is measured: otherwise the
 * first server of the run would meet a load generator still compiling its hot paths, and pay for it
 * in every figure of the first scenario. Uses the first selected server of each kind.
 */
export async function warmUp(ctx: Context): Promise<void> {
  const perProcess = ctx.options.quick ? 20 : 300;
  const servers = ctx.options.servers;
  const kinds = [servers.find((kind) => kind !== "socketio"), servers.find((kind) => kind === "socketio")];
  for (const kind of kinds) {
    if (kind === undefined) continue;
    await againstServer(ctx, kind, async (server) => {
      const loads = ctx.loads;
      await Promise.all(
        loads.map((load) =>
          send(
            load,
            { op: "connect", kind: server.clientKind, url: server.url, count: perProcess, concurrency: 50, startAt: now() },
            120_000,
          ),
        ),
      );
      await Promise.all(loads.map((load) => send(load, { op: "join", room: ROOM }, 60_000)));
      const fanoutAt = now() + 100;
      await Promise.all(
        loads.map((load, i) =>
          send(
            load,
            { op: "fanout", room: ROOM, broadcasts: 20, warmup: 0, intervalMs: 10, startAt: fanoutAt, sender: i === 0, graceMs: 2_000 },
            60_000,
          ),
        ),
      );
      const echoAt = now() + 100;
      await Promise.all(
        loads.map((load) =>
          send(load, { op: "echo", ratePerClient: 10, warmupMs: 0, durationMs: 500, startAt: echoAt, graceMs: 2_000 }, 60_000),
        ),
      );
    });
  }
}

/** The most connections one selected scenario opens at once (over every load process). */
export function largestScenario(options: BenchOptions): number {
  const { sizes, scenarios } = options;
  const totals = [1];
  if (scenarios.includes("connect")) totals.push(sizes.connect.clients);
  if (scenarios.includes("fanout")) totals.push(...sizes.fanout.map((size) => size.clients));
  if (scenarios.includes("echo")) totals.push(sizes.echo.clients);
  if (scenarios.includes("throughput")) totals.push(sizes.throughput.members);
  if (scenarios.includes("cluster")) totals.push(sizes.cluster.members);
  if (scenarios.includes("scale")) totals.push(sizes.scale.clients);
  if (scenarios.includes("noisy")) totals.push(sizes.noisy.members + PRESENCE_ATTACKERS + 1);
  if (scenarios.includes("api")) totals.push(...sizes.api.map((size) => size.members));
  return Math.max(...totals);
}

/**
 * The most sockets one process holds in the selected scenarios: a server holds every connection of a
 * scenario, except in `scale`, where each CLI worker holds its share (and a load process its own).
 */
export function socketsPerProcess(options: BenchOptions): number {
  const { sizes, scenarios } = options;
  const single = largestScenario({ ...options, scenarios: scenarios.filter((name) => name !== "scale") });
  if (!scenarios.includes("scale")) return single;
  const { clients, workers } = sizes.scale;
  return Math.max(single, Math.ceil(clients / workers), Math.min(clients, sizes.clientsPerProcess));
}

/**
 * How many load processes the selected scenarios need at once. The noisy scenario keeps its
 * bystander and its attackers in a process each, apart from the members' processes, so that neither
 * waits behind the members' reading.
 */
export function loadProcessesNeeded(options: BenchOptions): number {
  const { sizes, scenarios } = options;
  const most = split(largestScenario(options), sizes.clientsPerProcess).length;
  return scenarios.includes("noisy") ? Math.max(most, noisyMemberProcesses(options) + 2) : most;
}

/** The load processes the noisy scenario spreads its largest room's members over. */
export function noisyMemberProcesses(options: BenchOptions): number {
  return split(options.sizes.noisy.members, options.sizes.clientsPerProcess).length;
}
