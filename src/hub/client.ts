/**
 * One connection: its identity, metadata, rooms and outbound queue.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { CloseCode, type DisconnectReason } from "../errors.js";
import { envelope, errorMessage, type Message } from "../protocol/message.js";
import type { Client, ClientId, JoinOutcome, RoomName, SendOptions } from "../types.js";
import { PING_FRAME, PreparedMessage, sharedFramesAvailable } from "./prepared-message.js";
import type { RoomGrant } from "../namespaces/rules.js";
import type { RateLimiter } from "./rate-limiter.js";
import { WebSocketState } from "./ready-state.js";
import { SendQueue, type FlushScheduler, type SendTiming } from "./send-queue.js";

/** What a client needs from the hub that owns it. The hub implements this; tests never mock it. */
export interface ClientHost {
  /** Flushes every dirty queue at the end of the turn. */
  readonly scheduler: FlushScheduler;
  /** Unsent bytes above which a client is closed with 1013. */
  readonly maxBufferedBytes: number;
  /** Unsent bytes above which droppable sends skip the client. */
  readonly droppableBufferedBytes: number;
  /** Whether clients may negotiate permessage-deflate (the `enableCompression` option). */
  readonly compression: boolean;
  /** A frame arrived from this client. */
  receive(client: Connection, data: Buffer, isBinary: boolean): void;
  /** Adds the client to a room, enforcing room-name rules and `maxRoomsPerClient`. */
  joinRoom(client: Connection, room: RoomName): JoinOutcome;
  /** Removes the client from a room; false when it was not a member. */
  leaveRoom(client: Connection, room: RoomName): boolean;
  /** Removes the client from the hub and every room. Idempotent. */
  detach(client: Connection, reason: DisconnectReason): void;
  /** Whether frames count against a rate limit (then ping frames are counted too). */
  readonly rateLimited: boolean;
  /** A ping or pong frame arrived from this client. */
  controlFrame(client: Connection): void;
  /** Charges deliveries to the client's work budget; false when it is spent. */
  charge(client: Connection, deliveries: number): boolean;
  /** Counts queued messages for metrics. */
  countOut(type: string, count: number): void;
  /** A server-closed client's socket started (+1) or finished (-1) closing. */
  closingChanged(delta: 1 | -1): void;
  /** Something failed inside the server while serving this client: log it and close with 1011. */
  internalError(client: Connection, error: unknown): void;
}

/** The fields the connection carries from the handshake. */
export interface ClientInit {
  /** The user id the auth handler returned, or null when anonymous. */
  userId: string | null;
  /** Metadata the auth handler attached. */
  metadata?: Record<string, unknown> | undefined;
  /** The rooms the token grants (for namespaces with `join: "granted"`). */
  grant?: RoomGrant | undefined;
  /** When the token expires, in ms since the epoch; undefined when it does not. */
  expiresAt?: number | undefined;
}

/**
 * Connection times are kept as milliseconds since this module loaded: small whole numbers, which V8
 * stores in the object itself (as "small integers", for the first 12 days of a process). Milliseconds
 * since 1970 do not fit, and every such field would cost a boxed number per client.
 */
const TIME_ORIGIN = Date.now();

const kClient = Symbol("conduit.client");
type TrackedSocket = WebSocket & { [kClient]: Connection };

function clientOf(socket: WebSocket): Connection {
  return (socket as TrackedSocket)[kClient];
}

// Listeners shared by every connection (`this` is the socket): no closure is allocated per client,
// which keeps an idle connection's memory close to that of a bare `ws` socket.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const client = clientOf(this);
  try {
    client.host.receive(client, data, isBinary);
  } catch (error) {
    // Handlers' errors are caught by the router; reaching here is a bug in the server itself. An
    // exception thrown out of a 'message' listener would kill the process, so close this one client
    // with 1011 instead and keep serving the rest.
    client.host.internalError(client, error);
  }
}
function onPong(this: WebSocket): void {
  const client = clientOf(this);
  client.touch();
  client.host.controlFrame(client);
}
function onPing(this: WebSocket): void {
  const client = clientOf(this);
  client.host.controlFrame(client);
}
function onError(this: WebSocket): void {
  clientOf(this).markReason("transport_error");
}
function onClose(this: WebSocket): void {
  const client = clientOf(this);
  client.socketClosed();
  client.host.detach(client, client.closeReason ?? "client_closed");
}

