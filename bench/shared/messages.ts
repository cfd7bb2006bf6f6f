/**
 * What the harness and its child processes say to each other over the IPC channel. Every request
 * carries a sequence number and gets exactly one {@link Reply} with the same number.
 *
 * @module
 */

import type { Summary } from "../harness/stats.js";

/** The three implementations under test. */
export type ServerKind = "conduit" | "ws" | "socketio";

/** How a load process talks to a server: the SPEC §2 protocol over plain `ws`, or Socket.IO. */
export type ClientKind = "ws-protocol" | "socketio";

/** Opens `count` connections, at most `concurrency` handshakes at a time, starting at `startAt`. */
export interface ConnectCommand {
  op: "connect";
  kind: ClientKind;
  url: string;
  count: number;
  concurrency: number;
  /** Monotonic ms (see `clock.ts`): every load process starts at the same instant. */
  startAt: number;
}

/** Every open connection of this process joins `room` and waits for the confirmation. */
export interface JoinCommand {
  op: "join";
  room: string;
}

/**
 * Fan-out latency: the first connection of the `sender` process broadcasts `warmup + broadcasts`
 * messages to `room`, one every `intervalMs` from `startAt`; every member records when each arrives.
 */
export interface FanoutCommand {
  op: "fanout";
  room: string;
  broadcasts: number;
  warmup: number;
  intervalMs: number;
  startAt: number;
  sender: boolean;
  /** How long after the last scheduled send a member may still wait for deliveries. */
  graceMs: number;
}

/** Echo under load: every connection sends `ratePerClient` echoes a second, spread evenly. */
export interface EchoCommand {
  op: "echo";
  ratePerClient: number;
  warmupMs: number;
  durationMs: number;
  startAt: number;
  graceMs: number;
}

/**
 * Fan-out throughput: the first connection broadcasts to `room` whenever the deliveries still on
 * their way are fewer than `window` broadcasts' worth (and no member is `4 × window` broadcasts
 * behind), so the server is never idle and never flooded.
 */
export interface ThroughputCommand {
  op: "throughput";
  room: string;
  window: number;
  warmupMs: number;
  durationMs: number;
  startAt: number;
  graceMs: number;
  /**
   * The server's processes (several for a cluster): this process samples their CPU at the exact
   * edges of the measured window, and reports the sum.
   */
  serverPids: number[];
  /** A redis-server between the nodes, sampled the same way and reported apart. */
  redisPid?: number;
  ticksPerSecond: number;
}

/**
 * The noisy neighbour's bystander: one connection of its own sends `{"type":"ping","id":"<n>"}` every
 * `intervalMs` from `startAt` until `startAt + warmupMs + durationMs`, and times each `pong`; the
 * pings sent before `startAt + warmupMs` are not measured.
 */
export interface BystanderCommand {
  op: "bystander";
  url: string;
  intervalMs: number;
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** How long after its last ping it still waits for replies (not when its connection closed). */
  graceMs: number;
}

/** The noisy neighbour's attacks (bench/load/noisy.ts builds each one's frames). */
export type AttackName = "parse-escape" | "parse-nested" | "fanout" | "presence" | "join-leave" | "pongs";

/**
 * One attack: `connections` connections of this process's own (joined to `room` first when the
 * attack needs it) send its frames from `startAt` for `warmupMs + durationMs`, `ratePerConnection`
 * a second each, or as fast as the server reads them when it is undefined.
 */
export interface AttackCommand {
  op: "attack";
  url: string;
  attack: AttackName;
  connections: number;
  ratePerConnection: number | undefined;
  room: string;
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** How long after the attack the connections still read replies before they are closed. */
  graceMs: number;
}

/** Every connection of this process counts the ticks it receives from `from` to `until`, unparsed. */
export interface ListenCommand {
  op: "listen";
  from: number;
  until: number;
}

/**
 * The api scenario's publisher, over the members this process holds: publications `{seq, t}` (type
 * `tick`) to `room`, sent through `POST /api/publish` on `apiUrl` over `sockets` keep-alive sockets
 * (`via: "http"`), or as the first member's WebSocket `broadcast` (`via: "websocket"`). A publication
 * is on its way until every member has it and, over HTTP, its answer came; at most `window` are.
 */
export interface PublishCommand {
  op: "publish";
  via: "http" | "websocket";
  room: string;
  /** `http://HOST:PORT/api/publish`; only with `via: "http"`. */
  apiUrl?: string;
  apiKey?: string;
  sockets: number;
  window: number;
  /** The first publication's `seq`: each phase has its own range, so a stray late copy is never counted twice. */
  firstSeq: number;
  warmupMs: number;
  durationMs: number;
  startAt: number;
  graceMs: number;
  /** The server's processes, sampled at the exact edges of the measured window. */
  serverPids: number[];
  ticksPerSecond: number;
}

