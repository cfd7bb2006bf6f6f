/**
 * Reliability, the cost of one client's messages: a client is charged for the work its messages cause,
 * not only for their count. Deep JSON is refused unparsed and never logs; a handler that keeps failing
 * on one client's input logs once per interval; a broadcast is charged by its recipients, `presence`
 * by the members it returns, a join or leave by the members it notifies; ping and pong frames take
 * message tokens; the defaults follow the message rate; room names are well-formed Unicode; and ws
 * holds a bounded number of fragments per connection.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Logger, ServerOptions } from "../src/index.js";
import { resolveOptions } from "../src/options.js";
import { startChildServer, type ChildServer } from "./fixtures/child-server.js";
import { connect, type TestClient } from "./helpers/client.js";
import { Opcode, RawWebSocket, closeCodeOf, encodeFrame } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { fence } from "./helpers/wire.js";

const MiB = 1024 * 1024;

/** A logger that keeps every line, by level. */
function capturingLogger(): { logger: Logger; lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> } {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { logger: { info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug") }, lines };
}

/** The close code the peer was sent, once its close frame has arrived. */
async function closeCode(peer: RawWebSocket): Promise<number | undefined> {
  await peer.until((frames) => frames.some((frame) => frame.opcode === Opcode.Close), "the close frame", 5000);
  return closeCodeOf(peer.frames.find((frame) => frame.opcode === Opcode.Close)!);
}

/** A message limit that a test never reaches, and a small work budget it does. */
function budget(deliveriesPerSecond: number): Partial<ServerOptions> {
  return { rateLimit: { messagesPerSecond: 1000, burst: 1000, maxDropped: 10_000, abuseWindowMs: 60_000, deliveriesPerSecond } };
}

async function members(url: string, room: string, count: number): Promise<TestClient[]> {
  const clients = await Promise.all(Array.from({ length: count }, () => connect(url)));
  for (const client of clients) await client.request("join_room", { room });
  return clients;
}

describe("parsing: deep JSON is refused before it is parsed", () => {
  let t: TestServer;
  const log = capturingLogger();
  before(async () => {
    t = await startServer({ logger: log.logger, maxMessageDepth: 64 });
  });
  after(() => t.close());

  it("64 levels are served; 65 and 30,000 get invalid_message; nothing is logged; the connection stays", async () => {
    const c = await connect(t.url);
    const logged = log.lines.length;
    const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;
    // The envelope is one level: data nested 63 deep makes 64.
    c.send(`{"type":"echo","id":"ok","data":${nested(63)}}`);
    assert.equal((await c.next((m) => m.id === "ok")).type, "echo");
    for (const depth of [64, 30_000]) {
      c.send(`{"type":"echo","id":"deep","data":${nested(depth)}}`);
      const reply = await c.next((m) => m.type === "error");
      assert.equal(reply.data.code, "invalid_message");
      assert.match(reply.data.message, /nested deeper than 64/);
    }
    // Brackets inside strings do not count.
    c.send({ type: "echo", id: "text", data: "[".repeat(1000) });
    assert.equal((await c.next((m) => m.id === "text")).type, "echo");
    assert.deepEqual(log.lines.slice(logged), [], "nothing logged for the client's deep messages");
    assert.equal((await c.request("echo", "alive")).type, "echo");
    await c.close();
  });

  it("keys that reach a prototype are stripped, also when spelled with escapes, without losing the rest", async () => {
    const c = await connect(t.url);
    c.send('{"type":"echo","id":"p","data":{"a":1,"__proto__":{"x":1},"b":[{"constructor":{"prototype":2},"c":"\\u00e9"}]}}');
    const reply = await c.next((m) => m.id === "p");
    assert.deepEqual(reply.data, { original: { a: 1, b: [{ c: "é" }] } });
    c.send('{"type":"echo","id":"q","data":{"\\u005f_proto__":{"polluted":true},"ok":true}}');
    assert.deepEqual((await c.next((m) => m.id === "q")).data, { original: { ok: true } });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    await c.close();
  });
});

describe("logs: a handler failing on one client's input logs once per interval", () => {
  let t: TestServer;
  const log = capturingLogger();
  before(async () => {
    t = await startServer({ logger: log.logger }, (server) => {
      server.registerHandler("explode", () => {
        throw new Error("bad input");
      });
    });
  });
  after(() => t.close());

  it("50 failures from one client: 50 error replies, one log line; another client gets a line of its own", async () => {
    const a = await connect(t.url);
    for (let i = 0; i < 50; i++) a.send({ type: "explode", id: `e${i}` });
    for (let i = 0; i < 50; i++) assert.equal((await a.next((m) => m.id === `e${i}`)).data.code, "handler_error");
    const b = await connect(t.url);
    assert.equal((await b.request("explode")).data.code, "handler_error");
    const failures = log.lines.filter((line) => line.message === "handler failed");
    assert.equal(failures.length, 2, `${failures.length} lines`);
    assert.notEqual(failures[0]!.fields.clientId, failures[1]!.fields.clientId);
    await a.close();
    await b.close();
  });
});

describe("work budget: a broadcast is charged by its recipients", () => {
  let t: TestServer;
  before(async () => {
    // 20 members, a burst of 2 × 200 deliveries: 20 broadcasts of under 1 KiB, then 10 a second.
    t = await startServer(budget(200));
  });
  after(() => t.close());

  it("past the budget a broadcast is refused with rate_limited and reaches nobody; the rest arrive", async () => {
    const room = await members(t.url, "big", 20);
    const sender = room[0]!;
    for (let i = 0; i < 40; i++) sender.send({ type: "broadcast", id: `b${i}`, data: { room: "big", type: "note", payload: i } });
    const refused: number[] = [];
    for (let i = 0; i < 40; i++) {
      const reply = await sender.next((m) => m.id === `b${i}`);
      if (reply.type === "error") {
        assert.equal(reply.data.code, "rate_limited");
        refused.push(i);
      } else assert.equal(reply.type, "ack");
    }
    assert.ok(refused.length >= 15, `${refused.length} of 40 refused`);
    await fence(room[19]!);
    const seen = room[19]!.received.filter((m) => m.type === "note").map((m) => m.data as number);
    assert.equal(seen.length, 40 - refused.length);
    assert.ok(
      seen.every((n) => !refused.includes(n)),
      "a refused broadcast reached nobody",
    );
    for (const client of room) await client.close();
  });

  it("larger messages cost more: one delivery per recipient for every started KiB", async () => {
    const room = await members(t.url, "kib", 10);
    // 10 recipients × 5 KiB = 50 deliveries a broadcast: 8 fit in the burst of 400, not 40.
    const payload = "x".repeat(4 * 1024 + 100);
    for (let i = 0; i < 40; i++) room[0]!.send({ type: "broadcast", id: `k${i}`, data: { room: "kib", type: "note", payload } });
    let refused = 0;
    for (let i = 0; i < 40; i++) if ((await room[0]!.next((m) => m.id === `k${i}`)).type === "error") refused++;
    assert.ok(refused >= 25, `${refused} of 40 refused`);
    for (const client of room) await client.close();
  });
});

describe("work budget: presence by the members returned, joins and leaves by the members notified", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer(budget(100));
  });
  after(() => t.close());

  it("presence in a 50-member room: 4 answers from the burst of 200, then rate_limited", async () => {
    const room = await members(t.url, "p", 50);
    const asker = room[0]!;
    for (let i = 0; i < 10; i++) asker.send({ type: "presence", id: `q${i}`, data: { room: "p" } });
    const types = [];
    for (let i = 0; i < 10; i++) types.push((await asker.next((m) => m.id === `q${i}`)).type);
    assert.deepEqual(types.slice(0, 4), ["presence", "presence", "presence", "presence"]);
    assert.ok(types.filter((type) => type === "error").length >= 5, types.join());
    for (const client of room) await client.close();
  });

  it("toggling join and leave in a 50-member room is refused once the notifications pass the budget", async () => {
    const room = await members(t.url, "j", 50);
    const toggler = await connect(t.url);
    const togglerId = (await toggler.request("status")).data.client_id as string;
    let refused = 0;
    let changes = 0;
    let member = false;
    for (let i = 0; i < 20; i++) {
      const reply = await toggler.request(i % 2 === 0 ? "join_room" : "leave_room", { room: "j" });
      if (reply.type === "error") {
        assert.equal(reply.data.code, "rate_limited");
        refused++;
      } else if ((reply.type === "room_joined") !== member) {
        member = !member;
        changes++;
      }
    }
    // The budget of 200 pays for about two joins (50 notified) and two leaves (49) before refill.
    assert.ok(refused >= 5, `${refused} of 20 refused`);
    await fence(room[1]!);
    const events = room[1]!.received.filter(
      (m) => (m.type === "member_joined" || m.type === "member_left") && m.data.client_id === togglerId,
    ).length;
    assert.equal(events, changes, "one presence event per membership change, none for a refused request");
    for (const client of [...room, toggler]) await client.close();
  });

  it("a server's own broadcasts are not charged to anyone", async () => {
    const room = await members(t.url, "s", 50);
    for (let i = 0; i < 20; i++) t.server.broadcastToRoom("s", "tick", i);
    await fence(room[0]!);
    assert.equal(room[0]!.received.filter((m) => m.type === "tick").length, 20);
    for (const client of room) await client.close();
  });
});