/**
 * One WebSocket connection in the hub: the {@link Client} users see, plus what the hub, the router
 * and the heartbeat sweep need of it. Only the hub creates one.
 */
export class Connection implements Client {
  /** A random UUID, unique across the cluster. */
  readonly id: ClientId;
  /** The user id the auth handler returned; null for anonymous clients. */
  readonly userId: string | null;
  /**
   * The order in which the hub accepted this client (0, 1, 2, ...); the hub's map iterates in this
   * order, and the heartbeat sweep resumes its pass by it.
   */
  readonly sequence: number;
  /** The hub that owns this client. */
  readonly host: ClientHost;
  /** Why the connection ended, when the server decided it. */
  closeReason: DisconnectReason | undefined;
  /**
   * The client's token bucket, made by the hub on the first frame: a bucket starts full, so making
   * it late changes nothing, and an idle connection never pays for one.
   */
  rateLimiter: RateLimiter | undefined;
  /** The rooms the connection's token grants; replaced when the token is refreshed. */
  grant: RoomGrant | undefined;
  /** When the connection's token expires (ms since the epoch); undefined when it does not. */
  expiresAt: number | undefined;

  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  /**
   * Frames waiting for this turn's write; made on the first send, so that a connection that is only
   * opened (a burst of reconnects, an idle subscriber) costs one object less.
   */
  #queue: SendQueue | undefined;
  /**
   * Whether messages go through `ws`'s own sender instead of the shared frames: a compressed
   * connection, or a `ws` without `Sender.frame`.
   */
  readonly #throughWs: boolean;
  /** When the connection was accepted, in ms since {@link TIME_ORIGIN}. */
  readonly #connectedAt: number;
  /** The last pong or message, in ms since {@link TIME_ORIGIN}. */
  #lastHeartbeat: number;
  #rooms: Set<RoomName> | undefined;
  #metadata: Map<string, unknown> | undefined;
  #closingCounted = false;

  /** Created by the hub when a handshake completes. */
  constructor(id: ClientId, sequence: number, ws: WebSocket, socket: Duplex, host: ClientHost, init: ClientInit) {
    this.id = id;
    this.userId = init.userId;
    this.sequence = sequence;
    this.host = host;
    this.closeReason = undefined;
    this.rateLimiter = undefined;
    this.grant = init.grant;
    this.expiresAt = init.expiresAt;
    this.#ws = ws;
    this.#socket = socket;
    this.#queue = undefined;
    // `ws.extensions` builds a string on every read: ask only when compression can have been agreed.
    this.#throughWs = !sharedFramesAvailable || (host.compression && ws.extensions.includes("permessage-deflate"));
    this.#connectedAt = Date.now() - TIME_ORIGIN;
    this.#lastHeartbeat = this.#connectedAt;
    if (init.metadata) for (const [key, value] of Object.entries(init.metadata)) this.setMetadata(key, value);

    (ws as TrackedSocket)[kClient] = this;
    ws.on("message", onMessage);
    ws.on("pong", onPong);
    // Without a rate limit a ping changes nothing here (ws answers it): no listener to keep.
    if (host.rateLimited) ws.on("ping", onPing);
    ws.on("error", onError);
    ws.on("close", onClose);
  }

