/**
 * Every server option with its default, and the one function that validates them.
 *
 * @module
 */
import type { IncomingMessage } from "node:http";
import type { Adapter } from "./adapter/adapter.js";
import type { Instrumentation } from "./instrumentation.js";
import type { Logger } from "./logger.js";
import { ConfigurationError, type NamespacesConfig, parseNamespaces } from "./namespaces/config.js";
import type { Client, RoomName } from "./types.js";

/**
 * Per-connection limits: a token bucket of messages (every frame a client sends takes one token,
 * ping and pong frames included), and a budget of the work its messages cause.
 */
export interface RateLimitOptions {
  /**
   * Tokens added per second (the sustained message rate).
   * @default 100
   */
  messagesPerSecond: number;
  /**
   * Bucket size: how many messages a client may send at once after a quiet period.
   * @default 200
   */
  burst: number;
  /**
   * Dropped messages within {@link RateLimitOptions.abuseWindowMs} after which the connection is
   * closed with 1008 (sustained abuse).
   * @default 200
   */
  maxDropped: number;
  /**
   * The window over which dropped messages are counted.
   * @default 10000
   */
  abuseWindowMs: number;
  /**
   * The work budget: deliveries per second that a client's own messages may cause, with a burst of
   * twice this. A broadcast costs one delivery per recipient on this node for every started KiB of
   * the message; `presence` one per member it returns; `join_room` and `leave_room` one per member
   * notified. A message over the budget is refused with `rate_limited` and counts as dropped, like one
   * over the message rate. Server-side sends (`server.broadcast`, a handler's own sends) are not
   * charged.
   * @default 100 × messagesPerSecond (10000)
   */
  deliveriesPerSecond?: number;
}

/** Each message a client may send per second lets its own messages cause this many deliveries. */
export const DELIVERIES_PER_MESSAGE = 100;

