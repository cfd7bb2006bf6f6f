/**
 * `npm run bench:paired -- [connect|echo|fanout] [rounds] [count]`: server CPU per accepted
 * connection (`connect`, the default), per echo (`echo`) or per delivery of a room broadcast
 * (`fanout`), conduit-ws against the plain `ws` hub, measured side by side. On a shared virtual
 * machine one server's CPU per connection moves far between identical rounds run one after the
 * other (the scenarios of `npm run bench` measure the servers in turn), because the virtual CPU's
 * speed changes from one minute to the next. Here both servers run at the same time on the same CPU,
 * and each gets its load from a C client of its own (bench/native/latency-client.c) on the load CPU,
 * running concurrently: whatever slows the machine slows both, so the ratio of the two servers' CPU
 * holds from round to round far better than the scenarios' rounds do (docs/BENCHMARKS.md, "Side by
 * side, and the floor", has the figures).
 *
 * Each round starts two fresh servers.
 * - `connect`: opens `count` connections (default 15,000) to each, 100 in flight per client, and
 *   reads each server's CPU from /proc when its own client has every connection open.
 * - `echo`: opens `count` connections (default 1,000) to each, then every connection sends 10 echoes
 *   a second for 10 s (the echo scenario's load, after a second of warm-up), and divides each
 *   server's CPU over those 10 s by the replies its client counted in them.
 * - `fanout`: puts `count` connections (default 1,000) in one room on each, then one member sends a
 *   broadcast to the room every 50 ms (every `count / 20` ms from 1,000 members on: 500 ms for
 *   10,000, as in the scenarios), 100 measured after 10 of warm-up, and divides each server's CPU
 *   over the measured broadcasts by the deliveries.
 *
 * For `echo` and `fanout` it also prints each server's latency p99 per round (round trip; last
 * member, with the second server's broadcasts half an interval after the first's so that they never
 * coincide). The servers share a CPU, so these are only for comparing the two with each other in
 * the same minutes, when the machine's stalls hit both alike; they are not the scenarios' figures.
 * Memory it does not measure; the scenarios of `npm run bench` do.
 *
 * `fanout … --floor` measures bench/servers/floor.ts in conduit-ws's place: a server whose broadcast
 * loop only hands the shared frame to each member's `socket.write`. Its ratio to the hub is the
 * lowest a node server that makes one public `socket.write` per member can reach on the machine;
 * conduit-ws's ratio next to it says how much of conduit-ws's cost per delivery is its own.
 *
 * @module
 */
import { compileChildScripts } from "./harness/compile.js";
import { log } from "./harness/log.js";
import { NativeClient } from "./harness/native-client.js";
import { Child, installCleanup, setAffinity } from "./harness/processes.js";
import { median } from "./harness/rounds.js";
import { summarise } from "./harness/stats.js";
import { ROOM, SCRIPTS } from "./harness/session.js";
import { now } from "./shared/clock.js";
import { clockTicksPerSecond, cpuMs } from "./shared/procfs.js";

const SERVER_CPU = 0;
const LOAD_CPU = 1;
const KINDS = ["ws", "conduit"] as const;
const FLOOR_SCRIPT = "bench/servers/floor.ts";
const MODES = ["connect", "echo", "fanout"] as const;
type Mode = (typeof MODES)[number];
/** The echo scenario's load (bench/harness/config.ts): 10 a second per connection for 10 s. */
const ECHO = { ratePerClient: 10, warmupMs: 1000, durationMs: 10_000, graceMs: 1000 };
/**
 * The fan-out scenarios' load: 100 broadcasts measured after 10, one every `count / 20` ms (at least
 * 50): every 50 ms to 1,000 members, every 500 ms to 10,000, as in the two scenarios.
 */
const fanoutLoad = (members: number) => ({
  warmup: 10,
  broadcasts: 100,
  intervalMs: Math.max(50, Math.round(members / 20)),
  graceMs: 1000,
});

