/**
 * Starting, pinning, talking to and killing the benchmark's child processes. Every child is recorded
 * the moment it is spawned and killed when the harness exits for any reason (normal end, error,
 * Ctrl-C), so a failed run leaves no server or load generator behind.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Ready, Reply, Request } from "../shared/messages.js";
import { compiledScript } from "./compile.js";

/** The repository root (children run from here so that `tsx` and `node_modules` resolve). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const live = new Set<ChildProcess>();
/**
 * Processes we did not spawn ourselves but must not leave behind (the CLI's cluster workers), each
 * with a string its command line contains, so that a pid the kernel has since reused is left alone.
 */
const livePids = new Map<number, string>();

/** SIGKILLs process `pid` if it is still running and its command line contains `marker`. */
export function killIfRunning(pid: number, marker: string): void {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) return;
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
  for (const [pid, marker] of livePids) killIfRunning(pid, marker);
  livePids.clear();
}

/** Kills `child` with the others when the harness exits; forgets it once it has exited. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/**
 * Kills process `pid` (a grandchild) when the harness exits, until {@link untrackPid}, if its
 * command line still contains `marker` then.
 */
export function trackPid(pid: number, marker: string): void {
  livePids.set(pid, marker);
}

/** Forgets a pid recorded with {@link trackPid} (it has exited). */
export function untrackPid(pid: number): void {
  livePids.delete(pid);
}

/** Restricts process `pid` and all its threads to the CPUs in `cpuList` (e.g. "1" or "0-1"). */
export function setAffinity(pid: number, cpuList: string): void {
  execFileSync("taskset", ["--all-tasks", "--cpu-list", "--pid", cpuList, String(pid)], { stdio: "ignore" });
}

let cleanupInstalled = false;

/** Kills every child when this process exits or is interrupted. Call once, before spawning. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, killing child processes\n`);
      killAll();
      process.exit(130);
    });
  }
}

/** How a child is started. */
export interface ChildOptions {
  /**
   * Module to run, relative to the repository root: a .ts file, run from its compiled JavaScript
   * when the harness compiled it (`compile.ts`), through tsx otherwise.
   */
  script: string;
  /** Arguments after the script (`process.argv[2]` onwards). */
  args?: string[];
  /** The CPU to pin the process to with `taskset`; undefined leaves it unpinned. */
  cpu: number | undefined;
  /** Extra node flags (`--expose-gc`, heap size). */
  nodeArgs?: string[];
  /**
   * A command node runs under, in front of it (`valgrind --tool=callgrind …`). It must keep node's pid,
   * as valgrind does (it runs the program in its own process) and taskset does (it execs).
   */
  prefix?: string[];
  /** A label for error messages and `--verbose` output. */
  label: string;
  /** Forward the child's stderr to ours. */
  verbose: boolean;
}

/** A running child process with a request/reply channel. */
export class Child {
  readonly pid: number;
  readonly label: string;
  /** The first message or line the child sent: its port, for a server. */
  readonly ready: Promise<Ready>;
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #seq = 0;
  #stderr = "";
  #exited = false;
  readonly #exit: Promise<void>;

  constructor(options: ChildOptions) {
    const compiled = compiledScript(options.script);
    const node = [
      ...(options.prefix ?? []),
      process.execPath,
      ...(options.nodeArgs ?? []),
      ...(compiled === undefined ? ["--import", "tsx", options.script] : [compiled]),
      ...(options.args ?? []),
    ];
    const [command, ...argv] = options.cpu === undefined ? node : ["taskset", "--cpu-list", String(options.cpu), ...node];
    const child = spawn(command!, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "ipc"] });
    live.add(child);
    this.#process = child;
    this.label = options.label;
    if (child.pid === undefined) throw new Error(`${options.label}: could not spawn ${command}`);
    // taskset execs node in place, valgrind runs it in its own process: the pid is node's.
    this.pid = child.pid;

    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
      if (options.verbose) process.stderr.write(`[${this.label}] ${chunk}`);
    });
    // A send on a channel that just closed is reported here; the exit handler below rejects the request.
    child.on("error", (error) => (this.#stderr += `\n${error.message}`));
    this.#exit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        this.#exited = true;
        const error = new Error(`${this.label} exited (${signal ?? code})${this.#stderr ? `: ${this.#stderr.trim()}` : ""}`);
        for (const pending of this.#pending.values()) pending.reject(error);
        this.#pending.clear();
        resolve();
      });
    });

    this.ready = new Promise<Ready>((resolve, reject) => {
      let stdout = "";
      const onLine = (chunk: string): void => {
        stdout += chunk;
        const line = stdout.split("\n").find((candidate) => candidate.startsWith('{"ready":true'));
        if (line !== undefined) resolve(JSON.parse(line) as Ready);
      };
      child.stdout!.setEncoding("utf8").on("data", onLine);
      child.on("message", (message: Ready | Reply) => {
        if ("ready" in message) return resolve(message);
        const pending = this.#pending.get(message.seq);
        if (pending === undefined) return;
        this.#pending.delete(message.seq);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`${this.label}: ${message.error}`));
      });
      void this.#exit.then(() => reject(new Error(`${this.label} exited before it was ready: ${this.#stderr.trim()}`)));
    });
  }

  /** Whether the process has exited (by itself or killed). */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last few thousand characters the process wrote to stderr (why it exited, when it crashed). */
  get stderrTail(): string {
    return this.#stderr.trim();
  }

  /** Sends a command and resolves with the child's result; rejects on error, exit or timeout. */
  request<R>(command: object, timeoutMs: number): Promise<R> {
    const seq = ++this.#seq;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new Error(`${this.label}: no answer to ${JSON.stringify(command).slice(0, 80)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as R);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#process.send({ seq, command } satisfies Request<object>);
    });
  }

  /** Kills the process and resolves when it has exited. */
  kill(): Promise<void> {
    this.#process.kill("SIGKILL");
    return this.#exit;
  }

  /**
   * Lets the process exit by itself (children exit when their IPC channel closes), which a CPU
   * profile needs to be written; kills it if it has not exited within `timeoutMs`.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#process.connected) this.#process.disconnect();
    const timer = setTimeout(() => this.#process.kill("SIGKILL"), timeoutMs);
    await this.#exit;
    clearTimeout(timer);
  }
}
