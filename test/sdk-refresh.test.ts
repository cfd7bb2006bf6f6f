/**
 * The client SDK's token refresh (docs/CLIENT.md, docs/PROTOCOL.md): before the expiry it learns from
 * a JWT's `exp` or from the server, on `token_expiring`, and what it does when a refresh is refused.
 * The server's side is emulated with the library's API (helpers/token-server.ts), with tokens that
 * live a few seconds.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConduitClient, type ErrorData, type StateChange, type TokenExpiringEvent } from "../src/client/node.js";
import { jwtExpiry } from "../src/client/token-refresh.js";
import { nextMessage, nextState, recordStates, sdkClient } from "./helpers/sdk.js";
import { startServer } from "./helpers/server.js";
import { emulateTokenExpiry, fakeJwt, readFakeJwt, type TokenEmulation } from "./helpers/token-server.js";

/** A server with the emulation installed; `cap` bounds the expiry it grants (ms). */
async function tokenServer(tc: { after(fn: () => unknown): void }, cap?: number): Promise<{ url: string; emulation: TokenEmulation }> {
  let emulation!: TokenEmulation;
  const t = await startServer({}, (server) => (emulation = emulateTokenExpiry(server, cap)));
  tc.after(() => t.close());
  return { url: t.url, emulation };
}

/** Only the states that mean the connection was lost. */
const losses = (changes: StateChange[]): StateChange[] => changes.filter((change) => change.state !== "open");

describe("client SDK: token refresh", () => {
  it("reads a JWT's exp without verifying it; anything else has no expiry", () => {
    const before = Date.now();
    const exp = jwtExpiry(fakeJwt("ada", 3000))!;
    assert.ok(exp >= before + 3000 && exp <= Date.now() + 3000, String(exp));
    assert.equal(jwtExpiry("opaque-session-token"), undefined);
    assert.equal(jwtExpiry("a.b.c"), undefined);
    assert.equal(jwtExpiry(`x.${Buffer.from('{"sub":"ada"}').toString("base64url")}.y`), undefined, "no exp claim");
  });

  it("refreshes a 3 s token before it expires, and again before the expiry the server's refreshed reply gave", async (tc) => {
    // The server grants at most 3 s whatever the token says, so the second refresh can only be timed
    // by the `expires_at` of the first `refreshed` reply: the new tokens claim an hour.
    const { url, emulation } = await tokenServer(tc, 3000);
    let calls = 0;
    const c = sdkClient(tc, url, { refreshBefore: 2000, token: () => fakeJwt("ada", ++calls === 1 ? 3000 : 3_600_000) });
    await c.ready();
    const changes = recordStates(c);
    const [first, second] = await emulation.refreshCount(2);
    for (const refresh of [first!, second!]) {
      assert.ok(refresh.accepted);
      assert.ok(refresh.at < refresh.expiredAt, `refreshed ${refresh.expiredAt - refresh.at} ms before the expiry`);
    }
    assert.equal(first!.clientId, second!.clientId, "on the same connection");
    assert.equal(emulation.handshakes.length, 1, "one handshake only");
    assert.notEqual(first!.token, emulation.handshakes[0], "a new token from the token function");
    assert.equal(calls, 3);
    assert.deepEqual(losses(changes), [], "the connection was never lost");
    assert.equal(c.state, "open");
  });

  it("refreshes at once on token_expiring, long before the expiry its JWT claims", async (tc) => {
    const { url, emulation } = await tokenServer(tc);
    const tokens = [fakeJwt("ada", 60_000), fakeJwt("ada", 120_000)];
    const c = sdkClient<object>(tc, url, { token: () => tokens.shift() ?? "none" });
    await c.ready();
    const warned = nextMessage<TokenExpiringEvent>(c, "token_expiring");
    emulation.warn(emulation.connections[0]!);
    const [refresh] = await emulation.refreshCount(1);
    assert.ok(refresh!.accepted);
    assert.equal(tokens.length, 0, "the token function gave the second token");
    assert.equal(typeof (await warned).expires_at, "string", "the application sees the notice too");
  });

  it("a refused refresh is an error event; the 4001 close that follows brings a new token and a reconnect", async (tc) => {
    const { url, emulation } = await tokenServer(tc);
    const tokens = [fakeJwt("ada", 2500), fakeJwt("mallory", 60_000), fakeJwt("ada", 60_000)];
    const c = sdkClient(tc, url, { refreshBefore: 2000, token: () => tokens.shift() });
    await c.ready();
    const error = nextMessage<ErrorData>(c, "error");
    const expired = nextState(c, "reconnecting");
    assert.equal((await error).code, "forbidden");
    assert.equal(emulation.refreshes[0]?.accepted, false);
    const change = await expired;
    assert.equal(change.code, 4001);
    assert.equal(change.reason, "token_expired");
    await c.ready();
    assert.equal(tokens.length, 0, "the third token was fetched for the reconnect");
    assert.equal(emulation.handshakes.length, 2);
    assert.equal(emulation.refreshes.length, 1, "no second try on the old connection");
  });

  it("rejects a refreshBefore that is not a number of ms or false", () => {
    for (const refreshBefore of [-1, Number.NaN, "10s"]) {
      assert.throws(
        () => new ConduitClient("ws://127.0.0.1:1/ws", { refreshBefore: refreshBefore as number, autoConnect: false }),
        TypeError,
      );
    }
  });
});

describe("client SDK: token refresh against the server's own refresh built-in", () => {
  it("a connection with 2 s tokens lives past three expiries on one handshake, the SDK refreshing each time", async (tc) => {
    let handshakes = 0;
    let refreshes = 0;
    const t = await startServer({}, (server) =>
      server.setAuthHandler((ctx, token) => {
        const claims = readFakeJwt(token);
        if (claims === undefined) return null;
        if (ctx.client === undefined) handshakes++;
        else refreshes++;
        return { userId: claims.sub, expiresAt: claims.exp };
      }),
    );
    tc.after(() => t.close());
    const c = sdkClient(tc, t.url, { refreshBefore: 1000, token: () => fakeJwt("ada", 2000) });
    await c.ready();
    const changes = recordStates(c);
    const started = Date.now();
    // Past three of the tokens' expiries, polled rather than slept through in one go.
    while (refreshes < 3 && Date.now() - started < 15_000) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(refreshes >= 3, `${refreshes} refreshes`);
    assert.equal(handshakes, 1, "one handshake only");
    assert.deepEqual(losses(changes), [], "never closed with 4001");
    assert.equal((await c.request("echo", "still here")).type, "echo");
  });
});