describe("control frames take message tokens", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ rateLimit: { messagesPerSecond: 10, burst: 20, maxDropped: 50, abuseWindowMs: 60_000 } });
  });
  after(() => t.close());

  it("a flood of pong frames is closed with 1008", async () => {
    const peer = await RawWebSocket.connect(t.port);
    peer.write(Buffer.concat(Array.from({ length: 200 }, () => encodeFrame({ opcode: Opcode.Pong }))));
    assert.equal(await closeCode(peer), 1008);
    peer.destroy();
  });

  it("pings, each answered before the next batch, are counted too: closed with 1008", async () => {
    // ws itself cuts off a peer with 60 pongs owed at once; batches of 10 stay below that.
    const peer = await RawWebSocket.connect(t.port);
    const isClose = (frame: { opcode: number }): boolean => frame.opcode === Opcode.Close;
    for (let batch = 1; batch <= 20 && !peer.frames.some(isClose); batch++) {
      peer.write(Buffer.concat(Array.from({ length: 10 }, () => encodeFrame({ opcode: Opcode.Ping }))));
      await peer.until(
        (frames) => frames.some(isClose) || frames.filter((f) => f.opcode === Opcode.Pong).length >= batch * 10,
        "the pongs or the close",
      );
    }
    assert.equal(await closeCode(peer), 1008);
    peer.destroy();
  });

  it("a heartbeat's worth of pongs is fine", async () => {
    const peer = await RawWebSocket.connect(t.port);
    peer.write(Buffer.concat(Array.from({ length: 5 }, () => encodeFrame({ opcode: Opcode.Pong }))));
    peer.sendText({ type: "echo", id: "after" });
    await peer.until((frames) => frames.some((f) => f.opcode === Opcode.Text), "the echo");
    assert.match(peer.messages()[0]!.type, /^echo$/);
    peer.destroy();
  });
});

