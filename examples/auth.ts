/**
 * Authentication: every connection must present a token signed with a shared secret (HMAC-SHA256).
 * The token is `<userId>.<signature>`; the user id becomes `client.userId` and `user_id` in `status`.
 * A missing or bad token is refused with HTTP 401 before any WebSocket exists.
 *
 *   AUTH_SECRET=change-me npx tsx examples/auth.ts [port]   serve (port 0 picks a free one)
 *   AUTH_SECRET=change-me npx tsx examples/auth.ts mint ada  print a token for user "ada"
 *
 * Then connect to ws://127.0.0.1:8080/ws?token=<token> (or send `Authorization: Bearer <token>`).
 * These tokens never expire; for real deployments use expiring JWTs (the standalone server's
 * `--jwt-secret` does that).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "../src/index.js";

const secret = process.env.AUTH_SECRET ?? "dev-secret-change-me";

/** The signature of a user id: base64url(HMAC-SHA256(secret, userId)). */
function sign(userId: string): string {
  return createHmac("sha256", secret).update(userId).digest("base64url");
}

/** Returns the user id a token was signed for, or null when the signature does not match. */
function verify(token: string): string | null {
  const dot = token.lastIndexOf(".");
  if (dot <= 0) return null;
  const userId = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  const expected = Buffer.from(sign(userId));
  // Constant-time comparison, so the signature cannot be guessed byte by byte from response times.
  return given.length === expected.length && timingSafeEqual(given, expected) ? userId : null;
}

if (process.argv[2] === "mint") {
  const userId = process.argv[3];
  if (!userId) throw new Error("usage: auth.ts mint <userId>");
  console.log(`${userId}.${sign(userId)}`);
  process.exit(0);
}

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const server = createServer();

// Runs once per handshake, with the token from `?token=` or `Authorization: Bearer`. Return the user
// id (or { userId, metadata }) to accept; null, false or a throw refuses with 401. The server never
// logs the token.
server.setAuthHandler((ctx, token) => {
  const userId = verify(token);
  if (userId === null) return null;
  return { userId, metadata: { remoteAddress: ctx.request?.socket.remoteAddress } };
});

// A handler sees who it is talking to: client.userId is the id the auth handler returned.
server.registerHandler("whoami", (ctx, client) => {
  ctx.reply("whoami", { user_id: client.userId, from: client.getMetadata<string>("remoteAddress") });
});

const address = await server.listen(port, host);
console.log(`auth listening on ws://${host}:${address.port}${server.options.path}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void server.shutdown());
}
