/**
 * Token checks: one function decides who a token belongs to, at the handshake and when a connected
 * client refreshes its token. It turns what an auth handler returns into the connection's identity
 * (user id, metadata, the rooms its token grants, when it expires), and never logs the token.
 *
 * @module
 */
import type { IncomingMessage } from "node:http";
import type { Logger } from "../logger.js";
import { RoomGrant } from "../namespaces/rules.js";
import type { Client } from "../types.js";

/**
 * The longest user id a connection may have, in UTF-16 code units. An auth handler's longer user id
 * (a JWT's `sub`, say) refuses the handshake with HTTP 401: the id is copied into `status` replies,
 * presence lists and logs, so its size is bounded like a room name's.
 */
export const MAX_USER_ID_LENGTH = 256;

/** What the auth handler is given besides the token. */
export interface AuthContext {
  /** The upgrade request (headers, URL, socket); undefined when a connected client refreshes its token. */
  readonly request?: IncomingMessage | undefined;
  /** The connected client refreshing its token; undefined at the handshake. */
  readonly client?: Client | undefined;
}

/** An accepted token: who it belongs to, and optionally what it grants and until when. */
export interface AuthGrant {
  /** The user id; null for an accepted but anonymous connection. */
  userId: string | null;
  /** Stored on the connection (`client.getMetadata`). */
  metadata?: Record<string, unknown>;
  /**
   * The rooms the token grants, for namespaces with `join: "granted"`: exact names, or prefixes
   * ending in `*` (`"team:42:*"`).
   */
  rooms?: readonly string[];
  /**
   * When the token expires (a `Date` or milliseconds since the epoch): the connection is closed with
   * 4001 then unless it refreshes its token first.
   */
  expiresAt?: Date | number;
}

/** What an auth handler returns: a user id, a grant, or a refusal (null/undefined/false). */
export type AuthResult = string | AuthGrant | null | undefined | false;

/**
 * Decides who a token belongs to, at the handshake and on refresh. Return a user id or a grant to
 * accept, null/undefined/false (or throw) to refuse: HTTP 401 at the handshake, `forbidden` on refresh.
 *
 * @example
 * ```ts
 * server.setAuthHandler(async (ctx, token) => {
 *   const session = await sessions.lookup(token);
 *   return session && { userId: session.userId, rooms: session.rooms, expiresAt: session.expiresAt };
 * });
 * ```
 */
export type AuthHandler = (ctx: AuthContext, token: string) => AuthResult | Promise<AuthResult>;

/** Who a connection belongs to, as a token said. */
export interface Identity {
  userId: string | null;
  metadata?: Record<string, unknown> | undefined;
  grant?: RoomGrant | undefined;
  /** Milliseconds since the epoch; undefined: the token does not expire. */
  expiresAt?: number | undefined;
}

/** A connection without a token. */
export const ANONYMOUS: Identity = Object.freeze({ userId: null });

/** Checks tokens with the application's handlers; owned by the server. */
export class TokenVerifier {
  /** Checks tokens at the handshake, and on refresh when no refresh handler is set. */
  authHandler: AuthHandler | undefined;
  /** Checks tokens on refresh, in place of the auth handler. */
  refreshHandler: AuthHandler | undefined;
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Whether connections authenticate with a token at all. */
  get enabled(): boolean {
    return this.authHandler !== undefined;
  }

  /**
   * The identity `token` stands for, or undefined when it is refused (the handler said no or threw,
   * the user id is too long, or the token has already expired). Never logs the token.
   */
  async verify(ctx: AuthContext, token: string): Promise<Identity | undefined> {
    const handler = (ctx.client !== undefined ? this.refreshHandler : undefined) ?? this.authHandler;
    if (handler === undefined) return undefined;
    let result: AuthResult;
    try {
      result = await handler(ctx, token);
    } catch (error) {
      // Auth handlers often put the token in their errors ("session <token> not found"): cut it out.
      const reason = error instanceof Error ? error.message.replaceAll(token, "[token]") : "auth handler threw";
      this.#logger.debug({ reason }, "token rejected");
      return undefined;
    }
    return this.#identityOf(result);
  }

  #identityOf(result: AuthResult): Identity | undefined {
    if (typeof result === "string") return this.#checked({ userId: result });
    if (typeof result !== "object" || result === null) {
      this.#logger.debug({}, "token rejected");
      return undefined;
    }
    const identity: Identity = { userId: result.userId, metadata: result.metadata };
    if (result.rooms !== undefined) {
      if (!Array.isArray(result.rooms)) {
        this.#logger.warn({}, "auth handler returned rooms that is not an array: token rejected");
        return undefined;
      }
      identity.grant = new RoomGrant(result.rooms);
    }
    if (result.expiresAt !== undefined) {
      const expiresAt = result.expiresAt instanceof Date ? result.expiresAt.getTime() : result.expiresAt;
      if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
        this.#logger.warn({}, "auth handler returned an expiresAt that is not a date: token rejected");
        return undefined;
      }
      identity.expiresAt = expiresAt;
    }
    return this.#checked(identity);
  }

  #checked(identity: Identity): Identity | undefined {
    const { userId, expiresAt } = identity;
    if (typeof userId === "string" && userId.length > MAX_USER_ID_LENGTH) {
      // The length only: the id may be the token itself, or carry it.
      this.#logger.debug({ length: userId.length, limit: MAX_USER_ID_LENGTH }, "token rejected: user id too long");
      return undefined;
    }
    if (expiresAt !== undefined && expiresAt <= Date.now()) {
      this.#logger.debug({}, "token rejected: already expired");
      return undefined;
    }
    return identity;
  }
}
