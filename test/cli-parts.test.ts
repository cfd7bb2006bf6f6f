/**
 * The standalone server's parts in-process: flag/env parsing and its mapping onto ServerOptions, the
 * logger's redaction, the HTTP routes (SDK files, path traversal, demo fallback, draining, /config), the
 * metrics' label cap. The end-to-end behaviour is in cli.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { Agent, createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { ConfigError, MIN_JWT_SECRET_BYTES, parseConfig, toServerOptions, usage, type CliConfig } from "../src/cli/config.js";
import { createRequestListener } from "../src/cli/http.js";
import { createLogger } from "../src/cli/logger.js";
import { MAX_LABEL_LENGTH, ServerMetrics } from "../src/cli/metrics.js";
import { listenMetrics } from "../src/cli/metrics-server.js";
import { defaultOptions, resolveOptions, type RateLimitOptions } from "../src/options.js";
import { silentLogger } from "../src/logger.js";

function config(argv: string[], env: Record<string, string> = {}): CliConfig {
  const outcome = parseConfig(argv, env);
  assert.equal(outcome.kind, "run");
  return (outcome as { config: CliConfig }).config;
}

function refusal(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(argv, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  throw new Error(`accepted ${argv.join(" ")} ${JSON.stringify(env)}`);
}

describe("flags and environment (SPEC §6)", () => {
  it("defaults are the documented ones and map onto the library's defaults", () => {
    const c = config([]);
    assert.deepEqual(
      { port: c.port, host: c.host, path: c.path, workers: c.workers, rateLimit: c.rateLimit, logLevel: c.logLevel },
      { port: 8080, host: "0.0.0.0", path: "/ws", workers: 1, rateLimit: 100, logLevel: "info" },
    );
    assert.equal(c.jwtSecret, undefined);
    assert.equal(c.allowedOrigins, undefined);
    assert.equal(c.redisUrl, undefined);
    const options = resolveOptions(toServerOptions(c));
    for (const name of [
      "path",
      "maxPayload",
      "maxConnections",
      "maxBufferedBytes",
      "heartbeatInterval",
      "heartbeatTimeout",
      "shutdownTimeout",
      "droppableBufferedBytes",
    ] as const) {
      assert.equal(options[name], defaultOptions[name], name);
    }
    assert.deepEqual(options.rateLimit, defaultOptions.rateLimit, "100/s with burst 200 is the library default");
  });

  it("every flag maps onto its ServerOptions field; --rate-limit N means burst 2N, 0 turns it off", () => {
    const c = config([
      "--path=/rt",
      "--max-payload",
      "1024",
      "--max-connections",
      "5",
      "--rate-limit",
      "7",
      "--max-buffered-bytes",
      "4096",
      "--heartbeat-interval",
      "1000",
      "--heartbeat-timeout",
      "3000",
      "--shutdown-timeout",
      "0",
      "--allowed-origins",
      "https://A.example, http://localhost:3000",
    ]);
    const options = resolveOptions(toServerOptions(c));
    assert.equal(options.path, "/rt");
    assert.equal(options.maxPayload, 1024);
    assert.equal(options.maxConnections, 5);
    assert.deepEqual(
      options.rateLimit,
      { ...defaultOptions.rateLimit, messagesPerSecond: 7, burst: 14, deliveriesPerSecond: 700 },
      "the delivery budget follows the message rate",
    );
    assert.equal(options.maxBufferedBytes, 4096);
    assert.ok(options.droppableBufferedBytes < options.maxBufferedBytes, "droppable messages are skipped before the close");
    assert.equal(options.heartbeatInterval, 1000);
    assert.equal(options.heartbeatTimeout, 3000);
    assert.equal(options.shutdownTimeout, 0);
    assert.deepEqual(options.allowedOrigins, ["https://a.example", "http://localhost:3000"]);
    assert.equal(toServerOptions(config(["--rate-limit", "0"])).rateLimit, false);
  });

  it("--broadcast-to-all off refuses a client's broadcast to every client; on, true and yes keep it", () => {
    assert.equal(resolveOptions(toServerOptions(config([]))).allowBroadcastToAll, true);
    assert.equal(resolveOptions(toServerOptions(config(["--broadcast-to-all", "off"]))).allowBroadcastToAll, false);
    assert.equal(config([], { CONDUIT_BROADCAST_TO_ALL: "no" }).broadcastToAll, false);
    assert.equal(config(["--broadcast-to-all", "ON"], { CONDUIT_BROADCAST_TO_ALL: "off" }).broadcastToAll, true, "the flag wins");
    assert.match(refusal(["--broadcast-to-all", "maybe"]), /--broadcast-to-all "maybe".*on or off/);
  });

  it("environment variables apply, flags win over them, empty ones count as unset", () => {
    const env = {
      PORT: "9000",
      HOST: "127.0.0.1",
      CONDUIT_PATH: "/env",
      CONDUIT_RATE_LIMIT: "",
      CONDUIT_WORKERS: "3",
      REDIS_URL: "redis://h:6379",
      CONDUIT_JWT_SECRET: "s".repeat(MIN_JWT_SECRET_BYTES),
    };
    const fromEnv = config([], env);
    assert.deepEqual(
      [fromEnv.port, fromEnv.host, fromEnv.path, fromEnv.rateLimit, fromEnv.workers, fromEnv.redisUrl, fromEnv.jwtSecret],
      [9000, "127.0.0.1", "/env", 100, 3, "redis://h:6379", env.CONDUIT_JWT_SECRET],
    );
    const flagged = config(["--port", "9001", "--path", "/flag", "--jwt-secret", "t".repeat(40)], env);
    assert.deepEqual([flagged.port, flagged.path, flagged.jwtSecret], [9001, "/flag", "t".repeat(40)]);
  });

  it("an empty or short JWT secret stops the start instead of turning authentication off or weak", () => {
    const short = "tooShortSecret-17";
    for (const [argv, env, source] of [
      [[], { CONDUIT_JWT_SECRET: "" }, /CONDUIT_JWT_SECRET \(environment\) is empty/],
      [["--jwt-secret", ""], {}, /--jwt-secret is empty/],
      [[], { CONDUIT_JWT_SECRET: "   " }, /CONDUIT_JWT_SECRET \(environment\) is 3 bytes/],
      [["--jwt-secret", short], {}, /--jwt-secret is 17 bytes/],
      [[], { CONDUIT_JWT_SECRET: short }, /CONDUIT_JWT_SECRET \(environment\) is 17 bytes/],
      // Bytes, not characters: 16 two-byte characters are 32 bytes and pass; 15 are 30 and do not.
      [["--jwt-secret", "é".repeat(15)], {}, /--jwt-secret is 30 bytes/],
    ] as const) {
      const message = refusal([...argv], env);
      assert.match(message, source);
      assert.match(message, /at least 32 .*bytes/);
      assert.ok(!message.includes(short), "the secret is never echoed");
    }
    assert.equal(config(["--jwt-secret", "é".repeat(16)]).jwtSecret, "é".repeat(16));
    assert.equal(config([], { CONDUIT_JWT_SECRET: "k".repeat(32) }).jwtSecret, "k".repeat(32));
    assert.equal(config([], {}).jwtSecret, undefined, "unset: no authentication, as documented");
  });

  it("limits the library refuses are configuration errors that name the flags", () => {
    assert.match(
      refusal(["--max-buffered-bytes", "10"]),
      /^--max-buffered-bytes \(10\) must be at least --max-payload \(65536\)/,
      "a client would be closed with 1013 by any reply",
    );
    assert.match(refusal([], { CONDUIT_MAX_BUFFERED_BYTES: "4096", CONDUIT_MAX_PAYLOAD: "8192" }), /--max-buffered-bytes \(4096\)/);
    assert.equal(config(["--max-buffered-bytes", "1024", "--max-payload", "1024"]).maxBufferedBytes, 1024);
  });

  it("--max-message-depth and --delivery-budget map onto maxMessageDepth and rateLimit.deliveriesPerSecond", () => {
    const defaults = resolveOptions(toServerOptions(config([])));
    assert.equal(defaults.maxMessageDepth, 64);
    assert.equal((defaults.rateLimit as RateLimitOptions).deliveriesPerSecond, 10_000, "100 x the default rate");
    const derived = resolveOptions(toServerOptions(config(["--rate-limit", "7"])));
    assert.equal((derived.rateLimit as RateLimitOptions).deliveriesPerSecond, 700, "unset: the library derives it from --rate-limit");

    const set = resolveOptions(toServerOptions(config(["--max-message-depth", "8", "--delivery-budget", "250", "--rate-limit", "7"])));
    assert.equal(set.maxMessageDepth, 8);
    assert.deepEqual(set.rateLimit, { ...defaultOptions.rateLimit, messagesPerSecond: 7, burst: 14, deliveriesPerSecond: 250 });
    const fromEnv = config([], { CONDUIT_MAX_MESSAGE_DEPTH: "16", CONDUIT_DELIVERY_BUDGET: "500" });
    assert.deepEqual([fromEnv.maxMessageDepth, fromEnv.deliveryBudget], [16, 500]);
    assert.equal(config(["--delivery-budget", "9"], { CONDUIT_DELIVERY_BUDGET: "500" }).deliveryBudget, 9, "the flag wins");
    assert.equal(config([], { CONDUIT_DELIVERY_BUDGET: "" }).deliveryBudget, undefined, "empty counts as unset");

    assert.equal(toServerOptions(config(["--rate-limit", "0"])).rateLimit, false, "--rate-limit 0 turns the budget off too");
    assert.match(refusal(["--rate-limit", "0", "--delivery-budget", "50"]), /--delivery-budget 50 cannot apply with --rate-limit 0/);
    assert.match(refusal(["--delivery-budget", "0"]), /--delivery-budget "0".*from 1/);
    assert.match(refusal(["--max-message-depth", "0"]), /--max-message-depth "0".*from 1 to 1000/);
    assert.match(refusal([], { CONDUIT_MAX_MESSAGE_DEPTH: "5000" }), /CONDUIT_MAX_MESSAGE_DEPTH \(environment\) "5000"/);
    const help = usage();
    assert.match(help, /--max-message-depth N +.*\[env CONDUIT_MAX_MESSAGE_DEPTH\] \(default 64\)/);
    assert.match(help, /--delivery-budget N +.*\[env CONDUIT_DELIVERY_BUDGET\] \(default 100x --rate-limit\)/);
  });

  it("--metrics-port moves /metrics to a listener of its own, on 127.0.0.1 unless --metrics-host says otherwise", () => {
    const plain = config([]);
    assert.equal(plain.metricsPort, undefined, "default: /metrics on the public listener");
    const own = config(["--metrics-port", "9464"]);
    assert.deepEqual([own.metricsPort, own.metricsHost], [9464, "127.0.0.1"]);
    const fromEnv = config([], { CONDUIT_METRICS_PORT: "0", CONDUIT_METRICS_HOST: "::" });
    assert.deepEqual([fromEnv.metricsPort, fromEnv.metricsHost], [0, "::"]);
    assert.match(refusal(["--metrics-host", "0.0.0.0"]), /--metrics-host needs --metrics-port/);
    assert.match(refusal(["--port", "9000", "--metrics-port", "9000"]), /--metrics-port 9000 is the public --port/);
    assert.match(refusal(["--metrics-port", "65536"]), /--metrics-port "65536"/);
    assert.match(usage(), /--metrics-port N .*\[env CONDUIT_METRICS_PORT\]/);
    assert.match(usage(), /--metrics-host ADDR .*\[env CONDUIT_METRICS_HOST\] \(default 127\.0\.0\.1\)/);
  });

  it("bad values are refused with a message naming the flag or variable and the fix", () => {
    assert.match(refusal(["--port", "-1"]), /--port/);
    assert.match(refusal(["--max-connections", "0"]), /--max-connections "0".*from 1/);
    assert.match(refusal(["--max-payload", "1.5"]), /--max-payload/);
    assert.match(refusal(["--heartbeat-interval", "99999999999"]), /--heartbeat-interval.*2147483647/);
    assert.match(
      refusal(["--heartbeat-interval", "5000", "--heartbeat-timeout", "1000"]),
      /--heartbeat-timeout \(1000\) must be at least --heartbeat-interval \(5000\)/,
    );
    assert.match(refusal(["--path", "ws"]), /--path "ws".*starting with "\/"/);
    assert.match(refusal(["--allowed-origins", "https://app.example/"]), /entry "https:\/\/app.example\/".*no path or trailing slash/);
    assert.match(refusal(["--allowed-origins", "app.example"]), /expected an origin/);
    assert.match(refusal(["--log-level", "loud"]), /--log-level "loud".*one of/);
    assert.match(refusal(["--workers", "4"]), /needs --redis/);
    assert.match(refusal(["--port"]), /--port/);
    assert.match(refusal(["extra"]), /positional/i);
    const redis = refusal([], { REDIS_URL: "http://user:hunter2@host" });
    assert.match(redis, /REDIS_URL \(environment\).*redis:\/\//);
    assert.ok(!redis.includes("hunter2"), "a Redis password is never echoed");
  });

  it("--help and --version are recognised", () => {
    assert.equal(parseConfig(["--help"], {}).kind, "help");
    assert.equal(parseConfig(["-h"], {}).kind, "help");
    assert.equal(parseConfig(["--version"], {}).kind, "version");
  });
});

/** Collects a pino logger's output. */
function capture(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

describe("logger", () => {
  it("redacts tokens, authorization headers, secrets and query strings wherever they are logged", () => {
    const out = capture();
    const logger = createLogger("debug", out.stream);
    const secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl";
    logger.info({ token: secret }, "top-level token");
    logger.info({ auth: { token: secret, authorization: `Bearer ${secret}` } }, "nested");
    logger.info({ req: { method: "GET", url: `/ws?token=${secret}`, headers: { authorization: `Bearer ${secret}` } } }, "request");
    logger.info({ url: `/ws?token=${secret}&x=1` }, "url");
    logger.info({ headers: { authorization: `Bearer ${secret}`, cookie: `sid=${secret}` } }, "headers");
    logger.info({ config: { jwtSecret: secret } }, "config");
    const lines = out
      .text()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines.length, 6);
    assert.ok(!out.text().includes(secret), out.text());
    assert.ok(!out.text().includes("c2lnbmF0dXJl"), "no fragment of the token either");
    assert.equal(lines[0]!.token, "[redacted]");
    assert.deepEqual(lines[2]!.req, { method: "GET", url: "/ws?[redacted]" }, "the path stays, the query goes");
    assert.equal(lines[3]!.url, "/ws?[redacted]");
  });

  it("writes nothing below its level", () => {
    const out = capture();
    createLogger("warn", out.stream).info({}, "hidden");
    assert.equal(out.text(), "");
  });
});

