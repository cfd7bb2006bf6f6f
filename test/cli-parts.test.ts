/**
 * The standalone server's parts in-process: flag/env parsing and its mapping onto ServerOptions, the
 * logger's redaction, the HTTP routes (SDK files, path traversal, demo fallback, draining, /config), the
 * metrics' label cap. The end-to-end behaviour is in cli.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { ConfigError, parseConfig, toServerOptions, type CliConfig } from "../src/cli/config.js";
import { createRequestListener } from "../src/cli/http.js";
import { createLogger } from "../src/cli/logger.js";
import { MAX_TYPE_LABELS, ServerMetrics } from "../src/cli/metrics.js";
import { defaultOptions, resolveOptions } from "../src/options.js";
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
    assert.deepEqual(options.rateLimit, { ...defaultOptions.rateLimit, messagesPerSecond: 7, burst: 14 });
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
      CONDUIT_JWT_SECRET: "s",
    };
    const fromEnv = config([], env);
    assert.deepEqual(
      [fromEnv.port, fromEnv.host, fromEnv.path, fromEnv.rateLimit, fromEnv.workers, fromEnv.redisUrl, fromEnv.jwtSecret],
      [9000, "127.0.0.1", "/env", 100, 3, "redis://h:6379", "s"],
    );
    const flagged = config(["--port", "9001", "--path", "/flag", "--jwt-secret", "t"], env);
    assert.deepEqual([flagged.port, flagged.path, flagged.jwtSecret], [9001, "/flag", "t"]);
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

describe("metrics", () => {
  it("caps distinct type labels so clients cannot create unbounded series", async () => {
    const metrics = new ServerMetrics();
    for (let i = 0; i < MAX_TYPE_LABELS + 50; i++) metrics.messageOut(`client-chosen-${i}`, 1);
    metrics.messageOut("client-chosen-0", 2);
    const text = await metrics.registry.metrics();
    const series = text.split("\n").filter((line) => line.startsWith("conduit_messages_out_total{"));
    assert.equal(series.length, MAX_TYPE_LABELS + 1);
    assert.ok(series.includes('conduit_messages_out_total{type="other"} 50'));
    assert.ok(series.includes('conduit_messages_out_total{type="client-chosen-0"} 3'));
  });
});
