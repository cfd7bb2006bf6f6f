/**
 * The client SDK's reconnect policy by close code and handshake status (docs/CLIENT.md), against
 * real servers on 127.0.0.1: which endings it retries, which it stops at, and what the state event
 * says. The server's side of token expiry is emulated with the library's API (helpers/token-server.ts).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { describe, it } from "node:test";
import type { Client } from "../src/index.js";
import { RequestError } from "../src/client/node.js";
import { connect } from "./helpers/client.js";
import { nextState, recordStates, sdkClient } from "./helpers/sdk.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { emulateTokenExpiry, fakeJwt } from "./helpers/token-server.js";

/** A server whose `kick` request makes it end the connection with the code and reason asked for. */
async function kickServer(): Promise<TestServer> {
  return startServer({}, (server) => {
    server.registerHandler("kick", (_ctx, client: Client, message) => {
      const { code, reason } = message.data as { code: number; reason?: string };
      // 1006 is never sent in a close frame: it is what a client sees when the TCP connection just ends.
      if (code === 1006) client.terminate();
      else client.close(code, reason ?? "");
    });
  });
}

describe("client SDK: reconnect policy by close code", () => {
  it("reconnects after 1001, 1006, 1011, 1012, 1013 and other 1xxx codes, with the code and reason in the state event", async (tc) => {
    const t = await kickServer();
    tc.after(() => t.close());
    const c = sdkClient(tc, t.url);
    await c.ready();
    for (const [code, reason] of [
      [1001, "going away"],
      [1006, ""],
      [1011, "internal error"],
      [1012, "service restart"],
      [1013, "try again later"],
      [1002, "protocol error"],
    ] as const) {
      const lost = nextState(c, "reconnecting");
      c.send("kick", { code, reason });
      const change = await lost;
      assert.equal(change.previous, "open");
      assert.equal(change.code, code);
      assert.equal(change.reason, reason || undefined);
      assert.equal(change.status, undefined);
      assert.equal(typeof change.delay, "number", `a retry is scheduled after ${code}`);
      await c.ready();
    }
    assert.equal(t.server.clientCount, 1);
  });

  it("stops after 1000, 1008, 4003, a 3xxx and an unknown 4xxx code: state closed with the code and reason, ready() rejects", async (tc) => {
    const t = await kickServer();
    tc.after(() => t.close());
    for (const [code, reason] of [
      [1000, "bye"],
      [1008, "policy violation"],
      [4003, "disconnected"],
      [4404, "an application's own"],
      [3000, "a library's own"],
    ] as const) {
      const c = sdkClient(tc, t.url);
      await c.ready();
      const changes = recordStates(c);
      const closed = nextState(c, "closed");
      c.send("kick", { code, reason });
      const change = await closed;
      assert.deepEqual(
        changes.map(({ state, previous, code, reason, status }) => ({ state, previous, code, reason, status })),
        [{ state: "closed", previous: "open", code, reason, status: undefined }],
        `closed at once after ${code}, without a retry`,
      );
      assert.equal(change.delay, undefined);
      const error = await c.ready().catch((e: unknown) => e);
      assert.ok(error instanceof RequestError);
      assert.equal(error.code, "closed");
      assert.match(error.message, new RegExp(`code ${code}`));
    }
  });

  it("stops after 1009, a message larger than the server's maxPayload, and rejects the requests in flight", async (tc) => {
    const t = await startServer({ maxPayload: 1024 });
    tc.after(() => t.close());
    const c = sdkClient(tc, t.url);
    await c.ready();
    const closed = nextState(c, "closed");
    const inFlight = c.request("echo", "x".repeat(2048));
    const change = await closed;
    assert.equal(change.code, 1009);
    assert.equal(((await inFlight.catch((e: unknown) => e)) as RequestError).code, "disconnected");
    assert.equal(change.previous, "open");
    const error = await c.ready().catch((e: unknown) => e);
    assert.ok(error instanceof RequestError && error.code === "closed");
  });

  it("connect() after a stop starts again", async (tc) => {
    const t = await kickServer();
    tc.after(() => t.close());
    const c = sdkClient(tc, t.url);
    await c.ready();
    const closed = nextState(c, "closed");
    c.send("kick", { code: 4003, reason: "disconnected" });
    await closed;
    c.connect();
    await c.ready();
    assert.deepEqual((await c.request("echo", 2)).data, { original: 2 });
  });
});

