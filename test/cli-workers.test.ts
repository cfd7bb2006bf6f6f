/**
 * `conduit-ws --workers N --redis URL`: N worker processes share one port through
 * node:cluster and reach each other's clients over a private redis-server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, type TestClient } from "./helpers/client.js";
import { get, logEntries, sample, startCli, waitForLog, type CliProcess } from "./helpers/cli.js";
import { redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";

const skip = redisSkipReason();

describe("conduit-ws --workers 2 --redis", { skip }, () => {
  let redis: TestRedis;
  let cli: CliProcess;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    cli = await startCli(["--port", "0", "--host", "127.0.0.1", "--workers", "2", "--redis", redis.url, "--log-level", "debug"]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await redis.stop();
  });

  it("prints one ready line, once every worker listens", () => {
    assert.match(cli.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.equal(cli.stdout(), `conduit-ws listening on ${cli.url}\n`);
  });

  it("spreads clients over both workers, and a room broadcast reaches members on each", async () => {
    for (let i = 0; i < 6; i++) clients.push(await connect(cli.url));
    // Each worker logs its connections with its worker id: both must have some.
    const workers = new Set(
      logEntries(cli)
        .filter((e) => e.msg === "client connected")
        .map((e) => e.worker),
    );
    assert.deepEqual([...workers].sort(), [1, 2]);

    for (const client of clients) await client.request("join_room", { room: "everywhere" });
    clients[0]!.send({ type: "broadcast", data: { room: "everywhere", type: "hello", payload: "all" } });
    const received = await Promise.all(clients.map((c) => c.next("hello", 10_000)));
    assert.deepEqual(
      received.map((m) => m.data),
      clients.map(() => "all"),
    );
  });

  it("/metrics on any worker sums over all workers", async () => {
    // Whichever worker answers a scrape, it reports every connection of the machine.
    for (let i = 0; i < 2; i++) {
      const metrics = (await get(`${cli.http}/metrics`)).body;
      assert.equal(sample(metrics, "conduit_connections"), clients.length);
    }
  });

  it("a worker that dies is replaced; its clients are cut off, the others stay and keep receiving", async () => {
    const connected = logEntries(cli).filter((e) => e.msg === "client connected");
    const victim = connected.find((e) => e.worker === 1)!.pid;
    const workerOf = new Map(connected.map((e) => [e.clientId, e.worker]));
    const ids = await Promise.all(clients.map(async (c) => (await c.request("status")).data.client_id as string));
    const onVictim = clients.filter((_c, i) => workerOf.get(ids[i]) === 1);
    const survivors = clients.filter((_c, i) => workerOf.get(ids[i]) === 2);
    assert.ok(onVictim.length > 0 && survivors.length > 0);

    process.kill(victim, "SIGKILL");
    for (const client of onVictim) assert.equal((await client.closed).code, 1006, "the TCP connection ended without a close frame");
    const replacement = (await waitForLog(cli, (e) => e.msg === "replacement worker ready")).workerPid;
    assert.ok(logEntries(cli).some((e) => e.msg === "worker exited unexpectedly" && e.workerPid === victim));

    clients.splice(0, clients.length, ...survivors);
    for (let i = 0; i < 4; i++) clients.push(await connect(cli.url));
    for (const client of clients) await client.request("join_room", { room: "after-crash" });
    clients.at(-1)!.send({ type: "broadcast", data: { room: "after-crash", type: "again", payload: 2 } });
    await Promise.all(clients.map((c) => c.next("again", 10_000)));
    assert.ok(
      logEntries(cli).some((e) => e.msg === "client connected" && e.pid === replacement),
      "the replacement serves",
    );
  });

  it("SIGTERM: every client gets 1001, the primary exits 0 after its workers", async () => {
    cli.child.kill("SIGTERM");
    const codes = await Promise.all(clients.map(async (c) => (await c.closed).code));
    assert.deepEqual(
      codes,
      clients.map(() => 1001),
    );
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.equal(cli.stdout(), `conduit-ws listening on ${cli.url}\n`);
  });
});

describe("conduit-ws --workers 2 --metrics-port", { skip }, () => {
  it("the primary serves the sum over all workers on the metrics listener", async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const cli = await startCli(["--port", "0", "--host", "127.0.0.1", "--workers", "2", "--redis", redis.url, "--metrics-port", "0"]);
    const url = String((await waitForLog(cli, (e) => e.msg === "metrics listening")).url);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, "loopback unless --metrics-host says otherwise");
    const clients = [await connect(cli.url), await connect(cli.url), await connect(cli.url)];
    for (let i = 0; i < 2; i++) assert.equal(sample((await get(url)).body, "conduit_connections"), clients.length);
    cli.child.kill("SIGTERM");
    for (const client of clients) assert.equal((await client.closed).code, 1001);
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
  });
});