  /**
   * The peer's address (behind a proxy, the proxy's). Read on demand: asking the socket caches its
   * peer name, which idle connections need not pay for.
   */
  get remoteAddress(): string | undefined {
    return (this.#socket as Partial<Socket>).remoteAddress;
  }

  /** When the connection was accepted. */
  get connectedAt(): Date {
    return new Date(TIME_ORIGIN + this.#connectedAt);
  }

  /** The time of the last pong or message from this client. */
  get lastHeartbeat(): Date {
    return new Date(TIME_ORIGIN + this.#lastHeartbeat);
  }

  /** Milliseconds since the epoch of the handshake (for the heartbeat sweep). */
  get connectedAtMs(): number {
    return TIME_ORIGIN + this.#connectedAt;
  }

  /** Milliseconds since the epoch of the last pong or message (for the heartbeat sweep). */
  get lastHeartbeatMs(): number {
    return TIME_ORIGIN + this.#lastHeartbeat;
  }

  /** The rooms this client is in, on this node. */
  get rooms(): ReadonlySet<RoomName> {
    return this.#rooms ?? EMPTY_ROOMS;
  }

  /** Whether the connection is open and the client is still in the hub. */
  get isOpen(): boolean {
    return this.#ws.readyState === WebSocketState.Open && this.closeReason === undefined;
  }

  /** Bytes sent to this client that it has not yet received. */
  get bufferedAmount(): number {
    return this.#throughWs ? this.#ws.bufferedAmount : this.#unsentBytes();
  }

  /** Stores a value on the connection, visible to every handler. */
  setMetadata(key: string, value: unknown): void {
    this.#metadata ??= new Map();
    this.#metadata.set(key, value);
  }

  /** Reads a value stored with {@link Connection.setMetadata}; undefined when absent. */
  getMetadata<T = unknown>(key: string): T | undefined {
    return this.#metadata?.get(key) as T | undefined;
  }

  /** Removes a metadata entry; true when it existed. */
  deleteMetadata(key: string): boolean {
    return this.#metadata?.delete(key) ?? false;
  }

  /**
   * Joins a room (created on first join). Joining a room twice is harmless.
   *
   * @returns `{ ok: true }`, or the reason the room name or room count was refused
   */
  joinRoom(room: RoomName): JoinOutcome {
    return this.host.joinRoom(this, room);
  }

  /** Leaves a room (deleted when empty); false when the client was not a member. */
  leaveRoom(room: RoomName): boolean {
    return this.host.leaveRoom(this, room);
  }

  /** Sends `{ type, data }` to this client. False when it was dropped (closed, or droppable and slow). */
  send(type: string, data?: unknown, options?: SendOptions): boolean {
    return this.sendMessage(envelope(type, data), options);
  }

  /** Sends a whole envelope, `id` included. False when it was dropped. */
  sendMessage(message: Message, options?: SendOptions): boolean {
    return this.#sendOne(message, options?.droppable ?? false, "callback");
  }

  /**
   * A handler's reply (or the router's error in its place). It is written at once unless frames are
   * already waiting for this socket: a request gets one reply, and a flush scheduled after the
   * callback would only delay it. A server-initiated {@link Connection.send} still waits for the end
   * of the callback, so that a loop of sends to one client leaves in one write.
   */
  sendReply(message: Message): boolean {
    return this.#sendOne(message, false, "now");
  }

  #sendOne(message: Message, droppable: boolean, timing: SendTiming): boolean {
    const prepared = PreparedMessage.encode(message, droppable);
    const queued = this.sendPrepared(prepared, timing);
    if (queued) this.host.countOut(prepared.type, 1);
    return queued;
  }

  /** See {@link Client.charge}. */
  charge(deliveries: number): boolean {
    return this.host.charge(this, deliveries);
  }

  /** Sends `{"type":"error","data":{"code","message"}}`, with the request's `id` when given. */
  sendError(code: string, message: string, id?: string): boolean {
    return this.sendMessage(errorMessage(code, message, id));
  }

  /**
   * Queues a message that was encoded once for many recipients. This is the broadcast hot path: no
   * allocation, just a bound check and a push.
   *
   * @param timing - when it is written: `"turn"` (the default) with the other broadcasts at the end
   *   of the event-loop turn; `"callback"` (a message for this client alone) as soon as the current
   *   callback returns; `"now"` at once, unless frames are already waiting (see {@link SendTiming})
   * @returns false when the message was skipped (closed, or droppable and the client is slow)
   */
  sendPrepared(prepared: PreparedMessage, timing: SendTiming = "turn"): boolean {
    if (this.closeReason !== undefined || this.#ws.readyState !== WebSocketState.Open) return false;
    if (this.#throughWs) return this.#sendThroughWs(prepared);
    const unsent = this.#unsentBytes();
    if (prepared.droppable && unsent > this.host.droppableBufferedBytes) return false;
    // Set whenever shared frames are available, which #throughWs checked.
    const frame = prepared.frame!;
    if (unsent + frame.length > this.host.maxBufferedBytes) {
      // A droppable message never costs the connection, even one that alone would not fit.
      if (!prepared.droppable) this.#closeSlowConsumer();
      return false;
    }
    this.#sendQueue().push(frame, timing);
    return true;
  }

  /** Bytes queued here or in the socket, not yet handed to the kernel. */
  #unsentBytes(): number {
    return this.#queue === undefined ? this.#socket.writableLength : this.#queue.unsentBytes;
  }

  #sendQueue(): SendQueue {
    this.#queue ??= new SendQueue(this.#socket, this.host.scheduler, this.#ws);
    return this.#queue;
  }

  /**
   * Compressed connections go through `ws.send`, which deflates per connection; mixing in shared
   * frames could reorder them behind a deflate still in progress. So does every connection when
   * `ws` offers no way to frame a message once for many sockets.
   */
  #sendThroughWs(prepared: PreparedMessage): boolean {
    const unsent = this.#ws.bufferedAmount;
    if (prepared.droppable && unsent > this.host.droppableBufferedBytes) return false;
    if (unsent + prepared.json.length > this.host.maxBufferedBytes) {
      if (!prepared.droppable) this.#closeSlowConsumer();
      return false;
    }
    this.#ws.send(prepared.json);
    return true;
  }

  #closeSlowConsumer(): void {
    this.#queue?.clear();
    this.close(CloseCode.TryAgainLater, "slow consumer: too many unsent bytes", "slow_consumer");
  }

