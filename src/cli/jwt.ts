/**
 * `--jwt-secret`: an auth handler that accepts HS256 JSON Web Tokens signed with the secret and takes
 * the user id from `sub`, the rooms it grants from `rooms` and its expiry from `exp` (docs/CLI.md). Expired, not yet valid, badly signed, malformed or `sub`-less
 * tokens, and those whose `sub` is longer than `MAX_USER_ID_LENGTH`, are refused, which the upgrader answers with HTTP 401.
 *
 * @module
 */
import { errors, jwtVerify } from "jose";
import type { Logger } from "../logger.js";
import { type AuthGrant, type AuthHandler, MAX_USER_ID_LENGTH } from "../upgrade/tokens.js";

/**
 * Creates the auth handler. Only HS256 is accepted, so a token cannot pick a weaker algorithm (or
 * `none`) for itself. `exp` and `nbf` are checked when present (a token without `exp` does not
 * expire, as in Centrifugo). The refusal reason is logged as jose's error code, never the token.
 *
 * @example
 * ```ts
 * server.setAuthHandler(createJwtAuthHandler(process.env.CONDUIT_JWT_SECRET!, logger));
 * ```
 */
export function createJwtAuthHandler(secret: string, logger: Logger): AuthHandler {
  const key = new TextEncoder().encode(secret);
  // RFC 7518 §3.2: an HS256 key should be at least as long as the hash (32 bytes).
  if (key.byteLength < 32) logger.warn({ bytes: key.byteLength }, "the JWT secret is shorter than 32 bytes: easy to brute-force");
  return async (_ctx, token) => {
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
      if (typeof payload.sub !== "string" || payload.sub === "") {
        logger.debug({ reason: "missing_sub" }, "jwt refused");
        return null;
      }
      if (payload.sub.length > MAX_USER_ID_LENGTH) {
        logger.debug({ reason: "sub_too_long", length: payload.sub.length, limit: MAX_USER_ID_LENGTH }, "jwt refused");
        return null;
      }
      const rooms = payload.rooms;
      if (rooms !== undefined && (!Array.isArray(rooms) || !rooms.every((room) => typeof room === "string"))) {
        logger.debug({ reason: "rooms_not_strings" }, "jwt refused");
        return null;
      }
      // `exp` is in seconds (RFC 7519 §4.1.4); jose has already refused an expired token.
      const grant: AuthGrant = { userId: payload.sub };
      if (rooms !== undefined) grant.rooms = rooms as string[];
      if (typeof payload.exp === "number") grant.expiresAt = payload.exp * 1000;
      return grant;
    } catch (error) {
      const reason = error instanceof errors.JOSEError ? error.code : "invalid";
      logger.debug({ reason }, "jwt refused");
      return null;
    }
  };
}
