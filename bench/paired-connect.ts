/**
 * `npm run bench:paired -- [rounds] [connections]`: server CPU per accepted connection, conduit-ws
 * against the plain `ws` hub, measured side by side. On a shared virtual machine one server's CPU
 * per connection moves by 30 % and more between identical rounds run one after the other (the
 * connect scenario of `npm run bench` measures the servers in turn), because the virtual CPU's speed
 * changes from one minute to the next. Here both servers run at the same time on the same CPU, and
 * each gets its connections from a C client of its own (bench/native/latency-client.c) on the load
 * CPU, opened concurrently: whatever slows the machine slows both. The ratio of the two servers'
 * CPU then holds within about 2 % from round to round (two ws hubs measured this way read 0.99 to
 * 1.02), where the scenario's rounds spread by 30 %.
 *
 * Each round starts two fresh servers, opens `connections` to each (100 in flight per client) and
 * reads each server's CPU from /proc when its own client has every connection open. What it does not
 * measure: the time to open them (the servers share a CPU) and memory (the connect scenario does).
 *
 * @module
 */
import { compileChildScripts } from "./harness/compile.js";
import { log } from "./harness/log.js";
import { NativeClient } from "./harness/native-client.js";
import { Child, installCleanup, setAffinity } from "./harness/processes.js";
import { median } from "./harness/rounds.js";
import { SCRIPTS } from "./harness/session.js";
import { clockTicksPerSecond, cpuMs } from "./shared/procfs.js";

const SERVER_CPU = 0;
const LOAD_CPU = 1;
const KINDS = ["ws", "conduit"] as const;

const rounds = Number(process.argv[2] ?? 6);
const connections = Number(process.argv[3] ?? 15_000);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(connections) || connections < 1) {
  process.stderr.write("usage: npm run bench:paired -- [rounds] [connections]\n");
  process.exit(2);
}

installCleanup();
compileChildScripts();
// The harness is mostly idle, but it must not take turns on the servers' CPU.
setAffinity(process.pid, String(LOAD_CPU));
const ticks = clockTicksPerSecond();

/** One round: both servers fresh, each sent `connections` at once; µs of server CPU per connection. */
async function round(): Promise<Record<(typeof KINDS)[number], number>> {
  const servers = KINDS.map(
    (kind) => new Child({ script: SCRIPTS[kind], cpu: SERVER_CPU, nodeArgs: ["--expose-gc"], label: `${kind} server`, verbose: false }),
  );
  try {
    const ports = await Promise.all(
      servers.map(async (server, i) => {
        const { port } = await server.ready;
        log(`${KINDS[i]} server started: pid ${server.pid}, port ${port}`);
        return port;
      }),
    );
    const perConnection = await Promise.all(
      servers.map(async (server, i) => {
        const before = cpuMs(server.pid, ticks);
        const client = await NativeClient.open({
          url: `ws://127.0.0.1:${ports[i]}/ws`,
          clientKind: "ws-protocol",
          count: connections,
          room: undefined,
          cpu: LOAD_CPU,
          timeoutMs: 300_000,
        });
        const after = cpuMs(server.pid, ticks);
        await client.close();
        return (1000 * (after - before)) / connections;
      }),
    );
    return { ws: perConnection[0]!, conduit: perConnection[1]! };
  } finally {
    await Promise.all(servers.map((server) => server.kill()));
  }
}

const results: Array<Record<(typeof KINDS)[number], number>> = [];
for (let i = 0; i < rounds; i++) {
  const result = await round();
  results.push(result);
  log(`round ${i + 1} of ${rounds}: conduit-ws ${result.conduit.toFixed(0)} µs, ws hub ${result.ws.toFixed(0)} µs per connection`);
}
const ratios = results.map((result) => result.conduit / result.ws);
const fixed = (values: number[], digits: number): string => values.map((value) => value.toFixed(digits)).join(", ");
process.stdout.write(
  `server CPU per connection, ${connections} connections to each server side by side, ${rounds} rounds\n` +
    `  conduit-ws (µs): ${fixed(results.map((result) => result.conduit), 0)}\n` +
    `  ws hub (µs):     ${fixed(results.map((result) => result.ws), 0)}\n` +
    `  conduit-ws ÷ ws hub per round: ${fixed(ratios, 3)}; median ${median(ratios).toFixed(3)}\n`,
);
process.exit(0);
