/**
 * `npm run bench:instructions -- [conduit|ws] [connections]`: the user-space instructions a server
 * executes per accepted connection, counted by valgrind's callgrind. CPU time per connection moves
 * between identical runs on a shared virtual machine; an instruction count does not depend on what
 * else the machine does. It still varies a little between runs, because V8 compiles and collects
 * garbage on its own schedule: run it several times. Kernel time (the socket
 * system calls, the same for every server) is not counted.
 *
 * The server runs under callgrind (many times slower than natively), unpinned; a load process (not under
 * valgrind) opens 1,000 connections twice and closes them, so that the server's code is compiled,
 * the server collects its garbage and idles for 2 s, then the counters are zeroed, `connections`
 * more are opened, and the counters are dumped. Garbage collection during those connections counts
 * (mostly on V8's helper threads), since retaining more per connection costs that.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child, installCleanup } from "./harness/processes.js";
import { SCRIPTS } from "./harness/session.js";
import { now } from "./shared/clock.js";

// The two servers that speak the SPEC's protocol, which the raw load client uses.
const KINDS = ["conduit", "ws"] as const;
const kind = (process.argv[2] ?? "conduit") as (typeof KINDS)[number];
const connections = Number(process.argv[3] ?? 2000);
if (!KINDS.includes(kind) || !Number.isInteger(connections) || connections < 1) {
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
const server = new Child({
  script: SCRIPTS[kind],
  cpu: undefined,
  nodeArgs: ["--expose-gc"],
  prefix: ["valgrind", "--tool=callgrind", "--separate-threads=yes", `--callgrind-out-file=${join(dir, "cg.%p")}`],
  label: `${kind} server under callgrind`,
  // valgrind writes its banner to stderr; the Child keeps the tail for its error messages.
  verbose: false,
});
const { port } = await server.ready;
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
await server.request({ op: "gc" }, 300_000);
await new Promise((resolve) => setTimeout(resolve, 2000));
execFileSync("callgrind_control", ["--zero", String(server.pid)], { stdio: "ignore" });
await open(connections);
execFileSync("callgrind_control", ["--dump", String(server.pid)], { stdio: "ignore" });
await Promise.all([server.kill(), load.kill()]);

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
