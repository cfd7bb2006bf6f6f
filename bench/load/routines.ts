/**
 * What a load process does for each command of the harness. Each routine runs against the
 * connections this process holds and returns plain numbers; the harness merges the processes.
 *
 * @module
 */
import { now, until } from "../shared/clock.js";
import { cpuMs } from "../shared/procfs.js";
import type {
  ConnectCommand,
  ConnectResult,
  EchoCommand,
  EchoResult,
  FanoutCommand,
  FanoutResult,
  ListenCommand,
  ListenResult,
  ThroughputCommand,
  ThroughputResult,
} from "../shared/messages.js";
import { openClient, type BenchClient } from "./clients.js";

/** The connections of this process. */
let clients: BenchClient[] = [];

/** The connections this process holds now, for routines kept in files of their own (publish.ts). */
export function heldClients(): readonly BenchClient[] {
  return clients;
}

/** Opens `count` connections with at most `concurrency` handshakes in flight. */
export async function connect(command: ConnectCommand): Promise<ConnectResult> {
  await until(command.startAt);
  const errors = new Set<string>();
  let next = 0;
  let failed = 0;
  const opened: BenchClient[] = [];
  const worker = async (): Promise<void> => {
    while (next < command.count) {
      next++;
      try {
        opened.push(await openClient(command.kind, command.url));
      } catch (error) {
        failed++;
        if (errors.size < 5) errors.add(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.count) }, worker));
  const finishedAt = now();
  clients.push(...opened);
  return { opened: opened.length, failed, errors: [...errors], finishedAt };
}

/** Every connection joins `room`. */
export async function join(room: string): Promise<{ joined: number }> {
  await Promise.all(clients.map((client) => client.join(room)));
  return { joined: clients.length };
}

/** Closes every connection. */
export async function reset(): Promise<{ closed: number }> {
  const closing = clients;
  clients = [];
  await Promise.all(closing.map((client) => client.close()));
  return { closed: closing.length };
}

/** Fan-out latency: see {@link FanoutCommand}. */
export async function fanout(command: FanoutCommand): Promise<FanoutResult> {
  const { broadcasts, warmup, intervalMs, startAt } = command;
  const total = warmup + broadcasts;
  const counts = new Array<number>(broadcasts).fill(0);
  const lastMs = new Array<number>(broadcasts).fill(-1);
  const firstMs = new Array<number>(broadcasts).fill(-1);
  const expected = broadcasts * clients.length;
  let received = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const onTick = (seq: number, sentAt: number): void => {
    const at = now();
    const k = seq - warmup;
    if (k < 0 || k >= broadcasts) return;
    counts[k]!++;
    if (at - sentAt > lastMs[k]!) lastMs[k] = at - sentAt;
    if (firstMs[k]! < 0 || at - sentAt < firstMs[k]!) firstMs[k] = at - sentAt;
    if (++received === expected) finish();
  };
  for (const client of clients) {
    client.parseTicks = true;
    client.onTick = onTick;
  }

  let sendTimer: NodeJS.Timeout | undefined;
  if (command.sender) {
    const sender = clients[0]!;
    let seq = 0;
    // Each send is scheduled from the start time, not from the previous send, so delays do not add up.
    const sendNext = (): void => {
      sender.broadcast(command.room, seq, now());
      seq++;
      if (seq < total) sendTimer = setTimeout(sendNext, Math.max(0, startAt + seq * intervalMs - now()));
    };
    sendTimer = setTimeout(sendNext, Math.max(0, startAt - now()));
  }
  const deadline = setTimeout(finish, startAt + total * intervalMs + command.graceMs - now());
  if (expected === 0) finish();
  await finished;
  clearTimeout(deadline);
  clearTimeout(sendTimer);
  for (const client of clients) client.onTick = undefined;
  return { counts, lastMs, firstMs };
}

