/**
 * Processes the harness starts that are not its own scripts: a private `redis-server` for the cluster
 * scenarios, and the standalone `conduit-ws` CLI (`dist/cli/main.js`). Both announce themselves with
 * a line of output rather than over IPC; both are killed with the other children if the harness ends.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { childPids } from "../shared/procfs.js";
import { freePort, privateRedisArgs, REDIS_READY, redisServerAvailable } from "../shared/redis-server.js";
import { killIfRunning, ROOT, track, trackPid, untrackPid } from "./processes.js";

const READY_TIMEOUT_MS = 30_000;

/** A running process started from a binary, with a way to stop it. */
export interface External {
  readonly pid: number;
  /** The match of the ready pattern in its output. */
  readonly ready: RegExpExecArray;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs: number): Promise<void>;
}

interface ExternalOptions {
  command: string;
  args: string[];
  /** Pin to this CPU with `taskset`; undefined leaves it unpinned. */
  cpu: number | undefined;
  label: string;
  /** The output line (stdout) that says it is ready; its match is returned. */
  ready: RegExp;
  verbose: boolean;
}

/** Starts a process and resolves when its stdout matched `ready`; rejects (and kills it) otherwise. */
function startExternal(options: ExternalOptions): Promise<External> {
  const [command, argv] =
    options.cpu === undefined
      ? [options.command, options.args]
      : ["taskset", ["--cpu-list", String(options.cpu), options.command, ...options.args]];
  const child = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const keep = (chunk: string): void => {
    output = (output + chunk).slice(-4000);
    if (options.verbose) process.stderr.write(`[${options.label}] ${chunk}`);
  };
  child.stderr!.setEncoding("utf8").on("data", keep);
  return new Promise<External>((resolve, reject) => {
    let settled = false;
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${options.label} ${reason}: ${output.trim()}`));
    };
    const timer = setTimeout(() => fail(`was not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once("error", (error) => fail(`could not be started (${error.message})`));
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code}) before it was ready`));
    let stdout = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      keep(chunk);
      stdout += chunk;
      const match = settled ? null : options.ready.exec(stdout);
      if (match === null || child.pid === undefined) return;
      settled = true;
      clearTimeout(timer);
      // Keep reading (so that a chatty process never blocks on a full pipe), without keeping it all.
      child.stdout!.removeAllListeners("data").on("data", keep);
      resolve({
        pid: child.pid,
        ready: match,
        stop: async (timeoutMs) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill("SIGTERM");
          const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}

/** A private redis-server. */
export interface BenchRedis extends External {
  url: string;
}

/**
 * Starts a redis-server on a free loopback port, without persistence, so that no run sees another's
 * keys. A port taken between the probe and Redis's bind is retried.
 */
export async function startRedis(cpu: number | undefined, verbose: boolean): Promise<BenchRedis> {
  if (!redisServerAvailable()) throw new Error("redis-server is not installed (apt-get install redis-server)");
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      const redis = await startExternal({
        command: "redis-server",
        args: privateRedisArgs(port),
        cpu,
        label: "redis-server",
        ready: REDIS_READY,
        verbose,
      });
      return { ...redis, url: `redis://127.0.0.1:${port}` };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** `conduit-ws --workers N`: the primary, and its workers' pids. */
export interface BenchCli extends External {
  url: string;
  workerPids: number[];
}

/** How the CLI is started. */
export interface CliOptions {
  redisUrl: string;
  workers: number;
  maxConnections: number;
  verbose: boolean;
}

/**
 * Starts the standalone server from `dist/cli/main.js` on a free port, unpinned, and finds its
 * workers: the primary prints its ready line only once every worker listens, so at that moment its
 * children are exactly the workers. They are recorded so that they are killed with the harness even
 * if the primary is killed first (they would otherwise notice only when their IPC channel closes).
 */
export async function startCli(options: CliOptions): Promise<BenchCli> {
  const main = join(ROOT, "dist/cli/main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing; run "npm run build" first`);
  const cli = await startExternal({
    command: process.execPath,
    args: [
      main,
      ...["--port", "0", "--host", "127.0.0.1", "--workers", String(options.workers), "--redis", options.redisUrl],
      ...["--max-connections", String(options.maxConnections), "--rate-limit", "0"],
    ],
    cpu: undefined,
    label: "conduit-ws cli",
    ready: /conduit-ws listening on (ws:\/\/\S+)/,
    verbose: options.verbose,
  });
  const workerPids = childPids(cli.pid);
  for (const pid of workerPids) trackPid(pid, main);
  const stop = async (timeoutMs: number): Promise<void> => {
    await cli.stop(timeoutMs);
    // The primary exits after its workers; a worker still here was left behind by a killed primary.
    for (const pid of workerPids) {
      killIfRunning(pid, main);
      untrackPid(pid);
    }
  };
  if (workerPids.length !== options.workers) {
    await stop(5_000);
    throw new Error(`conduit-ws --workers ${options.workers}: found ${workerPids.length} worker processes`);
  }
  return { pid: cli.pid, ready: cli.ready, url: cli.ready[1]!, workerPids, stop };
}

/** The standalone server as the api scenario runs it: one process, the server API on its public port. */
export interface ApiCli extends External {
  /** `ws://HOST:PORT/ws`, for the members. */
  url: string;
  /** `http://HOST:PORT/api/publish`. */
  publishUrl: string;
}

/** How the api scenario's CLI is started. */
export interface ApiCliOptions {
  apiKey: string;
  /** A `--config` file (the namespace table), or none: every room open. */
  configFile: string | undefined;
  /** The CPU to pin it to, as the harness pins every server under test. */
  cpu: number | undefined;
  verbose: boolean;
}

/**
 * Starts `conduit-ws --api-key KEY --rate-limit 0` from `dist/cli/main.js` on a free loopback port:
 * what a user deploys to publish from a backend (one process, every other flag at its default, the
 * API on the public port). No rate limit, as in every other scenario: the members' publisher sends
 * faster than a person would, and the limit would refuse it.
 */
export async function startApiCli(options: ApiCliOptions): Promise<ApiCli> {
  const main = join(ROOT, "dist/cli/main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing; run "npm run build" first`);
  const cli = await startExternal({
    command: process.execPath,
    args: [
      main,
      ...["--port", "0", "--host", "127.0.0.1", "--rate-limit", "0", "--api-key", options.apiKey],
      ...(options.configFile === undefined ? [] : ["--config", options.configFile]),
    ],
    cpu: options.cpu,
    label: "conduit-ws cli (api)",
    ready: /conduit-ws listening on (ws:\/\/(\S+?)\/\S*)/,
    verbose: options.verbose,
  });
  return { ...cli, url: cli.ready[1]!, publishUrl: `http://${cli.ready[2]!}/api/publish` };
}
