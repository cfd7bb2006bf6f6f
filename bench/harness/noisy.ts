/**
 * The noisy neighbour scenario: what one client attacking a server at (just under) its default rate
 * limit costs everyone else. A bystander, one connection of its own, pings every few milliseconds
 * and times each pong, while one attack runs against a fresh server started at its default limits
 * (conduit-ws with `--default-limits`: rate limit, work budget, depth limit and presence events all
 * at their defaults; the ws hub has no limits to set). The bystander, the attackers and the room's
 * idle members each live in load processes of their own, so that the bystander's timer never waits
 * behind the members' reading.
 *
 * Each attack is a scenario of its own in the results (`noisy-<attack>`), with a row per server it
 * applies to; the report shows them together in one table, with the bystander's target under it.
 *
 * @module
 */
import { now, until } from "../shared/clock.js";
import { cpuMs } from "../shared/procfs.js";
import type { AttackName, AttackResult, BystanderResult, ClosedBy, ConnectResult, ListenResult, ServerKind } from "../shared/messages.js";
import { PRESENCE_ATTACKERS, type NoisySize } from "./config.js";
import { log } from "./log.js";
import type { Child } from "./processes.js";
import {
  cpuShare,
  noisyMemberProcesses,
  releaseReusedServers,
  ROOM,
  send,
  startServer,
  stopServer,
  sum,
  type Context,
  type CpuShare,
  type RunningServer,
} from "./session.js";
import { split, summarise, type Summary } from "./stats.js";

/** One attack of the scenario. */
export interface Attack {
  name: AttackName;
  /** A few words for the report's table. */
  label: (size: NoisySize) => string;
  /** What the attacker does, for the scenario's title. */
  what: (size: NoisySize) => string;
  connections: number;
  /** Messages a second per connection; undefined: as fast as the server reads them. */
  ratePerConnection: number | undefined;
  /** Idle members of the room, in load processes apart from the attacker's. */
  members: (size: NoisySize) => number;
  /** Servers the attack does not apply to, and why. */
  omitted: Partial<Record<ServerKind, string>>;
}

const SOCKET_IO = "speaks its own protocol, which the attacks' frames are not";
const count = (n: number): string => n.toLocaleString("en-US");

/**
 * The attacks, in the order they run. The rates sit just under conduit-ws's default of 100
 * messages a second, so that the message rate alone lets every message through and what holds an
 * attacker back, if anything, is the cost of what it asks for.
 */
export const ATTACKS: readonly Attack[] = [
  {
    name: "parse-escape",
    label: () => "parsing: 60 KB JSON with one `\\u` escape",
    what: () => "1 connection × 95/s `echo` of a 60 KB array of numbers ending in one `\\u` escape",
    connections: 1,
    ratePerConnection: 95,
    members: () => 0,
    omitted: { socketio: SOCKET_IO },
  },
  {
    name: "parse-nested",
    label: () => "parsing: arrays 30,000 deep",
    what: () => "1 connection × 95/s `echo` of arrays nested 30,000 deep",
    connections: 1,
    ratePerConnection: 95,
    members: () => 0,
    omitted: { socketio: SOCKET_IO },
  },
  {
    name: "fanout",
    label: (size) => `fan-out: 1 KB to ${count(size.members)} members`,
    what: (size) => `1 member × 90/s 1 KB broadcasts to a room of ${count(size.members)} idle members`,
    connections: 1,
    ratePerConnection: 90,
    members: (size) => size.members,
    omitted: { socketio: SOCKET_IO },
  },
  {
    name: "presence",
    label: (size) => `presence: ${PRESENCE_ATTACKERS} × in ${count(size.members)} members`,
    what: (size) => `${PRESENCE_ATTACKERS} members × 95/s \`presence\` of a room of ${count(size.members)} idle members`,
    connections: PRESENCE_ATTACKERS,
    ratePerConnection: 95,
    members: (size) => size.members,
    omitted: { ws: "no presence request", socketio: SOCKET_IO },
  },
  {
    name: "join-leave",
    label: (size) => `join/leave: ${count(size.joinLeaveMembers)} members told`,
    what: (size) => `1 connection × 95/s \`join_room\`/\`leave_room\` in turn on a room of ${count(size.joinLeaveMembers)} reading members`,
    connections: 1,
    ratePerConnection: 95,
    members: (size) => size.joinLeaveMembers,
    omitted: { ws: "no member_joined/member_left events", socketio: SOCKET_IO },
  },
  {
    name: "pongs",
    label: () => "pongs: 2 floods",
    what: () => "2 connections writing unsolicited pong frames as fast as the server reads them",
    connections: 2,
    ratePerConnection: undefined,
    members: () => 0,
    omitted: { socketio: SOCKET_IO },
  },
];

