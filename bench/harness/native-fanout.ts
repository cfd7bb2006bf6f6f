/**
 * The fan-out latency scenario's native load generator (`bench/native/fanout-client.c`): built with
 * the system's C compiler on first use, run pinned to the load CPU, driven by one command line per
 * round on its stdin, answering one JSON line per round on its stdout.
 *
 * It exists because the figure the scenario measures, the time until the LAST member has a
 * broadcast, includes the load generator's time to receive every copy: node's receive path costs
 * about as much per message as the servers' send path, so with a node reader the figure followed
 * the reader. The C reader costs one epoll event and one read per message. docs/BENCHMARKS.md,
 * "The fan-out load generator", has the measures. `--receiver node` keeps the node reader.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { FanoutResult, ServerKind } from "../shared/messages.js";
import { log } from "./log.js";
import { ROOT, track } from "./processes.js";

const SOURCE = join(ROOT, "bench/native/fanout-client.c");
const BUILD_DIR = join(ROOT, "node_modules/.cache/conduit-bench");
const BINARY = join(BUILD_DIR, "fanout-client");

/** How many connections may be between connect and room membership at once. */
const CONCURRENCY = 100;

/**
 * Compiles the client unless an up-to-date binary is there; returns its path.
 *
 * @throws Error naming the missing compiler (and `--receiver node`) when `cc` is not installed
 */
export function buildNativeFanout(): string {
  const built = statOrUndefined(BINARY);
  if (built !== undefined && built.mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY;
  mkdirSync(BUILD_DIR, { recursive: true });
  try {
    execFileSync("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c11", "-o", BINARY, SOURCE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? String(error);
    throw new Error(`could not build the native fan-out client (install gcc, or run with --receiver node): ${detail}`);
  }
  return BINARY;
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** What a round needs; the same fields as the node load processes' `fanout` command. */
export interface NativeFanoutRound {
  startAt: number;
  warmup: number;
  broadcasts: number;
  intervalMs: number;
  graceMs: number;
}

/** One running native client: every connection of a fan-out scenario, room members once open. */
export class NativeFanoutClient {
  readonly pid: number;
  readonly #process: ChildProcess;
  readonly #lines: string[] = [];
  #waiting: ((line: string) => void) | undefined;
  #stderr = "";
  readonly #exit: Promise<void>;
  #exited = false;

  private constructor(binary: string, args: string[], cpu: number | undefined) {
    const [command, ...argv] = cpu === undefined ? [binary, ...args] : ["taskset", "--cpu-list", String(cpu), binary, ...args];
    const child = spawn(command!, argv, { stdio: ["pipe", "pipe", "pipe"] });
    track(child);
    if (child.pid === undefined) throw new Error(`could not spawn ${binary}`);
    this.pid = child.pid;
    this.#process = child;
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf("\n")) !== -1) {
        this.#lines.push(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
      }
      this.#deliver();
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.#stderr = (this.#stderr + chunk).slice(-2000)));
    this.#exit = new Promise((resolve) =>
      child.once("exit", () => {
        this.#exited = true;
        this.#deliver();
        resolve();
      }),
    );
  }

  /**
   * Starts the client against `url` with `count` connections and resolves once every one has
   * joined `room`.
   */
  static async open(options: { url: string; kind: ServerKind; count: number; room: string; cpu: number | undefined; timeoutMs: number }): Promise<NativeFanoutClient> {
    const { hostname, port } = new URL(options.url);
    const protocol = options.kind === "socketio" ? "socketio" : "ws";
    const client = new NativeFanoutClient(
      buildNativeFanout(),
      [hostname, port, protocol, String(options.count), String(CONCURRENCY), options.room],
      options.cpu,
    );
    log(`native fan-out client started: pid ${client.pid}, ${options.count} connections`);
    try {
      const ready = await client.#next<{ ready: true; opened: number }>(options.timeoutMs);
      if (ready.opened !== options.count) throw new Error(`native client opened ${ready.opened} of ${options.count}`);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** Runs one round; resolves with what the node load processes report for the same command. */
  fanout(round: NativeFanoutRound, timeoutMs: number): Promise<FanoutResult> {
    const { startAt, warmup, broadcasts, intervalMs, graceMs } = round;
    this.#process.stdin!.write(`fanout ${startAt.toFixed(4)} ${warmup} ${broadcasts} ${intervalMs} ${graceMs}\n`);
    return this.#next<FanoutResult>(timeoutMs);
  }

  /** Ends the client (its connections close with it). */
  async close(): Promise<void> {
    this.#process.stdin!.end();
    const timer = setTimeout(() => this.#process.kill("SIGKILL"), 5_000);
    await this.#exit;
    clearTimeout(timer);
  }

  /** The next JSON line; rejects with the client's own error, its exit, or the timeout. */
  #next<T>(timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`native fan-out client: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting = (line) => {
        clearTimeout(timer);
        if (line === "") return reject(new Error(`native fan-out client exited: ${this.#stderr.trim()}`));
        const parsed = JSON.parse(line) as T | { error: string };
        if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
          return reject(new Error(`native fan-out client: ${parsed.error}`));
        }
        resolve(parsed as T);
      };
      this.#deliver();
    });
  }

  #deliver(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    const line = this.#lines.shift() ?? (this.#exited ? "" : undefined);
    if (line === undefined) return;
    this.#waiting = undefined;
    waiting(line);
  }
}
