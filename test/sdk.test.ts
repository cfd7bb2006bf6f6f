/**
 * The client SDK (`@conduit/websocket/client`, Node entry) against real servers on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { createServer, type ConduitServer, type ServerOptions } from "../src/index.js";
import {
  backoffDelay,
  defaultReconnect,
  RequestError,
  type MemberEvent,
  type RoomLeftEvent,
  type StateChange,
} from "../src/client/node.js";
import { connect } from "./helpers/client.js";
import { sdkClient as client, nextMessage, nextState, recordStates } from "./helpers/sdk.js";
import { startServer, type TestServer } from "./helpers/server.js";

/** Listens on a given port (0: any), so that a server can be brought back where it was. */
async function listenOn(
  port: number,
  options: Partial<ServerOptions> = {},
  setup?: (s: ConduitServer) => void,
): Promise<{ server: ConduitServer; port: number; url: string }> {
  const server = createServer(options);
  setup?.(server);
  const address = await server.listen(port, "127.0.0.1");
  return { server, port: address.port, url: `ws://127.0.0.1:${address.port}${server.options.path}` };
}

describe("client SDK: requests", () => {
  let t: TestServer;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  before(async () => {
    t = await startServer({}, (server) => {
      // Answers out of order: the slower request is answered last, so matching by id is what counts.
      server.registerHandler("delayed", async (ctx, _client, message) => {
        const ms = (message.data as { ms: number }).ms;
        await new Promise((resolve) => setTimeout(resolve, ms));
        ctx.reply("delayed", { ms });
      });
      server.registerHandler("stuck", async () => {
        await gate;
      });
    });
  });
  after(async () => {
    release();
    await t.close();
  });

  it("request resolves with the reply carrying its id, also for concurrent requests", async (tc) => {
    const c = client(tc, t.url);
    const echo = await c.request("echo", { a: [1, "two"] });
    assert.equal(echo.type, "echo");
    assert.deepEqual(echo.data, { original: { a: [1, "two"] } });
    assert.equal(typeof echo.id, "string");

    const [slow, fast] = await Promise.all([c.request("delayed", { ms: 150 }), c.request("delayed", { ms: 1 })]);
    assert.deepEqual(slow.data, { ms: 150 });
    assert.deepEqual(fast.data, { ms: 1 });
    assert.notEqual(slow.id, fast.id);

    const presence = await c.request("presence", { room: "nowhere" }).catch((error: unknown) => error);
    assert.ok(presence instanceof RequestError, "an error reply rejects");
    assert.equal(presence.code, "not_in_room");
    assert.equal(presence.requestType, "presence");

    const unknown = await c.request("no_such_type").catch((error: unknown) => error);
    assert.ok(unknown instanceof RequestError);
    assert.equal(unknown.code, "unknown_type");

    // A broadcast answers with an ack; the typed reply of a built-in is inferred.
    await c.join("lobby");
    const ack = await c.request("broadcast", { room: "lobby", type: "chat", payload: "hi" });
    assert.equal(ack.type, "ack");
    const who = await c.request("presence", { room: "lobby" });
    assert.equal(who.data.count, 1);
    assert.deepEqual(c.rooms, ["lobby"]);
  });

  it("a request without a reply rejects with code timeout, and its late reply is ignored", async (tc) => {
    const c = client(tc, t.url);
    const error = await c.request("stuck", { x: 1 }, { timeout: 200 }).catch((e: unknown) => e);
    assert.ok(error instanceof RequestError);
    assert.equal(error.code, "timeout");
    // The server eventually acks the stuck request; the client drops that late reply and goes on.
    release();
    const reply = await c.request("echo", 7);
    assert.deepEqual(reply.data, { original: 7 });
    assert.equal(c.state, "open");
  });

  it("on() delivers unsolicited messages by type, off() stops them", async (tc) => {
    const c = client<{ chat: { text: string }; marker: number }>(tc, t.url);
    await c.join("room-on");
    const joined = nextMessage<MemberEvent>(c, "member_joined");
    const other = await connect(t.url);
    tc.after(() => other.close());
    await other.request("join_room", { room: "room-on" });
    const event = await joined;
    assert.equal(event.room, "room-on", "built-in events come through on() too");

    const seen: string[] = [];
    const onChat = (data: { text: string }): void => {
      seen.push(data.text);
    };
    c.on("chat", onChat);
    const first = nextMessage(c, "marker");
    other.send({ type: "broadcast", data: { room: "room-on", type: "chat", payload: { text: "one" } } });
    other.send({ type: "broadcast", data: { room: "room-on", type: "marker", payload: 1 } });
    assert.equal(await first, 1);
    assert.deepEqual(seen, ["one"]);

    c.off("chat", onChat);
    const second = nextMessage(c, "marker");
    other.send({ type: "broadcast", data: { room: "room-on", type: "chat", payload: { text: "two" } } });
    other.send({ type: "broadcast", data: { room: "room-on", type: "marker", payload: 2 } });
    // Messages of one room arrive in order, so "two" would have come before marker 2.
    assert.equal(await second, 2);
    assert.deepEqual(seen, ["one"], "the removed handler was not called");
  });
});

