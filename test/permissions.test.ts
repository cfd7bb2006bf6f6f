/**
 * Namespaces, room grants, token expiry and refresh: who may join, publish to and ask about a room,
 * and how long a token keeps a connection. Every refusal is `forbidden`, and a refused client never
 * receives a copy of the room's messages, on one node or two over Redis.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { SignJWT } from "jose";
import { RedisAdapter } from "../src/adapter/redis/index.js";
import { type AuthHandler, type NamespacesConfig, createServer } from "../src/index.js";
import { ConfigurationError, parseConfigFile } from "../src/namespaces/config.js";
import { waitUntil } from "./adapter-contract.js";
import { spawnCli, startCli } from "./helpers/cli.js";
import { connect, type TestClient } from "./helpers/client.js";
import { redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, fence } from "./helpers/wire.js";

const NAMESPACES: NamespacesConfig = {
  "": { join: "anyone" },
  members: { join: "authenticated" },
  team: { join: "granted" },
  news: { join: "anyone", publish: "server" },
  quiet: { join: "anyone", presence: false },
};

/**
 * Tokens are `user` (no grant), `user|room,room` (a grant), `user|rooms|ms` (expiring in ms),
 * `anon` (accepted, anonymous); anything else is refused.
 */
const authHandler: AuthHandler = (_ctx, token) => {
  if (token === "anon") return { userId: null };
  const [userId, rooms, ms] = token.split("|");
  if (!userId || userId === "bad") return null;
  return {
    userId,
    rooms: rooms ? rooms.split(",") : undefined,
    expiresAt: ms ? Date.now() + Number(ms) : undefined,
  };
};

function withToken(url: string, token: string): string {
  return `${url}?token=${encodeURIComponent(token)}`;
}

async function joinReply(client: TestClient, room: string): Promise<{ type: string; code?: string }> {
  const reply = await client.request("join_room", { room });
  return { type: reply.type, code: reply.type === "error" ? (reply.data.code as string) : undefined };
}

describe("namespaces: who may join", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ namespaces: NAMESPACES }, (server) => server.setAuthHandler(authHandler));
  });
  after(() => t.close());

  it("anyone, authenticated and granted rooms; an unlisted namespace is refused; every refusal is forbidden", async () => {
    const anon = await connect(withToken(t.url, "anon"));
    const ada = await connect(withToken(t.url, "ada|team:42,team:7:*"));
    assert.deepEqual(await joinReply(anon, "lobby"), { type: "room_joined", code: undefined });
    assert.deepEqual(await joinReply(anon, "members:hall"), { type: "error", code: "forbidden" });
    assert.deepEqual(await joinReply(ada, "members:hall"), { type: "room_joined", code: undefined });
    assert.deepEqual(await joinReply(ada, "team:42"), { type: "room_joined", code: undefined });
    assert.deepEqual(await joinReply(ada, "team:7:design"), { type: "room_joined", code: undefined });
    assert.deepEqual(await joinReply(ada, "team:43"), { type: "error", code: "forbidden" });
    assert.deepEqual(await joinReply(anon, "team:42"), { type: "error", code: "forbidden" });
    assert.deepEqual(await joinReply(ada, "secret:1"), { type: "error", code: "forbidden" });
    // A bad name is answered as such, before any rule.
    assert.deepEqual(await joinReply(ada, ""), { type: "error", code: "invalid_room" });
    assert.deepEqual([...t.server.getClient((await anon.request("status")).data.client_id)!.rooms], ["lobby"]);
    await anon.close();
    await ada.close();
  });

  it("a refused client never receives a copy of the room's messages", async () => {
    const member = await connect(withToken(t.url, "ada|team:42"));
    const outsider = await connect(withToken(t.url, "bob"));
    await joinReply(member, "team:42");
    assert.equal((await joinReply(outsider, "team:42")).code, "forbidden");
    await member.request("broadcast", { room: "team:42", type: "note", payload: "from a member" });
    t.server.broadcastToRoom("team:42", "note", "from the server");
    await fence(member);
    await fence(outsider);
    assert.equal(member.received.filter((m) => m.type === "note").length, 2);
    assert.deepEqual(
      outsider.received.filter((m) => m.type === "note"),
      [],
    );
    await member.close();
    await outsider.close();
  });

  it("publish: server refuses a member's broadcast with forbidden; the server's own reaches members", async () => {
    const reader = await connect(withToken(t.url, "ada"));
    assert.equal((await joinReply(reader, "news:today")).type, "room_joined");
    const reply = await reader.request("broadcast", { room: "news:today", type: "story", payload: 1 });
    assert.deepEqual([reply.type, reply.data.code], ["error", "forbidden"]);
    t.server.broadcastToRoom("news:today", "story", 2);
    assert.equal((await reader.next("story")).data, 2);
    await fence(reader);
    assert.equal(reader.received.filter((m) => m.type === "story").length, 0, "the refused broadcast went nowhere");
    await reader.close();
  });

  it("presence: false refuses the presence request and sends no member events", async () => {
    const a = await connect(withToken(t.url, "ada"));
    const b = await connect(withToken(t.url, "bob"));
    await joinReply(a, "quiet:room");
    await joinReply(b, "quiet:room");
    await b.request("leave_room", { room: "quiet:room" });
    const reply = await a.request("presence", { room: "quiet:room" });
    assert.deepEqual([reply.type, reply.data.code], ["error", "forbidden"]);
    await fence(a);
    assert.deepEqual(
      a.received.filter((m) => m.type === "member_joined" || m.type === "member_left"),
      [],
    );
    // Presence works as before where it is on.
    await joinReply(a, "lobby");
    assert.equal((await a.request("presence", { room: "lobby" })).type, "presence");
    await a.close();
    await b.close();
  });

  it("the server's own client.joinRoom is trusted: a handler of yours can put a client in any room", async () => {
    const server = createServer({ namespaces: { "": {} } });
    server.registerHandler("join_room", (ctx, client, message) => {
      const room = (message.data as { room: string }).room;
      const outcome = client.joinRoom(room);
      ctx.reply(outcome.ok ? "room_joined" : "error", { room });
    });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      const c = await connect(`ws://127.0.0.1:${port}/ws`);
      assert.equal((await c.request("join_room", { room: "unlisted:1" })).type, "room_joined");
      await c.close();
    } finally {
      await server.shutdown();
    }
  });
});

