/**
 * Runs the compiled standalone server (`dist/cli/main.js`) as a child process for a test, and small
 * HTTP helpers to talk to it. Every process spawned here is killed when the test file ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

/** The compiled CLI. */
export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
/** The ready line. */
export const READY = /^conduit-ws listening on (ws:\/\/\S+)$/;

/** A running `conduit-ws` child process. */
export interface CliProcess {
  child: ChildProcess;
  /** The URL of the ready line. */
  url: string;
  /** `http://127.0.0.1:PORT` */
  http: string;
  port: number;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** The environment without any variable the CLI reads, so the runner's own settings cannot leak in. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(PORT|HOST|REDIS_URL|CONDUIT_.*)$/.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Spawns the CLI without waiting for anything (for processes that must fail). */
export function spawnCli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Spawns the CLI and resolves once its ready line is printed (rejects if it exits first). */
export async function startCli(args: string[], env: Record<string, string> = {}): Promise<CliProcess> {
  const spawned = spawnCli(args, env);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 20 s; stderr: ${spawned.stderr()}`)), 20_000);
    createInterface({ input: spawned.child.stdout! }).on("line", (line) => {
      const match = READY.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void spawned.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready; stderr: ${spawned.stderr()}`));
    });
  });
  const port = Number(new URL(url).port);
  return { ...spawned, url, port, http: `http://127.0.0.1:${port}` };
}

/** A plain HTTP GET on its own connection (no keep-alive, so nothing outlives the test). */
export function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"]), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** The value of one Prometheus sample, 0 when absent. */
export function sample(metrics: string, name: string, labels = ""): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** One JSON log line of the CLI. */
export interface LogEntry {
  msg: string;
  level: number;
  pid: number;
  [field: string]: unknown;
}

/** The complete JSON log lines the CLI has written to stderr so far. */
export function logEntries(cli: Pick<CliProcess, "stderr">): LogEntry[] {
  return cli
    .stderr()
    .split("\n")
    .filter((line) => line.startsWith("{") && line.endsWith("}"))
    .map((line) => JSON.parse(line) as LogEntry);
}

/** Resolves with the first log entry matching `match`, waiting for new output as it arrives. */
export function waitForLog(cli: CliProcess, match: (entry: LogEntry) => boolean, timeoutMs = 20_000): Promise<LogEntry> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const found = logEntries(cli).find(match);
      if (found === undefined) return;
      cleanup();
      resolve(found);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${cli.stderr()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      cli.child.stderr!.off("data", onData);
    };
    // Runs after the helper's own listener has appended the chunk.
    const onData = (): void => void setImmediate(check);
    cli.child.stderr!.on("data", onData);
    check();
  });
}
