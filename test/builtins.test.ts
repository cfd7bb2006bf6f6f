import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";

describe("built-in message types", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  it("ping answers pong with the request's data, or the server time", async () => {
    const c = await connect(t.url);
    c.send({ type: "ping", data: "2024-01-01T00:00:00Z" });
    assert.deepEqual(await c.next(), { type: "pong", data: { timestamp: "2024-01-01T00:00:00Z" } });
    const reply = await c.request("ping");
    assert.equal(reply.type, "pong");
    assert.ok(!Number.isNaN(Date.parse(reply.data.timestamp)), "timestamp is an ISO time");
    await c.close();
  });

  it("echo answers with the original data", async () => {
    const c = await connect(t.url);
    c.send({ type: "echo", data: { a: [1, "two", null] } });
    assert.deepEqual(await c.next(), { type: "echo", data: { original: { a: [1, "two", null] } } });
    await c.close();
  });

  it("join_room and leave_room answer, also when repeated or not a member", async () => {
    const c = await connect(t.url);
    assert.deepEqual(await c.request("join_room", { room: "r1" }, "j1"), { type: "room_joined", data: { room: "r1" }, id: "j1" });
    assert.deepEqual(await c.request("join_room", { room: "r1" }, "j2"), { type: "room_joined", data: { room: "r1" }, id: "j2" });
    assert.deepEqual(t.server.getRoomClients("r1").map((x) => x.id).length, 1);
    assert.deepEqual(await c.request("leave_room", { room: "r1" }, "l1"), { type: "room_left", data: { room: "r1" }, id: "l1" });
    assert.deepEqual(await c.request("leave_room", { room: "r1" }, "l2"), { type: "room_left", data: { room: "r1" }, id: "l2" });
    assert.equal(t.server.rooms().includes("r1"), false, "empty room is deleted");
    await c.close();
  });

  it("status reports ids, ISO times, a Go duration and rooms", async () => {
    const c = await connect(t.url);
    await c.request("join_room", { room: "s" });
    const { data } = await c.request("status");
    assert.equal(typeof data.client_id, "string");
    assert.equal(data.user_id, null);
    assert.ok(!Number.isNaN(Date.parse(data.connected_at)));
    assert.ok(!Number.isNaN(Date.parse(data.last_heartbeat)));
    assert.match(data.connection_duration, /^(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)$/);
    assert.deepEqual(data.rooms, ["s"]);
    await c.close();
  });
});
