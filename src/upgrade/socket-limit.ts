/**
 * Bounding the sockets of the HTTP servers conduit-ws creates, and logging refusals without letting a
 * flood write a log line per socket (docs/RELIABILITY.md).
 *
 * `maxConnections` is enforced twice. The upgrader refuses an upgrade with 503 once the connections
 * it counts (clients, closing sockets, handshakes in auth, and sockets not yet upgraded) reach it.
 * Node's own `server.maxConnections` is set a little above that, so that a flood of sockets that never
 * ask for an upgrade is dropped at accept before the process runs out of file descriptors, while the
 * headroom still lets a client at the limit read its 503 and an operator reach the plain routes.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { LogThrottle } from "../log-throttle.js";
import type { Logger } from "../logger.js";

/**
 * Sockets an HTTP server created by conduit-ws accepts beyond `maxConnections` before node drops new
 * connections at accept: room for the 503 replies at the limit and for `/healthz` and `/metrics`.
 */
export const SOCKET_HEADROOM = 64;

/**
 * At most one log line per this many milliseconds for each kind of refusal (at the connection limit,
 * dropped at accept, accept failed); the line counts the refusals since the previous one.
 */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * File descriptors kept out of the socket limit when the process's open-file limit is what bounds it:
 * for the files, pipes, Redis connections and log streams the process needs besides its sockets.
 */
export const OPEN_FILE_RESERVE = 128;

/**
 * The total sockets node lets an HTTP server created by conduit-ws hold: `maxConnections` plus
 * {@link SOCKET_HEADROOM}, or fewer when the open-file limit (`ulimit -n`) is lower. At the open-file
 * limit libuv closes new connections itself and node learns nothing of them; the socket limit below
 * it turns them into drops that can be logged.
 *
 * @param openFiles - the process's open-file limit, when known
 */
export function socketLimit(maxConnections: number, openFiles: number | undefined = openFileLimit()): number {
  const wanted = maxConnections + SOCKET_HEADROOM;
  if (openFiles === undefined) return wanted;
  return Math.max(1, Math.min(wanted, openFiles - OPEN_FILE_RESERVE));
}

/** The process's soft limit of open files, read once from Linux's /proc; undefined elsewhere. */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "latin1"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A warning logged at most once per {@link REFUSAL_LOG_INTERVAL_MS}: the first refusal of an interval
 * writes a line with `refused`, the number of refusals since the previous line (this one included).
 */
export class ThrottledWarning {
  readonly #logger: Logger;
  readonly #message: string;
  /** The same interval gate as the per-client log lines, keyed by this warning. */
  readonly #throttle = new LogThrottle(REFUSAL_LOG_INTERVAL_MS);

  /**
   * @param logger - where the line goes (as a warning)
   * @param message - the line's message
   */
  constructor(logger: Logger, message: string) {
    this.#logger = logger;
    this.#message = message;
  }

  /** Counts one refusal; logs it with `fields` when no line was written within the interval. */
  note(fields: Record<string, unknown>): void {
    const heldBack = this.#throttle.admit(this);
    if (heldBack !== undefined) this.#logger.warn({ ...fields, refused: heldBack + 1 }, this.#message);
  }
}

/**
 * Bounds the sockets of an HTTP server conduit-ws created (node's `server.maxConnections`, see
 * {@link socketLimit}) and logs, at most once per interval each, the connections node drops at that
 * bound (`'drop'`) and the connections it fails to accept (`ENFILE` when the system is out of file
 * descriptors, say). Call it once the server listens: a failure to listen belongs to whoever called
 * `listen()`, and node emits a failed accept as an `'error'` that would otherwise end the process.
 */
export function limitSockets(server: HttpServer, maxConnections: number, logger: Logger): void {
  const openFiles = openFileLimit();
  const limit = socketLimit(maxConnections, openFiles);
  server.maxConnections = limit;
  if (limit < maxConnections + SOCKET_HEADROOM) {
    logger.warn({ maxConnections, openFiles, sockets: limit }, "the open-file limit (ulimit -n) holds the server below maxConnections");
  }
  const dropped = new ThrottledWarning(logger, "connection dropped: the server holds its maximum of sockets");
  const failed = new ThrottledWarning(logger, "connection not accepted: out of file descriptors or memory");
  server.on("drop", () => dropped.note({ limit }));
  server.on("error", (error: NodeJS.ErrnoException) => {
    if (error.syscall === "accept") failed.note({ code: error.code });
    else logger.error({ err: error }, "HTTP server error");
  });
}
