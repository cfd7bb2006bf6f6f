/**
 * Reliability, fuzzing: property-based tests with fast-check over the parser and the
 * router. Arbitrary JSON values, strings and bytes never throw out of the parser or the hub; every
 * input sent to a real server gets a valid reply or an error, or a documented close (1007 for text
 * that is not UTF-8); and whatever handlers do (reply, throw, reject, hang, reply twice, reply with
 * something unserialisable), every request gets exactly one reply.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ErrorCode } from "../src/index.js";
import { parseMessage } from "../src/protocol/message.js";
import { connect, type TestClient, type WireMessage } from "./helpers/client.js";
import { encodeFrame, Opcode, RawWebSocket } from "./helpers/raw-socket.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain } from "./helpers/wire.js";

const DANGEROUS = new Set(["__proto__", "constructor", "prototype"]);

/** Whether `value` holds a dangerous own key at any depth. */
function hasDangerousKey(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  for (const key of Object.keys(value)) {
    if (DANGEROUS.has(key) || hasDangerousKey((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/** A valid envelope as the server sends it. */
function isEnvelope(message: unknown): boolean {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return false;
  const { type, id } = message as { type?: unknown; id?: unknown };
  return typeof type === "string" && type.length > 0 && (id === undefined || typeof id === "string");
}

/** JSON values, with the keys an attacker would pick mixed into the objects. */
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "prototype", "type", "id", "data")), tie("value"), {
      maxKeys: 5,
    }),
  ),
})).value;

/** Envelopes aimed at the built-ins and at unknown types, with arbitrary data and ids. */
const envelope = fc.record(
  {
    type: fc.oneof(fc.constantFrom("ping", "echo", "join_room", "leave_room", "broadcast", "status", "presence"), fc.string()),
    data: hostileJson,
    id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
  },
  { requiredKeys: ["type"] },
);

describe("fuzz: the parser", () => {
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();

  it("never throws on arbitrary JSON values; accepts exactly the valid envelopes; strips dangerous keys", () => {
    fc.assert(
      fc.property(fc.oneof(hostileJson, envelope), (value) => {
        const result = parseMessage(JSON.stringify(value) ?? "null");
        const candidate = value as { type?: unknown; id?: unknown } | null;
        const valid =
          typeof candidate === "object" &&
          candidate !== null &&
          !Array.isArray(candidate) &&
          typeof candidate.type === "string" &&
          candidate.type.length > 0 &&
          (candidate.id === undefined || typeof candidate.id === "string");
        assert.equal(result.ok, valid);
        if (result.ok) {
          assert.equal(result.message.type, candidate!.type);
          assert.ok(!hasDangerousKey(result.message.data));
        } else {
          assert.ok(result.code === ErrorCode.InvalidJson || result.code === ErrorCode.InvalidMessage);
        }
      }),
      { numRuns: 2000 },
    );
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys, "Object.prototype untouched");
  });

  it("strips dangerous keys however they are spelled: letters inside strings randomly written as \\u escapes", () => {
    fc.assert(
      fc.property(hostileJson, fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }), (value, coins) => {
        let flip = 0;
        const escapeSome = (literal: string): string =>
          literal.replace(/[a-z_]/g, (ch) => (coins[flip++ % coins.length] ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}` : ch));
        const text = `{"type":"t","data":${JSON.stringify(value).replace(/"(?:[^"\\]|\\.)*"/g, escapeSome)}}`;
        const result = parseMessage(text);
        assert.ok(result.ok, text);
        assert.ok(!hasDangerousKey(result.message.data), text);
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on arbitrary strings and bytes", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 200 }),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString()),
        ),
        (text) => {
          const result = parseMessage(text);
          if (!result.ok) assert.ok(result.code === ErrorCode.InvalidJson || result.code === ErrorCode.InvalidMessage);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("fuzz: the hub and router over a real connection", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ rateLimit: false });
  });
  after(() => t.close());

  let sentinels = 0;
  /** Sends a ping with a fresh id and returns everything received before its pong. */
  async function repliesBefore(client: TestClient): Promise<WireMessage[]> {
    const id = `sentinel-${++sentinels}`;
    client.send({ type: "ping", id });
    await client.next((m) => m.id === id && m.type === "pong");
    return client.received.splice(0);
  }

  it("arbitrary JSON values and envelopes: each gets at least one valid message back, the connection stays", async () => {
    const c = await connect(t.url);
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileJson, envelope), async (value) => {
        c.send(JSON.stringify(value) ?? "null");
        const replies = await repliesBefore(c);
        assert.ok(replies.length >= 1, `no reply to ${JSON.stringify(value)}`);
        for (const reply of replies) assert.ok(isEnvelope(reply), JSON.stringify(reply));
      }),
      { numRuns: 400 },
    );
    assert.equal(c.ws.readyState, c.ws.OPEN);
    await c.close();
  });

  it("arbitrary bytes as text or binary frames: an error reply, or close 1007 when the text is not UTF-8", async () => {
    let peer = await RawWebSocket.connect(t.port);
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (bytes, binary) => {
        const id = `s${++seq}`;
        const before = peer.frames.length;
        peer.write(encodeFrame({ opcode: binary ? Opcode.Binary : Opcode.Text, payload: Buffer.from(bytes) }));
        peer.sendText({ type: "ping", id });
        await peer.until(
          (frames) => frames.some((f) => f.opcode === Opcode.Close) || peer.messages().some((m) => m.id === id),
          "the sentinel or a close",
        );
        const answer = peer.frames.slice(before);
        const close = answer.find((f) => f.opcode === Opcode.Close);
        if (close !== undefined) {
          assert.ok(!binary, "only text frames are closed");
          assert.equal(close.payload.readUInt16BE(0), 1007);
          assert.ok(!isWellFormedUtf8(Buffer.from(bytes)), "closed only for invalid UTF-8");
          peer.destroy();
          peer = await RawWebSocket.connect(t.port);
          return;
        }
        const texts = answer.filter((f) => f.opcode === Opcode.Text).map((f) => JSON.parse(f.payload.toString()));
        assert.ok(texts.length >= 2, "a reply to the frame, then the sentinel's pong");
        for (const message of texts) assert.ok(isEnvelope(message));
      }),
      { numRuns: 400 },
    );
    peer.destroy();
    assert.equal((await (await connect(t.url)).request("echo", "alive")).type, "echo");
  });
});