/** Options of {@link createServer}. Every field is optional; the defaults are listed with each. */
export interface ServerOptions {
  /**
   * The HTTP path of the WebSocket endpoint.
   * @default "/ws"
   */
  path: string;
  /**
   * Largest frame (and reassembled message) a client may send, in bytes. Larger: close 1009.
   * @default 65536
   */
  maxPayload: number;
  /**
   * Deepest nesting of arrays and objects a client's message may have; deeper: an `invalid_message`
   * error, and the message is not parsed.
   * @default 64
   */
  maxMessageDepth: number;
  /**
   * Connections this process accepts; above it the handshake is refused with HTTP 503. A connection
   * the server has closed counts until its socket is gone (a slow consumer's unsent bytes live until
   * then), as do handshakes still in the auth handler and sockets of the server that have not yet
   * upgraded.
   * @default 20000
   */
  maxConnections: number;
  /**
   * Milliseconds between the WebSocket ping frames of the heartbeat sweep.
   * @default 30000
   */
  heartbeatInterval: number;
  /**
   * Milliseconds without a pong or message after which a client is terminated.
   * @default 60000
   */
  heartbeatTimeout: number;
  /**
   * Milliseconds a new TCP connection has to complete its upgrade request before it is closed
   * (slowloris protection). Applies to servers given to `attach()`; on the servers `listen()` and the
   * standalone server create, it is also the time any request has to arrive whole, body included.
   * @default 10000
   */
  handshakeTimeout: number;
  /**
   * Unsent bytes a client may accumulate (it is not reading) before it is closed with 1013.
   * @default 1048576
   */
  maxBufferedBytes: number;
  /**
   * A message sent with `{ droppable: true }` is skipped for a client whose unsent bytes exceed this
   * mark, so tickers never cost a slow client its connection.
   * @default 262144
   */
  droppableBufferedBytes: number;
  /**
   * The per-connection message rate and work budget, or `false` for neither.
   * @default { messagesPerSecond: 100, burst: 200, maxDropped: 200, abuseWindowMs: 10000, deliveriesPerSecond: 10000 }
   */
  rateLimit: RateLimitOptions | false;
  /**
   * Rooms one client may be in at once.
   * @default 100
   */
  maxRoomsPerClient: number;
  /**
   * Milliseconds a handler may take before the client gets a `handler_timeout` error.
   * @default 10000
   */
  handlerTimeout: number;
  /**
   * Whether clients may use the built-in `broadcast` without a room (to every client).
   * @default true
   */
  allowBroadcastToAll: boolean;
  /**
   * `member_joined`/`member_left` events are pushed only for rooms with at most this many members
   * (0 turns them off). The `presence` request works for every size.
   * @default 1000
   */
  presenceEventsMaxMembers: number;
  /**
   * Negotiate permessage-deflate. Off by default: it costs CPU and memory per connection, and
   * compressed connections cannot share a broadcast's pre-built frame.
   * @default false
   */
  enableCompression: boolean;
  /**
   * Exact `Origin` values (scheme, host and port) allowed to connect; others get HTTP 403. A request
   * without `Origin` (a non-browser client) is allowed. `undefined` allows every origin.
   * @default undefined
   */
  allowedOrigins: readonly string[] | undefined;
  /**
   * A custom origin check that replaces {@link ServerOptions.allowedOrigins}. Return false for 403.
   * @default undefined
   */
  checkOrigin: ((origin: string | undefined, request: IncomingMessage) => boolean) | undefined;
  /**
   * Reads the token from the upgrade request. The default takes `?token=`, else
   * `Authorization: Bearer …`.
   * @default undefined (the built-in extractor)
   */
  tokenExtractor: ((request: IncomingMessage) => string | undefined) | undefined;
  /**
   * Milliseconds {@link ConduitServer.shutdown} waits for clients to finish their closing handshake
   * before it terminates the rest.
   * @default 5000
   */
  shutdownTimeout: number;
  /**
   * Where the server logs. Any pino-compatible logger; the default logs nothing.
   * @default undefined (silent)
   */
  logger: Logger | undefined;
  /**
   * Hooks for metrics (the standalone server plugs Prometheus counters in here).
   * @default undefined
   */
  instrumentation: Instrumentation | undefined;
  /**
   * The cluster seam. The default is an in-memory adapter: one process, nothing to install.
   * @default new MemoryAdapter()
   */
  adapter: Adapter | undefined;
  /**
   * Rules by room namespace (a room's name up to its first `:`; `""` for names without one): who may
   * join (`anyone`, `authenticated`, or `granted` by the token's `rooms`), who may publish (`members`
   * or only the `server`), whether `presence` is on. With a table, rooms of an unlisted namespace are
   * refused with `forbidden`; without one, every room is open as before. The rules apply to clients'
   * own requests; the server's calls (`client.joinRoom`, `server.broadcastToRoom`) are trusted.
   *
   * @example
   * ```ts
   * createServer({
   *   namespaces: {
   *     "": { join: "anyone" },
   *     news: { join: "anyone", publish: "server" },
   *     dm: { join: "granted", presence: false },
   *   },
   * });
   * ```
   * @default undefined
   */
  namespaces: NamespacesConfig | undefined;
  /**
   * Decides a client's `join_room` in code, after the namespace rules allowed it: return false (or
   * throw) to refuse with `forbidden`. For rules a table cannot express (a database lookup, say).
   * @default undefined
   */
  canJoin: ((client: Client, room: RoomName) => boolean | Promise<boolean>) | undefined;
}

/** The default of every option. */
export const defaultOptions: Readonly<ServerOptions> = Object.freeze({
  path: "/ws",
  maxPayload: 64 * 1024,
  maxMessageDepth: 64,
  maxConnections: 20_000,
  heartbeatInterval: 30_000,
  heartbeatTimeout: 60_000,
  handshakeTimeout: 10_000,
  maxBufferedBytes: 1024 * 1024,
  droppableBufferedBytes: 256 * 1024,
  rateLimit: Object.freeze({ messagesPerSecond: 100, burst: 200, maxDropped: 200, abuseWindowMs: 10_000, deliveriesPerSecond: 10_000 }),
  maxRoomsPerClient: 100,
  handlerTimeout: 10_000,
  allowBroadcastToAll: true,
  presenceEventsMaxMembers: 1000,
  enableCompression: false,
  allowedOrigins: undefined,
  checkOrigin: undefined,
  tokenExtractor: undefined,
  shutdownTimeout: 5000,
  logger: undefined,
  instrumentation: undefined,
  adapter: undefined,
  namespaces: undefined,
  canJoin: undefined,
});

/** The largest delay Node's timers accept. */
const MAX_TIMER_MS = 2_147_483_647;

