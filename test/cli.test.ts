/**
 * The standalone server `conduit-ws`, run as the real compiled CLI (`dist/cli/main.js`,
 * built by `npm test`) in child processes: ready line, HTTP routes (`/config` included), JWT auth,
 * origins, metrics, signals, environment variables, exit codes, and the log never carrying a token.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { connect, refusedStatus } from "./helpers/client.js";
import { get, sample, spawnCli, startCli, type CliProcess } from "./helpers/cli.js";
import { rawUpgrade, serverFrames, type RawPeer } from "./helpers/raw.js";

/** Resolves with the code of the first close frame a raw peer receives. */
function closeCodeOf(peer: RawPeer): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const close = serverFrames(peer.bytes()).find((frame) => frame.opcode === 0x8);
      if (close === undefined) return;
      peer.socket.off("data", check);
      resolve(close.payload.readUInt16BE(0));
    };
    peer.socket.on("data", check);
    check();
    void peer.closed.then(() => reject(new Error("closed without a close frame")));
  });
}

const SECRET = "cli-test-secret-that-is-long-enough-for-hs256";
const key = new TextEncoder().encode(SECRET);
const tokens: string[] = [];

async function token(sub: string, options: { expiresAt?: number; key?: Uint8Array } = {}): Promise<string> {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? Math.floor(Date.now() / 1000) + 600);
  const signed = await jwt.sign(options.key ?? key);
  tokens.push(signed);
  return signed;
}

