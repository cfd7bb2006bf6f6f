/**
 * The noisy neighbour's two sides in a load process: the bystander, one connection that pings and
 * times each pong, and the attack, a few connections sending one kind of costly message at a set
 * rate (or as fast as the server reads). Each opens connections of its own, apart from the
 * process's members (routines.ts), and closes them when it returns, so that the harness can put the
 * bystander, the attackers and the members in different processes.
 *
 * @module
 */
import { now, until } from "../shared/clock.js";
import type { AttackCommand, AttackName, AttackResult, BystanderCommand, BystanderResult, ClosedBy } from "../shared/messages.js";
import { RawWebSocket } from "./raw-websocket.js";

const CLOSE_BOUND_MS = 2000;
const JOIN_TIMEOUT_MS = 60_000;
/**
 * Unsent bytes above which an attacker skips a message that is due instead of queueing it: a server
 * that stops reading holds the attack back, as TCP would a real client, and the attacker's memory
 * stays bounded. The skipped ones are reported (`held`).
 */
const HOLD_BYTES = 1024 * 1024;
/** Size of the parsing attacks' messages: under conduit-ws's default `maxPayload` (64 KiB). */
const PARSE_MESSAGE_BYTES = 60_000;
/** Nesting of the deep-array attack: far past any depth limit, still under 64 KiB of brackets. */
const NESTING = 30_000;
/** Size of a broadcast request of the fan-out attack. */
const BROADCAST_BYTES = 1000;
/** Empty pong frames written per write of the pong flood (6 bytes each: header and mask). */
const FLOOD_FRAMES = 10_000;
/** Message types that answer an attacker's request (everything else it receives is counted apart). */
const ANSWERS = new Set(["echo", "pong", "presence", "room_joined", "room_left"]);
const TYPE_PREFIX = Buffer.from('{"type":"');
const QUOTE = 0x22;

/** `{"type":"echo","data":[7,7,…,"\u00e9"]}`: numbers, then one escape, which sends a parser that looks for `\u` down its slow path. */
function escapeMessage(): string {
  const head = '{"type":"echo","data":[';
  const tail = '"\\u00e9"]}';
  const numbers = "7,".repeat(Math.floor((PARSE_MESSAGE_BYTES - head.length - tail.length) / 2));
  return `${head}${numbers}${tail}`.padEnd(PARSE_MESSAGE_BYTES, " ");
}

/** `{"type":"echo","data":[[[…]]]}`, {@link NESTING} arrays deep. */
function nestedMessage(): string {
  return `{"type":"echo","data":${"[".repeat(NESTING)}${"]".repeat(NESTING)}}`;
}

/** A broadcast of a tick (members count ticks without parsing them) padded to {@link BROADCAST_BYTES}. */
function broadcastMessage(room: string): string {
  const head = `{"type":"broadcast","data":{"room":${JSON.stringify(room)},"type":"tick","payload":"`;
  const tail = '"}}';
  return `${head}${"x".repeat(BROADCAST_BYTES - head.length - tail.length)}${tail}`;
}

/** {@link FLOOD_FRAMES} masked, empty, unsolicited pong frames (a zero mask key is still a mask). */
function pongFlood(): Buffer {
  const frame = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);
  return Buffer.concat(Array.from({ length: FLOOD_FRAMES }, () => frame));
}

/** The text messages each connection of an attack sends in turn (the pong flood has none). */
function messagesOf(attack: AttackName, room: string): string[] {
  const inRoom = JSON.stringify({ room });
  switch (attack) {
    case "parse-escape":
      return [escapeMessage()];
    case "parse-nested":
      return [nestedMessage()];
    case "fanout":
      return [broadcastMessage(room)];
    case "presence":
      return [`{"type":"presence","data":${inRoom}}`];
    case "join-leave":
      return [`{"type":"join_room","data":${inRoom}}`, `{"type":"leave_room","data":${inRoom}}`];
    case "pongs":
      return [];
  }
}

