/**
 * Process lifecycle shared by the single process, the cluster primary and its workers: the ready
 * line and the signal handling of a graceful shutdown (docs/CLI.md).
 *
 * @module
 */
import type { Logger } from "../logger.js";

/** The ready line for `url`, printed once on stdout; tests and scripts await it. */
export function readyLine(url: string): string {
  return `conduit-ws listening on ${url}`;
}

/** Options of {@link exitOnSignals}. */
export interface SignalOptions {
  /**
   * Whether a second SIGTERM/SIGINT during shutdown exits at once with code 1 (for an operator who
   * will not wait). Workers say no: Ctrl-C reaches them both from the terminal and from the primary.
   */
  forceOnSecondSignal: boolean;
}

/**
 * Calls `stop` on the first SIGTERM or SIGINT, then exits 0 when it resolves (1 if it rejects).
 * The exit is explicit because a library (a Redis client, say) may leave a timer behind.
 */
export function exitOnSignals(logger: Logger, stop: () => Promise<void>, options: SignalOptions): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (!options.forceOnSecondSignal) return;
      logger.warn({ signal }, "second signal during shutdown: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "signal received: shutting down gracefully");
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
