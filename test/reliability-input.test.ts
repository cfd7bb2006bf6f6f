/**
 * Reliability, input: frames over `maxPayload` close with 1009; bad input of any
 * kind gets an error reply and the connection keeps working; handler faults (throw, reject, never
 * settle, a reply that cannot be serialised, a schema that throws) become error replies and never
 * reach the hub. The plain one-case-per-input checks live in test/handlers.test.ts; here the inputs
 * come in bursts, interleaved, and while other clients are being served.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { StandardSchemaV1 } from "../src/index.js";
import { connect, type WireMessage } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, fence, within } from "./helpers/wire.js";

/** A Standard Schema whose validate throws, as a recursive schema does on data nested too deep. */
const throwingSchema: StandardSchemaV1<unknown, unknown> = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: () => {
      throw new RangeError("Maximum call stack size exceeded");
    },
  },
};

describe("input limits: maxPayload (close 1009)", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ maxPayload: 1024 });
  });
  after(() => t.close());

  it("a text or binary frame one byte over maxPayload closes with 1009; one at the limit is served", async () => {
    const c = await connect(t.url);
    // {"type":"echo","data":"…"} padded to exactly 1024 bytes.
    const atLimit = JSON.stringify({ type: "echo", data: "" }).length;
    c.send(JSON.stringify({ type: "echo", data: "a".repeat(1024 - atLimit) }));
    assert.equal((await c.next("echo")).data.original.length, 1024 - atLimit);
    c.send(JSON.stringify({ type: "echo", data: "a".repeat(1025 - atLimit) }));
    assert.equal((await within(c.closed, 10_000, "the close")).code, 1009);

    const b = await connect(t.url);
    b.ws.send(Buffer.alloc(1025));
    assert.equal((await within(b.closed, 10_000, "the close")).code, 1009);

    const other = await connect(t.url);
    assert.equal((await other.request("echo", "still serving")).type, "echo");
    assert.equal(t.server.clientCount, 1, "the closed clients left the hub");
    await other.close();
  });
});

describe("input: bad frames in bursts", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ rateLimit: false });
  });
  after(() => t.close());

  it("every kind of bad input, interleaved with requests: each gets one error, each request its reply, in order", async () => {
    const c = await connect(t.url);
    const bad: Array<[string | Buffer, string]> = [
      ["{", "invalid_json"],
      ["\u0000", "invalid_json"],
      ["[]", "invalid_message"],
      ["true", "invalid_message"],
      ['{"type":null}', "invalid_message"],
      ['{"type":["echo"]}', "invalid_message"],
      ['{"type":{"toString":"echo"}}', "invalid_message"],
      [`{"type":"${"u".repeat(10_000)}"}`, "unknown_type"],
      ['{"type":"toString"}', "unknown_type"],
      ['{"type":"hasOwnProperty"}', "unknown_type"],
      ['{"type":"__proto__"}', "unknown_type"],
      ['{"type":"Echo"}', "unknown_type"],
      ['{"type":"echo","id":{"a":1}}', "invalid_message"],
      [Buffer.from([0xde, 0xad, 0xbe, 0xef]), "binary_not_supported"],
      [Buffer.alloc(0), "binary_not_supported"],
    ];
    for (let round = 0; round < 20; round++) {
      for (const [frame] of bad) typeof frame === "string" ? c.send(frame) : c.ws.send(frame);
      c.send({ type: "echo", data: round, id: `r${round}` });
    }
    await fence(c);
    const received = c.received.splice(0);
    const errors = received.filter((m) => m.type === "error");
    assert.equal(errors.length, 20 * bad.length);
    assert.deepEqual(
      errors.slice(0, bad.length).map((m) => m.data.code),
      bad.map(([, code]) => code),
    );
    const replies = received.filter((m) => m.type === "echo");
    assert.deepEqual(
      replies.map((m) => m.id),
      Array.from({ length: 20 }, (_, i) => `r${i}`),
      "each request answered once, in order",
    );
    assert.equal(t.server.clientCount, 1);
    await c.close();
  });
});

