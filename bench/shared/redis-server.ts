/**
 * What the benchmark harness and the test suite both need to run a private `redis-server`: whether
 * the binary is there, a free loopback port, and the command line of a server that keeps nothing on
 * disk. Each side starts and stops the process its own way (the harness pins and tracks its
 * children; the tests restart theirs).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";

/** Whether the `redis-server` binary can be run. */
export function redisServerAvailable(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for programs that need a port given to them). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** The arguments of a redis-server on `port`: loopback only, no persistence, so no run sees another's keys. */
export function privateRedisArgs(port: number): string[] {
  return ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"];
}

/** The line a redis-server prints once it accepts connections. */
export const REDIS_READY = /Ready to accept connections/;
