import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { connect } from "./helpers/client.js";
import { startServer, type TestServer } from "./helpers/server.js";

// Debian's python3 with python3-websockets; the `python3` on PATH may be a pyenv without it.
const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./python/client.py", import.meta.url));

/** Why the Python client cannot run here, or undefined when it can. */
function pythonMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", "import websockets; print(websockets.__version__)"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (probe.error) return `${PYTHON} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `${PYTHON} has no websockets module (apt-get install python3-websockets): ${probe.stderr.trim()}`;
  return undefined;
}

/** Runs the script to completion (killed after 30 s) and returns its one JSON line. */
function runClient(url: string): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, url], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`python client exited with ${code ?? signal}:\n${stderr}\n${stdout}`));
      const lines = stdout.trim().split("\n");
      try {
        resolve(JSON.parse(lines.at(-1)!) as Record<string, any>);
      } catch {
        reject(new Error(`python client printed no JSON line:\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe("a client written in Python speaks the wire protocol", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, (server) => {
      server.setAuthHandler((_ctx, token) => (token === "py-token" ? "py-user" : null));
    });
  });
  after(() => t.close());

  it("runs the built-ins, request ids, acks and error replies with Python's websockets", async (ctx) => {
    const missing = pythonMissing();
    if (missing !== undefined) {
      if (process.env.CI === "true") assert.fail(`the Python client test must run in CI: ${missing}`);
      console.warn(`\n*** SKIPPING the Python client test: ${missing} ***\n`);
      ctx.skip(missing);
      return;
    }

    // A Node client in the same room sees the Python client's broadcast and presence.
    const peer = await connect(`${t.url}?token=py-token`);
    const peerId = (await peer.request("status")).data.client_id as string;
    await peer.request("join_room", { room: "py-room" });

    const r = await runClient(`${t.url}?token=py-token`);

    assert.deepEqual(r.pong, { type: "pong", data: { timestamp: "2024-01-01T00:00:00Z" } });
    assert.equal(r.pong_server_time.type, "pong");
    assert.ok(!Number.isNaN(Date.parse(r.pong_server_time.data.timestamp)));
    assert.deepEqual(r.echo, { type: "echo", data: { original: { n: [1, "two", null], ok: true } } });
    assert.deepEqual(r.room_joined, { type: "room_joined", data: { room: "py-room" } });
    assert.deepEqual(r.broadcast_copy, { type: "chat", data: { text: "hi from python" } });

    const status = r.status.data;
    assert.deepEqual(Object.keys(status).sort(), [
      "client_id",
      "connected_at",
      "connection_duration",
      "last_heartbeat",
      "rooms",
      "user_id",
    ]);
    assert.equal(status.user_id, "py-user");
    assert.ok(!Number.isNaN(Date.parse(status.connected_at)));
    assert.ok(!Number.isNaN(Date.parse(status.last_heartbeat)));
    assert.match(status.connection_duration, /^(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)$/);
    assert.deepEqual(status.rooms, ["py-room"]);

    assert.deepEqual(r.echo_with_id, { type: "echo", data: { original: "with id" }, id: "py-1" });
    assert.deepEqual(r.broadcast_ack, { type: "ack", id: "py-2" });
    assert.deepEqual(r.broadcast_copy_2, { type: "chat", data: 2 }, "the broadcast copy carries no id");
    assert.equal(r.presence.type, "presence");
    assert.equal(r.presence.id, "py-3");
    assert.equal(r.presence.data.count, 2);
    assert.deepEqual(
      r.presence.data.members.map((m: { client_id: string; user_id: string }) => m.user_id),
      ["py-user", "py-user"],
    );
    assert.ok(r.presence.data.members.some((m: { client_id: string }) => m.client_id === peerId));
    assert.equal(r.bad_json.type, "error");
    assert.equal(r.bad_json.data.code, "invalid_json");
    assert.equal(typeof r.bad_json.data.message, "string");
    assert.equal(r.unknown_type.type, "error");
    assert.equal(r.unknown_type.data.code, "unknown_type");
    assert.deepEqual(r.pong_after_errors, { type: "pong", data: { timestamp: "after-errors" }, id: "py-5" });
    assert.deepEqual(r.room_left, { type: "room_left", data: { room: "py-room" }, id: "py-6" });
    assert.deepEqual(r.unasked, [], "nothing the Python client did not ask for reached it");

    // The Node peer saw the Python client arrive, talk and leave.
    assert.equal((await peer.next("member_joined")).data.client_id, status.client_id);
    assert.deepEqual(await peer.next("chat"), { type: "chat", data: { text: "hi from python" } });
    assert.deepEqual(await peer.next("chat"), { type: "chat", data: 2 });
    assert.equal((await peer.next("member_left")).data.client_id, status.client_id);
    await peer.close();
  });
});