describe("input: handler faults", () => {
  let t: TestServer;
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  before(async () => {
    t = await startServer({ handlerTimeout: 300, rateLimit: false }, (server) => {
      server.registerHandler("hang", () => new Promise<void>(() => {}));
      server.registerHandler("throw", () => {
        throw new Error("db password is hunter2");
      });
      server.registerHandler("throw_string", () => {
        throw "raw string thrown";
      });
      server.registerHandler("throw_null", () => {
        throw null;
      });
      server.registerHandler("reject", () => Promise.reject(new TypeError("x is undefined at /srv/app.js:1:1")));
      server.registerHandler("bigint", (ctx) => ctx.reply("bigint", { n: 1n }));
      server.registerHandler("cycle", (ctx) => ctx.reply("cycle", cyclic));
      server.registerHandler("late_bigint", async (ctx) => {
        await new Promise((resolve) => setImmediate(resolve));
        ctx.reply("late", 2n);
      });
      server.registerHandler("schema_throws", { schema: throwingSchema, handler: (ctx) => ctx.reply("never") });
    });
  });
  after(() => t.close());

  it("50 handlers that never settle each get handler_timeout; another client is served meanwhile", async () => {
    const a = await connect(t.url);
    const b = await connect(t.url);
    for (let i = 0; i < 50; i++) a.send({ type: "hang", id: `h${i}` });
    await fence(a);
    assert.equal((await b.request("echo", "meanwhile")).type, "echo");
    const timeouts: WireMessage[] = [];
    for (let i = 0; i < 50; i++) timeouts.push(await a.next((m) => m.id === `h${i}`, 20_000));
    assert.deepEqual(new Set(timeouts.map((m) => m.data.code)), new Set(["handler_timeout"]));
    assert.deepEqual(await drain(a), [], "exactly one reply each");
    await a.close();
    await b.close();
  });

  it("throwing anything, or rejecting: handler_error with the id, no internals; the connection keeps working", async () => {
    const c = await connect(t.url);
    for (const type of ["throw", "throw_string", "throw_null", "reject"]) {
      const reply = await c.request(type, undefined, `${type}-1`);
      assert.equal(reply.type, "error", type);
      assert.equal(reply.data.code, "handler_error");
      assert.doesNotMatch(JSON.stringify(reply), /hunter2|raw string|undefined at|\.js:\d|\n/);
    }
    assert.deepEqual(await drain(c), []);
    assert.equal((await c.request("echo", 1)).type, "echo");
    await c.close();
  });

  it("a reply that cannot be serialised (BigInt, cycle) is an error reply with the id, never silence; a 10,000-deep echo is refused unread", async () => {
    const c = await connect(t.url);
    for (const type of ["bigint", "cycle", "late_bigint"]) {
      const reply = await c.request(type, undefined, `${type}-1`);
      assert.deepEqual([reply.type, reply.data.code], ["error", "handler_error"], type);
    }
    // Data nested 10,000 deep would parse but never serialise back: it is refused before parsing.
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    c.send(`{"type":"echo","id":"deep","data":${deep}}`);
    const reply = await c.next((m) => m.type === "error", 10_000);
    assert.equal(reply.data.code, "invalid_message");
    assert.deepEqual(await drain(c), [], "one reply, no ack after it");
    assert.equal((await c.request("echo", "ok")).type, "echo");
    await c.close();
  });

  it("a schema that throws is an error reply, not a crash", async () => {
    const c = await connect(t.url);
    const reply = await c.request("schema_throws", { a: 1 }, "s1");
    assert.deepEqual([reply.type, reply.data.code], ["error", "handler_error"]);
    assert.equal((await c.request("echo", "alive")).type, "echo");
    await c.close();
  });
});