/** Strict UTF-8 validity, as RFC 6455 requires of text frames. */
function isWellFormedUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

describe("fuzz: whatever handlers do, every request gets exactly one reply", () => {
  const behaviours = [
    "reply",
    "reply_twice",
    "reply_error",
    "nothing",
    "throw",
    "reject",
    "hang",
    "unserialisable",
    "late_reply",
    "async_nothing",
  ] as const;
  type Behaviour = (typeof behaviours)[number];
  let t: TestServer;
  before(async () => {
    t = await startServer({ handlerTimeout: 50, rateLimit: false }, (server) => {
      server.registerHandler<Behaviour>("act", async (ctx, _client, message) => {
        switch (message.data) {
          case "reply":
            return ctx.reply("done");
          case "reply_twice":
            ctx.reply("done");
            return ctx.reply("again");
          case "reply_error":
            return ctx.replyError("custom", "no");
          case "nothing":
            return;
          case "throw":
            throw new Error("boom");
          case "reject":
            return Promise.reject(new Error("boom"));
          case "hang":
            return new Promise<void>(() => {});
          case "unserialisable":
            return ctx.reply("bad", { n: 1n });
          case "late_reply":
            await new Promise((resolve) => setImmediate(resolve));
            return ctx.reply("late");
          case "async_nothing":
            await Promise.resolve();
        }
      });
    });
  });
  after(() => t.close());

  it("sequences of handler behaviours sent at once: one reply per id", async () => {
    const c = await connect(t.url);
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...behaviours), { minLength: 1, maxLength: 12 }), async (acts) => {
        const ids = acts.map((act) => {
          const id = `a${++seq}`;
          c.send({ type: "act", data: act, id });
          return id;
        });
        for (const id of ids) await c.next((m) => m.id === id, 10_000);
        const extra = (await drain(c)).filter((m) => ids.includes(m.id ?? ""));
        assert.deepEqual(extra, [], `a second reply for ${JSON.stringify(acts)}`);
      }),
      { numRuns: 60 },
    );
    await c.close();
  });
});
