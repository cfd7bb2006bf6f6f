/**
 * The two kinds of benchmark connection behind one small interface: the SPEC §2 protocol over a raw
 * WebSocket client (for conduit-ws and the plain `ws` hub), and `socket.io-client` (for Socket.IO).
 *
 * The receive path is kept lean because the load generator's own receive time is part of every
 * latency figure: frames are cut from the TCP stream by `RawWebSocket` (no stream or event per
 * message), a tick is recognised by its first bytes, and parsed only when the scenario needs its
 * timestamp. Socket.IO needs its own client to speak its protocol at all.
 *
 * @module
 */
import { RawWebSocket } from "./raw-websocket.js";
import { lastTick, readTick } from "./tick.js";
import { io, type Socket } from "socket.io-client";
import type { ClientKind } from "../shared/messages.js";

/** Called for every broadcast a member receives; `seq` and `sentAt` are -1 when not parsed. */
export type TickListener = (seq: number, sentAt: number) => void;

/** One benchmark connection, whatever protocol it speaks. */
export interface BenchClient {
  /** Receives every tick (the type every benchmark broadcast carries). */
  onTick: TickListener | undefined;
  /** Whether ticks are parsed for their `seq` and `sentAt` (fan-out) or only counted (throughput). */
  parseTicks: boolean;
  /** Receives the `sentAt` of every echo reply. */
  onEcho: ((sentAt: number) => void) | undefined;
  /** Joins `room`; resolves when the server confirmed. */
  join(room: string): Promise<void>;
  /** Asks the server to send `{seq, t: sentAt}` as a `tick` to every member of `room`. */
  broadcast(room: string, seq: number, sentAt: number): void;
  /** Sends an echo request carrying `sentAt`. */
  echo(sentAt: number): void;
  /** Closes the connection; resolves when it is closed (or after a short bound). */
  close(): Promise<void>;
}

/** The type every benchmark broadcast carries. */
const TICK = "tick";
/** How servers serialise a tick: `JSON.stringify({ type, data })` puts these bytes first. */
const TICK_PREFIX = Buffer.from(`{"type":"${TICK}"`);
const CLOSE_BOUND_MS = 2000;
const JOIN_TIMEOUT_MS = 60_000;

interface TickData {
  seq: number;
  t: number;
}

interface Envelope {
  type: string;
  data?: unknown;
}

function startsWithTick(raw: Buffer): boolean {
  return raw.length >= TICK_PREFIX.length && TICK_PREFIX.compare(raw, 0, TICK_PREFIX.length) === 0;
}

/** A connection to conduit-ws or the `ws` hub, speaking SPEC §2 over a raw WebSocket. */
class ProtocolClient implements BenchClient {
  onTick: TickListener | undefined;
  parseTicks = true;
  onEcho: ((sentAt: number) => void) | undefined;
  readonly #socket: RawWebSocket;
  #joining: { room: string; resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(socket: RawWebSocket) {
    this.#socket = socket;
    socket.onText = (raw) => this.#receive(raw);
  }

  #receive(raw: Buffer): void {
    if (startsWithTick(raw)) {
      if (!this.parseTicks) return this.onTick?.(-1, -1);
      if (readTick(raw, TICK_PREFIX.length)) return this.onTick?.(lastTick.seq, lastTick.sentAt);
      const { data } = JSON.parse(raw.toString()) as { data: TickData };
      return this.onTick?.(data.seq, data.t);
    }
    const message = JSON.parse(raw.toString()) as Envelope;
    if (message.type === "echo") {
      this.onEcho?.((message.data as { original: number }).original);
    } else if (message.type === "room_joined" && this.#joining !== undefined) {
      this.#joining.resolve();
      this.#joining = undefined;
    } else if (message.type === "error" && this.#joining !== undefined) {
      this.#joining.reject(new Error(`join refused: ${JSON.stringify(message.data)}`));
      this.#joining = undefined;
    }
  }

  join(room: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no room_joined within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      this.#joining = {
        room,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#socket.sendText(JSON.stringify({ type: "join_room", data: { room } }));
    });
  }

  broadcast(room: string, seq: number, sentAt: number): void {
    this.#socket.sendText(
      `{"type":"broadcast","data":{"room":${JSON.stringify(room)},"type":"${TICK}","payload":{"seq":${seq},"t":${sentAt}}}}`,
    );
  }

  echo(sentAt: number): void {
    this.#socket.sendText(`{"type":"echo","data":${sentAt}}`);
  }

  close(): Promise<void> {
    return this.#socket.destroy(CLOSE_BOUND_MS);
  }
}

/** A connection to Socket.IO through its own client, WebSocket transport only. */
class SocketIoClient implements BenchClient {
  onTick: TickListener | undefined;
  parseTicks = true;
  onEcho: ((sentAt: number) => void) | undefined;
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
    // socket.io-client has already parsed the packet: there is nothing to save by not reading it.
    socket.on(TICK, (data: TickData) => this.onTick?.(data.seq, data.t));
    socket.on("echo", (data: { original: number }) => this.onEcho?.(data.original));
  }

  async join(room: string): Promise<void> {
    const reply = (await this.#socket.timeout(JOIN_TIMEOUT_MS).emitWithAck("join_room", { room })) as { error?: string };
    if (reply.error !== undefined) throw new Error(`join refused: ${reply.error}`);
  }

  broadcast(room: string, seq: number, sentAt: number): void {
    this.#socket.emit("broadcast", { room, type: TICK, payload: { seq, t: sentAt } });
  }

  echo(sentAt: number): void {
    this.#socket.emit("echo", sentAt);
  }

  close(): Promise<void> {
    const socket = this.#socket;
    // With reconnection off and one socket per manager, disconnecting closes the transport too.
    socket.disconnect();
    return Promise.resolve();
  }
}

async function openProtocolClient(url: string): Promise<BenchClient> {
  return new ProtocolClient(await RawWebSocket.open(url));
}

function openSocketIoClient(url: string): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 60_000 });
    socket.once("connect", () => {
      socket.off("connect_error");
      resolve(new SocketIoClient(socket));
    });
    socket.once("connect_error", (error: Error) => {
      socket.disconnect();
      reject(error);
    });
  });
}

/** Opens one connection of the given kind; resolves when it can send (Socket.IO: namespace joined). */
export function openClient(kind: ClientKind, url: string): Promise<BenchClient> {
  return kind === "socketio" ? openSocketIoClient(url) : openProtocolClient(url);
}
