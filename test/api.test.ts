/**
 * The server API over real HTTP: the standalone server's routes (`serve()` in this process, with the
 * flags parsed as the CLI parses them), every refusal, its own listener, and the library's
 * createApiHandler on an HTTP server of the application's.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { createApiHandler } from "../src/api/index.js";
import { ConfigError, describeConfig, parseConfig, usage, type CliConfig } from "../src/cli/config.js";
import { serve, type RunningServer } from "../src/cli/serve.js";
import { silentLogger } from "../src/logger.js";
import { createServer } from "../src/server.js";
import { connect, type TestClient } from "./helpers/client.js";

const KEY = "test-api-key-0123456789abcdef";
const SECRET = "a-jwt-secret-of-at-least-32-bytes-for-tests";

/** An HTTP answer with its JSON body parsed (when it is JSON). */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** One request with full control of the headers and the body (a Buffer is sent as is). */
function call(
  base: string,
  method: string,
  path: string,
  options: { key?: string | null; body?: unknown; headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== null) headers.Authorization = `Bearer ${options.key ?? KEY}`;
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    payload = Buffer.isBuffer(options.body) ? options.body : Buffer.from(JSON.stringify(options.body));
    headers["Content-Type"] ??= "application/json";
    if (!options.chunked) headers["Content-Length"] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON: kept as text.
        }
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
    });
    // A refused upload may see its socket closed while still writing: the answer is what counts.
    req.on("error", (error: NodeJS.ErrnoException) => (error.code === "EPIPE" || error.code === "ECONNRESET" ? undefined : reject(error)));
    if (payload === undefined) return void req.end();
    if (options.chunked) {
      // Written in pieces without Content-Length, so the limit must be found while reading.
      for (let offset = 0; offset < payload.length; offset += 64 * 1024) req.write(payload.subarray(offset, offset + 64 * 1024));
      req.end();
    } else {
      req.end(payload);
    }
  });
}

function runConfig(args: string[], env: Record<string, string> = {}): CliConfig {
  const outcome = parseConfig(["--port", "0", "--host", "127.0.0.1", ...args], env);
  assert.equal(outcome.kind, "run");
  return (outcome as { config: CliConfig }).config;
}

function httpBase(running: RunningServer): string {
  return running.url.replace(/^ws:/, "http:").replace(/\/ws$/, "");
}

function token(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).sign(new TextEncoder().encode(SECRET));
}

describe("server API: off without --api-key", () => {
  it("answers 404 for every /api/ route, key or not", async () => {
    const running = await serve(runConfig([]), silentLogger);
    try {
      const base = httpBase(running);
      assert.equal((await call(base, "GET", "/api/info")).status, 404);
      assert.equal((await call(base, "POST", "/api/publish", { body: { room: "a", type: "t" } })).status, 404);
      assert.equal((await call(base, "GET", "/api/info", { key: null })).status, 404);
    } finally {
      await running.stop();
    }
  });
});