describe("conduit-ws with --jwt-secret and --allowed-origins", () => {
  let cli: CliProcess;
  before(async () => {
    cli = await startCli([
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--jwt-secret",
      SECRET,
      "--allowed-origins",
      "http://allowed.example,https://app.example:8443",
      "--log-level",
      "debug",
      // Long enough that a peer which never answers the close frame keeps the server draining.
      "--shutdown-timeout",
      "20000",
    ]);
  });

  it("prints one ready line naming the endpoint with the real port", () => {
    assert.match(cli.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.notEqual(cli.port, 0);
    assert.equal(cli.stdout(), `conduit-ws listening on ${cli.url}\n`);
  });

  it("GET /healthz is 200 while serving, GET / is the demo page, /sdk/ the SDK, unknown paths are 404", async () => {
    const health = await get(`${cli.http}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: "ok" });
    const page = await get(`${cli.http}/`);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.equal(page.body, await readFile(new URL("../demo/index.html", import.meta.url), "utf8"), "the package's demo page");
    const sdk = await get(`${cli.http}/sdk/index.js`);
    assert.equal(sdk.status, 200, "the SDK compiled to dist/client/");
    assert.match(sdk.type, /^text\/javascript/);
    assert.equal((await get(`${cli.http}/nope`)).status, 404);
    assert.equal((await get(`${cli.http}/sdk/../package.json`)).status, 404);
    assert.equal((await get(`${cli.http}/ws`)).status, 426, "a plain GET on the endpoint asks for an upgrade");
  });

  it("GET /config tells a browser page that a token is needed, and nothing secret", async () => {
    const config = await get(`${cli.http}/config`);
    assert.equal(config.status, 200);
    assert.equal(config.type, "application/json");
    assert.deepEqual(JSON.parse(config.body), { path: "/ws", auth: true, protocol: 1 });
    assert.ok(!config.body.includes(SECRET), "the secret is never published");
  });

  it("accepts a valid JWT from ?token= and from Authorization: Bearer; sub is the user_id", async () => {
    const viaQuery = await connect(`${cli.url}?token=${await token("alice")}`);
    assert.equal((await viaQuery.request("status")).data.user_id, "alice");
    const viaHeader = await connect(cli.url, { headers: { Authorization: `Bearer ${await token("bob")}` } });
    assert.equal((await viaHeader.request("status")).data.user_id, "bob");
    await viaQuery.close();
    await viaHeader.close();
  });

  it("refuses a missing, badly signed or expired token with HTTP 401", async () => {
    assert.equal(await refusedStatus(cli.url), 401, "missing");
    const forged = await token("mallory", { key: new TextEncoder().encode("another-secret-of-the-same-length-as-the-real") });
    assert.equal(await refusedStatus(`${cli.url}?token=${forged}`), 401, "bad signature");
    const expired = await token("alice", { expiresAt: Math.floor(Date.now() / 1000) - 60 });
    assert.equal(await refusedStatus(`${cli.url}?token=${expired}`), 401, "expired");
    assert.equal(await refusedStatus(cli.url, { headers: { Authorization: `Bearer ${expired}` } }), 401, "expired, header");
    tokens.push("not-a-jwt-at-all");
    assert.equal(await refusedStatus(`${cli.url}?token=not-a-jwt-at-all`), 401, "malformed");
  });

  it("--allowed-origins refuses another Origin with 403 and accepts a listed one", async () => {
    const t = await token("carol");
    assert.equal(await refusedStatus(`${cli.url}?token=${t}`, { origin: "http://evil.example" }), 403);
    assert.equal(await refusedStatus(`${cli.url}?token=${t}`, { origin: "https://app.example" }), 403, "port differs");
    const listed = await connect(`${cli.url}?token=${t}`, { origin: "https://app.example:8443" });
    assert.equal((await listed.request("status")).data.user_id, "carol");
    await listed.close();
  });

  it("GET /metrics serves Prometheus text that counts the messages sent", async () => {
    const before = await get(`${cli.http}/metrics`);
    assert.equal(before.status, 200);
    assert.match(before.type, /^text\/plain/);
    for (const name of [
      "conduit_connections",
      "conduit_rooms",
      "conduit_messages_in_total",
      "conduit_messages_out_total",
      "conduit_handler_errors_total",
      "conduit_broadcast_recipients",
      "process_cpu_user_seconds_total",
    ]) {
      assert.match(before.body, new RegExp(`^# TYPE ${name} `, "m"), name);
    }
    const client = await connect(`${cli.url}?token=${await token("dave")}`);
    await client.request("join_room", { room: "metrics-room" });
    client.send({ type: "echo", data: 1 });
    await client.next("echo");
    const during = (await get(`${cli.http}/metrics`)).body;
    assert.equal(
      sample(during, "conduit_messages_in_total", '{type="echo"}') - sample(before.body, "conduit_messages_in_total", '{type="echo"}'),
      1,
    );
    assert.equal(
      sample(during, "conduit_messages_out_total", '{type="echo"}') - sample(before.body, "conduit_messages_out_total", '{type="echo"}'),
      1,
    );
    assert.equal(sample(during, "conduit_connections_accepted_total") - sample(before.body, "conduit_connections_accepted_total"), 1);
    // Earlier tests' clients may still be leaving on the server side, so at least this one is open.
    assert.ok(sample(during, "conduit_connections") >= 1);
    assert.equal(sample(during, "conduit_rooms"), 1);
    await client.close();
  });

  it("SIGTERM: clients get close 1001, /healthz turns 503 while draining, exit code 0", async () => {
    const client = await connect(`${cli.url}?token=${await token("erin")}`);
    // A peer that never answers the close frame keeps the server draining until it goes away.
    const silent = await rawUpgrade(cli.port, `/ws?token=${await token("frank")}`);
    const silentClose = closeCodeOf(silent);
    cli.child.kill("SIGTERM");
    assert.equal((await client.closed).code, 1001);
    assert.equal(await silentClose, 1001);
    const health = await get(`${cli.http}/healthz`);
    assert.equal(health.status, 503);
    assert.deepEqual(JSON.parse(health.body), { status: "draining" });
    silent.socket.destroy();
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.equal(cli.stdout(), `conduit-ws listening on ${cli.url}\n`, "stdout holds the ready line only");
  });

  it("the log is JSON lines that never contain a token", () => {
    const lines = cli.stderr().trim().split("\n");
    const entries = lines.map((line) => JSON.parse(line) as { msg: string; reason?: string });
    // The connections and refusals above were logged, so the check below has something to check.
    assert.ok(entries.some((e) => e.msg === "client connected"));
    assert.ok(entries.some((e) => e.msg === "jwt refused" && e.reason === "ERR_JWT_EXPIRED"));
    assert.ok(entries.some((e) => e.msg === "jwt refused" && e.reason === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"));
    assert.ok(tokens.length >= 8);
    for (const t of tokens) {
      assert.ok(!cli.stderr().includes(t), "a token appeared in the log");
      // A JWT's signature alone is enough to replay it: no part of one may leak either.
      const signature = t.split(".")[2];
      if (signature) assert.ok(!cli.stderr().includes(signature), "a token signature appeared in the log");
    }
    assert.ok(!cli.stderr().includes(SECRET), "the secret appeared in the log");
  });
});

describe("conduit-ws configured by environment variables", () => {
  it("PORT, HOST and CONDUIT_PATH configure it; SIGINT closes clients with 1001 and exits 0", async () => {
    const cli = await startCli([], { PORT: "0", HOST: "127.0.0.1", CONDUIT_PATH: "/realtime" });
    assert.match(cli.url, /^ws:\/\/127\.0\.0\.1:\d+\/realtime$/);
    const client = await connect(cli.url);
    assert.equal((await client.request("status")).data.user_id, null, "no --jwt-secret: anonymous");
    const config = await get(`${cli.http}/config`);
    assert.deepEqual(
      JSON.parse(config.body),
      { path: "/realtime", auth: false, protocol: 1 },
      "a page learns the path and that no token is needed",
    );
    assert.equal(await refusedStatus(cli.url.replace("/realtime", "/ws")), 400, "the default path is not served");
    cli.child.kill("SIGINT");
    assert.equal((await client.closed).code, 1001);
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
  });

  it("a flag wins over its environment variable", async () => {
    const cli = await startCli(["--port", "0", "--path", "/from-flag"], { HOST: "127.0.0.1", CONDUIT_PATH: "/from-env" });
    assert.match(cli.url, /\/from-flag$/);
    cli.child.kill("SIGTERM");
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
  });
});

describe("conduit-ws refuses bad configuration with exit code 2", () => {
  const cases: Array<{ args: string[]; env?: Record<string, string>; names: RegExp }> = [
    { args: ["--port", "70000"], names: /--port "70000".*0 to 65535/ },
    { args: ["--no-such-flag"], names: /no-such-flag/ },
    { args: [], env: { CONDUIT_MAX_PAYLOAD: "64k" }, names: /CONDUIT_MAX_PAYLOAD \(environment\) "64k"/ },
    { args: ["--workers", "2"], names: /--workers 2 needs --redis/ },
    // Limits the library refuses: every client would be closed with 1013 by its first large reply.
    { args: ["--max-buffered-bytes", "10"], names: /--max-buffered-bytes \(10\) must be at least --max-payload \(65536\)/ },
    // An empty or short secret fails closed: never a server without (or with weak) authentication.
    { args: [], env: { CONDUIT_JWT_SECRET: "" }, names: /CONDUIT_JWT_SECRET \(environment\) is empty.*at least 32/ },
    { args: ["--jwt-secret", "short-secret-xyz"], names: /--jwt-secret is 16 bytes.*at least 32/ },
    { args: ["--rate-limit", "0", "--delivery-budget", "10"], names: /--delivery-budget 10 cannot apply with --rate-limit 0/ },
  ];
  it("for bad values, unknown flags, --workers without --redis, limits the library refuses and a weak JWT secret", async () => {
    // Spawned side by side: each only parses its arguments and exits.
    await Promise.all(
      cases.map(async ({ args, env, names }) => {
        const label = args.join(" ") || JSON.stringify(env);
        const cli = spawnCli(args, env);
        assert.deepEqual(await cli.exited, { code: 2, signal: null }, label);
        assert.match(cli.stderr(), names, label);
        assert.equal(cli.stdout(), "", `${label}: no ready line`);
        assert.ok(!cli.stderr().includes("short-secret-xyz"), `${label}: the secret is never printed`);
      }),
    );
  });
});

describe("conduit-ws that cannot start exits with code 1", () => {
  it("when its port is taken, or Redis cannot be reached", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const inUse = spawnCli(["--port", port, "--host", "127.0.0.1"]);
      // Port 1 is privileged and unused: the connection is refused at once.
      const noRedis = spawnCli(["--port", "0", "--host", "127.0.0.1", "--redis", "redis://127.0.0.1:1"]);
      assert.deepEqual(await inUse.exited, { code: 1, signal: null });
      assert.match(inUse.stderr(), /EADDRINUSE/);
      assert.deepEqual(await noRedis.exited, { code: 1, signal: null });
      assert.match(noRedis.stderr(), /cannot reach Redis/);
      assert.equal(inUse.stdout() + noRedis.stdout(), "", "no ready line");
    } finally {
      taken.close();
    }
  });
});