describe("canJoin: a join decided in code", () => {
  let t: TestServer;
  const asked: string[] = [];
  before(async () => {
    t = await startServer({
      canJoin: async (client, room) => {
        asked.push(room);
        if (room === "throws") throw new Error("database down");
        return room !== "vip" || client.getMetadata("vip") === true;
      },
    });
  });
  after(() => t.close());

  it("allows, refuses with forbidden, and refuses when it throws; a member joining again is not asked", async () => {
    const c = await connect(t.url);
    assert.equal((await joinReply(c, "open")).type, "room_joined");
    assert.equal((await joinReply(c, "vip")).code, "forbidden");
    assert.equal((await joinReply(c, "throws")).code, "forbidden");
    assert.equal((await joinReply(c, "open")).type, "room_joined");
    assert.deepEqual(asked, ["open", "vip", "throws"]);
    await c.close();
  });
});

describe("options: a bad namespaces table is refused at start", () => {
  it("names the namespace, the rule and what it accepts", () => {
    assert.throws(
      () => createServer({ namespaces: { dm: { join: "nobody" } } as never }),
      (error: Error) =>
        error instanceof TypeError && /namespace "dm": rule "join" accepts "anyone", "authenticated" or "granted"/.test(error.message),
    );
    assert.throws(() => createServer({ namespaces: { "a:b": {} } }), /namespace "a:b"/);
    assert.throws(() => createServer({ namespaces: { x: { history: { size: 0, ttl: 1 } } } }), /rule "history.size"/);
  });
});