/** What the bystander saw during the measured window. */
export interface BystanderFigures {
  intervalMs: number;
  sent: number;
  received: number;
  /** Pings refused by the bystander's own rate limit. */
  refused: number;
  errors: number;
  /** Pings with no reply at all. */
  missing: number;
  rttMs: Summary;
  /** Every round trip (ms), in arrival order: what {@link BystanderFigures.rttMs} is computed from. */
  samplesMs: number[];
  closed?: ClosedBy;
}

/** What the attackers did, warm-up included. */
export interface AttackerFigures extends AttackResult {
  ratePerConnection: number | null;
  /** Messages (frames, for the pong flood) written per second while the attack sent, over all its connections. */
  sentPerSecond: number;
  /** Messages refused with `rate_limited` (the message rate or the work budget). */
  refused: number;
}

/** One attack against one server. */
export interface NoisyRow extends CpuShare {
  attack: AttackName;
  members: number;
  warmupMs: number;
  durationMs: number;
  bystander: BystanderFigures;
  attacker: AttackerFigures;
  /** Ticks the idle members received in the window (the fan-out attack's broadcasts that went out). */
  memberTicks: number;
  /** The end of the server's stderr when it exited during the attack (it crashed). */
  serverExited?: string;
}

/** How long after the window the bystander still waits for pongs (it stops once all are in). */
const BYSTANDER_GRACE_MS = 2_000;
/**
 * How long after the attack its connections still read replies: the attackers' reply counts are
 * for reading only, and a longer wait would cost every attack its full length.
 */
const ATTACK_GRACE_MS = 500;
/** From sending the commands to the attack's start: the attackers open and join in it. */
const LEAD_MS = 500;
/** How often the server's CPU is read during the window: a server that crashes keeps the last reading. */
const CPU_POLL_MS = 100;