describe("client SDK: queue and states", () => {
  it("holds sends while disconnected in a bounded queue: the newest is refused, the held ones go out in order", async (tc) => {
    const received: unknown[] = [];
    const t = await startServer({}, (server) => {
      server.registerHandler("record", (_ctx, _client, message) => {
        received.push(message.data);
      });
    });
    tc.after(() => t.close());
    const c = client(tc, t.url, { autoConnect: false, maxQueue: 3 });
    assert.equal(c.state, "closed");
    assert.equal(c.send("record", 1), true);
    assert.equal(c.send("record", 2), true);
    const held = c.request("record", 3);
    assert.equal(c.send("record", 4), false, "a full queue refuses the new message");
    const refused = await c.request("record", 5).catch((e: unknown) => e);
    assert.ok(refused instanceof RequestError);
    assert.equal(refused.code, "queue_full");
    assert.equal(c.queued, 3);

    const opened = nextState(c, "open");
    c.connect();
    await opened;
    assert.equal((await held).type, "ack", "a queued request gets its reply once sent");
    assert.deepEqual(received, [1, 2, 3], "held messages arrive in order, the refused ones never");
    assert.equal(c.queued, 0);
  });

  it("reports connecting, reconnecting with a growing delay, then closed when maxAttempts run out", async (tc) => {
    // A port where nothing listens any more: every attempt is refused at once.
    const gone = await startServer();
    const url = gone.url;
    await gone.close();

    const changes: StateChange[] = [];
    const c = client(tc, url, {
      autoConnect: false,
      reconnect: { initialDelay: 10, maxDelay: 40, factor: 2, jitter: 0, maxAttempts: 3 },
    });
    c.onState((change) => changes.push(change));
    const closed = nextState(c, "closed");
    c.connect();
    await closed;
    assert.deepEqual(
      changes.map(({ state, previous, attempt, delay }) => ({ state, previous, attempt, delay })),
      [
        { state: "connecting", previous: "closed", attempt: 0, delay: undefined },
        { state: "reconnecting", previous: "connecting", attempt: 1, delay: 10 },
        { state: "reconnecting", previous: "reconnecting", attempt: 2, delay: 20 },
        { state: "reconnecting", previous: "reconnecting", attempt: 3, delay: 40 },
        { state: "closed", previous: "reconnecting", attempt: 3, delay: undefined },
      ],
    );
    assert.equal(changes[1]!.code, 1006, "a refused connection has no close frame");
  });

  it("close() rejects pending requests with code closed and stops reconnecting", async (tc) => {
    // handlerTimeout bounds the server's own timer for the handler that never settles.
    const t = await startServer({ handlerTimeout: 300 }, (server) => {
      server.registerHandler("never", () => new Promise<void>(() => {}));
    });
    tc.after(() => t.close());
    const c = client(tc, t.url);
    await nextState(c, "open");
    const inFlight = c.request("never", null, { timeout: 10_000 });
    c.close();
    const error = await inFlight.catch((e: unknown) => e);
    assert.ok(error instanceof RequestError);
    assert.equal(error.code, "closed");
    assert.equal(c.state, "closed");
    // The server sees the connection go: nothing reconnects behind our back.
    for (let i = 0; i < 100 && t.server.clientCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.server.clientCount, 0);
  });

  it("a connection that stops answering is detected by the ping and replaced", async (tc) => {
    // A WebSocket server that accepts and then never replies: only the client's ping can notice.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await once(wss, "listening");
    tc.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    let connections = 0;
    wss.on("connection", (socket) => {
      connections++;
      socket.on("error", () => {});
    });
    const { port } = wss.address() as { port: number };
    const c = client(tc, `ws://127.0.0.1:${port}/ws`, { pingInterval: 50, requestTimeout: 200 });
    const lost = await nextState(c, "reconnecting");
    assert.equal(lost.reason, "ping timeout");
    // It tries again by itself: a second connection reaches the server.
    for (let i = 0; i < 200 && connections < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(connections >= 2, `expected a new connection, saw ${connections}`);
    c.close();
    for (const socket of wss.clients) socket.terminate();
  });

  it("backoffDelay grows by the factor, is capped, and jitter only shortens it", () => {
    const options = { ...defaultReconnect, initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
    assert.equal(
      backoffDelay(1, options, () => 0),
      100,
    );
    assert.equal(
      backoffDelay(3, options, () => 0),
      400,
    );
    assert.equal(
      backoffDelay(10, options, () => 0),
      1000,
      "capped at maxDelay",
    );
    assert.equal(
      backoffDelay(10, options, () => 1),
      500,
      "full jitter halves it at most",
    );
    assert.equal(
      backoffDelay(2, options, () => 0.5),
      150,
    );
  });
});

describe("client SDK: tokens and reconnection", () => {
  it("calls the token function again before every attempt: a refused token is replaced by a fresh one", async (tc) => {
    const seen: string[] = [];
    const t = await startServer({}, (server) => {
      server.setAuthHandler((_ctx, token) => {
        seen.push(token);
        return token.startsWith("good-") ? token.slice(5) : null;
      });
    });
    tc.after(() => t.close());
    let calls = 0;
    const c = client(tc, t.url, {
      token: async () => (++calls === 1 ? "expired" : `good-user${calls}`),
    });
    const opened = await nextState(c, "open");
    assert.equal(opened.previous, "reconnecting", "the first attempt was refused with 401");
    assert.deepEqual(seen, ["expired", "good-user2"]);
    const status = await c.request("status");
    assert.equal(status.data.user_id, "user2");
  });

  it("after the server stops and starts again on the same port: reconnects, rejoins rooms, sends what was queued, receives again", async (tc) => {
    const tokens: string[] = [];
    const auth = (server: ConduitServer): void => {
      server.setAuthHandler((_ctx, token) => {
        tokens.push(token);
        return "ada";
      });
    };
    const first = await listenOn(0, {}, auth);
    const port = first.port;
    let calls = 0;
    const c = client<{ chat: string }>(tc, `ws://127.0.0.1:${port}/ws`, { token: () => `t${++calls}` });
    await nextState(c, "open");
    await c.join("r1");
    await c.join("r2");

    const lost = nextState(c, "reconnecting");
    await first.server.shutdown();
    assert.equal((await lost).code, 1001, "the server said it was going away");
    // While the server is down, a send waits in the queue instead of failing.
    assert.equal(c.send("broadcast", { room: "r1", type: "chat", payload: "sent while down" }), true);

    const back = nextState(c, "open");
    const second = await listenOn(port, {}, auth);
    tc.after(() => second.server.shutdown());
    const queued = nextMessage<string>(c, "chat");
    await back;
    // "open" is reported after the rooms were joined again: the server already has us in both.
    assert.deepEqual(
      (await second.server.roomMembers("r1")).map((m) => m.userId),
      ["ada"],
    );
    assert.deepEqual(
      (await second.server.roomMembers("r2")).map((m) => m.userId),
      ["ada"],
    );
    assert.equal(await queued, "sent while down", "the queued broadcast went out after the rejoin");
    assert.ok(calls >= 2 && tokens.at(-1) === `t${calls}`, "the token function ran again for the new connection");

    // And messages from others reach it again, with no user code involved.
    const other = await connect(`${second.url}?token=other`);
    tc.after(() => other.close());
    await other.request("join_room", { room: "r2" });
    const fromOther = nextMessage<string>(c, "chat");
    other.send({ type: "broadcast", data: { room: "r2", type: "chat", payload: "welcome back" } });
    assert.equal(await fromOther, "welcome back");
    const status = await c.request("status");
    assert.deepEqual(status.data.rooms.sort(), ["r1", "r2"]);
  });
});

describe("client SDK: once, off, publish, ready, id and refused rooms", () => {
  it("once() handles the next message only; off() removes a once handler before it ran; on()'s function removes its handler", async (tc) => {
    const t = await startServer();
    tc.after(() => t.close());
    const c = client<{ tick: number }>(tc, t.url);
    await c.join("ticks");
    const seen: string[] = [];
    c.once("tick", (n) => void seen.push(`once ${n}`));
    const removedOnce = (n: number): void => void seen.push(`removed once ${n}`);
    c.once("tick", removedOnce);
    c.off("tick", removedOnce);
    const stop = c.on("tick", (n) => void seen.push(`on ${n}`));
    const cancelled = c.once("tick", (n) => void seen.push(`cancelled ${n}`));
    cancelled();

    const first = nextMessage(c, "tick");
    await c.publish("ticks", "tick", 1);
    await first;
    stop();
    const second = nextMessage(c, "tick");
    await c.publish("ticks", "tick", 2);
    await second;
    assert.deepEqual(seen, ["once 1", "on 1"]);
  });

  it("publish() reaches the room's members, resolves on the ack, and rejects with the server's code", async (tc) => {
    const t = await startServer();
    tc.after(() => t.close());
    const c = client(tc, t.url);
    const other = await connect(t.url);
    tc.after(() => other.close());
    await other.request("join_room", { room: "pub" });
    await c.join("pub");
    await c.publish("pub", "note", { text: "hello" });
    const delivered = await other.next("note");
    assert.deepEqual(delivered, { type: "note", data: { text: "hello" } }, "the members' copy carries no id");
    const error = await c.publish("elsewhere", "note", 1).catch((e: unknown) => e);
    assert.ok(error instanceof RequestError);
    assert.equal(error.code, "not_in_room");
    assert.equal(error.requestType, "broadcast");
  });

  it("id is the server's client_id once open, undefined while disconnected, and new after a reconnect", async (tc) => {
    const t = await startServer({}, (server) => {
      server.registerHandler("kick", (_ctx, connection) => connection.close(1012, "restart"));
    });
    tc.after(() => t.close());
    const c = client(tc, t.url);
    assert.equal(c.id, undefined);
    const opened = nextState(c, "open");
    const ready = c.ready();
    await opened;
    assert.equal(typeof c.id, "string", "known when open is reported");
    await ready;
    const firstId = c.id;
    assert.equal((await c.request("status")).data.client_id, firstId);

    const lost = nextState(c, "reconnecting");
    c.send("kick");
    await lost;
    assert.equal(c.id, undefined);
    await c.ready();
    assert.notEqual(c.id, firstId);
    assert.equal((await c.request("status")).data.client_id, c.id);
  });

  it("ready() waits for the rooms to be joined again after a reconnect; after close() it rejects at once", async (tc) => {
    const t = await startServer({}, (server) => {
      server.registerHandler("kick", (_ctx, connection) => connection.close(1012, "restart"));
    });
    tc.after(() => t.close());
    const c = client(tc, t.url);
    await c.join("kept");
    const lost = nextState(c, "reconnecting");
    c.send("kick");
    await lost;
    await c.ready();
    assert.deepEqual(
      (await t.server.roomMembers("kept")).map((m) => m.clientId),
      [c.id],
    );
    c.close();
    await assert.rejects(c.ready(), (error: unknown) => error instanceof RequestError && error.code === "closed");
  });

  it("a refused join rejects with forbidden and is not remembered; a refused rejoin is dropped once, with a room_left event", async (tc) => {
    const revoked = new Set<string>(["secret"]);
    const asked: string[] = [];
    const t = await startServer({}, (server) => {
      server.registerHandler("join_room", (ctx, connection, message) => {
        const room = (message.data as { room: string }).room;
        asked.push(room);
        if (revoked.has(room)) return ctx.replyError("forbidden", `you may not join ${room}`);
        connection.joinRoom(room);
        ctx.reply("room_joined", { room });
      });
      server.registerHandler("kick", (_ctx, connection) => connection.close(1012, "restart"));
    });
    tc.after(() => t.close());
    const c = client(tc, t.url);
    const refused = await c.join("secret").catch((e: unknown) => e);
    assert.ok(refused instanceof RequestError);
    assert.equal(refused.code, "forbidden");
    assert.equal(refused.requestType, "join_room");
    await c.join("vip");
    await c.join("open");
    assert.deepEqual(c.rooms.sort(), ["open", "vip"]);

    // The grant is taken away while the client is away: the rejoin is refused.
    revoked.add("vip");
    const dropped = nextMessage<RoomLeftEvent>(c, "room_left");
    const lost = nextState(c, "reconnecting");
    c.send("kick");
    await lost;
    await c.ready();
    assert.deepEqual(await dropped, { room: "vip", reason: "forbidden" });
    assert.deepEqual(c.rooms, ["open"]);

    // And it is not asked for again on the next reconnect.
    const again = nextState(c, "reconnecting");
    c.send("kick");
    await again;
    await c.ready();
    assert.equal(asked.filter((room) => room === "vip").length, 2, "joined once, refused once on the first rejoin");
    assert.deepEqual(c.rooms, ["open"]);
  });

  it("an unasked room_left (a refreshed token that no longer grants the room) makes it forget the room", async (tc) => {
    const t = await startServer({}, (server) => {
      server.registerHandler("revoke", (_ctx, connection, message) => {
        const room = (message.data as { room: string }).room;
        connection.leaveRoom(room);
        connection.send("room_left", { room, reason: "forbidden" });
      });
      server.registerHandler("kick", (_ctx, connection) => connection.close(1012, "restart"));
    });
    tc.after(() => t.close());
    const c = client(tc, t.url);
    await c.join("a");
    await c.join("b");
    const left = nextMessage<RoomLeftEvent>(c, "room_left");
    c.send("revoke", { room: "a" });
    assert.deepEqual(await left, { room: "a", reason: "forbidden" });
    assert.deepEqual(c.rooms, ["b"]);
    const changes = recordStates(c);
    c.send("kick");
    await nextState(c, "open");
    assert.deepEqual(
      changes.map((change) => change.state),
      ["reconnecting", "open"],
    );
    assert.deepEqual((await c.request("status")).data.rooms, ["b"]);
  });
});