function requirePositiveInteger(name: string, value: unknown, allowZero = false): void {
  const ok = typeof value === "number" && Number.isInteger(value) && (allowZero ? value >= 0 : value > 0);
  if (!ok) {
    throw new TypeError(`conduit-ws: option "${name}" must be a ${allowZero ? "non-negative" : "positive"} integer, got ${String(value)}`);
  }
}

/**
 * Spreads the user's options over {@link defaultOptions} and checks them once, so that a bad value
 * fails at start-up with a message that says how to fix it instead of misbehaving later.
 *
 * @throws TypeError naming the option and the value that was wrong
 */
export function resolveOptions(user: Partial<ServerOptions> = {}): ServerOptions {
  const options: ServerOptions = { ...defaultOptions, ...stripUndefined(user) };
  if (user.rateLimit) {
    const limit = { ...(defaultOptions.rateLimit as RateLimitOptions), ...stripUndefined(user.rateLimit) };
    // The budget follows the message rate unless it is set itself, so raising the rate raises both.
    if (user.rateLimit.deliveriesPerSecond === undefined) limit.deliveriesPerSecond = DELIVERIES_PER_MESSAGE * limit.messagesPerSecond;
    options.rateLimit = limit;
  }

  if (typeof options.path !== "string" || !options.path.startsWith("/")) {
    throw new TypeError(`conduit-ws: option "path" must start with "/", got ${JSON.stringify(options.path)}`);
  }
  for (const name of [
    "maxPayload",
    "maxMessageDepth",
    "maxConnections",
    "heartbeatInterval",
    "heartbeatTimeout",
    "handshakeTimeout",
    "maxBufferedBytes",
    "maxRoomsPerClient",
    "handlerTimeout",
  ] as const) {
    requirePositiveInteger(name, options[name]);
  }
  requirePositiveInteger("droppableBufferedBytes", options.droppableBufferedBytes, true);
  requirePositiveInteger("presenceEventsMaxMembers", options.presenceEventsMaxMembers, true);
  requirePositiveInteger("shutdownTimeout", options.shutdownTimeout, true);
  // Node turns a timer delay above 2^31-1 ms into 1 ms: a "very long" timeout would fire at once.
  for (const name of ["heartbeatInterval", "heartbeatTimeout", "handshakeTimeout", "handlerTimeout", "shutdownTimeout"] as const) {
    if (options[name] > MAX_TIMER_MS) {
      throw new TypeError(`conduit-ws: option "${name}" must be at most ${MAX_TIMER_MS} ms (Node's timer limit), got ${options[name]}`);
    }
  }
  if (options.droppableBufferedBytes > options.maxBufferedBytes) {
    throw new TypeError(
      `conduit-ws: "droppableBufferedBytes" (${options.droppableBufferedBytes}) must not exceed "maxBufferedBytes" (${options.maxBufferedBytes}): droppable sends are skipped before a client is closed, not after`,
    );
  }
  if (options.maxBufferedBytes < options.maxPayload) {
    throw new TypeError(
      `conduit-ws: "maxBufferedBytes" (${options.maxBufferedBytes}) must be at least "maxPayload" (${options.maxPayload}): a reply as large as the largest message a client may send would close its connection`,
    );
  }
  if (options.heartbeatTimeout < options.heartbeatInterval) {
    throw new TypeError(
      `conduit-ws: "heartbeatTimeout" (${options.heartbeatTimeout}) must be at least "heartbeatInterval" (${options.heartbeatInterval}), or every client would time out between two pings`,
    );
  }
  if (options.rateLimit) {
    const limit = options.rateLimit;
    for (const name of ["messagesPerSecond", "burst", "maxDropped", "abuseWindowMs", "deliveriesPerSecond"] as const) {
      requirePositiveInteger(`rateLimit.${name}`, limit[name]);
    }
  }
  if (options.namespaces !== undefined) {
    try {
      options.namespaces = parseNamespaces(options.namespaces, 'conduit-ws: option "namespaces"');
    } catch (error) {
      throw error instanceof ConfigurationError ? new TypeError(error.message) : error;
    }
  }
  if (options.canJoin !== undefined && typeof options.canJoin !== "function") {
    throw new TypeError('conduit-ws: option "canJoin" must be a function (client, room) => boolean | Promise<boolean>');
  }
  if (options.allowedOrigins !== undefined && !Array.isArray(options.allowedOrigins)) {
    throw new TypeError(`conduit-ws: option "allowedOrigins" must be an array of origins like "https://app.example"`);
  }
  return options;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out;
}
