/**
 * The hub: the one owner of this process's clients and rooms, and of every delivery to them.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { Adapter, AdapterHost, ClusterBroadcast, DisconnectOrder, MemberInfo } from "../adapter/adapter.js";
import { CloseCode, ErrorCode, type DisconnectReason } from "../errors.js";
import type { Instrumentation } from "../instrumentation.js";
import type { Logger } from "../logger.js";
import type { ServerOptions } from "../options.js";
import type { NamespaceRules } from "../namespaces/rules.js";
import type { BuiltinHost } from "../protocol/builtins.js";
import type { Identity } from "../upgrade/tokens.js";
import { envelope, parseMessage } from "../protocol/message.js";
import type { MessageDispatcher } from "../protocol/router.js";
import type { BroadcastOptions, ClientId, JoinOutcome, RoomName, SendOptions } from "../types.js";
import { Connection, type ClientHost, type ClientInit } from "./client.js";
import { randomClientId } from "./client-id.js";
import { PreparedMessage } from "./prepared-message.js";
import { invalidRoomReason, RoomRegistry } from "./rooms.js";
import { FlushScheduler } from "./send-queue.js";
import { ClientLimits } from "./client-limits.js";
import { Permissions } from "./permissions.js";

/** Lifecycle callbacks the server turns into its public events. */
export interface HubListener {
  /** A client completed its handshake and is in the hub. */
  connected(client: Connection): void;
  /** A client left the hub (it is already out of every room). */
  disconnected(client: Connection, reason: DisconnectReason): void;
}

/**
 * Registers clients, keeps rooms, and delivers messages: to one client, to a room, or to all.
 * A broadcast is encoded once ({@link PreparedMessage}) and the same frame is queued for every
 * recipient; the adapter carries it to other nodes.
 */
export class Hub implements ClientHost, AdapterHost, BuiltinHost {
  /** This node's id in the cluster. */
  readonly nodeId: string = randomUUID();
  /** Flushes every client's queue at the end of the turn. */
  readonly scheduler = new FlushScheduler();
  /** See {@link ServerOptions.maxBufferedBytes}. */
  readonly maxBufferedBytes: number;
  /** See {@link ServerOptions.droppableBufferedBytes}. */
  readonly droppableBufferedBytes: number;
  /** See {@link ServerOptions.enableCompression}. */
  readonly compression: boolean;

  readonly #clients = new Map<ClientId, Connection>();
  /** Namespace rules, `canJoin` and token expiry. */
  readonly #permissions: Permissions;
  /** Every client's message rate and work budget. */
  readonly #limits: ClientLimits;
  readonly #rooms = new RoomRegistry();
  readonly #options: ServerOptions;
  readonly #adapter: Adapter;
  readonly #logger: Logger;
  readonly #metrics: Instrumentation | undefined;
  readonly #listener: HubListener;
  #dispatcher: MessageDispatcher | undefined;
  #closing = 0;
  /** Clients accepted so far: the next client's {@link Connection.sequence}. */
  #accepted = 0;

  /** The server builds the hub. */
  constructor(options: ServerOptions, adapter: Adapter, logger: Logger, listener: HubListener) {
    this.#options = options;
    this.#permissions = new Permissions(options.namespaces, options.canJoin, logger, (client, room) => this.leaveRoom(client, room));
    this.#limits = new ClientLimits(options.rateLimit, options.maxMessageDepth, logger);
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.droppableBufferedBytes = options.droppableBufferedBytes;
    this.compression = options.enableCompression;
    this.#adapter = adapter;
    this.#logger = logger;
    this.#metrics = options.instrumentation;
    this.#listener = listener;
  }

  /** Connects the router; called once by the server. */
  setDispatcher(dispatcher: MessageDispatcher): void {
    this.#dispatcher = dispatcher;
  }

