/**
 * The scale scenario: how many connections one machine holds with the standalone server
 * as an operator runs it, `conduit-ws --workers N --redis URL`, and how a broadcast to all of them
 * performs. conduit-ws only: it measures the CLI, which the baselines do not have.
 *
 * Not pinned: N workers, the primary, Redis and the load generators cannot be given CPUs of their own
 * on a two-core machine in any way that means something, so for this scenario every process (the
 * harness and its load processes included, which are re-pinned to every CPU and back afterwards) runs
 * wherever the kernel puts it.
 *
 * Memory is each worker's RSS from /proc, read once the workers listen and again once every
 * connection has joined the room. The CLI has no way to force a garbage collection from outside, so
 * unlike the connect scenario these readings include garbage not yet collected.
 *
 * @module
 */
import { availableParallelism } from "node:os";
import { now } from "../shared/clock.js";
import { rssKiB } from "../shared/procfs.js";
import type { ConnectResult } from "../shared/messages.js";
import { startCli, startRedis, type BenchCli, type BenchRedis } from "./external.js";
import { log } from "./log.js";
import { setAffinity } from "./processes.js";
import { fanoutRound, type FanoutRow } from "./scenarios.js";
import { measured, releaseReusedServers, ROOM, send, sum, type Context, type CpuShare } from "./session.js";
import { split } from "./stats.js";

/** The scale scenario's one row (conduit-ws). */
export interface ScaleRow {
  workers: number;
  clients: number;
  opened: number;
  failed: number;
  /** Up to five distinct failure messages per load process. */
  errors: string[];
  /** From the common start until the last connection opened. */
  openAllMs: number;
  /** CPU while the connections opened: the server's summed over the primary and its workers. */
  connectCpu: CpuShare;
  /** From sending every join until the last confirmation. */
  joinAllMs: number;
  primaryRssKiB: number;
  workerRssBeforeKiB: number[];
  workerRssAfterKiB: number[];
  /** (Σ workers' RSS after − Σ before) / connections opened. */
  rssPerConnectionKiB: number;
  /** The broadcasts to everyone; server CPU summed over the primary and its workers. */
  latency: FanoutRow;
}

/** Runs the scale scenario against `conduit-ws --workers N --redis URL`. */
export async function runScale(ctx: Context): Promise<ScaleRow> {
  const size = ctx.options.sizes.scale;
  await releaseReusedServers(ctx);
  const counts = split(size.clients, ctx.options.sizes.clientsPerProcess);
  if (counts.length > ctx.loads.length) throw new Error(`scale needs ${counts.length} load processes, the pool has ${ctx.loads.length}`);
  const loads = ctx.loads.slice(0, counts.length);
  const pinned = [process.pid, ...ctx.loads.map((load) => load.pid)];
  const loadCpu = ctx.options.loadCpu;
  if (loadCpu !== undefined) for (const pid of pinned) setAffinity(pid, `0-${availableParallelism() - 1}`);
  let redis: BenchRedis | undefined;
  let cli: BenchCli | undefined;
  try {
    redis = await startRedis(undefined, ctx.options.verbose);
    log(`redis-server started: pid ${redis.pid}, ${redis.url}`);
    cli = await startCli({
      redisUrl: redis.url,
      workers: size.workers,
      maxConnections: size.maxConnectionsPerWorker,
      verbose: ctx.options.verbose,
    });
    log(`conduit-ws cli server started: pid ${cli.pid}, workers ${cli.workerPids.join(", ")}, ${cli.url}`);
    const serverPids = [cli.pid, ...cli.workerPids];
    const workerRssBeforeKiB = cli.workerPids.map(rssKiB);

    const startAt = now() + 200;
    const perProcess = Math.max(1, Math.round(size.concurrency / loads.length));
    const url = cli.url;
    const work = Promise.all(
      loads.map((load, i) =>
        send<ConnectResult>(
          load,
          { op: "connect", kind: "ws-protocol", url, count: counts[i]!, concurrency: perProcess, startAt },
          600_000,
        ),
      ),
    );
    const { value: connected, cpu: connectCpu } = await measured(ctx, { serverPids }, loads, startAt, work);
    const opened = sum(connected.map((result) => result.opened));
    if (connected[0]!.opened === 0) throw new Error(`no connection opened: ${connected.flatMap((result) => result.errors).join("; ")}`);

    const joinStart = now();
    await Promise.all(loads.map((load) => send(load, { op: "join", room: ROOM }, 300_000)));
    const joinAllMs = now() - joinStart;
    const workerRssAfterKiB = cli.workerPids.map(rssKiB);

    const latency = await fanoutRound(ctx, loads, { serverPids }, { ...size, clients: opened });
    return {
      workers: size.workers,
      clients: size.clients,
      opened,
      failed: sum(connected.map((result) => result.failed)),
      errors: connected.flatMap((result) => result.errors),
      openAllMs: Math.max(...connected.map((result) => result.finishedAt)) - startAt,
      connectCpu,
      joinAllMs,
      primaryRssKiB: rssKiB(cli.pid),
      workerRssBeforeKiB,
      workerRssAfterKiB,
      rssPerConnectionKiB: (sum(workerRssAfterKiB) - sum(workerRssBeforeKiB)) / opened,
      latency,
    };
  } finally {
    try {
      await Promise.all(ctx.loads.map((load) => send(load, { op: "reset" }, 120_000)));
    } finally {
      await cli?.stop(20_000);
      await redis?.stop(10_000);
      if (loadCpu !== undefined) for (const pid of pinned) setAffinity(pid, String(loadCpu));
    }
  }
}