/** Echo under load: see {@link EchoCommand}. */
export async function echo(command: EchoCommand): Promise<EchoResult> {
  const n = clients.length;
  const perSecond = n * command.ratePerClient;
  const totalSends = Math.round((perSecond * (command.warmupMs + command.durationMs)) / 1000);
  const measureFrom = command.startAt + command.warmupMs;
  const samplesMs: number[] = [];
  let sent = 0;
  let sentMeasured = 0;
  let replies = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const onEcho = (sentAt: number): void => {
    const at = now();
    if (sentAt >= measureFrom) samplesMs.push(at - sentAt);
    if (++replies === totalSends) finish();
  };
  for (const client of clients) client.onEcho = onEcho;

  await until(command.startAt);
  // Sends are spread evenly: every tick sends what is due by now, round-robin over the connections,
  // so each connection sends `ratePerClient` a second and the server never sees one big burst.
  const ticker = setInterval(() => {
    const due = Math.min(totalSends, Math.floor(((now() - command.startAt) * perSecond) / 1000));
    while (sent < due) {
      const at = now();
      clients[sent % n]!.echo(at);
      if (at >= measureFrom) sentMeasured++;
      sent++;
    }
    if (sent === totalSends) clearInterval(ticker);
  }, 2);
  const deadline = setTimeout(finish, command.warmupMs + command.durationMs + command.graceMs);
  if (totalSends === 0) finish();
  await finished;
  clearInterval(ticker);
  clearTimeout(deadline);
  for (const client of clients) client.onEcho = undefined;
  return { sent: sentMeasured, received: samplesMs.length, samplesMs };
}

/** Fan-out throughput: see {@link ThroughputCommand}. */
export async function throughput(command: ThroughputCommand): Promise<ThroughputResult> {
  const members = clients.length;
  const sender = clients[0]!;
  const perMember = new Uint32Array(members);
  // reached[c]: members that have received at least c broadcasts. Every member receives broadcasts
  // in order, so broadcast c is complete for everyone exactly when reached[c] equals `members`.
  const reached: number[] = [0];
  // Flow control counts deliveries, not whole broadcasts: a broadcast goes out as soon as the
  // deliveries still on their way drop below `window` broadcasts' worth. Waiting for whole broadcasts
  // to complete would make a server that writes a turn's frames together answer a burst with a
  // burst, and server and load generator would take turns being idle instead of overlapping.
  const budget = command.window * members;
  // No member may fall further behind than this many broadcasts, whatever the others do.
  const maxLag = command.window * 4;
  let sent = 0;
  let completed = 0;
  let deliveries = 0;
  let sending = true;
  let drained: (() => void) | undefined;

  const pump = (): void => {
    while (sending && (sent + 1) * members - deliveries <= budget && sent - completed < maxLag) {
      sent++;
      reached.push(0);
      sender.broadcast(command.room, sent, -1);
    }
  };
  clients.forEach((client, index) => {
    client.parseTicks = false;
    client.onTick = () => {
      deliveries++;
      const c = ++perMember[index]!;
      if (++reached[c]! === members) {
        completed = c;
        if (completed === sent && !sending) drained?.();
      }
      pump();
    };
  });

  await until(command.startAt);
  pump();
  await until(command.startAt + command.warmupMs);
  const serverCpu = (): number => command.serverPids.reduce((total, pid) => total + cpuMs(pid, command.ticksPerSecond), 0);
  const redisCpu = (): number => (command.redisPid === undefined ? 0 : cpuMs(command.redisPid, command.ticksPerSecond));
  const start = { at: now(), deliveries, server: serverCpu(), redis: redisCpu(), load: process.cpuUsage() };
  await until(start.at + command.durationMs);
  const end = { at: now(), deliveries, server: serverCpu(), redis: redisCpu(), load: process.cpuUsage(start.load) };
  sending = false;
  if (completed < sent) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, command.graceMs);
      drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  for (const client of clients) client.onTick = undefined;
  return {
    members,
    deliveries: end.deliveries - start.deliveries,
    elapsedMs: end.at - start.at,
    serverCpuMs: end.server - start.server,
    redisCpuMs: end.redis - start.redis,
    loadCpuMs: (end.load.user + end.load.system) / 1000,
    broadcasts: sent,
    totalDeliveries: deliveries,
  };
}

/**
 * Idle members that only read: every tick is counted, never parsed, so that a flood of broadcasts
 * costs this process as little as it can (other messages take the usual path).
 */
export async function listen(command: ListenCommand): Promise<ListenResult> {
  let ticks = 0;
  for (const client of clients) {
    client.parseTicks = false;
    client.onTick = () => {
      if (now() >= command.from) ticks++;
    };
  }
  await until(command.until);
  for (const client of clients) client.onTick = undefined;
  return { members: clients.length, ticks };
}