  /**
   * Closes the connection with a close frame. The client leaves the hub and its rooms at once; queued
   * messages are written before the close frame.
   *
   * @param code - the close code (see `CloseCode`)
   * @param reason - a short text for the peer (at most 123 bytes)
   * @param why - the reason reported to `disconnect` listeners
   */
  close(code: number = CloseCode.Normal, reason = "", why: DisconnectReason = "server_closed"): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = why;
    this.#queue?.flush();
    this.#ws.close(code, reason);
    this.host.detach(this, why);
    this.#countClosing();
  }

  /**
   * Reads nothing more from the connection (a client closed for abuse): what it still sends stays
   * in the kernel's buffers instead of being parsed, and the socket goes when the close times out.
   */
  stopReading(): void {
    this.#socket.pause();
  }

  /** Ends the TCP connection without a closing handshake (for peers that stopped answering). */
  terminate(why: DisconnectReason = "server_closed"): void {
    this.markReason(why);
    this.#queue?.clear();
    this.#ws.terminate();
    this.host.detach(this, why);
    this.#countClosing();
  }

  /**
   * A client the server closed leaves the hub at once, but its socket holds its unsent bytes until the
   * close completes (or `shutdownTimeout` passes): the hub counts it against `maxConnections` until then.
   */
  #countClosing(): void {
    if (this.#closingCounted || this.#ws.readyState === WebSocketState.Closed) return;
    this.#closingCounted = true;
    this.host.closingChanged(1);
  }

  /** The socket has closed: it no longer counts against `maxConnections`. */
  socketClosed(): void {
    if (!this.#closingCounted) return;
    this.#closingCounted = false;
    this.host.closingChanged(-1);
  }

  /**
   * Sends a WebSocket ping frame (the heartbeat sweep calls this). Every ping is the same two bytes,
   * so every client gets the one shared frame through its queue: `ws.ping()` would frame an empty
   * payload anew and write header and payload as two buffers. Connections whose messages go through
   * `ws`'s own sender (compressed ones) keep `ws`'s ping.
   */
  ping(): void {
    if (this.closeReason !== undefined || this.#ws.readyState !== WebSocketState.Open) return;
    if (this.#throughWs) this.#ws.ping();
    // An idle connection has no queue, and needs none for a frame written at once.
    else if (this.#queue !== undefined) this.#queue.push(PING_FRAME!, "now");
    else if (this.#socket.writable) this.#socket.write(PING_FRAME!);
  }

  /** Records that the client is alive (a pong or a message arrived). */
  touch(now: number = Date.now()): void {
    this.#lastHeartbeat = now - TIME_ORIGIN;
  }

  /** Records why the connection is ending unless a reason is already known. */
  markReason(why: DisconnectReason): void {
    this.closeReason ??= why;
  }

  /** The room set, created on first join; only the hub calls this. */
  roomSet(): Set<RoomName> {
    this.#rooms ??= new Set();
    return this.#rooms;
  }

  /** A promise that settles when the socket has closed (used by shutdown). */
  whenClosed(): Promise<void> {
    if (this.#ws.readyState === WebSocketState.Closed) return Promise.resolve();
    return new Promise((resolve) => this.#ws.once("close", () => resolve()));
  }

  /** Writes queued frames now (before a close frame). */
  flush(): void {
    this.#queue?.flush();
  }
}

const EMPTY_ROOMS: ReadonlySet<RoomName> = new Set();