describe("client SDK: refused handshakes (Node sees the HTTP status)", () => {
  it("401 twice in a row, the second after a fresh token: closed with status 401, the token function ran twice", async (tc) => {
    const seen: string[] = [];
    const t = await startServer({}, (server) => server.setAuthHandler((_ctx, token) => void seen.push(token)));
    tc.after(() => t.close());
    let calls = 0;
    const c = sdkClient(tc, t.url, { token: () => `token-${++calls}` });
    const changes = recordStates(c);
    const closed = await nextState(c, "closed");
    assert.equal(closed.status, 401);
    assert.equal(closed.code, 1006, "no close frame: the handshake never completed");
    assert.deepEqual(seen, ["token-1", "token-2"]);
    assert.equal(calls, 2);
    assert.deepEqual(
      changes.map(({ state, status }) => ({ state, status })),
      [
        { state: "reconnecting", status: 401 },
        { state: "closed", status: 401 },
      ],
    );
    await assert.rejects(c.ready(), /HTTP 401/);
  });

  it("401 with a token string, which cannot be renewed: closed at once", async (tc) => {
    const t = await startServer({}, (server) => server.setAuthHandler(() => null));
    tc.after(() => t.close());
    const c = sdkClient(tc, t.url, { token: "stale" });
    const closed = await nextState(c, "closed");
    assert.equal(closed.previous, "connecting");
    assert.equal(closed.status, 401);
  });

  it("a 401 between accepted connections is retried: only two refusals in a row stop", async (tc) => {
    let refuse = false;
    const t = await startServer({}, (server) => {
      server.setAuthHandler(() => (refuse ? null : "ada"));
      server.registerHandler("kick", (_ctx, client) => client.close(1012, "restart"));
    });
    tc.after(() => t.close());
    let calls = 0;
    const c = sdkClient(tc, t.url, {
      token: () => {
        calls++;
        // The first token after the kick is refused, the next one accepted.
        refuse = calls === 2;
        return `t${calls}`;
      },
    });
    await c.ready();
    const refused = nextState(c, (change) => change.status === 401);
    c.send("kick");
    assert.equal((await refused).state, "reconnecting");
    await c.ready();
    assert.equal(calls, 3);
  });

  it("403 stops at once with status 403; 400 (no endpoint at that path) likewise", async (tc) => {
    const forbidding = createHttpServer();
    forbidding.on("upgrade", (_request, socket) => {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    forbidding.listen(0, "127.0.0.1");
    await once(forbidding, "listening");
    tc.after(() => new Promise<void>((resolve) => forbidding.close(() => resolve())));
    const { port } = forbidding.address() as { port: number };
    let calls = 0;
    const c = sdkClient(tc, `ws://127.0.0.1:${port}/ws`, { token: () => `t${++calls}` });
    const closed = await nextState(c, "closed");
    assert.equal(closed.status, 403);
    assert.equal(calls, 1, "a new token cannot mend a refused origin");

    const t = await startServer();
    tc.after(() => t.close());
    const lost = sdkClient(tc, t.url.replace(/\/ws$/, "/nowhere"));
    assert.equal((await nextState(lost, "closed")).status, 400);
  });

  it("503 (the server is full) is retried until there is room", async (tc) => {
    const t = await startServer({ maxConnections: 1 });
    tc.after(() => t.close());
    const occupant = await connect(t.url);
    const c = sdkClient(tc, t.url);
    const full = await nextState(c, "reconnecting");
    assert.equal(full.status, 503);
    await occupant.close();
    await c.ready();
  });
});

describe("client SDK: close 4001 (token expired)", () => {
  it("gets a new token from the token function, then reconnects", async (tc) => {
    let emulation!: ReturnType<typeof emulateTokenExpiry>;
    const s = await startServer({}, (server) => (emulation = emulateTokenExpiry(server)));
    tc.after(() => s.close());
    const tokens: string[] = [];
    const c = sdkClient(tc, s.url, {
      refreshBefore: false,
      token: () => {
        // The first token lives half a second: the server closes with 4001 before anyone refreshes.
        const token = fakeJwt("ada", tokens.length === 0 ? 500 : 60_000);
        tokens.push(token);
        return token;
      },
    });
    await c.ready();
    const firstId = c.id;
    const expired = await nextState(c, "reconnecting");
    assert.equal(expired.code, 4001);
    assert.equal(expired.reason, "token_expired");
    await c.ready();
    assert.equal(tokens.length, 2, "a new token was fetched for the reconnect");
    assert.deepEqual(emulation.handshakes, tokens);
    assert.deepEqual(emulation.refreshes, [], "refreshBefore: false sends no refresh");
    assert.notEqual(c.id, firstId);
  });

  it("with a token string, which cannot be renewed: closed with code 4001", async (tc) => {
    const s = await startServer({}, (server) => void emulateTokenExpiry(server));
    tc.after(() => s.close());
    const c = sdkClient(tc, s.url, { token: fakeJwt("ada", 500) });
    await c.ready();
    const closed = await nextState(c, "closed");
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "token_expired");
  });
});
