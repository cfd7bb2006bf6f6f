#!/usr/bin/env node
/**
 * `conduit-ws`: the standalone server (docs/CLI.md). Parses flags and environment, then serves in this
 * process, or (with `--workers N`) as the primary of N worker processes sharing the port.
 *
 * Output contract:
 * - stdout: exactly one line once the server accepts connections,
 *   `conduit-ws listening on ws://HOST:PORT/PATH` (the real port when `--port 0`);
 *   `--help` and `--version` print there too.
 * - stderr: JSON log lines (pino), and a plain `conduit-ws: …` line for a configuration error.
 * - exit codes: 0 after a graceful shutdown on SIGTERM or SIGINT (and for `--help`); 1 when the
 *   server cannot start (port taken, Redis unreachable) or a shutdown fails; 2 for a bad flag or
 *   environment value, or for limits the library refuses (`parseConfig` runs its validation). A
 *   second SIGTERM/SIGINT during shutdown exits at once with 1.
 *
 * @module
 */
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import type { Logger as PinoLogger } from "pino";
import { ConfigError, describeConfig, parseConfig, usage, type CliConfig } from "./config.js";
import { runPrimary, runWorker } from "./cluster.js";
import { exitOnSignals, readyLine } from "./lifecycle.js";
import { createLogger } from "./logger.js";
import { listenMetrics, type MetricsListener } from "./metrics-server.js";
import { serve } from "./serve.js";

async function runSingle(config: CliConfig, logger: PinoLogger): Promise<void> {
  let running: Awaited<ReturnType<typeof serve>>;
  let metricsListener: MetricsListener | undefined;
  try {
    running = await serve(config, logger);
    const { registry } = running.metrics;
    if (config.metricsPort !== undefined) {
      metricsListener = await listenMetrics({
        port: config.metricsPort,
        host: config.metricsHost,
        metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        logger,
      });
      logger.info({ url: metricsListener.url }, "metrics listening");
    }
  } catch (error) {
    logger.fatal({ err: error }, "could not start");
    process.exit(1);
  }
  const stop = async (): Promise<void> => {
    // The metrics listener closes last, so a scrape during the drain still sees it.
    await running.stop();
    await metricsListener?.close();
  };
  exitOnSignals(logger, stop, { forceOnSecondSignal: true });
  logger.info({ url: running.url, config: describeConfig(config) }, "listening");
  process.stdout.write(`${readyLine(running.url)}\n`);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

async function main(): Promise<void> {
  let outcome: ReturnType<typeof parseConfig>;
  try {
    outcome = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`conduit-ws: ${error.message}\n`);
    process.exit(2);
  }
  if (outcome.kind === "help") return void process.stdout.write(usage());
  if (outcome.kind === "version") return void process.stdout.write(`${version()}\n`);

  const { config } = outcome;
  const logger = createLogger(config.logLevel);
  process.on("uncaughtException", (error) => {
    logger.fatal({ err: error }, "uncaught exception");
    process.exit(1);
  });
  process.on("unhandledRejection", (error) => {
    logger.fatal({ err: error }, "unhandled rejection");
    process.exit(1);
  });

  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, logger);
  if (cluster.isWorker) return runWorker(config, logger);
  return runSingle(config, logger);
}

await main();
