/**
 * The server's side of token expiry and refresh (docs/PROTOCOL.md's `refresh`, `refreshed`,
 * `token_expiring`, close 4001), emulated on a test server with the library's public API, so that the
 * SDK can be tested against it: an auth handler that reads the expiry from unsigned JWT-shaped tokens,
 * a timer per connection that closes it with 4001 at expiry, and a `refresh` handler. Registered
 * handlers take the place of built-ins, so this keeps working once the server has its own.
 */
import type { Client, ConduitServer } from "../../src/index.js";

/** An unsigned JWT-shaped token (`header.payload.signature`) for `sub`, expiring `ms` from now. */
export function fakeJwt(sub: string, ms: number): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ sub, exp: (Date.now() + ms) / 1000 })}.unsigned`;
}

/** The `sub` and expiry (ms since the epoch) of a {@link fakeJwt}; undefined when malformed. */
export function readFakeJwt(token: string): { sub: string; exp: number } | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { sub?: unknown; exp?: unknown };
    if (typeof claims.sub !== "string" || typeof claims.exp !== "number") return undefined;
    return { sub: claims.sub, exp: claims.exp * 1000 };
  } catch {
    return undefined;
  }
}

/** A refresh request the emulated server received. */
export interface RefreshSeen {
  token: string;
  /** The connection it came on. */
  clientId: string;
  /** When it arrived, and when the connection's token was due to expire then (ms since the epoch). */
  at: number;
  expiredAt: number;
  /** Whether it was accepted. */
  accepted: boolean;
}

/** What the emulation records, and a way to wait for it. */
export interface TokenEmulation {
  /** Tokens of accepted and refused handshakes, in order. */
  handshakes: string[];
  refreshes: RefreshSeen[];
  /** Connections, in order of arrival. */
  connections: Client[];
  /** Resolves once `count` refreshes have arrived; rejects after `timeoutMs`. */
  refreshCount(count: number, timeoutMs?: number): Promise<RefreshSeen[]>;
  /** Pushes `token_expiring` to `client` with its current expiry. */
  warn(client: Client): void;
}

/**
 * Installs the emulation on `server` (before it listens). `cap` bounds the expiry the server grants,
 * whatever the token says, as a server might.
 */
export function emulateTokenExpiry(server: ConduitServer, cap = Number.POSITIVE_INFINITY): TokenEmulation {
  const handshakes: string[] = [];
  const refreshes: RefreshSeen[] = [];
  const connections: Client[] = [];
  const expiry = new Map<Client, { at: number; timer: ReturnType<typeof setTimeout> }>();
  let onRefresh = (): void => {};

  const expireAt = (client: Client, at: number): void => {
    clearTimeout(expiry.get(client)?.timer);
    const timer = setTimeout(() => client.close(4001, "token_expired"), Math.max(0, at - Date.now()));
    expiry.set(client, { at, timer });
  };

  server.setAuthHandler((_ctx, token) => {
    handshakes.push(token);
    const claims = readFakeJwt(token);
    if (claims === undefined || claims.exp <= Date.now()) return null;
    return { userId: claims.sub, metadata: { exp: Math.min(claims.exp, Date.now() + cap) } };
  });
  server.on("connection", (client) => {
    connections.push(client);
    const exp = client.getMetadata<number>("exp");
    if (exp !== undefined) expireAt(client, exp);
  });
  server.on("disconnect", (client) => {
    clearTimeout(expiry.get(client)?.timer);
    expiry.delete(client);
  });
  server.registerHandler("refresh", (ctx, client, message) => {
    const token = String((message.data as { token?: unknown } | undefined)?.token ?? "");
    const claims = readFakeJwt(token);
    const current = expiry.get(client);
    const accepted = claims !== undefined && claims.exp > Date.now() && claims.sub === client.userId;
    refreshes.push({ token, clientId: client.id, at: Date.now(), expiredAt: current?.at ?? Number.NaN, accepted });
    onRefresh();
    if (!accepted) return ctx.replyError("forbidden", "the token is invalid, expired or for another user");
    const at = Math.min(claims.exp, Date.now() + cap);
    expireAt(client, at);
    ctx.reply("refreshed", { expires_at: new Date(at).toISOString() });
  });

  return {
    handshakes,
    refreshes,
    connections,
    refreshCount(count, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${refreshes.length} of ${count} refreshes within ${timeoutMs} ms`)), timeoutMs);
        onRefresh = () => {
          if (refreshes.length < count) return;
          clearTimeout(timer);
          resolve(refreshes.slice(0, count));
        };
        onRefresh();
      });
    },
    warn(client) {
      const at = expiry.get(client)?.at;
      if (at !== undefined) client.send("token_expiring", { expires_at: new Date(at).toISOString() });
    },
  };
}
