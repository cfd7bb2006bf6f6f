/**
 * Reliability, safety: parsed messages cannot pollute prototypes, nothing a client sends is
 * evaluated, tokens never reach a log line (checked on the output of a real pino logger), and errors
 * never carry stack traces to clients (they go to the log instead).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { connect, refusedStatus } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { drain, within } from "./helpers/wire.js";

/** A careless deep merge, as found in many applications: the way prototype pollution usually happens. */
function naiveMerge(target: Record<string, any>, source: unknown): Record<string, any> {
  if (typeof source !== "object" || source === null) return target;
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === "object" && value !== null) {
      if (typeof target[key] !== "object" || target[key] === null) target[key] = {};
      naiveMerge(target[key], value);
    } else {
      target[key] = value;
    }
  }
  return target;
}

/** A pino logger at the most verbose level whose JSON lines land in an array. */
function capturingPino(): { logger: ReturnType<typeof pino>; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      callback();
    },
  });
  return { logger: pino({ level: "trace" }, stream), lines };
}

describe("safety: prototype pollution", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, (server) => {
      server.registerHandler("merge", (ctx, _client, message) => {
        const merged = naiveMerge({}, message.data);
        ctx.reply("merged", { keys: Object.keys(merged), polluted: ({} as Record<string, unknown>).polluted ?? null });
      });
    });
  });
  after(() => {
    delete (Object.prototype as Record<string, unknown>).polluted;
    return t.close();
  });

  it("__proto__, constructor and prototype keys, plain or \\u-escaped, never reach a handler", async () => {
    const c = await connect(t.url);
    const attacks = [
      '{"__proto__":{"polluted":"yes"}}',
      '{"constructor":{"prototype":{"polluted":"yes"}}}',
      '{"a":{"b":{"__proto__":{"polluted":"yes"}}}}',
      // The same keys written with JSON escapes: JSON.parse turns them into the same property names.
      '{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"}}',
      '{"\\u0063onstructor":{"prot\\u006ftype":{"polluted":"yes"}}}',
      '[{"__proto__":{"polluted":"yes"}}]',
    ];
    for (const [i, data] of attacks.entries()) {
      c.send(`{"type":"merge","id":"m${i}","data":${data}}`);
      const reply = await c.next((m) => m.id === `m${i}`);
      assert.equal(reply.type, "merged", data);
      assert.equal(reply.data.polluted, null, `no pollution from ${data}`);
      assert.ok(!reply.data.keys.some((key: string) => ["__proto__", "constructor", "prototype"].includes(key)), data);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype is clean");

    // Top-level keys and the echo built-in: the dangerous keys are gone, the rest is intact.
    c.send('{"type":"echo","id":"e1","__proto__":{"type":"admin"},"data":{"ok":1,"__proto__":{"x":1},"constructor":2}}');
    assert.deepEqual(await c.next((m) => m.id === "e1"), { type: "echo", data: { original: { ok: 1 } }, id: "e1" });
    await c.close();
  });

  it("message types are looked up as own keys only: Object.prototype names are unknown types", async () => {
    const c = await connect(t.url);
    for (const type of ["__proto__", "constructor", "toString", "valueOf", "hasOwnProperty", "__defineGetter__"]) {
      const reply = await c.request(type, undefined, `t-${type}`);
      assert.equal(reply.data.code, "unknown_type", type);
    }
    await c.close();
  });

  it("nothing is evaluated: code in data comes back as text", async () => {
    const c = await connect(t.url);
    const payloads = [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as a plain string
      "${process.exit(1)}",
      "`process.exit(1)`",
      "(() => { throw 1 })()",
      "require('child_process')",
      { $where: "sleep(1)" },
    ];
    for (const payload of payloads) {
      assert.deepEqual((await c.request("echo", payload, "x")).data, { original: payload });
    }
    assert.equal((await c.request("process.exit", undefined, "y")).data.code, "unknown_type");
    await c.close();
  });

  it("the library contains no eval, new Function or vm", () => {
    const root = fileURLToPath(new URL("../src/", import.meta.url));
    const files = readdirSync(root, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"));
    assert.ok(files.length > 10);
    for (const file of files) {
      const source = readFileSync(join(root, file), "utf8");
      assert.doesNotMatch(source, /\beval\s*\(|new\s+Function\s*\(|from\s+"(node:)?vm"/, file);
    }
  });
});

describe("safety: tokens never reach the log", () => {
  const { logger, lines } = capturingPino();
  let t: TestServer;
  const ACCEPTED = "tok-accept-5f1c9e";
  const HEADER = "tok-header-77ab02";
  const REFUSED = "tok-refuse-3d8e41";
  const THROWN = "tok-thrown-c0ffee";
  const REJECTED = "tok-reject-9b9b9b";
  before(async () => {
    t = await startServer({ logger, allowedOrigins: ["https://app.example"], maxConnections: 3 }, (server) => {
      server.setAuthHandler(async (_ctx, token) => {
        if (token === ACCEPTED || token === HEADER) return { userId: "u1", metadata: { plan: "pro" } };
        // Careless handlers put the token in their errors; the server must still not log it.
        if (token === THROWN) throw new Error(`session ${token} not found`);
        if (token === REJECTED) return Promise.reject(new Error(`revoked: ${token}`));
        return null;
      });
      server.registerHandler("fail", () => {
        throw new Error("handler blew up");
      });
    });
  });
  after(() => t.close());

  it("accepted, refused, thrown and rejected tokens, by query or header, appear in no log line", async () => {
    const a = await connect(`${t.url}?token=${ACCEPTED}&x=1`);
    const b = await connect(t.url, { headers: { Authorization: `Bearer ${HEADER}` } });
    assert.equal((await a.request("status")).data.user_id, "u1");
    await a.request("fail");
    for (const token of [REFUSED, THROWN, REJECTED]) assert.equal(await refusedStatus(`${t.url}?token=${token}`), 401);
    assert.equal(await refusedStatus(t.url, { headers: { Authorization: `Bearer ${THROWN}` } }), 401);
    assert.equal(await refusedStatus(`${t.url}?token=${ACCEPTED}`, { origin: "https://evil.example" }), 403);
    const c = await connect(`${t.url}?token=${ACCEPTED}`);
    assert.equal(await refusedStatus(`${t.url}?token=${ACCEPTED}`), 503, "at maxConnections");
    for (const client of [a, b, c]) await client.close();

    const text = lines.join("\n");
    assert.ok(lines.length >= 8, `the server logged (${lines.length} lines)`);
    assert.match(text, /client connected/);
    assert.match(text, /token rejected/);
    for (const token of [ACCEPTED, HEADER, REFUSED, THROWN, REJECTED]) {
      assert.ok(!text.includes(token), `token ${token} leaked into the log:\n${text}`);
    }
  });

  it("a handler's error reaches the log with its stack, and the client without it", async () => {
    const c = await connect(`${t.url}?token=${ACCEPTED}`);
    lines.length = 0;
    const reply = await c.request("fail", undefined, "f1");
    assert.deepEqual(reply.data.code, "handler_error");
    assert.doesNotMatch(JSON.stringify(reply), /blew up|\bat\s|\.ts:\d|stack/);
    assert.match(lines.join("\n"), /handler blew up[\s\S]*reliability-safety\.test\.ts/, "the stack is in the log");
    await c.close();
  });
});

describe("safety: internal failures", () => {
  let t: TestServer;
  const { logger, lines } = capturingPino();
  before(async () => {
    t = await startServer(
      {
        logger,
        instrumentation: {
          // A metrics hook that fails on one message type: a bug inside the server's own ingest path.
          messageIn(type) {
            if (type === "explode") throw new Error("metrics backend at 10.0.0.7 is down");
          },
        },
      },
      (server) => server.registerHandler("explode", () => {}),
    );
  });
  after(() => t.close());

  it("a failure inside the server closes that client with 1011, no internals in the reason; the rest is served", async () => {
    const bystander = await connect(t.url);
    const c = await connect(t.url);
    c.send({ type: "explode" });
    const closed = await within(c.closed, 10_000, "the close");
    assert.equal(closed.code, 1011);
    assert.doesNotMatch(closed.reason, /10\.0\.0\.7|metrics|\bat\s/);
    assert.match(lines.join("\n"), /metrics backend at 10\.0\.0\.7 is down/, "the cause is logged");
    assert.deepEqual(await drain(bystander), []);
    assert.equal((await bystander.request("echo", 1)).type, "echo");
    assert.equal(t.server.clientCount, 1);
    await bystander.close();
  });
});
