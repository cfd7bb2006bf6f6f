/**
 * `npm run bench:instructions -- [conduit|ws] [connections]`: the user-space instructions a server
 * executes per accepted connection, counted by valgrind's callgrind. CPU time per connection moves
 * by 10 % and more between identical runs on a shared virtual machine; an instruction count does not
 * depend on what else the machine does. It still varies by a few percent between runs, because V8
 * compiles and collects garbage on its own schedule: run it several times. Kernel time (the socket
 * system calls, the same for every server) is not counted.
 *
 * The server runs under callgrind (about 50 times slower), unpinned; a load process (not under
 * valgrind) opens 1,000 connections twice and closes them, so that the server's code is compiled,
 * the server collects its garbage and idles for 2 s, then the counters are zeroed, `connections`
 * more are opened, and the counters are dumped. Garbage collection during those connections counts
 * (mostly on V8's helper threads), since retaining more per connection costs that.
 *
 * @module
 */
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child, installCleanup } from "./harness/processes.js";
import { now } from "./shared/clock.js";

const SCRIPTS = { conduit: "bench/servers/conduit.ts", ws: "bench/servers/ws-hub.ts" } as const;
const kind = (process.argv[2] ?? "conduit") as keyof typeof SCRIPTS;
const connections = Number(process.argv[3] ?? 2000);
if (!(kind in SCRIPTS) || !Number.isInteger(connections) || connections < 1) {
  process.stderr.write("usage: npm run bench:instructions -- [conduit|ws] [connections]\n");
  process.exit(2);
}
try {
  execFileSync("valgrind", ["--version"], { stdio: "ignore" });
} catch {
  process.stderr.write("bench:instructions needs valgrind (apt-get install valgrind)\n");
  process.exit(2);
}

installCleanup();
const dir = mkdtempSync(join(tmpdir(), "conduit-callgrind-"));
const server = spawn(
  "valgrind",
  [
    "--tool=callgrind",
    "--separate-threads=yes",
    `--callgrind-out-file=${join(dir, "cg.%p")}`,
    process.execPath,
    "--expose-gc",
    "--import",
    "tsx",
    SCRIPTS[kind],
  ],
  { stdio: ["ignore", "pipe", "inherit", "ipc"] },
);
const port = await new Promise<number>((resolve, reject) => {
  server.once("exit", (code) => reject(new Error(`server under valgrind exited (${code})`)));
  server.stdout!.on("data", (chunk: Buffer) => {
    const match = /"port":(\d+)/.exec(chunk.toString());
    if (match) resolve(Number(match[1]));
  });
});
/** Asks the server (bench/servers/child.ts) to collect garbage; resolves with its reply. */
function collectGarbage(): Promise<void> {
  return new Promise((resolve) => {
    server.once("message", () => resolve());
    server.send({ seq: 1, command: { op: "gc" } });
  });
}
const load = new Child({ script: "bench/load/worker.ts", cpu: undefined, label: "load", verbose: true });
await load.ready;
const url = `ws://127.0.0.1:${port}/ws`;
const open = (count: number): Promise<unknown> =>
  load.request({ op: "connect", kind: "ws-protocol", url, count, concurrency: 20, startAt: now() }, 900_000);
for (let round = 0; round < 2; round++) {
  await open(1000);
  await load.request({ op: "reset" }, 900_000);
}
// Start from a collected heap, after the closed connections' teardown, so that neither lands in the count.
await collectGarbage();
await new Promise((resolve) => setTimeout(resolve, 2000));
execFileSync("callgrind_control", ["--zero", String(server.pid)], { stdio: "ignore" });
await open(connections);
execFileSync("callgrind_control", ["--dump", String(server.pid)], { stdio: "ignore" });
server.kill("SIGKILL");
await load.kill();

// One file per thread for the dump: thread 1 is node's main thread, the others V8's helpers (garbage
// collection, compilation) and libuv's pool.
const perThread = readdirSync(dir)
  .filter((name) => /^cg\.\d+\.1-\d+$/.test(name))
  .map((name) => {
    const summary = /^summary: (\d+)$/m.exec(readFileSync(join(dir, name), "utf8"));
    return { thread: Number(name.slice(name.lastIndexOf("-") + 1)), instructions: Number(summary?.[1] ?? 0) };
  })
  .sort((a, b) => a.thread - b.thread);
rmSync(dir, { recursive: true, force: true });
const total = perThread.reduce((sum, t) => sum + t.instructions, 0);
const main = perThread.find((t) => t.thread === 1)?.instructions ?? 0;
const per = (n: number): string => Math.round(n / connections).toLocaleString("en-US");
process.stdout.write(
  `${kind}: ${connections} connections; instructions per connection: ${per(total)} in all, ` +
    `${per(main)} on the main thread, ${per(total - main)} on V8's and libuv's helper threads\n`,
);
process.exit(0);