describe("budgets follow the message rate", () => {
  it("the default is 100 deliveries a second per message a second; raising the rate raises it; set alone, it stays", () => {
    const defaults = resolveOptions({}).rateLimit;
    assert.ok(defaults);
    assert.equal(defaults.deliveriesPerSecond, 10_000);
    const raised = resolveOptions({ rateLimit: { messagesPerSecond: 1000 } as never }).rateLimit;
    assert.ok(raised);
    assert.equal(raised.deliveriesPerSecond, 100_000);
    const own = resolveOptions({ rateLimit: { messagesPerSecond: 1000, deliveriesPerSecond: 7 } as never }).rateLimit;
    assert.ok(own);
    assert.equal(own.deliveriesPerSecond, 7);
    assert.throws(() => resolveOptions({ rateLimit: { deliveriesPerSecond: 0 } as never }), /deliveriesPerSecond/);
  });

  it("without a rate limit nothing is charged: a member's broadcasts to a large room all go out", async () => {
    const t = await startServer({ rateLimit: false });
    try {
      const room = await members(t.url, "free", 30);
      for (let i = 0; i < 100; i++) room[0]!.send({ type: "broadcast", data: { room: "free", type: "note", payload: i } });
      await fence(room[0]!);
      await fence(room[29]!);
      assert.equal(room[29]!.received.filter((m) => m.type === "note").length, 100);
      for (const client of room) await client.close();
    } finally {
      await t.close();
    }
  });
});

describe("room names are well-formed Unicode", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  it("a lone surrogate is invalid_room; a surrogate pair and U+FFFD are names like any other", async () => {
    const c = await connect(t.url);
    for (const room of ["vip\ud800", "vip\udfff", "\udc00vip"]) {
      const reply = await c.request("join_room", { room });
      assert.equal(reply.type, "error");
      assert.equal(reply.data.code, "invalid_room");
    }
    for (const room of ["vip\ufffd", "vip😀"]) assert.equal((await c.request("join_room", { room })).type, "room_joined");
    assert.deepEqual(t.server.rooms().sort(), ["vip\ufffd", "vip😀"].sort());
    await c.close();
  });
});

describe("fragments: ws holds a bounded number per connection", () => {
  let child: ChildServer;
  before(async () => {
    child = await startChildServer({});
  });
  after(() => child.stop());

  it("a message in 129 fragments is closed with 1008; 150 connections holding 128 one-byte fragments each pin little memory", async () => {
    const fragment = (first: boolean): Buffer =>
      encodeFrame({ opcode: first ? Opcode.Text : Opcode.Continuation, payload: "x", fin: false });
    const over = await RawWebSocket.connect(child.port);
    over.write(Buffer.concat([fragment(true), ...Array.from({ length: 200 }, () => fragment(false))]));
    assert.equal(await closeCode(over), 1008);
    over.destroy();

    const start = await child.stats(true);
    await child.mark();
    const peers = await Promise.all(Array.from({ length: 150 }, () => RawWebSocket.connect(child.port)));
    for (const peer of peers) peer.write(Buffer.concat([fragment(true), ...Array.from({ length: 127 }, () => fragment(false))]));
    // A ping on each connection, answered once ws has read everything before it.
    for (const peer of peers) peer.write(encodeFrame({ opcode: Opcode.Ping, payload: "p" }));
    for (const peer of peers) await peer.until((frames) => frames.some((f) => f.opcode === Opcode.Pong), "the pong");
    const end = await child.stats();
    const perConnection = (end.maxRss - start.rss) / 150;
    console.log(`# fragments: server RSS growth ${(perConnection / 1024).toFixed(1)} KiB per connection holding 128 fragments`);
    assert.ok(perConnection < 0.25 * MiB, `${(perConnection / 1024).toFixed(1)} KiB per connection`);
    for (const peer of peers) peer.destroy();
  });
});
