/**
 * deploy/nginx.conf, tried for real: nginx in front of three node processes joined over Redis.
 * Clients connect through nginx, are spread over the nodes, and see each other's room broadcasts; when
 * a node is killed, its clients reconnect through the same URL and land on a surviving node.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RedisAdapter } from "../src/adapter/redis/index.js";
import { waitUntil } from "./adapter-contract.js";
import { connect, type TestClient } from "./helpers/client.js";
import { startNode, stopNode, type NodeProcess } from "./helpers/cluster.js";
import { freePort, redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";
import { startServer, type TestServer } from "./helpers/server.js";

const NGINX = "/usr/sbin/nginx";

function nginxSkipReason(): string | false {
  if (existsSync(NGINX) && spawnSync(NGINX, ["-v"]).status === 0) return false;
  if (process.env.CI === "true") throw new Error("nginx is not installed, and CI must try deploy/nginx.conf");
  const reason = "nginx is not installed: SKIPPING the nginx test (apt-get install nginx-light)";
  console.warn(`\n!!! ${reason}\n`);
  return reason;
}

const skip = redisSkipReason() || nginxSkipReason();

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("nginx in front of three nodes (deploy/nginx.conf)", { skip }, () => {
  let redis: TestRedis;
  let nodes: NodeProcess[];
  let observer: TestServer;
  let nginx: ChildProcess;
  let prefix: string;
  let url: string;
  const clients: TestClient[] = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([startNode(redis.url), startNode(redis.url), startNode(redis.url)]);
    observer = await startServer({ adapter: new RedisAdapter({ url: redis.url, heartbeatInterval: 100, nodeTimeout: 1000 }) });
    const port = await freePort();
    prefix = mkdtempSync(join(tmpdir(), "conduit-nginx-"));
    const config = readFileSync("deploy/nginx.conf", "utf8")
      .replace("listen 127.0.0.1:8080;", `listen 127.0.0.1:${port};`)
      .replace("127.0.0.1:8081", `127.0.0.1:${nodes[0]!.port}`)
      .replace("127.0.0.1:8082", `127.0.0.1:${nodes[1]!.port}`)
      .replace("127.0.0.1:8083", `127.0.0.1:${nodes[2]!.port}`)
      .replace("worker_processes auto;", "worker_processes 1;")
      .replace("http {", `http {\n  access_log off;\n  client_body_temp_path ${prefix}/body;\n  proxy_temp_path ${prefix}/proxy;`);
    writeFileSync(join(prefix, "nginx.conf"), config);
    nginx = spawn(
      NGINX,
      ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-g", `daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log;`],
      { stdio: "inherit" },
    );
    // nginx prints nothing when ready; poll its port (bounded).
    await waitUntil(() => accepting(port));
    url = `ws://127.0.0.1:${port}/ws`;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    if (nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx.once("exit", resolve));
      nginx.kill("SIGQUIT");
      await exited;
    }
    await Promise.all(nodes.map((n) => stopNode(n)));
    await observer.close();
    await redis.stop();
    rmSync(prefix, { recursive: true, force: true });
  });

  it("spreads clients over the nodes, and room broadcasts reach all of them exactly once", async () => {
    for (let i = 0; i < 6; i++) clients.push(await connect(url));
    for (const c of clients) await c.request("join_room", { room: "lb" });
    await waitUntil(async () => (await observer.server.nodes()).filter((n) => n.clients >= 2).length === 3);
    await clients[0]!.request("broadcast", { room: "lb", type: "via-nginx", payload: 1 });
    await clients[0]!.request("broadcast", { room: "lb", type: "end", payload: null });
    await Promise.all(clients.map((c) => c.next("end")));
    assert.deepEqual(
      clients.map((c) => c.received.filter((m) => m.type === "via-nginx").length),
      [1, 1, 1, 1, 1, 1],
    );
  });

  it("when a node is killed, its clients reconnect through nginx to a surviving node", async () => {
    const victim = nodes[2]!;
    await stopNode(victim, "SIGKILL");
    // The victim held two of the six clients (two per node, checked above); their connections end.
    await waitUntil(() => clients.filter((c) => c.ws.readyState === c.ws.CLOSED).length === 2);
    const survivors = clients.filter((c) => c.ws.readyState === c.ws.OPEN);
    assert.equal(survivors.length, 4);
    const reconnected: TestClient[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await connect(url);
      await c.request("join_room", { room: "lb" });
      reconnected.push(c);
    }
    clients.push(...reconnected);
    await survivors[0]!.request("broadcast", { room: "lb", type: "after-kill", payload: 2 });
    for (const c of [...survivors, ...reconnected]) assert.deepEqual((await c.next("after-kill")).data, 2);
    nodes = nodes.slice(0, 2);
  });
});
