/**
 * The latency scenarios' native load generator (`bench/native/latency-client.c`): built with the
 * system's C compiler on first use, run pinned to the load CPU, driven by one command line per round
 * on its stdin, answering one JSON line per round on its stdout. It runs the fan-out latency and the
 * echo scenarios.
 *
 * It exists because the fan-out figure, the time until the LAST member has a broadcast, includes the
 * load generator's time to receive every copy: node's receive path costs about as much per message
 * as the servers' send path, so with a node reader the figure would follow the reader. The C client
 * costs one epoll event and one read per message, and adds no timer or garbage-collector jitter to
 * an echo's round trip (docs/BENCHMARKS.md, "The C latency client").
 * `--latency-client node` keeps the node load processes.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ClientKind, EchoResult, FanoutResult } from "../shared/messages.js";
import { log } from "./log.js";
import { ROOT, track } from "./processes.js";

const SOURCE = join(ROOT, "bench/native/latency-client.c");
const BUILD_DIR = join(ROOT, "node_modules/.cache/conduit-bench");
const BINARY = join(BUILD_DIR, "latency-client");

/** How many connections may be between connect and room membership at once. */
const CONCURRENCY = 100;

/**
 * Compiles the client unless an up-to-date binary is there; returns its path.
 *
 * @throws Error naming the missing compiler (and `--latency-client node`) when `cc` is not installed
 */
export function buildNativeClient(): string {
  const built = statSync(BINARY, { throwIfNoEntry: false });
  if (built !== undefined && built.mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY;
  mkdirSync(BUILD_DIR, { recursive: true });
  try {
    execFileSync("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c11", "-o", BINARY, SOURCE, "-lm"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
  } catch (error) {
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? String(error);
    throw new Error(`could not build the native latency client (install gcc, or run with --latency-client node): ${detail}`);
  }
  return BINARY;
}

/** What a fan-out round needs; the same fields as the node load processes' `fanout` command. */
export interface NativeFanoutRound {
  startAt: number;
  warmup: number;
  broadcasts: number;
  intervalMs: number;
  graceMs: number;
}

/** What an echo round needs; the same fields as the node load processes' `echo` command. */
export interface NativeEchoRound {
  startAt: number;
  warmupMs: number;
  durationMs: number;
  ratePerClient: number;
  graceMs: number;
}

/** One running native client: every connection of a scenario (room members, when it has a room). */
export class NativeClient {
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
      for (let end = buffered.indexOf("\n"); end !== -1; end = buffered.indexOf("\n")) {
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
   * Starts the client against `url` with `count` connections and resolves once every one is open
   * and, with a `room`, has joined it.
   */
  static async open(options: {
    url: string;
    /** The protocol the server speaks (a `RunningServer`'s `clientKind`). */
    clientKind: ClientKind;
    count: number;
    room: string | undefined;
    cpu: number | undefined;
    timeoutMs: number;
  }): Promise<NativeClient> {
    const { hostname, port } = new URL(options.url);
    const protocol = options.clientKind === "socketio" ? "socketio" : "ws";
    const client = new NativeClient(
      buildNativeClient(),
      [hostname, port, protocol, String(options.count), String(CONCURRENCY), options.room ?? "-"],
      options.cpu,
    );
    log(`native latency client started: pid ${client.pid}, ${options.count} connections`);
    try {
      const ready = await client.#next<{ ready: true; opened: number }>(options.timeoutMs);
      if (ready.opened !== options.count) throw new Error(`native client opened ${ready.opened} of ${options.count}`);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** Runs one fan-out round; resolves with what the node load processes report for the same command. */
  fanout(round: NativeFanoutRound, timeoutMs: number): Promise<FanoutResult> {
    const { startAt, warmup, broadcasts, intervalMs, graceMs } = round;
    this.#process.stdin!.write(`fanout ${startAt.toFixed(4)} ${warmup} ${broadcasts} ${intervalMs} ${graceMs}\n`);
    return this.#next<FanoutResult>(timeoutMs);
  }

  /** Runs one echo round; resolves with what the node load processes report for the same command. */
  echo(round: NativeEchoRound, timeoutMs: number): Promise<EchoResult> {
    const { startAt, warmupMs, durationMs, ratePerClient, graceMs } = round;
    this.#process.stdin!.write(`echo ${startAt.toFixed(4)} ${warmupMs} ${durationMs} ${ratePerClient} ${graceMs}\n`);
    return this.#next<EchoResult>(timeoutMs);
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
        reject(new Error(`native latency client: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting = (line) => {
        clearTimeout(timer);
        if (line === "") return reject(new Error(`native latency client exited: ${this.#stderr.trim()}`));
        const parsed = JSON.parse(line) as T | { error: string };
        if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
          return reject(new Error(`native latency client: ${parsed.error}`));
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
