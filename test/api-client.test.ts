/**
 * The typed backend client (`@conduit/websocket/api`) against a real server: every operation, the
 * error type for refusals, timeouts and unreachable servers, and examples/backend-publish.ts run as
 * a user runs it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ConduitApi, ConduitApiError } from "../src/api/index.js";
import { parseConfig, type CliConfig } from "../src/cli/config.js";
import { serve, type RunningServer } from "../src/cli/serve.js";
import { silentLogger } from "../src/logger.js";
import { connect, type TestClient } from "./helpers/client.js";

const KEY = "client-api-key-0123456789abcdef";
const root = fileURLToPath(new URL("..", import.meta.url));

describe("ConduitApi against a real server", () => {
  let running: RunningServer;
  let api: ConduitApi;
  let base: string;
  const clients: TestClient[] = [];

  before(async () => {
    const outcome = parseConfig(["--port", "0", "--host", "127.0.0.1", "--api-key", KEY], {});
    running = await serve((outcome as { config: CliConfig }).config, silentLogger);
    base = running.url.replace(/^ws:/, "http:").replace(/\/ws$/, "");
    api = new ConduitApi({ url: `${base}/`, apiKey: KEY });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await running.stop();
  });

  async function open(): Promise<TestClient> {
    const client = await connect(running.url);
    clients.push(client);
    return client;
  }

  it("publishes, broadcasts, sends, lists presence, reports info and disconnects", async () => {
    const [member, other] = [await open(), await open()];
    await member.request("join_room", { room: "desk 1" });
    assert.deepEqual(await api.publish("desk 1", "ticket", { id: 9 }), {});
    assert.deepEqual(await member.next("ticket"), { type: "ticket", data: { id: 9 } });

    await api.broadcast("maintenance");
    for (const client of [member, other]) assert.deepEqual(await client.next("maintenance"), { type: "maintenance", data: null });

    const { data } = await other.request("status");
    await api.send({ clientId: data.client_id }, "private", [1, 2]);
    assert.deepEqual(await other.next("private"), { type: "private", data: [1, 2] });

    const presence = await api.presence("desk 1");
    assert.equal(presence.room, "desk 1");
    assert.equal(presence.count, 1);
    assert.deepEqual(presence.members, [{ client_id: (await member.request("status")).data.client_id, user_id: null }]);

    const info = await api.info();
    assert.equal(info.connections, 2);
    assert.deepEqual(
      info.nodes.map((n) => n.connections),
      [2],
    );

    await api.disconnect({ clientId: data.client_id }, { reason: "bye" });
    assert.deepEqual(await other.closed, { code: 4003, reason: "bye" });
  });

  it("throws ConduitApiError with the server's status and code", async () => {
    const wrongKey = new ConduitApi({ url: base, apiKey: "not-the-key-0123456789" });
    await assert.rejects(wrongKey.info(), (error: unknown) => {
      assert.ok(error instanceof ConduitApiError);
      assert.equal(error.status, 401);
      assert.equal(error.code, "unauthorized");
      return true;
    });
    await assert.rejects(api.publish("r", "error"), { name: "ConduitApiError", status: 400, code: "reserved_type" });
    await assert.rejects(api.disconnect({ userId: "u" }, { code: 1001 }), { status: 400, code: "invalid_field" });
    await assert.rejects(api.history("r", 10), { status: 501, code: "history_not_enabled" });
  });

  it("runs examples/backend-publish.ts: a member receives the headline and the process exits 0", async () => {
    const member = await open();
    await member.request("join_room", { room: "news:sport" });
    const childEnv: NodeJS.ProcessEnv = { ...process.env, CONDUIT_URL: base, CONDUIT_API_KEY: KEY };
    delete childEnv.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ["--import", "tsx", "examples/backend-publish.ts", "news:sport", "goal"], {
      cwd: root,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const headline = await member.next("headline", 30_000);
    assert.equal(headline.data.text, "goal");
    const [code] = await once(child, "exit");
    assert.equal(code, 0, output);
    assert.match(output, /published to news:sport \(1 members\)/);
  });
});

describe("ConduitApi without an answer", () => {
  let silent: Server;
  let silentUrl: string;

  before(async () => {
    // A real server that reads the request and never answers.
    silent = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });

  after(() => {
    silent.closeAllConnections();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it("fails with code timeout and status 0 after its timeout", async () => {
    const api = new ConduitApi({ url: silentUrl, apiKey: KEY, timeout: 200 });
    const started = Date.now();
    await assert.rejects(api.info(), { name: "ConduitApiError", status: 0, code: "timeout" });
    assert.ok(Date.now() - started < 5000);
  });

  it("fails with code network_error when nothing listens", async () => {
    const closed = createHttpServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const api = new ConduitApi({ url: `http://127.0.0.1:${port}`, apiKey: KEY });
    await assert.rejects(api.broadcast("t"), { name: "ConduitApiError", status: 0, code: "network_error" });
  });

  it("refuses bad options at construction", () => {
    assert.throws(() => new ConduitApi({ url: "ws://x", apiKey: KEY }), TypeError);
    assert.throws(() => new ConduitApi({ url: "http://x", apiKey: "" }), TypeError);
    assert.throws(() => new ConduitApi({ url: "http://x", apiKey: KEY, timeout: 0 }), TypeError);
  });
});
