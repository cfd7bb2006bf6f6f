/**
 * The logging seam. The library logs nothing by default; pass any pino-compatible logger.
 *
 * @module
 */

/** A structured log call: fields first, then the message (pino's argument order). */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** The subset of a pino logger the server uses. Tokens are never passed to it. */
export interface Logger {
  /** Routine events: started, stopped. */
  info: LogFn;
  /** Something a client did wrong, or a limit that was hit. */
  warn: LogFn;
  /** A failure inside the server. */
  error: LogFn;
  /** Per-connection detail (connect, disconnect). */
  debug: LogFn;
}

const ignore: LogFn = () => {};

/** A logger that drops everything: the library's default. */
export const silentLogger: Logger = { info: ignore, warn: ignore, error: ignore, debug: ignore };
