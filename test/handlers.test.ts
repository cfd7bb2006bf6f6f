import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as v from "valibot";
import { z } from "zod";
import { ConduitError } from "../src/index.js";
import { connect } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, fence } from "./helpers/wire.js";

describe("router: handlers, replies, errors", () => {
  let t: TestServer;
  // Lets the test finish the slow handler after its timeout reply has been checked.
  let releaseSlow: (() => void) | undefined;

  before(async () => {
    t = await startServer({ handlerTimeout: 200 }, (server) => {
      server.registerHandler("sync_hello", (ctx, _client, msg) => ctx.reply("hello", { to: msg.data }));
      server.registerHandler("async_hello", async (ctx, _client, msg) => {
        await new Promise((resolve) => setImmediate(resolve));
        ctx.reply("hello_later", { to: msg.data });
      });
      server.registerHandler("silent", () => {});
      server.registerHandler("silent_async", async () => {
        await new Promise((resolve) => setImmediate(resolve));
      });
      server.registerHandler("echo", (ctx, _client, msg) => ctx.reply("echo", { overridden: true, got: msg.data }));
      server.registerHandler("twice", (ctx) => {
        ctx.reply("first");
        ctx.reply("second");
      });
      server.registerHandler("throws", () => {
        throw new Error("secret database password in this message");
      });
      server.registerHandler("rejects", async () => {
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error("secret rejection detail");
      });
      server.registerHandler("forbidden", () => {
        throw new ConduitError("forbidden", "log in first");
      });
      server.registerHandler("forbidden_async", async () => {
        throw new ConduitError("quota_exceeded", "too many widgets");
      });
      server.registerHandler("slow", async (ctx) => {
        await new Promise<void>((resolve) => {
          releaseSlow = resolve;
        });
        ctx.reply("too_late");
      });
      server.registerHandler("zod_post", {
        schema: z.object({
          text: z
            .string()
            .min(1)
            .transform((s) => s.toUpperCase()),
          count: z.coerce.number().int(),
        }),
        handler: (ctx, _client, msg) =>
          ctx.reply("zod_ok", { text: msg.data.text, count: msg.data.count, countType: typeof msg.data.count }),
      });
      server.registerHandler("valibot_post", {
        schema: v.object({
          text: v.pipe(
            v.string(),
            v.transform((s) => s.length),
          ),
          tags: v.array(v.string()),
        }),
        handler: (ctx, _client, msg) => ctx.reply("valibot_ok", { length: msg.data.text, tags: msg.data.tags }),
      });
    });
  });
  after(() => t.close());

  it("runs sync and async handlers; ctx.reply carries the request's id", async () => {
    const c = await connect(t.url);
    assert.deepEqual(await c.request("sync_hello", "ann", "s1"), { type: "hello", data: { to: "ann" }, id: "s1" });
    assert.deepEqual(await c.request("async_hello", "bob", "a1"), { type: "hello_later", data: { to: "bob" }, id: "a1" });
    // Without an id the reply carries none.
    c.send({ type: "sync_hello", data: "cy" });
    assert.deepEqual(await c.next("hello"), { type: "hello", data: { to: "cy" } });
    await c.close();
  });

  it("a user handler overrides a built-in", async () => {
    const c = await connect(t.url);
    assert.deepEqual(await c.request("echo", 7, "e1"), { type: "echo", data: { overridden: true, got: 7 }, id: "e1" });
    await c.close();
  });

  it("a request whose handler sends nothing gets exactly one ack; without an id, nothing", async () => {
    const c = await connect(t.url);
    c.send({ type: "silent", id: "q1" });
    c.send({ type: "silent_async", id: "q2" });
    c.send({ type: "silent" });
    c.send({ type: "silent_async" });
    // The async ack may come after the fence's pong, so wait for it explicitly, then fence again.
    await c.next((m) => m.id === "q2");
    const rest = await drain(c);
    assert.deepEqual(rest, [{ type: "ack", id: "q1" }], "one ack for q1, nothing for the id-less messages");
    await c.close();
  });

  it("only the first of two replies is sent", async () => {
    const c = await connect(t.url);
    c.send({ type: "twice", id: "t1" });
    assert.deepEqual(await drain(c), [{ type: "first", id: "t1" }]);
    await c.close();
  });

  it("a thrown error or a rejected promise becomes handler_error without internals; the connection keeps working", async () => {
    const c = await connect(t.url);
    for (const type of ["throws", "rejects"]) {
      const id = `${type}-1`;
      c.send({ type, id });
      const reply = await c.next((m) => m.id === id);
      assert.equal(reply.type, "error");
      assert.equal(reply.data.code, "handler_error");
      assert.equal(typeof reply.data.message, "string");
      assert.doesNotMatch(reply.data.message, /secret|\bat\s+\S+\s+\(|\.ts:\d+|\n/, "no error text or stack trace");
      const rest = await drain(c);
      assert.deepEqual(
        rest.filter((m) => m.id === id),
        [],
        "no ack after the error",
      );
    }
    assert.deepEqual(await c.request("sync_hello", "still here", "after"), { type: "hello", data: { to: "still here" }, id: "after" });
    assert.equal(t.server.clientCount, 1);
    await c.close();
  });

  it("ConduitError sets the code and text the client sees", async () => {
    const c = await connect(t.url);
    assert.deepEqual(await c.request("forbidden", undefined, "f1"), {
      type: "error",
      data: { code: "forbidden", message: "log in first" },
      id: "f1",
    });
    assert.deepEqual(await c.request("forbidden_async", undefined, "f2"), {
      type: "error",
      data: { code: "quota_exceeded", message: "too many widgets" },
      id: "f2",
    });
    await c.close();
  });

  it("a handler slower than handlerTimeout gets handler_timeout, and nothing more when it finishes", async () => {
    const c = await connect(t.url);
    c.send({ type: "slow", id: "slow1" });
    const reply = await c.next((m) => m.id === "slow1");
    assert.equal(reply.type, "error");
    assert.equal(reply.data.code, "handler_timeout");
    assert.ok(releaseSlow, "the handler ran");
    releaseSlow();
    // The handler's late reply and the router's ack must both be suppressed (the handler resumes
    // before the server reads the fence).
    assert.deepEqual(await drain(c), []);
    await c.close();
  });

  it("zod: bad data is validation_failed naming the field; good data reaches the handler parsed", async () => {
    const c = await connect(t.url);
    const bad = await c.request("zod_post", { text: 5, count: 1 }, "z1");
    assert.equal(bad.type, "error");
    assert.equal(bad.data.code, "validation_failed");
    assert.match(bad.data.message, /data\.text/);
    const badCount = await c.request("zod_post", { text: "x", count: "abc" }, "z2");
    assert.equal(badCount.data.code, "validation_failed");
    assert.match(badCount.data.message, /data\.count/);
    assert.deepEqual(await c.request("zod_post", { text: "hi", count: "42" }, "z3"), {
      type: "zod_ok",
      data: { text: "HI", count: 42, countType: "number" },
      id: "z3",
    });
    await c.close();
  });

  it("valibot: bad data is validation_failed naming the field; good data reaches the handler parsed", async () => {
    const c = await connect(t.url);
    const bad = await c.request("valibot_post", { text: "abc", tags: ["ok", 3] }, "v1");
    assert.equal(bad.type, "error");
    assert.equal(bad.data.code, "validation_failed");
    assert.match(bad.data.message, /data\.tags\.1/);
    const missing = await c.request("valibot_post", { tags: [] }, "v2");
    assert.equal(missing.data.code, "validation_failed");
    assert.match(missing.data.message, /data\.text/);
    assert.deepEqual(await c.request("valibot_post", { text: "abcd", tags: ["x"] }, "v3"), {
      type: "valibot_ok",
      data: { length: 4, tags: ["x"] },
      id: "v3",
    });
    await c.close();
  });

  it("an unknown type is unknown_type with the request's id", async () => {
    const c = await connect(t.url);
    const reply = await c.request("no_such_type", { a: 1 }, "u1");
    assert.equal(reply.type, "error");
    assert.equal(reply.data.code, "unknown_type");
    assert.equal(reply.id, "u1");
    await c.close();
  });

  it("invalid JSON, a non-object, a missing or empty type each get an error; the connection keeps working", async () => {
    const c = await connect(t.url);
    const cases: Array<[string, string]> = [
      ["{not json", "invalid_json"],
      ["", "invalid_json"],
      ["[1,2,3]", "invalid_message"],
      ['"just a string"', "invalid_message"],
      ["42", "invalid_message"],
      ["null", "invalid_message"],
      ['{"data":1}', "invalid_message"],
      ['{"type":7}', "invalid_message"],
      ['{"type":""}', "invalid_message"],
      ['{"type":"echo","id":5}', "invalid_message"],
    ];
    for (const [text, code] of cases) {
      c.send(text);
      const reply = await c.next("error");
      assert.equal(reply.data.code, code, `for ${JSON.stringify(text)}`);
      assert.equal(typeof reply.data.message, "string");
    }
    // A readable id comes back even when the type is missing.
    c.send('{"id":"no-type"}');
    const reply = await c.next((m) => m.id === "no-type");
    assert.equal(reply.data.code, "invalid_message");
    assert.deepEqual(await c.request("sync_hello", 1, "ok"), { type: "hello", data: { to: 1 }, id: "ok" });
    assert.equal(t.server.clientCount, 1);
    await c.close();
  });

  it("a binary frame gets binary_not_supported and the connection stays", async () => {
    const c = await connect(t.url);
    c.ws.send(Buffer.from([1, 2, 3]));
    const reply = await c.next("error");
    assert.equal(reply.data.code, "binary_not_supported");
    await fence(c);
    await c.close();
  });
});

describe("router: binary handler", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, (server) => {
      server.registerBinaryHandler((ctx, client, data) => {
        ctx.reply("binary_received", { bytes: data.length, first: data[0] });
        client.send(
          "sum",
          data.reduce((a, b) => a + b, 0),
        );
      });
    });
  });
  after(() => t.close());

  it("registerBinaryHandler receives binary frames", async () => {
    const c = await connect(t.url);
    c.ws.send(Buffer.from([5, 6, 7]));
    assert.deepEqual(await c.next(), { type: "binary_received", data: { bytes: 3, first: 5 } });
    assert.deepEqual(await c.next(), { type: "sum", data: 18 });
    await c.close();
  });
});

