/**
 * `--workers N`: N processes on one machine sharing the port through `node:cluster`, joined by the
 * Redis adapter (which `parseConfig` requires), so a broadcast reaches clients on every worker.
 *
 * - The primary serves nothing itself. It forks the workers, prints the ready line once, when every
 *   worker listens, forwards SIGTERM/SIGINT to them and exits 0 after all have exited.
 * - A worker that dies before every worker is ready (port taken, Redis unreachable) stops the whole
 *   start-up with exit code 1; one that dies later is replaced, unless workers keep dying
 *   ({@link MAX_RESTARTS} within a minute), which ends the primary with code 1.
 * - `/metrics` on any worker answers with the sum over all workers (prom-client's aggregator in the
 *   primary), so a scrape does not depend on which worker the kernel handed it to. With
 *   `--metrics-port` the primary serves that sum on its own listener instead.
 *
 * @module
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import type { Logger } from "pino";
import type { CliConfig } from "./config.js";
import { exitOnSignals, readyLine } from "./lifecycle.js";
import { listenMetrics } from "./metrics-server.js";
import { serve } from "./serve.js";

/** Replacements of crashed workers allowed within one minute before the primary gives up. */
export const MAX_RESTARTS = 10;

/** Messages between primary and workers over the cluster IPC channel. */
type ClusterMessage =
  | { kind: "conduit:ready"; url: string }
  | { kind: "conduit:metrics-request"; id: number }
  | { kind: "conduit:metrics"; id: number; contentType: string; body: string; error?: string };

function isClusterMessage(message: unknown): message is ClusterMessage {
  const kind = typeof message === "object" && message !== null ? (message as { kind?: unknown }).kind : undefined;
  return typeof kind === "string" && kind.startsWith("conduit:");
}

/**
 * Runs the cluster primary: binds the `--metrics-port` listener if asked, forks `config.workers`
 * workers and supervises them until shutdown. Exits 1 when the metrics listener cannot be bound.
 */
export async function runPrimary(config: CliConfig, logger: Logger): Promise<void> {
  const aggregator = new AggregatorRegistry();
  if (config.metricsPort !== undefined) {
    try {
      const listener = await listenMetrics({
        port: config.metricsPort,
        host: config.metricsHost,
        metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
        logger,
      });
      logger.info({ url: listener.url }, "metrics listening");
    } catch (error) {
      logger.fatal({ err: error }, "could not start");
      process.exit(1);
    }
  }
  const ready = new Set<Worker>();
  // Our own count: cluster.workers may still list a worker during its 'exit' event.
  const live = new Set<Worker>();
  const restarts: number[] = [];
  let allReady = false;
  let stopping = false;
  let failed = false;

  const fork = (): void => {
    const worker = cluster.fork();
    live.add(worker);
    worker.on("message", (message: unknown) => {
      if (!isClusterMessage(message)) return;
      if (message.kind === "conduit:ready") onReady(worker, message.url);
      else if (message.kind === "conduit:metrics-request") void answerMetrics(worker, message.id);
    });
  };

  const onReady = (worker: Worker, url: string): void => {
    ready.add(worker);
    if (allReady) return logger.info({ workerPid: worker.process.pid }, "replacement worker ready");
    if (ready.size < config.workers) return;
    allReady = true;
    logger.info({ url, workers: config.workers }, "listening");
    process.stdout.write(`${readyLine(url)}\n`);
  };

  const answerMetrics = async (worker: Worker, id: number): Promise<void> => {
    let reply: ClusterMessage;
    try {
      reply = { kind: "conduit:metrics", id, contentType: aggregator.contentType, body: await aggregator.clusterMetrics() };
    } catch (error) {
      reply = { kind: "conduit:metrics", id, contentType: "", body: "", error: error instanceof Error ? error.message : String(error) };
    }
    if (worker.isConnected()) worker.send(reply);
  };

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const worker of live) worker.process.kill(signal);
  };

  cluster.on("exit", (worker, code, signal) => {
    ready.delete(worker);
    live.delete(worker);
    const remaining = live.size;
    if (stopping || failed) {
      if (code !== 0) failed = true;
      if (remaining === 0) process.exit(failed ? 1 : 0);
      return;
    }
    logger.error({ workerPid: worker.process.pid, code, signal }, "worker exited unexpectedly");
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    if (!allReady || restarts.length > MAX_RESTARTS) {
      logger.fatal({}, allReady ? "workers keep crashing: giving up" : "a worker failed to start: stopping");
      failed = true;
      if (remaining === 0) process.exit(1);
      stopAll("SIGTERM");
      return;
    }
    fork();
  });

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, "second signal during shutdown: killing workers");
      stopAll("SIGKILL");
      process.exit(1);
    }
    signalled = true;
    stopping = true;
    logger.info({ signal }, "signal received: stopping workers");
    stopAll(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  logger.info({ workers: config.workers }, "starting workers");
  for (let i = 0; i < config.workers; i++) fork();
}

/** Runs one worker: serves, reports ready to the primary, and stops on a signal or when orphaned. */
export async function runWorker(config: CliConfig, logger: Logger): Promise<void> {
  const workerLogger = logger.child({ worker: cluster.worker?.id });
  // Answers the primary's collection requests from the start (with the empty global registry until
  // this worker serves), so a scrape during a worker's start-up does not wait for a timeout.
  void new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, (message: Extract<ClusterMessage, { kind: "conduit:metrics" }>) => void>();
  process.on("message", (message: unknown) => {
    if (isClusterMessage(message) && message.kind === "conduit:metrics") waiting.get(message.id)?.(message);
  });
  // This worker's /metrics: the primary's sum over every worker.
  const askPrimary = (): Promise<{ contentType: string; body: string }> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("the primary did not answer the metrics request"));
      }, 10_000);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (reply.error !== undefined) reject(new Error(reply.error));
        else resolve({ contentType: reply.contentType, body: reply.body });
      });
      process.send?.({ kind: "conduit:metrics-request", id } satisfies ClusterMessage);
    });

  let running: Awaited<ReturnType<typeof serve>>;
  try {
    running = await serve(config, workerLogger, { metrics: askPrimary });
  } catch (error) {
    workerLogger.error({ err: error }, "worker could not start");
    process.exit(1);
  }
  AggregatorRegistry.setRegistries(running.metrics.registry);

  exitOnSignals(workerLogger, running.stop, { forceOnSecondSignal: false });
  // Orphaned (the primary died): shut down rather than serve unsupervised.
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  process.send?.({ kind: "conduit:ready", url: running.url } satisfies ClusterMessage);
}