describe("token expiry and refresh", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ namespaces: NAMESPACES }, (server) => server.setAuthHandler(authHandler));
  });
  after(() => t.close());

  it("an expiring token is warned with token_expiring and closed with 4001 token_expired within a second of its expiry", async () => {
    const expiresAt = Date.now() + 1500;
    const c = await connect(withToken(t.url, "ada||1500"));
    const warning = await c.next("token_expiring");
    const warned = Date.parse(warning.data.expires_at as string);
    assert.ok(Math.abs(warned - expiresAt) < 200, `expires_at ${warning.data.expires_at}`);
    const closed = await c.closed;
    const late = Date.now() - warned;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "token_expired");
    assert.ok(late >= 0 && late < 1000, `closed ${late} ms after expiry`);
  });

  it("a refresh for the same user extends the connection past the old expiry", async () => {
    const c = await connect(withToken(t.url, "ada||1200"));
    const reply = await c.request("refresh", { token: "ada||60000" });
    assert.equal(reply.type, "refreshed");
    assert.ok(Date.parse(reply.data.expires_at as string) > Date.now() + 50_000);
    // Past the first token's expiry (and a sweep), the connection still answers.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await c.request("echo", "still here")).type, "echo");
    await c.close();
  });

  it("a refresh for another user, an invalid token or none is refused and changes nothing", async () => {
    const c = await connect(withToken(t.url, "ada|team:1|1500"));
    assert.equal((await joinReply(c, "team:1")).type, "room_joined");
    for (const [data, code] of [
      [{ token: "bob|team:1|60000" }, "forbidden"],
      [{ token: "bad" }, "forbidden"],
      [{}, "invalid_message"],
    ] as const) {
      const reply = await c.request("refresh", data);
      assert.deepEqual([reply.type, reply.data.code], ["error", code]);
    }
    await fence(c);
    assert.deepEqual(
      c.received.filter((m) => m.type === "room_left"),
      [],
    );
    // The first token's expiry still holds.
    assert.equal((await c.closed).code, 4001);
  });

  it("a refresh whose grant drops a room leaves it with room_left, reason forbidden; no copy follows", async () => {
    const c = await connect(withToken(t.url, "ada|team:1,team:2"));
    await joinReply(c, "team:1");
    await joinReply(c, "team:2");
    await joinReply(c, "lobby");
    const reply = await c.request("refresh", { token: "ada|team:2" });
    assert.equal(reply.type, "refreshed");
    assert.equal(reply.data.expires_at, null);
    const left = c.received.filter((m) => m.type === "room_left");
    assert.deepEqual(
      left.map((m) => m.data),
      [{ room: "team:1", reason: "forbidden" }],
    );
    t.server.broadcastToRoom("team:1", "note", "after");
    t.server.broadcastToRoom("team:2", "note", "kept");
    await fence(c);
    assert.deepEqual(
      c.received.filter((m) => m.type === "note").map((m) => m.data),
      ["kept"],
    );
    assert.deepEqual([...(await c.request("status")).data.rooms].sort(), ["lobby", "team:2"]);
    await c.close();
  });

  it("refresh on a server without tokens is forbidden", async () => {
    const open = await startServer();
    try {
      const c = await connect(open.url);
      const reply = await c.request("refresh", { token: "x" });
      assert.deepEqual([reply.type, reply.data.code], ["error", "forbidden"]);
      await c.close();
    } finally {
      await open.close();
    }
  });

  it("setRefreshHandler checks refresh tokens in place of the auth handler", async () => {
    const server = createServer();
    server.setAuthHandler(authHandler);
    server.setRefreshHandler((ctx, token) => (token === "refresh-ada" && ctx.client?.userId === "ada" ? { userId: "ada" } : null));
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      const c = await connect(withToken(`ws://127.0.0.1:${port}/ws`, "ada"));
      assert.equal((await c.request("refresh", { token: "ada" })).data.code, "forbidden");
      assert.equal((await c.request("refresh", { token: "refresh-ada" })).type, "refreshed");
      await c.close();
    } finally {
      await server.shutdown();
    }
  });
});