describe("server API on the public listener", () => {
  let running: RunningServer;
  let base: string;
  let dir: string;
  const clients: TestClient[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "conduit-api-"));
    const file = join(dir, "conduit.json");
    await writeFile(file, JSON.stringify({ namespaces: { "": { join: "anyone" }, news: { join: "anyone", publish: "server" } } }));
    running = await serve(runConfig(["--api-key", KEY, "--jwt-secret", SECRET, "--config", file]), silentLogger);
    base = httpBase(running);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await running.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(userId: string): Promise<TestClient> {
    const client = await connect(`${running.url}?token=${await token(userId)}`);
    clients.push(client);
    return client;
  }

  it("refuses a missing key, a wrong key and another scheme with 401 and an error body", async () => {
    for (const options of [{ key: null }, { key: "wrong-key-0123456789abcdef" }, { key: `${KEY}x` }, { key: "" }]) {
      const answer = await call(base, "GET", "/api/info", options);
      assert.equal(answer.status, 401, JSON.stringify(options));
      assert.equal(answer.body.error.code, "unauthorized");
      assert.equal(answer.headers["www-authenticate"], 'Bearer realm="conduit-ws"');
    }
    const basic = await call(base, "GET", "/api/info", { key: null, headers: { Authorization: `Basic ${KEY}` } });
    assert.equal(basic.status, 401);
    // Unknown routes are not revealed to a caller without the key.
    assert.equal((await call(base, "GET", "/api/nothing", { key: null })).status, 401);
  });

  it("POST /api/publish reaches the room's members as {type, data}, and no one else", async () => {
    const [member, outsider] = [await open("m1"), await open("o1")];
    await member.request("join_room", { room: "news:sport" });
    const answer = await call(base, "POST", "/api/publish", { body: { room: "news:sport", type: "headline", data: { text: "2-1" } } });
    assert.deepEqual([answer.status, answer.body], [200, {}]);
    assert.deepEqual(await member.next("headline"), { type: "headline", data: { text: "2-1" } });
    await call(base, "POST", "/api/broadcast", { body: { type: "marker-p" } });
    await outsider.next("marker-p");
    assert.equal(outsider.received.filter((m) => m.type === "headline").length, 0);
  });

  it("a namespace with publish: server refuses its members' broadcast but takes the API's publish", async () => {
    const member = await open("m2");
    await member.request("join_room", { room: "news:local" });
    const refused = await member.request("broadcast", { room: "news:local", type: "x", payload: 1 });
    assert.equal(refused.data.code, "forbidden");
    assert.equal((await call(base, "POST", "/api/publish", { body: { room: "news:local", type: "x", data: 2 } })).status, 200);
    assert.deepEqual(await member.next("x"), { type: "x", data: 2 });
  });

  it("POST /api/publish to a namespace the configuration does not list is 400 forbidden", async () => {
    const answer = await call(base, "POST", "/api/publish", { body: { room: "nowhere:1", type: "t", data: 1 } });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, "forbidden");
  });

  it("POST /api/broadcast reaches every client; data defaults to null", async () => {
    const group = [await open("b1"), await open("b2")];
    assert.deepEqual((await call(base, "POST", "/api/broadcast", { body: { type: "all-hands" } })).body, {});
    for (const client of group) assert.deepEqual(await client.next("all-hands"), { type: "all-hands", data: null });
  });

  it("POST /api/send reaches every connection of a user, or one client", async () => {
    const [first, second, other] = [await open("sam"), await open("sam"), await open("pat")];
    assert.equal((await call(base, "POST", "/api/send", { body: { user_id: "sam", type: "dm", data: "hi" } })).status, 200);
    for (const client of [first, second]) assert.deepEqual(await client.next("dm"), { type: "dm", data: "hi" });
    const { data } = await other.request("status");
    assert.equal((await call(base, "POST", "/api/send", { body: { client_id: data.client_id, type: "one", data: 1 } })).status, 200);
    assert.deepEqual(await other.next("one"), { type: "one", data: 1 });
    await call(base, "POST", "/api/send", { body: { user_id: "sam", type: "marker-s" } });
    await first.next("marker-s");
    assert.equal(first.received.filter((m) => m.type === "one").length, 0);
  });

  it("POST /api/disconnect closes a user's connections with 4003 disconnected, or one client with the code given", async () => {
    const [first, second, bystander] = [await open("kim"), await open("kim"), await open("lee")];
    assert.equal((await call(base, "POST", "/api/disconnect", { body: { user_id: "kim" } })).status, 200);
    for (const client of [first, second]) assert.deepEqual(await client.closed, { code: 4003, reason: "disconnected" });
    const { data } = await bystander.request("status");
    const answer = await call(base, "POST", "/api/disconnect", { body: { client_id: data.client_id, code: 4000, reason: "bye" } });
    assert.equal(answer.status, 200);
    assert.deepEqual(await bystander.closed, { code: 4000, reason: "bye" });
  });

  it("GET /api/rooms/ROOM/presence lists the members of a URL-encoded room", async () => {
    const [a, b] = [await open("ann"), await open("ben")];
    for (const client of [a, b]) await client.request("join_room", { room: "lobby/b c" });
    const answer = await call(base, "GET", `/api/rooms/${encodeURIComponent("lobby/b c")}/presence`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.room, "lobby/b c");
    assert.equal(answer.body.count, 2);
    assert.deepEqual(answer.body.members.map((m: { user_id: string }) => m.user_id).sort(), ["ann", "ben"]);
    for (const member of answer.body.members) assert.deepEqual(Object.keys(member).sort(), ["client_id", "user_id"]);
  });

  it("GET /api/rooms/ROOM/history is 501 history_not_enabled while history is off", async () => {
    const answer = await call(base, "GET", "/api/rooms/news%3Asport/history?limit=5");
    assert.equal(answer.status, 501);
    assert.equal(answer.body.error.code, "history_not_enabled");
  });

  it("GET /api/info counts this node's connections", async () => {
    const answer = await call(base, "GET", "/api/info");
    assert.equal(answer.status, 200);
    assert.equal(answer.body.nodes.length, 1);
    assert.equal(answer.body.connections, answer.body.nodes[0].connections);
    assert.equal(answer.body.connections, clients.filter((c) => c.ws.readyState === c.ws.OPEN).length);
  });

  it("refuses a body over 1 MiB with 413, announced or not, and closes the connection", async () => {
    const big = Buffer.from(JSON.stringify({ room: "r", type: "t", data: "x".repeat(1024 * 1024) }));
    const announced = await call(base, "POST", "/api/publish", { body: big });
    assert.equal(announced.status, 413);
    assert.equal(announced.body.error.code, "payload_too_large");
    assert.equal(announced.headers.connection, "close");
    const streamed = await call(base, "POST", "/api/publish", { body: big, chunked: true });
    assert.equal(streamed.status, 413);
    // The server still serves.
    assert.equal((await call(base, "GET", "/api/info")).status, 200);
  });

  it("refuses a body that is not JSON with 415", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      const answer = await call(base, "POST", "/api/broadcast", { body: Buffer.from('{"type":"t"}'), headers: { "Content-Type": type } });
      assert.equal(answer.status, 415, type);
      assert.equal(answer.body.error.code, "unsupported_media_type");
    }
    const charset = await call(base, "POST", "/api/broadcast", {
      body: Buffer.from('{"type":"t"}'),
      headers: { "Content-Type": "application/json; charset=utf-8" },
    });
    assert.equal(charset.status, 200);
  });

  it("refuses bad JSON and bad fields with 400 naming the field", async () => {
    const cases: Array<[string, unknown, string, RegExp]> = [
      ["/api/publish", Buffer.from("{not json"), "invalid_json", /JSON/],
      ["/api/publish", [1, 2], "invalid_json", /object/],
      ["/api/publish", { type: "t" }, "invalid_room", /"room"/],
      ["/api/publish", { room: "r", type: "" }, "invalid_field", /"type"/],
      ["/api/publish", { room: "r", type: 5 }, "invalid_field", /"type"/],
      ["/api/broadcast", {}, "invalid_field", /"type"/],
      ["/api/send", { type: "t" }, "invalid_field", /"user_id" and "client_id"/],
      ["/api/send", { user_id: "u", client_id: "c", type: "t" }, "invalid_field", /"user_id" and "client_id"/],
      ["/api/send", { user_id: 7, type: "t" }, "invalid_field", /"user_id"/],
      ["/api/send", { client_id: "", type: "t" }, "invalid_field", /"client_id"/],
      ["/api/disconnect", { user_id: "u", code: 1001 }, "invalid_field", /"code"/],
      ["/api/disconnect", { user_id: "u", code: "4003" }, "invalid_field", /"code"/],
      ["/api/disconnect", { user_id: "u", reason: "r".repeat(124) }, "invalid_field", /"reason"/],
    ];
    for (const [path, body, code, message] of cases) {
      const answer = await call(base, "POST", path, { body });
      assert.equal(answer.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(answer.body.error.code, code, `${path} ${JSON.stringify(body)}`);
      assert.match(answer.body.error.message, message);
    }
    assert.equal((await call(base, "GET", "/api/rooms/%E0%A4%A/presence")).status, 400);
  });

  it("refuses reserved types with 400 reserved_type", async () => {
    for (const [path, body] of [
      ["/api/publish", { room: "r", type: "error" }],
      ["/api/broadcast", { type: "member_joined" }],
      ["/api/send", { user_id: "u", type: "pong" }],
    ] as const) {
      const answer = await call(base, "POST", path, { body });
      assert.equal(answer.status, 400, path);
      assert.equal(answer.body.error.code, "reserved_type");
    }
  });

  it("answers 404 for an unknown route and 405 for a known one with another method", async () => {
    const unknown = await call(base, "GET", "/api/nothing");
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, "not_found"]);
    const wrong = await call(base, "GET", "/api/publish");
    assert.deepEqual([wrong.status, wrong.body.error.code], [405, "method_not_allowed"]);
    assert.equal((await call(base, "POST", "/api/info", { body: {} })).status, 405);
  });
});