  /** How many clients this node holds. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Clients the server closed whose sockets have not finished closing: they left the hub, but still
   * hold a socket and its unsent bytes, so admission counts them.
   */
  get closingCount(): number {
    return this.#closing;
  }

  /** See {@link Hub.closingCount}. */
  closingChanged(delta: 1 | -1): void {
    this.#closing += delta;
  }

  /** How many rooms have a member on this node. */
  get roomCount(): number {
    return this.#rooms.count;
  }

  /** Wraps an upgraded socket in a {@link Connection} and registers it. */
  accept(ws: WebSocket, socket: Duplex, init: ClientInit): Connection {
    const client = new Connection(randomClientId(), this.#accepted++, ws, socket, this, init);
    this.#clients.set(client.id, client);
    this.#permissions.admitted(client);
    this.#logger.debug({ clientId: client.id, userId: client.userId }, "client connected");
    this.#listener.connected(client);
    return client;
  }

  /** The local client with this id, if any. */
  getClient(id: ClientId): Connection | undefined {
    return this.#clients.get(id);
  }

  /** Every local client. */
  clients(): IterableIterator<Connection> {
    return this.#clients.values();
  }

  /** The local members of a room (empty when the room does not exist here). */
  getRoomClients(room: RoomName): Connection[] {
    return [...this.#rooms.members(room)];
  }

  /** Local member count of a room. */
  localRoomSize(room: RoomName): number {
    return this.#rooms.size(room);
  }

  /** The rooms with at least one member on this node. */
  roomNames(): RoomName[] {
    return [...this.#rooms.names()];
  }

  // ---- ingest -------------------------------------------------------------------------------

  /** A frame arrived: rate limit, parse, route. */
  receive(client: Connection, data: Buffer, isBinary: boolean): void {
    if (client.closeReason !== undefined) return;
    const now = Date.now();
    client.touch(now);
    if (!this.#limits.admit(client, data, isBinary, now)) return;
    const dispatcher = this.#dispatcher!;
    if (isBinary) return dispatcher.dispatchBinary(client, data);
    const parsed = parseMessage(data.toString(), this.#options.maxMessageDepth);
    if (!parsed.ok) {
      this.#metrics?.messageIn?.("invalid");
      client.sendError(parsed.code, parsed.reason, parsed.id);
      return;
    }
    dispatcher.dispatch(client, parsed.message);
  }

  /** A failure inside the server while serving `client`: close it with 1011, keep the rest. */
  internalError(client: Connection, error: unknown): void {
    this.#logger.error({ clientId: client.id, err: error }, "internal error: closing the connection with 1011");
    client.close(CloseCode.InternalError, "internal error", "server_closed");
  }

  /** See {@link ServerOptions.allowBroadcastToAll}. */
  get allowBroadcastToAll(): boolean {
    return this.#options.allowBroadcastToAll;
  }

  /** The members of a room on every node (the adapter's view). */
  roomMembers(room: RoomName): Promise<MemberInfo[]> {
    return this.#adapter.roomMembers(room);
  }

  /** Whether clients' messages are limited at all (the `rateLimit` option is not false). */
  get rateLimited(): boolean {
    return this.#limits.enabled;
  }

  /** See {@link ClientLimits.controlFrame}. */
  controlFrame(client: Connection): void {
    this.#limits.controlFrame(client);
  }

  /** See {@link ClientLimits.charge}. */
  charge(client: Connection, deliveries: number): boolean {
    return this.#limits.charge(client, deliveries);
  }

  /** See {@link Permissions.refresh}. */
  refreshIdentity(client: Connection, identity: Identity): void {
    this.#permissions.refresh(client, identity);
  }

  /** Stops watching token expiries (shutdown). */
  stopExpiry(): void {
    this.#permissions.stop();
  }

  /** See {@link Permissions.rulesFor}. */
  rulesFor(room: RoomName): NamespaceRules | undefined {
    return this.#permissions.rulesFor(room);
  }

  /** See {@link Permissions.joinRefusal}. */
  joinRefusal(client: Connection, room: RoomName): string | undefined | Promise<string | undefined> {
    return this.#permissions.joinRefusal(client, room);
  }

  /**
   * Deliveries a client's join or leave of `room` causes: the other members it notifies, when the
   * room has presence events on this node.
   */
  membershipCost(room: RoomName): number {
    return this.#presenceEventsFor(room, 0) ? this.#rooms.size(room) : 0;
  }

  /**
   * A broadcast a client asked for (the built-in `broadcast`), to a room or to everyone: encoded once,
   * then charged to the client's work budget by its local recipients for every started KiB, and sent
   * only within the budget.
   *
   * @returns false when it was refused for the budget (nothing was sent)
   */
  broadcastFor(client: Connection, room: RoomName | undefined, type: string, data: unknown): boolean {
    const prepared = PreparedMessage.encode(envelope(type, data), false, true);
    const recipients = room === undefined ? this.#clients.size : this.#rooms.size(room);
    if (!this.charge(client, recipients * Math.ceil(prepared.json.length / 1024))) return false;
    this.publish(room, prepared, undefined);
    return true;
  }

  // ---- rooms --------------------------------------------------------------------------------

  /** See {@link Connection.joinRoom}. */
  joinRoom(client: Connection, room: RoomName): JoinOutcome {
    const invalid = invalidRoomReason(room);
    if (invalid !== undefined) return { ok: false, code: ErrorCode.InvalidRoom, reason: invalid };
    const rooms = client.roomSet();
    if (rooms.has(room)) return { ok: true };
    if (rooms.size >= this.#options.maxRoomsPerClient) {
      return {
        ok: false,
        code: ErrorCode.TooManyRooms,
        reason: `a client may be in at most ${this.#options.maxRoomsPerClient} rooms`,
      };
    }
    rooms.add(room);
    const subscribed = this.#rooms.add(room, client) === "created" ? this.#adapter.roomCreated(room) : undefined;
    const listed = this.#adapter.memberJoined(room, memberOf(client));
    this.#announce("member_joined", room, client);
    // The memory adapter returns nothing here, so a single process never allocates a promise per join.
    if (subscribed === undefined && listed === undefined) return { ok: true };
    return { ok: true, ready: Promise.all([subscribed, listed]).then(() => undefined) };
  }

  /** See {@link Connection.leaveRoom}. */
  leaveRoom(client: Connection, room: RoomName): boolean {
    if (!client.rooms.has(room)) return false;
    client.roomSet().delete(room);
    if (this.#rooms.remove(room, client) === "deleted") this.#adapter.roomDeleted(room);
    this.#adapter.memberLeft(room, memberOf(client));
    this.#announce("member_left", room, client);
    return true;
  }

  /**
   * Pushes a presence event to the other members, unless the room is too large for events. The size
   * that counts is the room's with the member in it, so a member whose join was not announced is not
   * announced leaving either.
   */
  #announce(type: "member_joined" | "member_left", room: RoomName, client: Connection): void {
    if (!this.#presenceEventsFor(room, type === "member_left" ? 1 : 0)) return;
    this.broadcastToRoom(room, type, presenceData(room, client.id, client.userId), { except: client.id });
  }

  /**
   * Whether this node pushes presence events to its members of `room`: while it holds at most
   * `presenceEventsMaxMembers` of them (`leaving` counts a member that has just left). In a cluster
   * the limit applies on each node to that node's share of the room.
   */
  #presenceEventsFor(room: RoomName, leaving: 0 | 1): boolean {
    const limit = this.#options.presenceEventsMaxMembers;
    return limit !== 0 && this.#rooms.size(room) + leaving <= limit && this.#permissions.rulesFor(room)?.presence !== false;
  }

  /** Removes a client from the hub and every room; idempotent. */
  detach(client: Connection, reason: DisconnectReason): void {
    if (this.#clients.get(client.id) !== client) return;
    this.#clients.delete(client.id);
    this.#permissions.departed(client);
    for (const room of [...client.rooms]) this.leaveRoom(client, room);
    this.#logger.debug({ clientId: client.id, reason }, "client disconnected");
    this.#listener.disconnected(client, reason);
  }

  // ---- delivery -----------------------------------------------------------------------------

  /**
   * Sends `{ type, data }` to every client of the cluster.
   * @returns how many local clients it was queued for
   */
  broadcast(type: string, data?: unknown, options?: BroadcastOptions): number {
    return this.publish(undefined, encode(type, data, options), options?.except);
  }

  /**
   * Sends `{ type, data }` to every member of `room` across the cluster.
   * @returns how many local members it was queued for
   */
  broadcastToRoom(room: RoomName, type: string, data?: unknown, options?: BroadcastOptions): number {
    return this.publish(room, encode(type, data, options), options?.except);
  }

  /**
   * Sends `{ type, data }` to one client, on this node or (through the adapter) on another.
   * @returns true when the client is local and the message was queued
   */
  sendTo(clientId: ClientId, type: string, data?: unknown): boolean {
    const local = this.#clients.get(clientId);
    const prepared = encode(type, data, undefined);
    if (local !== undefined) return this.#count(prepared, local.sendPrepared(prepared, "callback") ? 1 : 0) === 1;
    this.#adapter.publishToClient(clientId, type, prepared.json);
    return false;
  }

  /** Delivers locally, then hands the same serialised message to the adapter. */
  publish(room: RoomName | undefined, prepared: PreparedMessage, except: ClientId | undefined): number {
    const delivered = this.#deliverLocal(room, prepared, except);
    this.#adapter.publish({ room, except, type: prepared.type, json: prepared.json, droppable: prepared.droppable });
    return delivered;
  }

  /**
   * The broadcast loop: one bound check and one push (or write) per recipient, no allocation. The
   * scheduler decides whether this broadcast is written at once or queued to coalesce with the
   * turn's others.
   */
  #deliverLocal(room: RoomName | undefined, prepared: PreparedMessage, except: ClientId | undefined): number {
    const recipients = room === undefined ? this.#clients.values() : this.#rooms.members(room).values();
    const timing = this.scheduler.startBroadcast();
    let delivered = 0;
    for (const client of recipients) {
      if (client.id !== except && client.sendPrepared(prepared, timing)) delivered++;
    }
    this.#metrics?.broadcast?.(delivered);
    return this.#count(prepared, delivered);
  }

  #count(prepared: PreparedMessage, delivered: number): number {
    if (delivered > 0) this.#metrics?.messageOut?.(prepared.type, delivered, prepared.clientChosen);
    return delivered;
  }

  /** Counts queued messages for metrics. */
  countOut(type: string, count: number): void {
    this.#metrics?.messageOut?.(type, count);
  }

  // ---- AdapterHost: what other nodes ask of this one ----------------------------------------

  /** A broadcast published by another node. */
  deliver(broadcast: ClusterBroadcast): void {
    // The publishing node checked the room's size on its side; this node checks its own, so that a
    // node holding a large share of a room never fans every remote join out to all of it (one
    // delivery per local member for each of another node's first presenceEventsMaxMembers joins).
    const room = broadcast.room;
    if (room !== undefined && PRESENCE_EVENTS.has(broadcast.type) && !this.#presenceEventsFor(room, 0)) return;
    const prepared = PreparedMessage.fromJson(broadcast.type, broadcast.json, broadcast.droppable);
    this.#deliverLocal(broadcast.room, prepared, broadcast.except);
  }

  /** See {@link AdapterHost.announce}. */
  announce(type: "member_joined" | "member_left", room: RoomName, member: MemberInfo): void {
    const prepared = encode(type, presenceData(room, member.clientId, member.userId), undefined);
    const except = member.clientId;
    if (this.#presenceEventsFor(room, 0)) this.#deliverLocal(room, prepared, except);
    this.#adapter.publish({ room, except, type, json: prepared.json, droppable: false });
  }

  /** A message another node addressed to one of our clients. */
  deliverToClient(clientId: ClientId, type: string, json: string): boolean {
    const client = this.#clients.get(clientId);
    if (client === undefined) return false;
    const prepared = PreparedMessage.fromJson(type, json);
    return this.#count(prepared, client.sendPrepared(prepared, "callback") ? 1 : 0) === 1;
  }

  /** See {@link AdapterHost.localMembers}. */
  localMembers(room: RoomName): MemberInfo[] {
    return Array.from(this.#rooms.members(room), memberOf);
  }

  /** See {@link AdapterHost.localRooms}. */
  localRooms(): Iterable<RoomName> {
    return this.#rooms.names();
  }

  /** See {@link AdapterHost.localClientCount}. */
  localClientCount(): number {
    return this.#clients.size;
  }

  // ---- server API: users and disconnects across the cluster ----------------------------------
  // A scan of this node's clients: these calls come from the application's backend, far rarer than
  // messages, so the hub keeps no user index to maintain on every connect and disconnect.

  /**
   * Sends `{ type, data }` to every connection of a user, on this node and (through the adapter) on
   * every other. @returns how many local connections it was queued for
   */
  sendToUser(userId: string, type: string, data?: unknown): number {
    const prepared = encode(type, data, undefined);
    const delivered = this.#deliverToUser(userId, prepared);
    this.#adapter.publishToUser(userId, type, prepared.json);
    return delivered;
  }

  /** See {@link AdapterHost.deliverToUser}. */
  deliverToUser(userId: string, type: string, json: string): number {
    return this.#deliverToUser(userId, PreparedMessage.fromJson(type, json));
  }

  #deliverToUser(userId: string, prepared: PreparedMessage): number {
    let delivered = 0;
    for (const client of this.#clients.values()) {
      if (client.userId === userId && client.sendPrepared(prepared, "callback")) delivered++;
    }
    return this.#count(prepared, delivered);
  }

  /** Closes the connections `order` names on this node and every other. @returns how many local ones */
  disconnect(order: DisconnectOrder): number {
    const closed = this.disconnectLocal(order);
    // A client id is unique: when it was here, no other node holds it.
    if ("userId" in order.target || closed === 0) this.#adapter.disconnect(order);
    return closed;
  }

  /** See {@link AdapterHost.disconnectLocal}. */
  disconnectLocal(order: DisconnectOrder): number {
    const targets: Connection[] = [];
    if ("clientId" in order.target) {
      const client = this.#clients.get(order.target.clientId);
      if (client !== undefined) targets.push(client);
    } else {
      const userId = order.target.userId;
      for (const client of this.#clients.values()) if (client.userId === userId) targets.push(client);
    }
    for (const client of targets) client.close(order.code, order.reason, "disconnected");
    return targets.length;
  }
}

/** The events {@link Hub} pushes about a room's members (reserved: clients cannot broadcast them). */
const PRESENCE_EVENTS: ReadonlySet<string> = new Set(["member_joined", "member_left"]);

/** The `data` of `member_joined` and `member_left` (docs/PROTOCOL.md). */
function presenceData(
  room: RoomName,
  clientId: ClientId,
  userId: string | null,
): { room: RoomName; client_id: ClientId; user_id: string | null } {
  return { room, client_id: clientId, user_id: userId };
}

function memberOf(client: Connection): MemberInfo {
  return { clientId: client.id, userId: client.userId };
}

function encode(type: string, data: unknown, options: SendOptions | undefined): PreparedMessage {
  return PreparedMessage.encode(envelope(type, data), options?.droppable ?? false);
}