describe("permissions on two nodes over Redis", { skip: redisSkipReason() }, () => {
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    redis = await startRedis();
    const setup = (server: ReturnType<typeof createServer>): void => {
      server.setAuthHandler(authHandler);
    };
    a = await startServer({ namespaces: NAMESPACES, adapter: new RedisAdapter({ url: redis.url }) }, setup);
    b = await startServer({ namespaces: NAMESPACES, adapter: new RedisAdapter({ url: redis.url }) }, setup);
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.stop();
  });

  it("a refused client gets no copy from either node; a refresh that drops a grant leaves the room for both nodes' publications", async () => {
    const onA = await connect(withToken(a.url, "ada|team:9"));
    const onB = await connect(withToken(b.url, "bob|team:9"));
    const outsider = await connect(withToken(a.url, "eve"));
    await joinReply(onA, "team:9");
    await joinReply(onB, "team:9");
    assert.equal((await joinReply(outsider, "team:9")).code, "forbidden");
    // Cross-node delivery is up once B's member hears A's broadcast.
    let probe = 0;
    await waitUntil(async () => {
      await onA.request("broadcast", { room: "team:9", type: "probe", payload: ++probe });
      await fence(onB);
      return onB.received.some((m) => m.type === "probe");
    });
    await onB.request("broadcast", { room: "team:9", type: "note", payload: "from b" });
    await onA.request("broadcast", { room: "team:9", type: "note", payload: "from a" });
    await onA.next((m) => m.type === "note" && m.data === "from b");
    await fence(outsider);
    assert.deepEqual(
      outsider.received.filter((m) => m.type === "note" || m.type === "probe"),
      [],
    );

    assert.equal((await onA.request("refresh", { token: "ada" })).type, "refreshed");
    assert.deepEqual((await onA.next("room_left")).data, { room: "team:9", reason: "forbidden" });
    await drain(onA);
    await onB.request("broadcast", { room: "team:9", type: "after", payload: "b" });
    await onB.next("after");
    b.server.broadcastToRoom("team:9", "after", "server b");
    a.server.broadcastToRoom("team:9", "after", "server a");
    await onB.next((m) => m.type === "after" && m.data === "server a");
    await fence(onA);
    assert.deepEqual(
      onA.received.filter((m) => m.type === "after"),
      [],
    );
    const members = await b.server.roomMembers("team:9");
    assert.deepEqual(
      members.map((m) => m.userId),
      ["bob"],
    );
    for (const c of [onA, onB, outsider]) await c.close();
  });
});

describe("the standalone server: --config and JWT grants", () => {
  const secret = "a-test-secret-that-is-long-enough-for-hs256";
  const file = join(tmpdir(), `conduit-config-${process.pid}.json`);

  it("a bad file stops the start with exit code 2 naming the file, the namespace, the rule and what it accepts", async () => {
    writeFileSync(file, JSON.stringify({ namespaces: { dm: { join: "nobody" } } }));
    const cli = spawnCli(["--port", "0", "--config", file]);
    assert.equal((await cli.exited).code, 2);
    assert.match(
      cli.stderr(),
      new RegExp(`${file.replaceAll("/", "\\/")}.*namespace "dm": rule "join" accepts "anyone", "authenticated" or "granted"`),
    );
    writeFileSync(file, "{ not json");
    const again = spawnCli(["--port", "0"], { CONDUIT_CONFIG: file });
    assert.equal((await again.exited).code, 2);
    assert.match(again.stderr(), /not valid JSON/);
  });

  it("a JWT's rooms claim grants rooms of a granted namespace; exp closes with 4001", async () => {
    writeFileSync(file, JSON.stringify({ namespaces: { "": {}, dm: { join: "granted", presence: false } } }));
    const cli = await startCli(["--port", "0", "--host", "127.0.0.1", "--config", file, "--jwt-secret", secret]);
    try {
      const key = new TextEncoder().encode(secret);
      const token = await new SignJWT({ rooms: ["dm:ada:*"] })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("ada")
        .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
        .sign(key);
      const c = await connect(withToken(cli.url, token));
      assert.equal((await joinReply(c, "dm:ada:bob")).type, "room_joined");
      assert.equal((await joinReply(c, "dm:bob:eve")).code, "forbidden");
      assert.equal((await joinReply(c, "other:1")).code, "forbidden");
      assert.equal((await c.next("token_expiring")).type, "token_expiring");
      assert.equal((await c.closed).code, 4001);
    } finally {
      cli.child.kill("SIGTERM");
      await cli.exited;
    }
  });
});

describe("the configuration file loader, fuzzed", () => {
  it("any JSON value is accepted or refused with a ConfigurationError, never anything else", () => {
    const rule = fc.oneof(fc.constantFrom("anyone", "authenticated", "granted", "members", "server", true, false, null), fc.jsonValue());
    const namespace = fc.dictionary(fc.constantFrom("join", "publish", "presence", "history", "size", "ttl", "other"), rule);
    const file = fc.oneof(
      fc.jsonValue(),
      fc.record({ namespaces: fc.dictionary(fc.string(), fc.oneof(namespace, fc.jsonValue())) }),
      fc.record({ namespaces: fc.dictionary(fc.string(), namespace), extra: fc.jsonValue() }, { requiredKeys: ["namespaces"] }),
    );
    fc.assert(
      fc.property(file, (value) => {
        try {
          parseConfigFile(value, "fuzz.json");
        } catch (error) {
          if (!(error instanceof ConfigurationError)) throw error;
          assert.match(error.message, /^fuzz\.json: /);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