describe("server API on its own listener (--api-port)", () => {
  it("serves /api/ there only; the public port answers 404 for it", async () => {
    const running = await serve(runConfig(["--api-key", KEY, "--api-port", "0"]), silentLogger);
    try {
      assert.ok(running.apiUrl);
      const answer = await call(running.apiUrl, "GET", "/api/info");
      assert.equal(answer.status, 200);
      assert.equal(answer.body.nodes.length, 1);
      assert.equal((await call(httpBase(running), "GET", "/api/info")).status, 404);
      assert.equal((await call(running.apiUrl, "GET", "/healthz")).status, 404);
      assert.equal((await call(running.apiUrl, "GET", "/api/info", { key: null })).status, 401);
    } finally {
      await running.stop();
    }
  });
});

describe("server API: the key never reaches the log", () => {
  it("logs neither the right key nor a wrong one, at debug level, in requests, refusals and the configuration", async () => {
    const lines: string[] = [];
    const record = (fields: Record<string, unknown>, message: string): void => void lines.push(JSON.stringify({ ...fields, message }));
    const logger = { debug: record, info: record, warn: record, error: record };
    const wrong = "wrong-key-7f3a9c0d1e2b4a5f";
    const config = runConfig(["--api-key", KEY]);
    logger.info({ config: describeConfig(config) }, "listening");
    const running = await serve(config, logger);
    try {
      const base = httpBase(running);
      await call(base, "GET", "/api/info");
      await call(base, "GET", `/api/info?key=${wrong}`, { key: wrong });
      await call(base, "POST", "/api/publish", { body: { room: "r", type: "t" } });
      await call(base, "POST", "/api/publish", { body: Buffer.from("{"), key: wrong });
    } finally {
      await running.stop();
    }
    assert.ok(
      lines.some((line) => line.includes("/api/info")),
      "requests are logged",
    );
    for (const line of lines) {
      assert.ok(!line.includes(KEY) && !line.includes(wrong), line);
    }
  });
});

