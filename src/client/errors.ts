/**
 * The error a failed `request()` rejects with.
 *
 * @module
 */

import type { StateChange } from "./types.js";

/**
 * Codes the SDK itself uses for failures that are not error replies from the server. A server error
 * reply keeps the server's code (`not_in_room`, `rate_limited`, …).
 */
export const ClientErrorCode = {
  /** No reply within the request's timeout. */
  Timeout: "timeout",
  /** The connection ended after the request was sent; whether the server acted on it is unknown. */
  Disconnected: "disconnected",
  /** The send queue was full while disconnected; the request was never sent. */
  QueueFull: "queue_full",
  /** `close()` was called, or reconnection gave up, before the request was sent or answered. */
  Closed: "closed",
} as const;

/** One of the values of {@link ClientErrorCode}. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/**
 * Why a request failed: the server's error reply (its `code` and `message`), or one of
 * {@link ClientErrorCode}.
 *
 * @example
 * ```ts
 * try {
 *   await client.request("presence", { room: "lobby" });
 * } catch (error) {
 *   if (error instanceof RequestError && error.code === "not_in_room") await client.join("lobby");
 * }
 * ```
 */
export class RequestError extends Error {
  /** Machine-readable: the server's error code or a {@link ClientErrorCode}. */
  readonly code: string;
  /** The type of the request that failed. */
  readonly requestType: string;

  /**
   * @param code - the server's error code or a {@link ClientErrorCode}
   * @param message - human-readable text
   * @param requestType - the type of the request that failed
   */
  constructor(code: string, message: string, requestType: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
    this.requestType = requestType;
  }
}

/** The error `ready()` rejects with once the client is closed for good; the message says why. */
export function closedError(change: Partial<StateChange> | undefined): RequestError {
  const why = [
    change?.status !== undefined ? `HTTP ${change.status}` : undefined,
    change?.code !== undefined ? `code ${change.code}` : undefined,
    change?.reason,
  ].filter((part) => part !== undefined);
  return new RequestError(ClientErrorCode.Closed, `the client is closed${why.length > 0 ? ` (${why.join(", ")})` : ""}`, "ready");
}
