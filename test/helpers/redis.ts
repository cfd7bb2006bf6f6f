/**
 * A private redis-server for one test file, on a free port, so tests never share state with the
 * machine's Redis or with each other.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { freePort, privateRedisArgs, REDIS_READY, redisServerAvailable } from "../../bench/shared/redis-server.js";

export { freePort };

/** A running redis-server. */
export interface TestRedis {
  url: string;
  port: number;
  /** Stops it (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
}

/**
 * How a Redis test file declares itself: in CI a missing redis-server is a failure; elsewhere the
 * file is skipped with a loud message.
 */
export function redisSkipReason(): string | false {
  if (redisServerAvailable()) return false;
  if (process.env.CI === "true") throw new Error("redis-server is not installed, and CI must run the Redis tests");
  const reason = "redis-server is not installed: SKIPPING the Redis tests (apt-get install redis-server)";
  console.warn(`\n!!! ${reason}\n`);
  return reason;
}

function launch(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", privateRedisArgs(port), { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`redis-server did not start: ${output}`));
    }, 10_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (REDIS_READY.test(output)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${output}`));
    });
  });
}

/** Starts a redis-server on a free port. */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port);
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: async () => {
      await stop();
      child = await launch(port);
    },
  };
}