describe("router: a reply and the handler's other sends keep their order", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, (server) => {
      // Sends before the reply wait for the end of the callback; the reply must not overtake them.
      server.registerHandler("send_then_reply", (ctx, client) => {
        client.send("note", 1);
        client.send("note", 2);
        ctx.reply("done");
      });
      // The reply is written at once; what the handler sends after it follows it.
      server.registerHandler("reply_then_send", (ctx, client) => {
        ctx.reply("done");
        client.send("note", 3);
        client.send("note", 4);
      });
      server.registerHandler("reply_then_fail", (ctx) => {
        ctx.reply("done");
        throw new Error("after the reply");
      });
    });
  });
  after(() => t.close());

  it("delivers every message in the order the handler produced it", async () => {
    const client = await connect(t.url);
    const order = (): string[] => client.received.map((m) => `${m.type}${m.data === undefined ? "" : `:${JSON.stringify(m.data)}`}`);
    client.send({ type: "send_then_reply", id: "a" });
    client.send({ type: "reply_then_send", id: "b" });
    // `next` takes the last message out of `received`: everything before it is still there, in order.
    await client.next((m) => m.type === "note" && m.data === 4);
    assert.deepEqual(order(), ["note:1", "note:2", "done", "done", "note:3"]);
    // A request that already had its reply gets no second one, even when its handler then throws.
    assert.equal((await client.request("reply_then_fail")).type, "done");
    assert.equal((await client.request("echo", "after")).type, "echo");
    assert.equal(client.received.filter((m) => m.type === "error").length, 0);
    await client.close();
  });
});