/** Runs `attack` against a fresh `kind` server at its default limits. */
export async function runNoisy(ctx: Context, kind: ServerKind, attack: Attack): Promise<NoisyRow> {
  const size = ctx.options.sizes.noisy;
  await releaseReusedServers(ctx);
  const members = attack.members(size);
  const counts = members === 0 ? [] : split(members, ctx.options.sizes.clientsPerProcess);
  const [bystanderLoad, attackLoad, ...memberPool] = ctx.loads;
  if (attackLoad === undefined || counts.length > memberPool.length || counts.length > noisyMemberProcesses(ctx.options)) {
    throw new Error(`the noisy scenario needs ${noisyMemberProcesses(ctx.options) + 2} load processes, the pool has ${ctx.loads.length}`);
  }
  const memberLoads = memberPool.slice(0, counts.length);
  const server = await startServer(ctx, kind, { defaultLimits: true });
  try {
    await Promise.all(
      memberLoads.map(async (load, i) => {
        const command = {
          op: "connect",
          kind: server.clientKind,
          url: server.url,
          count: counts[i]!,
          concurrency: 100,
          startAt: now(),
        } as const;
        const result = await send<ConnectResult>(load, command, 300_000);
        if (result.failed > 0) throw new Error(`${result.failed} of ${counts[i]} members failed to connect: ${result.errors.join("; ")}`);
        await send(load, { op: "join", room: ROOM }, 300_000);
      }),
    );
    const startAt = now() + LEAD_MS;
    const windowStart = startAt + size.warmupMs;
    const windowEnd = windowStart + size.durationMs;
    const timeoutMs = windowEnd - now() + BYSTANDER_GRACE_MS + 60_000;
    const times = { startAt, warmupMs: size.warmupMs, durationMs: size.durationMs };
    const work = Promise.all([
      send<BystanderResult>(
        bystanderLoad!,
        { op: "bystander", url: server.url, intervalMs: size.pingIntervalMs, graceMs: BYSTANDER_GRACE_MS, ...times },
        timeoutMs,
      ),
      send<AttackResult>(
        attackLoad,
        {
          op: "attack",
          url: server.url,
          attack: attack.name,
          connections: attack.connections,
          ratePerConnection: attack.ratePerConnection,
          room: ROOM,
          graceMs: ATTACK_GRACE_MS,
          ...times,
        },
        timeoutMs,
      ),
      Promise.all(memberLoads.map((load) => send<ListenResult>(load, { op: "listen", from: windowStart, until: windowEnd }, timeoutMs))),
    ]);
    work.catch(() => {}); // awaited below, after the window; this keeps an early failure from counting as unhandled
    const cpu = await windowCpu(ctx, server, [bystanderLoad!, attackLoad, ...memberLoads], windowStart, windowEnd);
    const [bystander, attacker, listened] = await work;
    if (server.child.exited) log(`${kind} server exited during the ${attack.name} attack`);
    return {
      ...cpu,
      attack: attack.name,
      members,
      warmupMs: size.warmupMs,
      durationMs: size.durationMs,
      bystander: bystanderFigures(size.pingIntervalMs, bystander),
      attacker: attackerFigures(attack, attacker),
      memberTicks: sum(listened.map((result) => result.ticks)),
      ...(server.child.exited ? { serverExited: server.child.stderrTail.slice(-600) } : {}),
    };
  } finally {
    await stopServer(ctx, server);
    await Promise.all(memberLoads.map((load) => send(load, { op: "reset" }, 60_000)));
  }
}

function bystanderFigures(intervalMs: number, result: BystanderResult): BystanderFigures {
  return {
    intervalMs,
    sent: result.sent,
    received: result.received,
    refused: result.refused,
    errors: result.errors,
    missing: result.sent - result.received - result.refused - result.errors,
    rttMs: summarise(result.samplesMs),
    samplesMs: result.samplesMs,
    ...(result.closed === undefined ? {} : { closed: result.closed }),
  };
}

function attackerFigures(attack: Attack, result: AttackResult): AttackerFigures {
  return {
    ...result,
    ratePerConnection: attack.ratePerConnection ?? null,
    sentPerSecond: result.sendingMs > 0 ? (1000 * result.sent) / result.sendingMs : 0,
    refused: result.errors.rate_limited ?? 0,
  };
}

/**
 * The server's and the load processes' CPU over the window, read every {@link CPU_POLL_MS}: a server
 * that exits mid-window is accounted up to its last reading, over the time until then.
 */
async function windowCpu(ctx: Context, server: RunningServer, loads: readonly Child[], from: number, to: number): Promise<CpuShare> {
  const ticks = ctx.ticksPerSecond;
  const serverMs = (): number | undefined => {
    try {
      return cpuMs(server.child.pid, ticks);
    } catch {
      return undefined; // exited
    }
  };
  const loadMs = (): number => sum(loads.map((load) => cpuMs(load.pid, ticks)));
  await until(from);
  const begin = { at: now(), server: serverMs(), loads: loadMs() };
  let last = { at: begin.at, server: begin.server };
  while (now() < to && last.server !== undefined) {
    await until(Math.min(to, now() + CPU_POLL_MS));
    const reading = serverMs();
    if (reading === undefined) break;
    last = { at: now(), server: reading };
  }
  const loadsEnd = loadMs();
  if (begin.server === undefined || last.server === undefined) return cpuShare(to - from, Number.NaN, loadsEnd - begin.loads, loads.length);
  return cpuShare(last.at - begin.at, last.server - begin.server, loadsEnd - begin.loads, loads.length);
}
