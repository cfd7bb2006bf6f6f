/**
 * `npm run bench:paired -- [connect|echo] [rounds] [count]`: server CPU per accepted connection
 * (`connect`, the default) or per echo (`echo`), conduit-ws against the plain `ws` hub, measured side
 * by side. On a shared virtual machine one server's CPU per connection moves by 30 % and more between
 * identical rounds run one after the other (the scenarios of `npm run bench` measure the servers in
 * turn), because the virtual CPU's speed changes from one minute to the next. Here both servers run
 * at the same time on the same CPU, and each gets its load from a C client of its own
 * (bench/native/latency-client.c) on the load CPU, running concurrently: whatever slows the machine
 * slows both. The ratio of the two servers' CPU then holds within about 2 % from round to round (two
 * ws hubs measured this way read 0.99 to 1.02), where the scenario's rounds spread by 30 %.
 *
 * Each round starts two fresh servers.
 * - `connect`: opens `count` connections (default 15,000) to each, 100 in flight per client, and
 *   reads each server's CPU from /proc when its own client has every connection open.
 * - `echo`: opens `count` connections (default 1,000) to each, then every connection sends 10 echoes
 *   a second for 10 s (the echo scenario's load, after a second of warm-up), and divides each
 *   server's CPU over those 10 s by the replies its client counted in them.
 *
 * What it does not measure: times and latencies (the servers share a CPU, so each waits for the
 * other) and memory; the scenarios of `npm run bench` do.
 *
 * @module
 */
import { compileChildScripts } from "./harness/compile.js";
import { log } from "./harness/log.js";
import { NativeClient } from "./harness/native-client.js";
import { Child, installCleanup, setAffinity } from "./harness/processes.js";
import { median } from "./harness/rounds.js";
import { SCRIPTS } from "./harness/session.js";
import { now } from "./shared/clock.js";
import { clockTicksPerSecond, cpuMs } from "./shared/procfs.js";

const SERVER_CPU = 0;
const LOAD_CPU = 1;
const KINDS = ["ws", "conduit"] as const;
const MODES = ["connect", "echo"] as const;
type Mode = (typeof MODES)[number];
/** The echo scenario's load (bench/harness/config.ts): 10 a second per connection for 10 s. */
const ECHO = { ratePerClient: 10, warmupMs: 1000, durationMs: 10_000, graceMs: 1000 };

const args = process.argv.slice(2);
const mode: Mode = MODES.includes(args[0] as Mode) ? (args.shift() as Mode) : "connect";
const rounds = Number(args[0] ?? 6);
const count = Number(args[1] ?? (mode === "connect" ? 15_000 : 1000));
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(count) || count < 1) {
  process.stderr.write("usage: npm run bench:paired -- [connect|echo] [rounds] [count]\n");
  process.exit(2);
}
const unit = mode === "connect" ? "connection" : "echo";

installCleanup();
compileChildScripts();
// The harness is mostly idle, but it must not take turns on the servers' CPU.
setAffinity(process.pid, String(LOAD_CPU));
const ticks = clockTicksPerSecond();

/** Opens `count` connections to `port` from a C client on the load CPU. */
function openClient(port: number): Promise<NativeClient> {
  return NativeClient.open({
    url: `ws://127.0.0.1:${port}/ws`,
    clientKind: "ws-protocol",
    count,
    room: undefined,
    cpu: LOAD_CPU,
    timeoutMs: 300_000,
  });
}

/** µs of server CPU per connection: measured while the client opens its connections. */
async function perConnection(server: Child, port: number): Promise<number> {
  const before = cpuMs(server.pid, ticks);
  const client = await openClient(port);
  const after = cpuMs(server.pid, ticks);
  await client.close();
  return (1000 * (after - before)) / count;
}

/** µs of server CPU per echo: both clients connect first, then echo at once; CPU over the measured 10 s. */
async function perEcho(servers: Child[], ports: number[]): Promise<number[]> {
  const clients = await Promise.all(ports.map(openClient));
  try {
    const startAt = now() + 300;
    const timeoutMs = ECHO.warmupMs + ECHO.durationMs + ECHO.graceMs + 60_000;
    const work = Promise.all(clients.map((client) => client.echo({ ...ECHO, startAt }, timeoutMs)));
    // The clients count the replies to what they send after the warm-up, for durationMs: read the
    // servers' CPU at the same two moments.
    const at = (moment: number): Promise<number[]> =>
      new Promise((resolve) => setTimeout(() => resolve(servers.map((server) => cpuMs(server.pid, ticks))), moment - now()));
    const before = await at(startAt + ECHO.warmupMs);
    const after = await at(startAt + ECHO.warmupMs + ECHO.durationMs);
    const results = await work;
    return servers.map((_, i) => (1000 * (after[i]! - before[i]!)) / results[i]!.received);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

/** One round: both servers fresh; µs of server CPU per connection or per echo, for each. */
async function round(): Promise<Record<(typeof KINDS)[number], number>> {
  const servers = KINDS.map(
    (kind) => new Child({ script: SCRIPTS[kind], cpu: SERVER_CPU, nodeArgs: ["--expose-gc"], label: `${kind} server`, verbose: false }),
  );
  try {
    const ports = await Promise.all(
      servers.map(async (server, i) => {
        const { port } = await server.ready;
        if (port === undefined) throw new Error(`${KINDS[i]} server reported no port`);
        log(`${KINDS[i]} server started: pid ${server.pid}, port ${port}`);
        return port;
      }),
    );
    const cost =
      mode === "connect" ? await Promise.all(servers.map((server, i) => perConnection(server, ports[i]!))) : await perEcho(servers, ports);
    return { ws: cost[0]!, conduit: cost[1]! };
  } finally {
    await Promise.all(servers.map((server) => server.kill()));
  }
}

const results: Array<Record<(typeof KINDS)[number], number>> = [];
for (let i = 0; i < rounds; i++) {
  const result = await round();
  results.push(result);
  log(`round ${i + 1} of ${rounds}: conduit-ws ${result.conduit.toFixed(1)} µs, ws hub ${result.ws.toFixed(1)} µs per ${unit}`);
}
const ratios = results.map((result) => result.conduit / result.ws);
const fixed = (values: number[], digits: number): string => values.map((value) => value.toFixed(digits)).join(", ");
const load =
  mode === "connect"
    ? `${count} connections to each server`
    : `${count} connections to each server, ${ECHO.ratePerClient} echoes a second each for ${ECHO.durationMs / 1000} s`;
const digits = mode === "connect" ? 0 : 1;
process.stdout.write(
  `server CPU per ${unit}, ${load}, side by side, ${rounds} rounds\n` +
    `  conduit-ws (µs): ${fixed(results.map((result) => result.conduit), digits)}\n` +
    `  ws hub (µs):     ${fixed(results.map((result) => result.ws), digits)}\n` +
    `  conduit-ws ÷ ws hub per round: ${fixed(ratios, 3)}; median ${median(ratios).toFixed(3)}\n`,
);
process.exit(0);
