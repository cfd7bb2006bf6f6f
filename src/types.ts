/**
 * The names every part shares: the id types, and the public view of one connection. The hub, the
 * router, the adapters and the server all import them from here, so none of them needs another's
 * module for a type.
 *
 * @module
 */
import type { Message } from "./protocol/message.js";

/** A client's id: a random UUID, unique across the cluster. */
export type ClientId = string;

/** A room's name: 1 to 128 characters, no control characters. */
export type RoomName = string;

/** Options of a single send. */
export interface SendOptions {
  /**
   * Skip this client instead of queueing when its unsent bytes are above `droppableBufferedBytes`
   * (for tickers, cursors, typing indicators: data that the next message replaces). A droppable
   * message that would push the client past `maxBufferedBytes` is skipped too: it never closes a
   * connection.
   * @default false
   */
  droppable?: boolean;
}

/** Options of one broadcast. */
export interface BroadcastOptions extends SendOptions {
  /** A client that should not receive this copy (e.g. the sender). */
  except?: ClientId;
}

/**
 * Result of {@link Client.joinRoom}: joined, or the error code and text to reply with. In a cluster,
 * `ready` settles once other nodes' broadcasts to the room reach this client and other nodes list it
 * as a member; the built-in `join_room` waits for it before answering.
 */
export type JoinOutcome = { ok: true; ready?: Promise<void> } | { ok: false; code: string; reason: string };

/**
 * One WebSocket connection in the hub, as handlers and `connection` listeners see it.
 *
 * @example
 * ```ts
 * server.on("connection", (client) => {
 *   client.setMetadata("joinedVia", "lobby");
 *   client.joinRoom("lobby");
 *   client.send("welcome", { id: client.id });
 * });
 * ```
 */
export interface Client {
  /** A random UUID, unique across the cluster. */
  readonly id: ClientId;
  /** The user id the auth handler returned; null for anonymous clients. */
  readonly userId: string | null;
  /** The peer's address (behind a proxy, the proxy's). */
  readonly remoteAddress: string | undefined;
  /** When the connection was accepted. */
  readonly connectedAt: Date;
  /** The time of the last pong or message from this client. */
  readonly lastHeartbeat: Date;
  /** The rooms this client is in, on this node. */
  readonly rooms: ReadonlySet<RoomName>;
  /** Whether the connection is open and the client is still in the hub. */
  readonly isOpen: boolean;
  /** Bytes sent to this client that it has not yet received. */
  readonly bufferedAmount: number;
  /** Stores a value on the connection, visible to every handler. */
  setMetadata(key: string, value: unknown): void;
  /** Reads a value stored with {@link Client.setMetadata}; undefined when absent. */
  getMetadata<T = unknown>(key: string): T | undefined;
  /** Removes a metadata entry; true when it existed. */
  deleteMetadata(key: string): boolean;
  /**
   * Joins a room (created on first join). Joining a room twice is harmless.
   *
   * @returns `{ ok: true }`, or the reason the room name or room count was refused
   */
  joinRoom(room: RoomName): JoinOutcome;
  /** Leaves a room (deleted when empty); false when the client was not a member. */
  leaveRoom(room: RoomName): boolean;
  /** Sends `{ type, data }` to this client. False when it was dropped (closed, or droppable and slow). */
  send(type: string, data?: unknown, options?: SendOptions): boolean;
  /** Sends a whole envelope, `id` included. False when it was dropped. */
  sendMessage(message: Message, options?: SendOptions): boolean;
  /** Sends `{"type":"error","data":{"code","message"}}`, with the request's `id` when given. */
  sendError(code: string, message: string, id?: string): boolean;
  /**
   * Charges work done on this client's behalf to its budget (`rateLimit.deliveriesPerSecond`): one
   * unit per message the server writes for it. The built-in `broadcast`, `presence`, `join_room` and
   * `leave_room` charge it; a handler of yours that fans out for a client can do the same. Always
   * true without a rate limit.
   *
   * @returns false when the budget is spent: do not do the work, and reply `rate_limited`. The
   *   message counts as dropped, and a client that keeps going is closed with 1008.
   *
   * @example
   * ```ts
   * server.registerHandler("notify_team", (ctx, client, msg) => {
   *   const members = server.getRoomClients("team");
   *   if (!client.charge(members.length)) return ctx.replyError("rate_limited", "too much work: try later");
   *   for (const member of members) member.send("notice", msg.data);
   * });
   * ```
   */
  charge(deliveries: number): boolean;
  /**
   * Closes the connection with a close frame. The client leaves the hub and its rooms at once; queued
   * messages are written before the close frame.
   *
   * @param code - the close code (see `CloseCode`)
   * @param reason - a short text for the peer (at most 123 bytes)
   */
  close(code?: number, reason?: string): void;
  /** Ends the TCP connection without a closing handshake (for peers that stopped answering). */
  terminate(): void;
}
