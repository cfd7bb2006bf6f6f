/**
 * The types of the client SDK: the wire envelope as the client sees it, the replies and events of the
 * server's built-in types, connection states and options.
 *
 * Nothing here refers to DOM or Node types, so the same declarations describe the browser build and
 * the Node entry.
 *
 * @module
 */

/** A message as it travels: `{ type, data?, id? }`, one JSON object per text frame (docs/PROTOCOL.md). */
export interface ClientMessage<T = unknown> {
  /** What the message is; handlers are chosen by it. */
  type: string;
  /** The payload; any JSON value. */
  data?: T;
  /** The request id; only the direct reply to a request carries one. */
  id?: string;
}

/** The reply to a request: the message that carried the request's `id` back. */
export interface Reply<T = unknown> {
  /** The reply's type, such as `presence`, `pong` or `ack`. */
  type: string;
  /** Its payload (undefined for an `ack`). */
  data: T;
  /** The request's id. */
  id: string;
}

/** The `data` of `{"type":"error"}`: human text and a machine code to switch on. */
export interface ErrorData {
  /** Human-readable text; never switch on it. */
  message: string;
  /** Machine-readable code, such as `not_in_room` or `rate_limited`. */
  code: string;
}

/** One member of a room, as `presence` lists it. */
export interface PresenceMember {
  /** The connection's id on the server. */
  client_id: string;
  /** The authenticated user, or null for an anonymous connection. */
  user_id: string | null;
}

/** The `data` of `member_joined` and `member_left`, pushed to the other members of a room. */
export interface MemberEvent extends PresenceMember {
  /** The room the member joined or left. */
  room: string;
}

/** The reply to `{"type":"presence","data":{"room"}}`. */
export interface PresenceData {
  /** The room asked about. */
  room: string;
  /** How many members it has. */
  count: number;
  /** Who they are. */
  members: PresenceMember[];
}

/** The reply to `{"type":"status"}`. */
export interface StatusData {
  /** This connection's id on the server. */
  client_id: string;
  /** The authenticated user, or null. */
  user_id: string | null;
  /** ISO 8601 time the connection was accepted. */
  connected_at: string;
  /** Time connected, in Go's duration format (`5m30s`). */
  connection_duration: string;
  /** ISO 8601 time of the last pong or message. */
  last_heartbeat: string;
  /** The rooms this connection is in. */
  rooms: string[];
}

/** The `data` of an unasked `room_left`: this client is no longer in a room it had joined. */
export interface RoomLeftEvent {
  /** The room, now forgotten: it is not joined again after a reconnect. */
  room: string;
  /**
   * Why: the server's reason (`forbidden` when a refreshed token no longer grants the room), or the
   * error code of a join the server refused when the SDK rejoined the room after a reconnect.
   */
  reason?: string;
}

/** The `data` of `token_expiring`: the server's notice that the connection's token expires soon. */
export interface TokenExpiringEvent {
  /** When the token expires, ISO 8601. */
  expires_at: string;
}

/** `data` of the messages the server sends without being asked, by type. */
export interface BuiltinEvents {
  /**
   * An error that answers no request of this client, or one of a request the SDK made itself (a
   * token refresh, say).
   */
  error: ErrorData;
  /** Another client joined a room this client is in. */
  member_joined: MemberEvent;
  /** Another client left a room this client is in (left, closed or timed out). */
  member_left: MemberEvent;
  /** This client left a room without asking: the server removed it, or refused it on a rejoin. */
  room_left: RoomLeftEvent;
  /** The token expires soon; the SDK refreshes it at once unless `refreshBefore` is false. */
  token_expiring: TokenExpiringEvent;
}

/** `data` of the reply to each built-in request type, by request type. */
export interface BuiltinReplies {
  /** `ping` answers with the request's data, or the server's ISO time. */
  ping: { timestamp: unknown };
  /** `echo` wraps what it was sent. */
  echo: { original: unknown };
  /** `join_room` answers `room_joined`. */
  join_room: { room: string };
  /** `leave_room` answers `room_left`. */
  leave_room: { room: string };
  /** `broadcast` answers `ack` (no data) once the message went out. */
  broadcast: undefined;
  /** `status` describes this connection. */
  status: StatusData;
  /** `presence` lists a room's members. */
  presence: PresenceData;
  /** `refresh` answers `refreshed` with the new token's expiry (ISO 8601), null when it has none. */
  refresh: { expires_at: string | null };
}

/** The reply data of request type `K`: known for built-ins, `unknown` for your own types. */
export type ReplyData<K extends string> = K extends keyof BuiltinReplies ? BuiltinReplies[K] : unknown;