/** The attacks whose connections must be in the room before they start. */
const JOINED_FIRST: readonly AttackName[] = ["fanout", "presence"];

/** The `type` of a server message, read from its first bytes (`{"type":"…"`), without parsing it. */
function typeOf(payload: Buffer): string {
  if (payload.length < TYPE_PREFIX.length || TYPE_PREFIX.compare(payload, 0, TYPE_PREFIX.length) !== 0) return "";
  const end = payload.indexOf(QUOTE, TYPE_PREFIX.length);
  return end === -1 ? "" : payload.toString("latin1", TYPE_PREFIX.length, end);
}

/** Joins `room` and resolves on the confirmation; rejects on an error reply, a close or the timeout. */
function joinRoom(socket: RawWebSocket, room: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error(`no room_joined within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      socket.onText = undefined;
      socket.onClose = undefined;
      if (error === undefined) resolve();
      else reject(error);
    };
    socket.onText = (payload) => {
      const type = typeOf(payload);
      if (type === "room_joined") settle();
      else if (type === "error") settle(new Error(`join refused: ${payload.toString()}`));
    };
    socket.onClose = (code) => settle(new Error(`closed (${code ?? "no close frame"}) while joining`));
    socket.sendText(JSON.stringify({ type: "join_room", data: { room } }));
  });
}

/** Closes `sockets` without reporting their close. */
async function closeAll(sockets: readonly RawWebSocket[]): Promise<void> {
  for (const socket of sockets) {
    socket.onText = undefined;
    socket.onClose = undefined;
  }
  await Promise.all(sockets.map((socket) => socket.destroy(CLOSE_BOUND_MS)));
}

/** The noisy neighbour's bystander: see {@link BystanderCommand}. */
export async function bystander(command: BystanderCommand): Promise<BystanderResult> {
  const { startAt, intervalMs } = command;
  const socket = await RawWebSocket.open(command.url);
  const measureFrom = startAt + command.warmupMs;
  const total = Math.floor((command.warmupMs + command.durationMs) / intervalMs);
  const sentAt: number[] = [];
  const samplesMs: number[] = [];
  let sent = 0;
  let refused = 0;
  let errors = 0;
  let closed: ClosedBy | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const answered = (): number => samplesMs.length + refused + errors;
  const measured = (id: unknown): boolean => typeof id === "string" && (sentAt[Number(id)] ?? -1) >= measureFrom;

  socket.onText = (payload) => {
    const at = now();
    const reply = JSON.parse(payload.toString()) as { type: string; id?: string; data?: { code?: string } };
    if (!measured(reply.id)) return;
    if (reply.type === "pong") samplesMs.push(at - sentAt[Number(reply.id)]!);
    else if (reply.type === "error" && reply.data?.code === "rate_limited") refused++;
    else errors++;
    if (sentAt.length === total && answered() === sent) finish();
  };
  socket.onClose = (code) => {
    closed = { code, afterMs: now() - startAt };
    finish();
  };

  // Each ping is scheduled from the start time, not from the previous one, so delays do not add up.
  let timer: NodeJS.Timeout | undefined;
  const pingNext = (): void => {
    if (socket.isClosed) return;
    const k = sentAt.length;
    const at = now();
    sentAt.push(at);
    if (at >= measureFrom) sent++;
    socket.sendText(`{"type":"ping","id":"${k}"}`);
    if (k + 1 < total) timer = setTimeout(pingNext, Math.max(0, startAt + (k + 1) * intervalMs - now()));
  };
  timer = setTimeout(pingNext, Math.max(0, startAt - now()));
  const deadline = setTimeout(finish, startAt + total * intervalMs + command.graceMs - now());
  await finished;
  clearTimeout(timer);
  clearTimeout(deadline);
  await closeAll([socket]);
  return { sent, received: samplesMs.length, refused, errors, samplesMs, closed };
}

/** The noisy neighbour's attack: see {@link AttackCommand}. */
export async function attack(command: AttackCommand): Promise<AttackResult> {
  const { startAt, connections } = command;
  const sockets: RawWebSocket[] = [];
  try {
    for (let i = 0; i < connections; i++) sockets.push(await RawWebSocket.open(command.url));
    if (JOINED_FIRST.includes(command.attack)) await Promise.all(sockets.map((socket) => joinRoom(socket, command.room)));
  } catch (error) {
    await closeAll(sockets);
    throw error;
  }
  const end = startAt + command.warmupMs + command.durationMs;
  const result: AttackResult = {
    connections,
    sendingMs: 0,
    sent: 0,
    held: 0,
    answered: 0,
    errors: {},
    otherReceived: 0,
    closed: undefined,
    closedConnections: 0,
  };
  for (const socket of sockets) {
    socket.onText = (payload) => {
      const type = typeOf(payload);
      if (type === "error") {
        const code = (JSON.parse(payload.toString()) as { data?: { code?: string } }).data?.code ?? "unknown";
        result.errors[code] = (result.errors[code] ?? 0) + 1;
      } else if (ANSWERS.has(type)) {
        result.answered++;
      } else {
        result.otherReceived++;
      }
    };
    socket.onClose = (code) => {
      result.closed ??= { code, afterMs: now() - startAt };
      result.closedConnections++;
    };
  }

  await until(startAt);
  if (command.ratePerConnection === undefined) {
    await Promise.all(sockets.map((socket) => flood(socket, end, result)));
  } else {
    await atRate(sockets, messagesOf(command.attack, command.room), command.ratePerConnection, startAt, end, result);
  }
  result.sendingMs = Math.min(now(), end) - startAt;
  // Replies to the last messages are still on their way.
  const grace = now() + command.graceMs;
  while (now() < grace && result.closedConnections < connections) await until(Math.min(grace, now() + 50));
  await closeAll(sockets);
  return result;
}

/**
 * Sends `messages` in turn on every socket, `rate` a second each, spread evenly from `startAt`
 * until `end` or until every socket is closed.
 */
async function atRate(
  sockets: readonly RawWebSocket[],
  messages: readonly string[],
  rate: number,
  startAt: number,
  end: number,
  result: AttackResult,
): Promise<void> {
  const n = sockets.length;
  const perSecond = n * rate;
  const total = Math.floor(((end - startAt) * perSecond) / 1000);
  const next = new Array<number>(n).fill(0);
  let due = 0;
  await new Promise<void>((resolve) => {
    // Every tick sends what is due by now, round-robin over the connections.
    const ticker = setInterval(() => {
      const at = now();
      const upTo = Math.min(total, Math.floor(((at - startAt) * perSecond) / 1000));
      for (; due < upTo; due++) {
        const socket = sockets[due % n]!;
        if (socket.isClosed) continue;
        if (socket.bufferedBytes > HOLD_BYTES) {
          result.held++;
          continue;
        }
        const k = due % n;
        socket.sendText(messages[next[k]! % messages.length]!);
        next[k]!++;
        result.sent++;
      }
      if (due >= total || at >= end || sockets.every((socket) => socket.isClosed)) {
        clearInterval(ticker);
        resolve();
      }
    }, 2);
  });
}

/** Writes unsolicited pong frames on `socket` as fast as the server reads them, until `end`. */
async function flood(socket: RawWebSocket, end: number, result: AttackResult): Promise<void> {
  const frames = pongFlood();
  while (now() < end && !socket.isClosed) {
    const ready = socket.sendBytes(frames);
    result.sent += FLOOD_FRAMES;
    // Wait for the server to read (bounded by the end of the window), or yield to the replies.
    if (!ready) await Promise.race([socket.drained(), until(end)]);
    else await new Promise((resolve) => setImmediate(resolve));
  }
}