describe("server API configuration", () => {
  it("takes the key from CONDUIT_API_KEY and never shows it in the logged configuration", () => {
    const config = runConfig([], { CONDUIT_API_KEY: KEY });
    assert.equal(config.apiKey, KEY);
    const described = JSON.stringify(describeConfig(config));
    assert.ok(!described.includes(KEY));
    assert.equal(describeConfig(config).api, "on");
    assert.equal(describeConfig(runConfig([])).api, "off");
    assert.match(usage(), /--api-key KEY .*\[env CONDUIT_API_KEY\] \(default none\)/);
    assert.match(usage(), /--api-port N .*\[env CONDUIT_API_PORT\]/);
    assert.match(usage(), /--api-host ADDR .*\[env CONDUIT_API_HOST\] \(default 127\.0\.0\.1\)/);
  });

  it("refuses a short, blank or spaced key and --api-port/--api-host without what they need, without echoing the key", () => {
    for (const [args, pattern] of [
      [["--api-key", "short"], /--api-key is 5 bytes/],
      [["--api-key", " "], /--api-key is empty/],
      [["--api-key", "with a space in the middle!"], /not one word/],
      [["--api-port", "9999"], /--api-port needs --api-key/],
      [["--api-key", KEY, "--api-host", "127.0.0.1"], /--api-host needs --api-port/],
      [["--api-key", KEY, "--port", "9000", "--api-port", "9000"], /public --port/],
    ] as const) {
      assert.throws(
        () => parseConfig([...args], {}),
        (error: unknown) => error instanceof ConfigError && pattern.test(error.message) && !error.message.includes(KEY),
        args.join(" "),
      );
    }
  });
});

describe("server API in the library (createApiHandler)", () => {
  let httpServer: Server;
  let base: string;

  before(async () => {
    const server = createServer();
    const api = createApiHandler(server, { apiKey: KEY });
    httpServer = createHttpServer((req, res) => {
      if (!api(req, res)) res.writeHead(404).end();
    });
    server.attach(httpServer);
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    (httpServer as Server & { conduit?: typeof server }).conduit = server;
  });

  after(() => new Promise<void>((resolve) => httpServer.close(() => resolve())));

  it("leaves other paths to the application and needs a key", async () => {
    assert.equal((await call(base, "GET", "/elsewhere")).status, 404);
    assert.throws(() => createApiHandler(createServer(), { apiKey: "" }), TypeError);
  });

  it("answers 503 unavailable while the server drains", async () => {
    const server = (httpServer as Server & { conduit?: ReturnType<typeof createServer> }).conduit!;
    assert.equal((await call(base, "POST", "/api/broadcast", { body: { type: "t" } })).status, 200);
    await server.shutdown();
    for (const [method, path, body] of [
      ["POST", "/api/broadcast", { type: "t" }],
      ["GET", "/api/info", undefined],
    ] as const) {
      const answer = await call(base, method, path, { body });
      assert.equal(answer.status, 503, path);
      assert.equal(answer.body.error.code, "unavailable");
    }
  });
});