/**
 * Where the connection is:
 * - `connecting`: the first attempt after `connect()` is under way;
 * - `open`: connected, and every room joined before has been joined again;
 * - `reconnecting`: the connection was lost or refused; the next attempt is scheduled or under way;
 * - `closed`: `close()` was called, `reconnect.maxAttempts` ran out, or the server ended the connection
 *   in a way that retrying cannot mend (the close code, or the refused handshake's HTTP status, says
 *   which; docs/CLIENT.md lists them).
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** What a connection-state listener receives. */
export interface StateChange {
  /** The new state. */
  state: ConnectionState;
  /** The state before; equal to `state` when a new retry is scheduled while already reconnecting. */
  previous: ConnectionState;
  /** Failed attempts since the connection was last open (0 when open). */
  attempt: number;
  /** When reconnecting: milliseconds until the next attempt. */
  delay?: number;
  /** The close code of the connection that just ended, when one did (1006: no close frame). */
  code?: number;
  /** The close reason of the connection that just ended, when it gave one. */
  reason?: string;
  /**
   * The HTTP status of a refused handshake (401, 403, 503, …). Only the Node entry can tell it: a
   * browser reports a refused handshake as close code 1006 without a status.
   */
  status?: number;
}

/** A listener for {@link StateChange}s. */
export type StateListener = (change: StateChange) => void;

/** A handler for one message type: gets the `data` and the whole message. */
export type MessageHandler<T = unknown> = (data: T, message: ClientMessage<T>) => void;

/** Options of a single request. */
export interface RequestOptions {
  /**
   * Milliseconds to wait for the reply, counted from the call (time spent queued while disconnected
   * included). Defaults to the client's `requestTimeout`.
   */
  timeout?: number;
}

/** How reconnection waits between attempts: exponential backoff with jitter, capped. */
export interface ReconnectOptions {
  /**
   * Wait before the first retry, in ms.
   * @default 500
   */
  initialDelay?: number;
  /**
   * The cap on the wait, in ms.
   * @default 10000
   */
  maxDelay?: number;
  /**
   * The wait grows by this factor after each failed attempt.
   * @default 2
   */
  factor?: number;
  /**
   * Fraction of each wait drawn at random, 0–1, so that clients cut off together do not return
   * together: a wait `d` becomes a value between `d × (1 − jitter)` and `d`.
   * @default 0.5
   */
  jitter?: number;
  /**
   * Failed attempts in a row before giving up (state `closed`).
   * @default Infinity
   */
  maxAttempts?: number;
}

/** The part of the WebSocket API the client uses, as browsers and `ws` both provide it. */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Sends one text frame. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Called once the connection is open. */
  onopen: ((event: unknown) => void) | null;
  /** Called for each message; text frames have a string `data`. */
  onmessage: ((event: { data: unknown }) => void) | null;
  /** Called once when the connection has ended (or never opened). */
  onclose: ((event: { code: number; reason: string }) => void) | null;
  /** Called on a failure; a close event follows. */
  onerror: ((event: unknown) => void) | null;
  /**
   * The HTTP status of a refused handshake, set before the close event by implementations that can
   * see it (the Node entry's); browsers cannot.
   */
  readonly handshakeStatus?: number | undefined;
}

/** A WebSocket constructor: the browser's global `WebSocket`, or `ws`'s default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** A token, or a function that produces one; the function runs before every connection attempt. */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

/** Options of {@link ConduitClient}. Every field is optional. */
export interface ClientOptions {
  /**
   * Sent as `?token=` on every attempt. A function is called again before each attempt, so it can
   * return a refreshed token, and before each token refresh (see `refreshBefore`); returning nothing
   * connects without a token. A function that throws counts as a failed attempt. A string cannot be
   * renewed: a refused handshake (401) or an expired token (close 4001) then ends in `closed`.
   */
  token?: TokenSource;
  /**
   * Connect as soon as the client is constructed; with false, call `connect()`.
   * @default true
   */
  autoConnect?: boolean;
  /** Backoff between reconnection attempts; `false` turns reconnection off. */
  reconnect?: ReconnectOptions | false;
  /**
   * Default timeout of `request()`, in ms.
   * @default 10000
   */
  requestTimeout?: number;
  /**
   * Sends and requests held while not connected. When full, a new `send()` returns false and a new
   * `request()` rejects with code `queue_full`: what was already accepted is never dropped.
   * @default 100
   */
  maxQueue?: number;
  /**
   * Sends a `ping` request this often while open (ms), and reconnects when its reply does not come
   * within `requestTimeout`: this catches a connection that died without a close. 0 turns it off.
   * @default 25000
   */
  pingInterval?: number;
  /**
   * How long before the token expires (ms) the SDK calls its `token` function and sends the new
   * token in a `refresh` request, so that the connection outlives the token. The expiry comes from
   * the server (`refreshed`, `token_expiring`), or else from the `exp` claim of a JWT (read, not
   * verified). A token that lives less than twice this long is refreshed halfway through its life.
   * Needs `token` to be a function; false turns automatic refresh off (the server then closes the
   * connection with 4001 at expiry, and the SDK reconnects with a new token).
   * @default 10000
   */
  refreshBefore?: number | false;
  /**
   * The WebSocket implementation. Defaults to the global `WebSocket`; the Node entry of the package
   * passes `ws` for you.
   */
  WebSocket?: WebSocketConstructor;
}
