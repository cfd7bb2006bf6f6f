/**
 * Reliability, rate limiting: a token bucket per connection. Excess messages are
 * dropped with a `rate_limited` error (carrying the id when one can be read), every frame counts,
 * sustained abuse closes with 1008, and other clients are still answered while one floods.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DisconnectReason } from "../src/index.js";
import { connect } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { fence, within } from "./helpers/wire.js";

describe("rate limit: the token bucket", () => {
  let t: TestServer;
  before(async () => {
    // One token a second: within the test, the bucket is effectively only its burst.
    t = await startServer({ rateLimit: { messagesPerSecond: 1, burst: 10, maxDropped: 10_000, abuseWindowMs: 60_000 } });
  });
  after(() => t.close());

  it("a burst past the bucket: the first `burst` are served, the excess is rate_limited with its id; one reply each", async () => {
    const c = await connect(t.url);
    const started = Date.now();
    for (let i = 0; i < 40; i++) c.send({ type: "ping", data: i, id: `p${i}` });
    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await c.next((m) => m.id === `p${i}`));
    const elapsedSeconds = (Date.now() - started) / 1000;
    const served = replies.filter((m) => m.type === "pong").length;
    const limited = replies.filter((m) => m.type === "error" && m.data.code === "rate_limited").length;
    assert.equal(served + limited, 40, "every request got a pong or a rate_limited error");
    assert.deepEqual(
      replies.slice(0, 10).map((m) => m.type),
      Array(10).fill("pong"),
      "the burst is served",
    );
    // The bucket refills one token a second while the test runs, never faster.
    assert.ok(served <= 10 + Math.ceil(elapsedSeconds) + 1, `${served} served in ${elapsedSeconds} s`);
    assert.ok(limited >= 1);
    await c.close();
  });

  it("every frame takes a token: binary and unparsable frames too; a dropped frame without a readable id gets an error without id", async () => {
    const c = await connect(t.url);
    for (let i = 0; i < 12; i++) c.ws.send(Buffer.from([i]));
    c.send("{not json");
    c.send({ type: "echo", id: "after" });
    const received = [];
    for (let i = 0; i < 14; i++) received.push(await c.next());
    const codes = received.map((m) => (m.type === "error" ? m.data.code : m.type));
    assert.deepEqual(codes.slice(0, 10), Array(10).fill("binary_not_supported"), "the burst of binary frames used the bucket");
    assert.ok(codes.slice(10).includes("rate_limited"));
    const last = received.at(-1)!;
    // The echo request was either served (a token refilled meanwhile) or refused with its id.
    assert.equal(last.id, "after");
    const noId = received.filter((m) => m.type === "error" && m.data.code === "rate_limited" && m.id === undefined);
    assert.ok(noId.length >= 1, "dropped frames without an id are answered without one");
    await c.close();
  });

  it("the bucket refills: a limited client is served again later", async () => {
    const c = await connect(t.url);
    for (let i = 0; i < 15; i++) c.send({ type: "ping" });
    await c.next((m) => m.type === "error" && m.data.code === "rate_limited");
    // No event announces a refill: retry every 200 ms, bounded.
    let reply: Awaited<ReturnType<typeof c.request>> | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      reply = await c.request("echo", attempt);
      if (reply.type === "echo") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(reply?.type, "echo");
    await c.close();
  });
});

describe("rate limit: sustained abuse and fairness", () => {
  let t: TestServer;
  const disconnects: DisconnectReason[] = [];
  before(async () => {
    t = await startServer({ rateLimit: { messagesPerSecond: 10, burst: 20, maxDropped: 50, abuseWindowMs: 60_000 } });
    t.server.on("disconnect", (_client, reason) => disconnects.push(reason));
  });
  after(() => t.close());

  it("more than maxDropped drops within the window closes with 1008; others are unaffected", async () => {
    const bystander = await connect(t.url);
    const abuser = await connect(t.url);
    for (let i = 0; i < 200 && abuser.ws.readyState === abuser.ws.OPEN; i++) abuser.send({ type: "ping", id: `a${i}` });
    assert.equal((await within(abuser.closed, 10_000, "the abuser's close")).code, 1008);
    const limited = abuser.received.filter((m) => m.type === "error" && m.data.code === "rate_limited");
    assert.ok(limited.length >= 1 && limited.length <= 50, `${limited.length} rate_limited replies before the close`);
    assert.deepEqual(disconnects, ["rate_limited"]);
    assert.equal((await bystander.request("echo", "fine")).type, "echo");
    assert.equal(t.server.clientCount, 1);
    await bystander.close();
  });
});

describe("rate limit: one client floods, another is still answered", () => {
  let t: TestServer;
  before(async () => {
    // A limit the flooder exceeds all the time without ever being closed for it; the other client's
    // 100 requests fit in the burst.
    t = await startServer({ rateLimit: { messagesPerSecond: 50, burst: 150, maxDropped: 1_000_000, abuseWindowMs: 1000 } });
  });
  after(() => t.close());

  it("100 requests of a second client are all answered while the first floods", async () => {
    const flooder = await connect(t.url);
    const other = await connect(t.url);
    let flooding = true;
    let sent = 0;
    let limited = 0;
    const flood = (async () => {
      // Bounded: at most 2,000 rounds of 100 frames.
      for (let round = 0; flooding && round < 2000; round++) {
        for (let i = 0; i < 100; i++) flooder.send({ type: "echo", data: "x".repeat(100) });
        sent += 100;
        await new Promise((resolve) => setImmediate(resolve));
        limited += flooder.received.filter((m) => m.type === "error" && m.data.code === "rate_limited").length;
        flooder.received.length = 0;
      }
    })();
    try {
      for (let i = 0; i < 100; i++) {
        const reply = await other.request("echo", i, `o${i}`);
        assert.deepEqual(reply, { type: "echo", data: { original: i }, id: `o${i}` });
      }
    } finally {
      flooding = false;
      await flood;
    }
    assert.ok(sent >= 100, `the flooder sent ${sent} frames meanwhile`);
    assert.ok(limited > 0, "the flooder was over its limit");
    await fence(other);
    assert.equal(flooder.ws.readyState, flooder.ws.OPEN, "dropping is not closing");
    await flooder.close();
    await other.close();
  });
});
