/**
 * The standalone server's `/metrics` end to end, through the compiled CLI in child processes: type
 * labels stay bounded whatever types clients broadcast, and `--metrics-port` serves the exposition on
 * a listener of its own.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connect } from "./helpers/client.js";
import { get, sample, startCli, waitForLog } from "./helpers/cli.js";

/**
 * Types a client may pick for its broadcasts: many, and long. Short enough that all of them fit the
 * sender's own outbound buffer at once (it is one of the recipients).
 */
const JUNK_TYPES = 110;
const junkType = (i: number): string => `junk-${i}-${"x".repeat(2000)}`;

describe("conduit-ws /metrics", () => {
  it("counts clients' broadcast types under one label, however many and however long", async (t) => {
    const cli = await startCli(["--port", "0", "--host", "127.0.0.1"]);
    t.after(() => cli.child.kill("SIGKILL"));
    const client = await connect(cli.url);
    const before = (await get(`${cli.http}/metrics`)).body;
    for (let i = 0; i < JUNK_TYPES; i++) client.send({ type: "broadcast", data: { type: junkType(i), payload: i } });
    // The sender is one of the recipients of a broadcast to all: its last copy means all were counted.
    await client.next((m) => m.type === junkType(JUNK_TYPES - 1), 10_000);
    client.send({ type: "echo", data: "after the junk" });
    await client.next("echo");

    const after = (await get(`${cli.http}/metrics`)).body;
    assert.ok(!after.includes("junk-"), "no series for a type a client chose");
    assert.ok(after.length < 64 * 1024, `the exposition stays small (${after.length} bytes)`);
    const delta = (name: string, labels: string): number => sample(after, name, labels) - sample(before, name, labels);
    assert.equal(delta("conduit_messages_out_total", '{type="other"}'), JUNK_TYPES);
    assert.equal(delta("conduit_messages_in_total", '{type="broadcast"}'), JUNK_TYPES);
    assert.equal(delta("conduit_messages_out_total", '{type="echo"}'), 1, "the server's own types keep their labels");
    await client.close();
  });

  it("--metrics-port serves /metrics on its own listener, which stays up while the server drains", async () => {
    const cli = await startCli(["--port", "0", "--host", "127.0.0.1", "--metrics-port", "0", "--metrics-host", "127.0.0.1"]);
    const listening = await waitForLog(cli, (entry) => entry.msg === "metrics listening");
    const url = String(listening.url);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(new URL(url).port, String(cli.port));

    const client = await connect(cli.url);
    await client.request("join_room", { room: "scraped" });
    const scrape = await get(url);
    assert.equal(scrape.status, 200);
    assert.match(scrape.type, /^text\/plain/);
    assert.equal(sample(scrape.body, "conduit_rooms"), 1);
    assert.ok(sample(scrape.body, "conduit_connections") >= 1);
    assert.equal((await get(url.replace(/\/metrics$/, "/healthz"))).status, 404, "only /metrics there");

    cli.child.kill("SIGTERM");
    assert.equal((await client.closed).code, 1001);
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    await assert.rejects(get(url), "closed after the shutdown");
  });
});
