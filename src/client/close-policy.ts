/**
 * What the client does when its connection ends or its handshake is refused: reconnect, reconnect
 * with a new token, or stop. Kept apart from the connection logic so the whole policy reads as one
 * table (docs/CLIENT.md prints the same table for users).
 *
 * @module
 */

/**
 * - `reconnect`: try again after the backoff;
 * - `new_token`: the token was refused or expired: try again only if the token function can give a
 *   new one, and not after a new one was refused as well;
 * - `stop`: retrying cannot mend it; the state becomes `closed`.
 */
export type CloseOutcome = "reconnect" | "new_token" | "stop";

/** The close code of a connection whose token expired unrefreshed. */
export const TOKEN_EXPIRED = 4001;

/** Codes the server sends when the same client would only be closed again: no retry. */
const STOP_CODES = new Set([
  1000, // the server (or the application) ended the connection on purpose
  1008, // policy violation: sustained abuse of the rate limit
  1009, // a message too big: resending it would fail the same way
]);

/** What to do after a connection that was accepted (or never reached a server) closed with `code`. */
export function afterClose(code: number): CloseOutcome {
  if (code === TOKEN_EXPIRED) return "new_token";
  if (STOP_CODES.has(code)) return "stop";
  // 3000–4999 belong to applications and libraries: 4003 is a disconnect by the server's API, and a
  // code this SDK does not know is more likely a deliberate "go away" than a passing failure.
  if (code >= 3000) return "stop";
  // 1001 going away, 1006 no close frame (a network failure, or in a browser any refused
  // handshake), 1011 internal error, 1012 restart, 1013 try again later, and the other protocol codes.
  return "reconnect";
}

/** What to do after the server refused the handshake with HTTP `status` (seen only outside browsers). */
export function afterRefusal(status: number): CloseOutcome {
  if (status === 401) return "new_token";
  // A timeout, a rate limit, a full or draining server, a proxy between restarts: all pass.
  if (status === 408 || status === 429 || status >= 500) return "reconnect";
  // 403 (origin not allowed), 400 or 404 (no endpoint at this URL): the same request fails again.
  return "stop";
}

/**
 * Whether to reconnect after a connection ended with `code` (and, when the handshake was refused,
 * HTTP `status`). A token that was refused or expired is worth another attempt only when the token
 * function can give a new one (`renewable`), and not when the attempt before was refused with 401 too.
 */
export function nextStep(code: number, status: number | undefined, renewable: boolean, refusedBefore: boolean): "reconnect" | "stop" {
  const outcome = status !== undefined ? afterRefusal(status) : afterClose(code);
  if (outcome !== "new_token") return outcome;
  return renewable && !(status === 401 && refusedBefore) ? "reconnect" : "stop";
}
