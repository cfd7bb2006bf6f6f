import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RESERVED_TYPES } from "../src/index.js";
import { connect, type TestClient } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, waitFor } from "./helpers/wire.js";

async function idOf(c: TestClient): Promise<string> {
  return (await c.request("status")).data.client_id as string;
}

async function join(c: TestClient, room: string): Promise<void> {
  const reply = await c.request("join_room", { room });
  assert.equal(reply.type, "room_joined", JSON.stringify(reply));
}

async function closeAll(...clients: TestClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

describe("rooms and broadcast", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ maxRoomsPerClient: 3, presenceEventsMaxMembers: 2 });
  });
  after(() => t.close());

  it("a room broadcast reaches every member, the sender included, and no one else; copies carry no id", async () => {
    const [a, b, outsider] = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    await join(a, "r1");
    await join(b, "r1");
    await join(outsider, "elsewhere");
    await Promise.all([drain(a), drain(b), drain(outsider)]);

    a.send({ type: "broadcast", id: "b1", data: { room: "r1", type: "chat", payload: { text: "hi" } } });
    assert.deepEqual(await a.next("chat"), { type: "chat", data: { text: "hi" } });
    assert.deepEqual(await a.next((m) => m.id === "b1"), { type: "ack", id: "b1" });
    assert.deepEqual(await b.next("chat"), { type: "chat", data: { text: "hi" } });
    assert.deepEqual(await drain(a), [], "exactly one copy and one ack for the sender");
    assert.deepEqual(await drain(b), [], "exactly one copy for the member");
    assert.deepEqual(await drain(outsider), [], "nothing for a client outside the room");

    // Without an id: the copy, and no ack.
    b.send({ type: "broadcast", data: { room: "r1", type: "chat", payload: 2 } });
    assert.deepEqual(await b.next("chat"), { type: "chat", data: 2 });
    assert.deepEqual(await a.next("chat"), { type: "chat", data: 2 });
    assert.deepEqual(await drain(b), []);
    await closeAll(a, b, outsider);
  });

  it("a broadcast without room reaches every client", async () => {
    const clients = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    await join(clients[0]!, "some-room");
    await waitFor(() => t.server.clientCount === 3, "only this test's clients");
    clients[1]!.send({ type: "broadcast", id: "all1", data: { type: "notice", payload: "everyone" } });
    for (const c of clients) assert.deepEqual(await c.next("notice"), { type: "notice", data: "everyone" });
    assert.deepEqual(await clients[1]!.next((m) => m.id === "all1"), { type: "ack", id: "all1" });
    await closeAll(...clients);
  });

  it("a non-member's room broadcast is not_in_room and reaches nobody", async () => {
    const [member, stranger] = await Promise.all([connect(t.url), connect(t.url)]);
    await join(member, "private");
    await drain(member);
    const reply = await stranger.request("broadcast", { room: "private", type: "chat", payload: "sneaky" }, "n1");
    assert.equal(reply.type, "error");
    assert.equal(reply.data.code, "not_in_room");
    assert.equal(reply.id, "n1");
    assert.deepEqual(await drain(member), []);
    await closeAll(member, stranger);
  });

  it("each of the thirteen reserved types is refused as a broadcast type, to a room or to all", async () => {
    assert.deepEqual([...RESERVED_TYPES].sort(), [
      "ack",
      "error",
      "history",
      "member_joined",
      "member_left",
      "pong",
      "presence",
      "refresh",
      "refreshed",
      "room_joined",
      "room_left",
      "status",
      "token_expiring",
    ]);
    const [a, b] = await Promise.all([connect(t.url), connect(t.url)]);
    await join(a, "reserved");
    await join(b, "reserved");
    await Promise.all([drain(a), drain(b)]);
    for (const type of RESERVED_TYPES) {
      for (const data of [
        { room: "reserved", type, payload: 1 },
        { type, payload: 1 },
      ]) {
        const reply = await a.request("broadcast", data);
        assert.equal(reply.type, "error", `${type} ${JSON.stringify(data)}`);
        assert.equal(reply.data.code, "reserved_type");
      }
    }
    assert.deepEqual(await drain(a), []);
    assert.deepEqual(await drain(b), [], "the other member saw none of them");
    await closeAll(a, b);
  });

  it("presence lists members with client_id and user_id, for members only", async () => {
    const [a, b, stranger] = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    await join(a, "p");
    await join(b, "p");
    const reply = await a.request("presence", { room: "p" }, "pr1");
    assert.equal(reply.type, "presence");
    assert.equal(reply.id, "pr1");
    assert.equal(reply.data.room, "p");
    assert.equal(reply.data.count, 2);
    const expected = [
      { client_id: await idOf(a), user_id: null },
      { client_id: await idOf(b), user_id: null },
    ].sort((x, y) => x.client_id.localeCompare(y.client_id));
    const members = [...reply.data.members].sort((x: { client_id: string }, y: { client_id: string }) =>
      x.client_id.localeCompare(y.client_id),
    );
    assert.deepEqual(members, expected);

    const refused = await stranger.request("presence", { room: "p" });
    assert.equal(refused.type, "error");
    assert.equal(refused.data.code, "not_in_room");
    await closeAll(a, b, stranger);
  });

  it("member_joined and member_left reach the other members, not the joiner, on leave, close and terminate", async () => {
    const [a, b, c, d] = await Promise.all([connect(t.url), connect(t.url), connect(t.url), connect(t.url)]);
    const [idB, idC, idD] = [await idOf(b), await idOf(c), await idOf(d)];
    await join(a, "ev");
    await join(b, "ev");
    assert.deepEqual(await a.next("member_joined"), { type: "member_joined", data: { room: "ev", client_id: idB, user_id: null } });
    assert.deepEqual(await drain(b), [], "the joiner gets its room_joined only");

    const left = await b.request("leave_room", { room: "ev" });
    assert.equal(left.type, "room_left");
    assert.deepEqual(await a.next("member_left"), { type: "member_left", data: { room: "ev", client_id: idB, user_id: null } });
    assert.deepEqual(await drain(b), [], "the leaver is told nothing more");

    await join(c, "ev");
    assert.deepEqual((await a.next("member_joined")).data.client_id, idC);
    await c.close();
    assert.deepEqual(await a.next("member_left"), { type: "member_left", data: { room: "ev", client_id: idC, user_id: null } });

    await join(d, "ev");
    assert.deepEqual((await a.next("member_joined")).data.client_id, idD);
    d.ws.terminate();
    assert.deepEqual(await a.next("member_left"), { type: "member_left", data: { room: "ev", client_id: idD, user_id: null } });
    assert.deepEqual(await drain(a), []);
    await closeAll(a, b);
  });

  it("presenceEventsMaxMembers: no presence events once a room is above the size", async () => {
    // This server's limit is 2: the second join is announced, the third is not.
    const [a, b, c] = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    await join(a, "big");
    await join(b, "big");
    assert.equal((await a.next("member_joined")).data.client_id, await idOf(b));
    await join(c, "big");
    assert.deepEqual(await drain(a), [], "no member_joined for the third member");
    assert.deepEqual(await drain(b), []);
    const presence = await a.request("presence", { room: "big" });
    assert.equal(presence.data.count, 3, "presence requests still work above the size");
    // The unannounced member's departure is not announced either (the size counted includes it).
    await c.request("leave_room", { room: "big" });
    assert.deepEqual(await drain(a), [], "no member_left for a member whose join was not announced");
    await closeAll(a, b, c);
  });

  it("room names: empty, longer than 128 characters, or with control characters are invalid_room", async () => {
    const c = await connect(t.url);
    for (const room of ["", "x".repeat(129), "bad\u0000name", "tab\there", "del\u007f", "c1\u0085", 42, null]) {
      const reply = await c.request("join_room", { room });
      assert.equal(reply.type, "error", JSON.stringify(room));
      assert.equal(reply.data.code, "invalid_room");
    }
    const missing = await c.request("join_room", {});
    assert.equal(missing.data.code, "invalid_room");
    const longest = "y".repeat(128);
    assert.deepEqual(await c.request("join_room", { room: longest }, "ok"), { type: "room_joined", data: { room: longest }, id: "ok" });
    assert.deepEqual(await c.request("join_room", { room: "ünïcödé 🚀" }, "u"), {
      type: "room_joined",
      data: { room: "ünïcödé 🚀" },
      id: "u",
    });
    await c.close();
  });

  it("maxRoomsPerClient: one room too many is too_many_rooms; rejoining a room is still fine", async () => {
    const c = await connect(t.url);
    for (const room of ["m1", "m2", "m3"]) await join(c, room);
    const reply = await c.request("join_room", { room: "m4" });
    assert.equal(reply.type, "error");
    assert.equal(reply.data.code, "too_many_rooms");
    await join(c, "m2");
    assert.deepEqual((await c.request("status")).data.rooms.sort(), ["m1", "m2", "m3"]);
    await c.request("leave_room", { room: "m1" });
    await join(c, "m4");
    await c.close();
  });
});