const args = process.argv.slice(2);
/** `--floor`: measure bench/servers/floor.ts (one `socket.write` per member and nothing else) in conduit-ws's place. */
const floor = args.includes("--floor");
if (floor) args.splice(args.indexOf("--floor"), 1);
const subject = floor ? "floor" : "conduit-ws";
const mode: Mode = MODES.includes(args[0] as Mode) ? (args.shift() as Mode) : "connect";
const rounds = Number(args[0] ?? 6);
const count = Number(args[1] ?? (mode === "connect" ? 15_000 : 1000));
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(count) || count < 1 || (floor && mode !== "fanout")) {
  process.stderr.write(
    "usage: npm run bench:paired -- [connect|echo|fanout] [rounds] [count] [--floor]\n" +
      "  --floor  fanout only: in conduit-ws's place, a server that makes one socket.write per member and nothing else\n",
  );
  process.exit(2);
}
const unit = { connect: "connection", echo: "echo", fanout: "delivery" }[mode];
const FANOUT = fanoutLoad(count);

installCleanup();
compileChildScripts();
// The harness is mostly idle, but it must not take turns on the servers' CPU.
setAffinity(process.pid, String(LOAD_CPU));
const ticks = clockTicksPerSecond();

/** Opens `count` connections to `port` from a C client on the load CPU, members of `room` if given. */
function openClient(port: number, room?: string): Promise<NativeClient> {
  return NativeClient.open({
    url: `ws://127.0.0.1:${port}/ws`,
    clientKind: "ws-protocol",
    count,
    room,
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

/** Resolves at `moment` (the bench clock) with each server's CPU ms so far. */
function cpuAt(servers: Child[], moment: number): Promise<number[]> {
  return new Promise((resolve) => setTimeout(() => resolve(servers.map((server) => cpuMs(server.pid, ticks))), moment - now()));
}

/** One server's figures in one round: CPU per unit, and for echo and fan-out the latency p99. */
interface Measured {
  cpuUs: number;
  /** Round-trip p99 (echo) or last-member p99 (fan-out), ms; undefined for connect. */
  p99Ms?: number;
}

/** µs of server CPU per echo: both clients connect first, then echo at once; CPU over the measured 10 s. */
async function perEcho(servers: Child[], ports: number[]): Promise<Measured[]> {
  const clients = await Promise.all(ports.map((port) => openClient(port)));
  try {
    const startAt = now() + 300;
    const timeoutMs = ECHO.warmupMs + ECHO.durationMs + ECHO.graceMs + 60_000;
    const work = Promise.all(clients.map((client) => client.echo({ ...ECHO, startAt }, timeoutMs)));
    // The clients count the replies to what they send after the warm-up, for durationMs: read the
    // servers' CPU at the same two moments.
    const before = await cpuAt(servers, startAt + ECHO.warmupMs);
    const after = await cpuAt(servers, startAt + ECHO.warmupMs + ECHO.durationMs);
    const results = await work;
    return servers.map((_, i) => ({
      cpuUs: (1000 * (after[i]! - before[i]!)) / results[i]!.received,
      p99Ms: summarise(results[i]!.samplesMs).p99,
    }));
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

/**
 * µs of server CPU per delivery: every connection in one room; CPU over the measured broadcasts. The
 * second server's broadcasts start half an interval after the first's, so that the two never
 * serve a broadcast at the same moment and each last-member time is its own server's.
 */
async function perDelivery(servers: Child[], ports: number[]): Promise<Measured[]> {
  const clients = await Promise.all(ports.map((port) => openClient(port, ROOM)));
  try {
    const { warmup, broadcasts, intervalMs } = FANOUT;
    const base = now() + 300;
    const startAts = clients.map((_, i) => base + (i * intervalMs) / 2);
    const timeoutMs = (warmup + broadcasts) * intervalMs + FANOUT.graceMs + 60_000;
    const work = Promise.all(clients.map((client, i) => client.fanout({ ...FANOUT, startAt: startAts[i]! }, timeoutMs)));
    // The measured broadcasts are sent from startAt + warmup intervals on; the last one's deliveries
    // have landed well within an interval after it.
    const cpu = await Promise.all(
      servers.map(async (server, i) => {
        const [before] = await cpuAt([server], startAts[i]! + warmup * intervalMs);
        const [after] = await cpuAt([server], startAts[i]! + (warmup + broadcasts) * intervalMs);
        return after! - before!;
      }),
    );
    const results = await work;
    return servers.map((_, i) => ({
      cpuUs: (1000 * cpu[i]!) / results[i]!.counts.reduce((sum, n) => sum + n, 0),
      // As the scenario does: a broadcast no member had (-1) is counted missing, not timed.
      p99Ms: summarise(results[i]!.lastMs.filter((ms) => ms >= 0)).p99,
    }));
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

/** One round: both servers fresh; each server's figures. */
async function round(): Promise<Record<(typeof KINDS)[number], Measured>> {
  const servers = KINDS.map(
    (kind) =>
      new Child({
        script: kind === "conduit" && floor ? FLOOR_SCRIPT : SCRIPTS[kind],
        cpu: SERVER_CPU,
        nodeArgs: ["--expose-gc"],
        label: `${kind} server`,
        verbose: false,
      }),
  );
  try {
    const ports = await Promise.all(
      servers.map(async (server, i) => {
        const { port } = await server.ready;
        if (port === undefined) throw new Error(`${KINDS[i]} server reported no port`);
        log(`${KINDS[i] === "conduit" ? subject : KINDS[i]} server started: pid ${server.pid}, port ${port}`);
        return port;
      }),
    );
    const cost =
      mode === "connect"
        ? await Promise.all(servers.map(async (server, i) => ({ cpuUs: await perConnection(server, ports[i]!) })))
        : mode === "echo"
          ? await perEcho(servers, ports)
          : await perDelivery(servers, ports);
    return { ws: cost[0]!, conduit: cost[1]! };
  } finally {
    await Promise.all(servers.map((server) => server.kill()));
  }
}

const results: Array<Record<(typeof KINDS)[number], Measured>> = [];
for (let i = 0; i < rounds; i++) {
  const result = await round();
  results.push(result);
  log(`round ${i + 1} of ${rounds}: ${subject} ${result.conduit.cpuUs.toFixed(1)} µs, ws hub ${result.ws.cpuUs.toFixed(1)} µs per ${unit}`);
}
const ratios = results.map((result) => result.conduit.cpuUs / result.ws.cpuUs);
const fixed = (values: number[], digits: number): string => values.map((value) => value.toFixed(digits)).join(", ");
const load = {
  connect: `${count} connections to each server`,
  echo: `${count} connections to each server, ${ECHO.ratePerClient} echoes a second each for ${ECHO.durationMs / 1000} s`,
  fanout: `${count} members of one room on each server, a broadcast every ${FANOUT.intervalMs} ms, ${FANOUT.broadcasts} measured`,
}[mode];
const digits = { connect: 0, echo: 1, fanout: 2 }[mode];
process.stdout.write(
  `server CPU per ${unit}, ${load}, side by side, ${rounds} rounds\n` +
    `  ${subject} (µs): ${fixed(
      results.map((result) => result.conduit.cpuUs),
      digits,
    )}\n` +
    `  ws hub (µs):     ${fixed(
      results.map((result) => result.ws.cpuUs),
      digits,
    )}\n` +
    `  ${subject} ÷ ws hub per round: ${fixed(ratios, 3)}; median ${median(ratios).toFixed(3)}\n`,
);
if (mode !== "connect") {
  // Both servers share one CPU, so each waits for the other at times: these p99s are for comparing
  // the two within a round (the machine's stalls hit both alike), not with the scenarios' figures.
  const what = mode === "echo" ? "round-trip" : "last-member";
  const latency = results.map((result) => result.conduit.p99Ms! / result.ws.p99Ms!);
  process.stdout.write(
    `${what} p99 side by side (ms; the servers share a CPU, compare them with each other only)\n` +
      `  ${subject}: ${fixed(
        results.map((result) => result.conduit.p99Ms!),
        2,
      )}\n` +
      `  ws hub:     ${fixed(
        results.map((result) => result.ws.p99Ms!),
        2,
      )}\n` +
      `  ${subject} ÷ ws hub per round: ${fixed(latency, 3)}; median ${median(latency).toFixed(3)}\n`,
  );
}
process.exit(0);