/** Result of {@link PublishCommand}; "measured" publications are those sent inside the window. */
export interface PublishResult {
  members: number;
  /** Publications sent inside the measured window. */
  measured: number;
  elapsedMs: number;
  serverCpuMs: number;
  loadCpuMs: number;
  /** Per measured publication: ms from its send until the last member had it (complete ones only). */
  lastMemberMs: Summary;
  /** Per measured publication over HTTP: ms from its send until the 200 answer. */
  answerMs?: Summary;
  /** Publications sent over the whole run (warm-up included). */
  sent: number;
  /** Deliveries over the whole run; `sent × members` when none is missing. */
  totalDeliveries: number;
  /** Requests answered with anything but 200, or that failed outright. */
  failed: number;
  /** Up to five distinct failures (status and body, or the error). */
  errors: string[];
}

/** Closes every connection of this process. */
export interface ResetCommand {
  op: "reset";
}

/** Asks a server to collect garbage, so that two RSS readings compare live memory. */
export interface GcCommand {
  op: "gc";
}

/** What a server reports after a `gc` request: where its memory is, in KiB. */
export interface MemoryReport {
  rssKiB: number;
  /** Live JS objects after the collection. */
  heapUsedKiB: number;
  /** Memory V8 holds for the JS heap, used or not (RSS counts what of it has been touched). */
  heapCommittedKiB: number;
  /** Of that, the young generation (semi-spaces): it grows under allocation and shrinks late. */
  newSpaceCommittedKiB: number;
  /** Buffers and other memory outside the JS heap that V8 is told of. */
  externalKiB: number;
}

/** Every command a load process accepts. */
export type LoadCommand =
  | ConnectCommand
  | JoinCommand
  | FanoutCommand
  | EchoCommand
  | ThroughputCommand
  | BystanderCommand
  | AttackCommand
  | ListenCommand
  | PublishCommand
  | ResetCommand;

/** Result of {@link ConnectCommand}. */
export interface ConnectResult {
  opened: number;
  failed: number;
  /** Up to five distinct failure messages. */
  errors: string[];
  /** Monotonic ms when the last connection of this process opened. */
  finishedAt: number;
}

/** Result of {@link FanoutCommand}, per measured broadcast (warm-up excluded). */
export interface FanoutResult {
  /** Deliveries of broadcast k to this process's members. */
  counts: number[];
  /** The latest arrival of broadcast k here, as ms after it was sent (-1 when none arrived). */
  lastMs: number[];
  /** The earliest arrival of broadcast k here, as ms after it was sent (-1 when none arrived). */
  firstMs: number[];
}

/** Result of {@link EchoCommand} (warm-up excluded). */
export interface EchoResult {
  sent: number;
  received: number;
  /** One round-trip time per reply, in ms. */
  samplesMs: number[];
}

/** Result of {@link ThroughputCommand}. */
export interface ThroughputResult {
  members: number;
  /** Deliveries inside the measured window. */
  deliveries: number;
  /** Length of the measured window, ms. */
  elapsedMs: number;
  /** Summed over {@link ThroughputCommand.serverPids}. */
  serverCpuMs: number;
  /** The redis-server's CPU in the window; 0 without one. */
  redisCpuMs: number;
  loadCpuMs: number;
  /** Broadcasts sent over the whole run (warm-up included). */
  broadcasts: number;
  /** Deliveries over the whole run; `broadcasts × members` when none is missing. */
  totalDeliveries: number;
}

/** How a connection ended, as its client saw it. */
export interface ClosedBy {
  /** The close frame's code; undefined when the connection ended without one (a reset, a crash). */
  code: number | undefined;
  /** When, as ms after the command's `startAt` (negative: before it). */
  afterMs: number;
}

/** Result of {@link BystanderCommand}, counted over the measured window (warm-up excluded). */
export interface BystanderResult {
  sent: number;
  /** Pongs received. */
  received: number;
  /** Pings refused with a `rate_limited` error (the bystander's own limit). */
  refused: number;
  /** Any other error reply. */
  errors: number;
  /** One round-trip time per pong, in ms. */
  samplesMs: number[];
  closed: ClosedBy | undefined;
}

/**
 * Result of {@link AttackCommand}, counted over the whole attack (warm-up included: a burst allowance
 * is spent there, and an attacker may be closed there); replies until the connections are closed.
 */
export interface AttackResult {
  connections: number;
  /** How long the attack sent: until its end, or until every connection was closed. */
  sendingMs: number;
  /** Messages (or frames) written. */
  sent: number;
  /** Messages that were due but not written because the connection's unsent bytes were over a bound. */
  held: number;
  /** Replies other than errors (echo, pong, presence, room_joined, room_left). */
  answered: number;
  /** Error replies by code; `rate_limited` is a refusal by the rate limit or the work budget. */
  errors: Record<string, number>;
  /** Deliveries and events the attackers themselves received (their own broadcasts, member events). */
  otherReceived: number;
  /** The first connection to be closed, if any was. */
  closed: ClosedBy | undefined;
  /** How many of the connections were closed. */
  closedConnections: number;
}

/** Result of {@link ListenCommand}. */
export interface ListenResult {
  members: number;
  /** Ticks received from `from` to `until`. */
  ticks: number;
}

/** A request on the IPC channel. */
export interface Request<C> {
  seq: number;
  command: C;
}

/** The one answer to a {@link Request}. */
export type Reply = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string };

/** A child's first message: it is ready for requests (servers add their port). */
export interface Ready {
  ready: true;
  port?: number;
  /** conduit-ws under `--namespaces`: the namespaces of the table it was created with. */
  namespaces?: string[];
}