describe("rooms: allowBroadcastToAll false", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ allowBroadcastToAll: false });
  });
  after(() => t.close());

  it("a broadcast without room is broadcast_forbidden; room broadcasts still work", async () => {
    const [a, b] = await Promise.all([connect(t.url), connect(t.url)]);
    const reply = await a.request("broadcast", { type: "notice", payload: 1 }, "f1");
    assert.deepEqual(reply.type, "error");
    assert.equal(reply.data.code, "broadcast_forbidden");
    assert.equal(reply.id, "f1");
    assert.deepEqual(await drain(b), []);
    await join(a, "ok");
    a.send({ type: "broadcast", data: { room: "ok", type: "chat", payload: 1 } });
    assert.deepEqual(await a.next("chat"), { type: "chat", data: 1 });
    await closeAll(a, b);
  });
});

describe("rooms: the server API", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, (server) => {
      server.on("connection", (client) => {
        client.joinRoom("lobby");
      });
      server.registerHandler("set_name", (ctx, client, msg) => {
        client.setMetadata("name", msg.data);
        ctx.reply("name_set");
      });
      server.registerHandler("get_name", (ctx, client) => ctx.reply("name", client.getMetadata<string>("name") ?? null));
      server.registerHandler("move", (ctx, client, msg) => {
        const { from, to } = msg.data as { from: string; to: string };
        client.leaveRoom(from);
        const outcome = client.joinRoom(to);
        ctx.reply("moved", outcome);
      });
    });
  });
  after(() => t.close());

  it("joinRoom from a connection listener, broadcastToRoom, broadcast, sendTo, getRoomClients, rooms(), roomSize()", async () => {
    const [a, b] = await Promise.all([connect(t.url), connect(t.url)]);
    const [idA, idB] = [await idOf(a), await idOf(b)];
    assert.deepEqual((await a.request("status")).data.rooms, ["lobby"]);
    assert.deepEqual(t.server.rooms(), ["lobby"]);
    assert.equal(await t.server.roomSize("lobby"), 2);
    assert.deepEqual(
      t.server
        .getRoomClients("lobby")
        .map((c) => c.id)
        .sort(),
      [idA, idB].sort(),
    );
    assert.deepEqual(t.server.getRoomClients("nowhere"), []);
    assert.equal(await t.server.roomSize("nowhere"), 0);
    await Promise.all([drain(a), drain(b)]);

    assert.equal(t.server.broadcastToRoom("lobby", "news", { n: 1 }), 2);
    assert.deepEqual(await a.next("news"), { type: "news", data: { n: 1 } });
    assert.deepEqual(await b.next("news"), { type: "news", data: { n: 1 } });

    assert.equal(t.server.broadcast("all", "x"), 2);
    assert.deepEqual(await a.next("all"), { type: "all", data: "x" });
    assert.deepEqual(await b.next("all"), { type: "all", data: "x" });

    assert.equal(t.server.sendTo(idB, "direct", { secret: true }), true);
    assert.deepEqual(await b.next("direct"), { type: "direct", data: { secret: true } });
    assert.deepEqual(await drain(a), [], "sendTo reaches only its client");
    assert.equal(t.server.sendTo("no-such-client", "direct"), false);

    // Leave and join from a handler: the hub, rooms and presence all see it.
    assert.deepEqual(await a.request("move", { from: "lobby", to: "den" }, "mv"), { type: "moved", data: { ok: true }, id: "mv" });
    assert.deepEqual((await a.request("status")).data.rooms, ["den"]);
    assert.deepEqual(t.server.rooms().sort(), ["den", "lobby"]);
    assert.deepEqual(
      t.server.getRoomClients("lobby").map((c) => c.id),
      [idB],
    );
    assert.equal((await b.next("member_left")).data.client_id, idA);
    await closeAll(a, b);
  });

  it("client metadata set in one handler is visible in another", async () => {
    const c = await connect(t.url);
    assert.deepEqual(await c.request("get_name", undefined, "g0"), { type: "name", data: null, id: "g0" });
    await c.request("set_name", "ada");
    assert.deepEqual(await c.request("get_name", undefined, "g1"), { type: "name", data: "ada", id: "g1" });
    const other = await connect(t.url);
    assert.deepEqual(await other.request("get_name", undefined, "g2"), { type: "name", data: null, id: "g2" }, "per connection");
    const server = t.server.getClient(await idOf(c));
    assert.equal(server?.getMetadata("name"), "ada");
    await closeAll(c, other);
  });
});