describe("HTTP routes", () => {
  let root: string;
  let server: Server;
  let base: string;
  let draining = false;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "conduit-cli-"));
    await mkdir(join(root, "client", "nested"), { recursive: true });
    await writeFile(join(root, "client", "index.js"), "export const sdk = 1;\n");
    await writeFile(join(root, "client", "nested", "part.js"), "export const part = 2;\n");
    await writeFile(join(root, "client", ".hidden.js"), "hidden\n");
    await writeFile(join(root, "secret.js"), "export const secret = 'outside';\n");
    server = createServer(
      createRequestListener({
        wsPath: "/ws",
        auth: false,
        isDraining: () => draining,
        metrics: async () => ({ contentType: "text/plain; version=0.0.4", body: "m 1\n" }),
        demoFile: pathToFileURL(join(root, "demo", "index.html")),
        sdkDir: pathToFileURL(`${join(root, "client")}/`),
        logger: silentLogger,
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  /** A raw request: `path` is sent exactly as given (no URL normalisation of `..`). */
  function send(path: string, method = "GET", origin = base): Promise<{ status: number; type: string; body: string; cache?: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${origin}/`, { path, method, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          const cache = res.headers["cache-control"];
          resolve({ status: res.statusCode!, type: String(res.headers["content-type"]), body, ...(cache === undefined ? {} : { cache }) });
        });
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("serves SDK files from the SDK directory as text/javascript", async () => {
    const index = await send("/sdk/index.js");
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/javascript/);
    assert.equal(index.body, "export const sdk = 1;\n");
    assert.equal((await send("/sdk/nested/part.js")).body, "export const part = 2;\n");
    assert.equal((await send("/sdk/missing.js")).status, 404);
  });

  it("refuses every way out of the SDK directory", async () => {
    for (const path of [
      "/sdk/../secret.js",
      "/sdk/%2e%2e/secret.js",
      "/sdk/..%2fsecret.js",
      "/sdk/nested/../../secret.js",
      "/sdk//etc/passwd.js",
      "/sdk/.hidden.js",
      "/sdk/index.ts",
      "/sdk/",
    ]) {
      const response = await send(path);
      assert.equal(response.status, 404, path);
      assert.ok(!response.body.includes("outside"), path);
    }
  });

  it("serves a fallback page when the demo is missing", async () => {
    const page = await send("/");
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /demo page .* is missing/);
  });

  it("/healthz follows draining; /metrics; HEAD, 405 and 404", async () => {
    assert.equal((await send("/healthz")).status, 200);
    draining = true;
    assert.equal((await send("/healthz")).status, 503);
    draining = false;
    assert.deepEqual(await send("/metrics"), { status: 200, type: "text/plain; version=0.0.4", body: "m 1\n" });
    const head = await send("/healthz", "HEAD");
    assert.deepEqual([head.status, head.body], [200, ""]);
    assert.equal((await send("/metrics", "POST")).status, 405);
    assert.equal((await send("/anything")).status, 404);
  });

  it("/config tells a page the endpoint path and whether a token is needed, uncached; HEAD and 405", async () => {
    const config = await send("/config");
    assert.deepEqual(
      { ...config, body: JSON.parse(config.body) as unknown },
      { status: 200, type: "application/json", cache: "no-store", body: { path: "/ws", auth: false, protocol: 1 } },
    );
    const head = await send("/config", "HEAD");
    assert.deepEqual([head.status, head.body, head.cache], [200, "", "no-store"]);
    assert.equal((await send("/config", "POST")).status, 405);
  });

  it("/config answers even when the endpoint itself is at /config, and says auth when a token is needed", async () => {
    const other = createServer(
      createRequestListener({
        wsPath: "/config",
        auth: true,
        isDraining: () => false,
        metrics: async () => ({ contentType: "text/plain", body: "" }),
        demoFile: pathToFileURL(join(root, "demo", "index.html")),
        sdkDir: pathToFileURL(`${join(root, "client")}/`),
        logger: silentLogger,
      }),
    );
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    try {
      const response = await send("/config", "GET", `http://127.0.0.1:${(other.address() as AddressInfo).port}`);
      assert.equal(response.status, 200, "not the endpoint's 426");
      assert.deepEqual(JSON.parse(response.body), { path: "/config", auth: true, protocol: 1 });
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});

/** One request on its own connection; the status and body. */
function plain(url: string, method = "GET"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("metrics", () => {
  const outSeries = (text: string): string[] => text.split("\n").filter((line) => line.startsWith("conduit_messages_out_total{"));

  it("junk broadcast types cannot crowd out the server's own types or grow the exposition", async () => {
    const metrics = new ServerMetrics();
    // What the hub reports for a client's broadcasts: whatever data.type the client chose.
    for (let i = 0; i < 110; i++) metrics.messageOut(`junk-${i}-${"x".repeat(60_000)}`, 1);
    metrics.messageOut("room_joined", 1);
    metrics.messageOut("pong", 2);
    metrics.messageIn("ping");
    const text = await metrics.registry.metrics();
    assert.deepEqual(outSeries(text).sort(), [
      'conduit_messages_out_total{type="other"} 110',
      'conduit_messages_out_total{type="pong"} 2',
      'conduit_messages_out_total{type="room_joined"} 1',
    ]);
    assert.ok(!text.includes("junk-"), "no label for a type the server does not know");
    assert.ok(text.length < 64 * 1024, `the exposition stays small (${text.length} bytes)`);
  });

  it("labels registered types, folds client-chosen ones into other, and caps a label's length", async () => {
    const registered = new Set(["chat", `long-${"y".repeat(200)}`]);
    const metrics = new ServerMetrics({ isRegistered: (type) => registered.has(type) });
    metrics.messageIn("chat");
    metrics.messageIn("not-registered");
    metrics.handlerError("chat");
    metrics.messageOut("chat", 3);
    // A client may name a registered type in its broadcast: counted as other, not as the application's.
    metrics.messageOut("chat", 5, true);
    metrics.messageOut(`long-${"y".repeat(200)}`, 1);
    const text = await metrics.registry.metrics();
    assert.ok(text.includes('conduit_messages_in_total{type="chat"} 1'));
    assert.ok(text.includes('conduit_messages_in_total{type="other"} 1'));
    assert.ok(text.includes('conduit_handler_errors_total{type="chat"} 1'));
    assert.ok(outSeries(text).includes('conduit_messages_out_total{type="chat"} 3'));
    assert.ok(outSeries(text).includes('conduit_messages_out_total{type="other"} 5'));
    const long = outSeries(text).find((line) => line.includes("long-"));
    const value = /type="([^"]*)"/.exec(long ?? "")?.[1] ?? "";
    assert.equal(value.length, MAX_LABEL_LENGTH, long);
    assert.ok(value.endsWith("…"));
  });

  it("with metrics served elsewhere the public listener answers 404 for /metrics", async () => {
    const server = createServer(
      createRequestListener({
        wsPath: "/ws",
        auth: false,
        isDraining: () => false,
        metrics: undefined,
        demoFile: new URL("file:///nonexistent/index.html"),
        sdkDir: new URL("file:///nonexistent/"),
        logger: silentLogger,
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      assert.equal((await plain(`${base}/metrics`, "GET")).status, 404);
      assert.equal((await plain(`${base}/healthz`, "GET")).status, 200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("the metrics listener serves /metrics only, and closes with a scraper still connected", async () => {
    const metrics = new ServerMetrics();
    metrics.messageIn("ping");
    const listener = await listenMetrics({
      port: 0,
      host: "127.0.0.1",
      metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      logger: silentLogger,
    });
    const base = listener.url.replace(/\/metrics$/, "");
    assert.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = await plain(`${base}/metrics`, "GET");
    assert.equal(scrape.status, 200);
    assert.match(scrape.body, /conduit_messages_in_total\{type="ping"\} 1/);
    assert.equal((await plain(`${base}/metrics`, "HEAD")).status, 200);
    assert.equal((await plain(`${base}/`, "GET")).status, 404, "nothing but /metrics");
    assert.equal((await plain(`${base}/healthz`, "GET")).status, 404);
    assert.equal((await plain(`${base}/metrics`, "POST")).status, 405);
    // A keep-alive connection left open, as a scraper keeps one.
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      httpRequest(listener.url, { agent }, (res) => res.resume().on("end", resolve))
        .on("error", reject)
        .end();
    });
    await listener.close();
    await listener.close();
    agent.destroy();
  });
});
