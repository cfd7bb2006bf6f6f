/**
 * Every error code a client can receive and every close code the server uses, in one place.
 *
 * Error codes travel in `{"type":"error","data":{"code","message"}}` replies (docs/PROTOCOL.md); close codes
 * end a connection (docs/PROTOCOL.md). Both are part of the wire contract: renaming one is a breaking change.
 *
 * @module
 */

/**
 * Machine-readable codes carried by error replies. Clients switch on these, never on the message text.
 */
export const ErrorCode = {
  /** The frame was not valid JSON. */
  InvalidJson: "invalid_json",
  /** The JSON was not an object with a string `type` (or `id` was not a string). */
  InvalidMessage: "invalid_message",
  /** No handler is registered for the message's `type`. */
  UnknownType: "unknown_type",
  /** A binary frame arrived and no binary handler is registered. */
  BinaryNotSupported: "binary_not_supported",
  /** The message's `data` failed the handler's schema; the message names the field. */
  ValidationFailed: "validation_failed",
  /** The handler threw or rejected. The message never contains a stack trace. */
  HandlerError: "handler_error",
  /** The handler did not settle within `handlerTimeout`. */
  HandlerTimeout: "handler_timeout",
  /** The room name is missing, too long, contains control characters or is not well-formed Unicode. */
  InvalidRoom: "invalid_room",
  /** The client is already in `maxRoomsPerClient` rooms. */
  TooManyRooms: "too_many_rooms",
  /** The operation needs membership of a room the client is not in. */
  NotInRoom: "not_in_room",
  /** A broadcast used a reserved message type such as `error` or `pong`. */
  ReservedType: "reserved_type",
  /** A broadcast to every client was attempted while `allowBroadcastToAll` is false. */
  BroadcastForbidden: "broadcast_forbidden",
  /** The client sent faster than its token bucket allows, or asked for more work than its budget; the message was dropped. */
  RateLimited: "rate_limited",
  /** The namespace's rules (or the `canJoin` hook) do not allow this client to do that. */
  Forbidden: "forbidden",
  /** The server cannot do it now (a backend it needs is unreachable); try again later. */
  Unavailable: "unavailable",
  /** Anything else that went wrong inside the server. */
  InternalError: "internal_error",
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * WebSocket close codes the server sends (RFC 6455 §7.4). Codes below 4000 are standard; a client
 * should reconnect after 1001, 1011 and 1013, and should not retry blindly after 1008 or 1009.
 */
export const CloseCode = {
  /** The client or the application ended the connection normally. */
  Normal: 1000,
  /** The server is shutting down. Reconnect (to another node) after a delay. */
  GoingAway: 1001,
  /** The peer broke the WebSocket protocol (set by `ws`). */
  ProtocolError: 1002,
  /** A text frame was not valid UTF-8 (set by `ws`). */
  InvalidPayload: 1007,
  /** Sustained abuse of the rate limit. Do not reconnect in a tight loop. */
  PolicyViolation: 1008,
  /** A frame was larger than `maxPayload`. */
  MessageTooBig: 1009,
  /** An internal failure of the server. */
  InternalError: 1011,
  /** The client did not read fast enough: its unsent bytes passed `maxBufferedBytes`. */
  TryAgainLater: 1013,
  /** The connection's token expired without a refresh. Get a new token, then reconnect. */
  TokenExpired: 4001,
  /** The application closed it through the server API (`disconnectUser`, `POST /api/disconnect`). Do not reconnect blindly. */
  Disconnected: 4003,
} as const;

/** One of the values of {@link CloseCode}. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Why a client left the hub. Passed to `disconnect` listeners and recorded in logs and metrics.
 */
export type DisconnectReason =
  /** The client sent a close frame or its TCP connection ended. */
  | "client_closed"
  /** No pong or message within `heartbeatTimeout`. */
  | "heartbeat_timeout"
  /** The server is shutting down. */
  | "server_shutdown"
  /** Unsent bytes passed `maxBufferedBytes`. */
  | "slow_consumer"
  /** Sustained rate-limit abuse. */
  | "rate_limited"
  /** Application code called `client.close()`. */
  | "server_closed"
  /** A socket error or a protocol violation detected by `ws`. */
  | "transport_error"
  /** The connection's token expired and was not refreshed (close 4001). */
  | "token_expired"
  /** The application closed it with `disconnectUser`/`disconnectClient` or `POST /api/disconnect`. */
  | "disconnected";

/**
 * An error a handler may throw to control what the client sees. Any other thrown value becomes a
 * generic `handler_error` whose message does not reveal internals.
 *
 * @example
 * ```ts
 * server.registerHandler("withdraw", (ctx, client, msg) => {
 *   if (!client.userId) throw new ConduitError("forbidden", "log in first");
 * });
 * ```
 */
export class ConduitError extends Error {
  /** The machine-readable code sent to the client. */
  readonly code: string;

  /**
   * @param code - machine-readable code sent to the client (one of {@link ErrorCode} or your own)
   * @param message - human-readable text sent to the client
   */
  constructor(code: string, message: string) {
    super(message);
    this.name = "ConduitError";
    this.code = code;
  }
}
