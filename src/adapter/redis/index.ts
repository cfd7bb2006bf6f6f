/**
 * `@conduit/websocket/redis`: the Redis adapter. Nodes publish each broadcast once to Redis with
 * sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7, so it also works on Redis Cluster), one channel
 * per room: a node with no member of a room is not subscribed to it and receives nothing for it.
 * Member lists and the list of live nodes are kept in Redis hashes and a sorted set refreshed by a
 * heartbeat, so a node that dies drops out of every view within `nodeTimeout` + `heartbeatInterval`.
 *
 * Delivery across nodes is at most once: while Redis is unreachable, local delivery goes on and
 * publications to other nodes are dropped (counted, logged), never queued without bound.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { ClientId, RoomName } from "../../types.js";
import { silentLogger, type Logger } from "../../logger.js";
import type { Adapter, AdapterHost, ClusterBroadcast, DisconnectOrder, MemberInfo, NodeInfo } from "../adapter.js";
import {
  decodeBroadcast,
  decodeControl,
  decodeDirect,
  encodeBroadcast,
  encodeDirect,
  encodeDisconnect,
  encodeUserMessage,
} from "./codec.js";
import { type MissedPresence, PresenceBacklog, presenceKey } from "./presence-backlog.js";

/** Options of {@link RedisAdapter}. */
export interface RedisAdapterOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /**
   * Prefix of every key and channel, so that several clusters can share one Redis.
   * @default "conduit"
   */
  keyPrefix?: string;
  /**
   * Milliseconds between this node's liveness reports.
   * @default 5000
   */
  heartbeatInterval?: number;
  /**
   * Milliseconds without a report after which a node is considered dead and leaves every view.
   * @default 15000
   */
  nodeTimeout?: number;
  /**
   * Milliseconds `start()` waits for Redis before it fails.
   * @default 5000
   */
  connectTimeout?: number;
  /** Where connection losses and recoveries are logged. */
  logger?: Logger;
}

/** Counters an operator (or the `/metrics` route) can read. */
export interface RedisAdapterStats {
  /** Whether the publishing connection is up. */
  connected: boolean;
  /** Messages published to Redis. */
  published: number;
  /** Publications dropped because Redis was unreachable. */
  publishFailed: number;
  /** Messages received from other nodes. */
  received: number;
}

/** The longest wait between two reconnection attempts, for every node's connections alike. */
const RETRY_MAX_DELAY = 2000;
/**
 * How long after reconnecting a node waits before it publishes the presence events it could not
 * publish while Redis was away: long enough for the other nodes, which retry at least as often, to
 * have reconnected and resubscribed, so that they hear them.
 */
const PRESENCE_REPLAY_DELAY = RETRY_MAX_DELAY + 500;

/** `redis://:secret@host` → `redis://***@host`: a URL can carry a password, a log line must not. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

/**
 * The Redis {@link Adapter}.
 *
 * @example
 * ```ts
 * import { createServer } from "@conduit/websocket";
 * import { RedisAdapter } from "@conduit/websocket/redis";
 * const server = createServer({ adapter: new RedisAdapter({ url: "redis://127.0.0.1:6379" }) });
 * await server.listen(8080);
 * ```
 */
export class RedisAdapter implements Adapter {
  readonly #options: Required<Omit<RedisAdapterOptions, "logger">>;
  readonly #logger: Logger;
  #host: AdapterHost | undefined;
  #pub: Redis | undefined;
  #sub: Redis | undefined;
  #timer: NodeJS.Timeout | undefined;
  #replayTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Whether this node has reported itself at least once (so a report that re-adds it means it had been reaped). */
  #reported = false;
  /**
   * The value of the cluster's epoch key when this node last read it. Every node adopts the one value
   * the first of them wrote; a Redis that lost its data no longer holds it, which tells "this node was
   * reaped" (announce its members again) from "Redis forgot everyone" (write them back, silently).
   */
  #epoch: string | undefined;
  /** Presence events not published while Redis was away. */
  readonly #missed = new PresenceBacklog();
  #stats: RedisAdapterStats = { connected: false, published: 0, publishFailed: 0, received: 0 };

  /** @param options - see {@link RedisAdapterOptions} */
  constructor(options: RedisAdapterOptions) {
    if (typeof options?.url !== "string" || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError('conduit-ws: RedisAdapter needs a url like "redis://127.0.0.1:6379"');
    }
    this.#options = {
      url: options.url,
      keyPrefix: options.keyPrefix ?? "conduit",
      heartbeatInterval: options.heartbeatInterval ?? 5000,
      nodeTimeout: options.nodeTimeout ?? 15_000,
      connectTimeout: options.connectTimeout ?? 5000,
    };
    if (this.#options.nodeTimeout <= this.#options.heartbeatInterval) {
      throw new TypeError("conduit-ws: RedisAdapter nodeTimeout must be longer than heartbeatInterval");
    }
    this.#logger = options.logger ?? silentLogger;
  }

  /** Counters for metrics. */
  get stats(): Readonly<RedisAdapterStats> {
    return this.#stats;
  }

  // ---- keys and channels --------------------------------------------------------------------

  // "control" carries what the server API addresses to users and disconnect orders: every node
  // subscribes, since any node may hold a user's connections.
  #channel(kind: "all" | "direct" | "control" | "room", room?: RoomName): string {
    return kind === "room" ? `${this.#options.keyPrefix}#room#${room}` : `${this.#options.keyPrefix}#${kind}`;
  }
  #membersKey(room: RoomName): string {
    return `${this.#options.keyPrefix}:members:{${room}}`;
  }
  #nodeRoomsKey(nodeId: string): string {
    return `${this.#options.keyPrefix}:node-rooms:${nodeId}`;
  }
  get #nodesKey(): string {
    return `${this.#options.keyPrefix}:nodes`;
  }
  get #nodeClientsKey(): string {
    return `${this.#options.keyPrefix}:node-clients`;
  }
  get #epochKey(): string {
    return `${this.#options.keyPrefix}:epoch`;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Connects both Redis connections; rejects with a clear message when Redis cannot be reached. */
  async start(host: AdapterHost): Promise<void> {
    this.#host = host;
    const common: RedisOptions = {
      lazyConnect: true,
      connectTimeout: this.#options.connectTimeout,
      // Reconnect for ever: a Redis restart must not need a node restart.
      retryStrategy: (attempt) => Math.min(attempt * 200, RETRY_MAX_DELAY),
      maxRetriesPerRequest: 1,
    };
    // The publisher must never queue while disconnected: the queue would grow with the traffic.
    const pub = new Redis(this.#options.url, { ...common, enableOfflineQueue: false });
    // The subscriber's commands are (un)subscriptions, bounded by the number of rooms.
    const sub = new Redis(this.#options.url, { ...common, enableOfflineQueue: true });
    this.#pub = pub;
    this.#sub = sub;
    this.#watch(pub, "publisher");
    this.#watch(sub, "subscriber");
    try {
      await Promise.all([pub.connect(), sub.connect()]);
    } catch (error) {
      pub.disconnect();
      sub.disconnect();
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`conduit-ws: cannot reach Redis at ${redactRedisUrl(this.#options.url)}: ${reason}`);
    }
    this.#stats.connected = true;
    sub.on("smessage", (channel: string, payload: string) => this.#onMessage(channel, payload));
    await this.#subscribeAll();
    this.#epoch = await this.#adoptEpoch();
    await this.#report();
    this.#timer = setInterval(() => void this.#report(), this.#options.heartbeatInterval);
    this.#timer.unref();
  }

  /** Logs connection losses and, after a reconnect, restores what this node had told Redis. */
  #watch(connection: Redis, role: "publisher" | "subscriber"): void {
    let lost = false;
    connection.on("error", (error: Error) => {
      if (!lost) this.#logger.warn({ role, err: error.message }, "redis connection error");
    });
    connection.on("close", () => {
      if (this.#closed || lost) return;
      lost = true;
      if (role === "publisher") this.#stats.connected = false;
      this.#logger.warn({ role }, "redis connection lost: cross-node delivery paused, local delivery continues");
    });
    connection.on("ready", () => {
      if (!lost) return;
      lost = false;
      this.#logger.info({ role }, "redis connection restored");
      if (role === "publisher") {
        this.#stats.connected = true;
        void this.#reconnected();
      } else {
        void this.#subscribeAll();
      }
    });
  }

  /** Subscribes to the shared channels and every room that has a local member. */
  async #subscribeAll(): Promise<void> {
    const sub = this.#sub!;
    const channels = [this.#channel("all"), this.#channel("direct"), this.#channel("control")];
    for (const room of this.#host!.localRooms()) channels.push(this.#channel("room", room));
    // SSUBSCRIBE takes channels of one hash slot at a time; one call each keeps Redis Cluster happy.
    await Promise.all(channels.map((channel) => sub.ssubscribe(channel).catch((error: unknown) => this.#failed("ssubscribe", error))));
  }

  /**
   * The publisher is back after an outage: report (which notices whether this node was reaped or
   * Redis lost its data, and writes the memberships back then), otherwise rewrite the memberships,
   * which may have missed updates; later, publish the presence events the outage swallowed.
   */
  async #reconnected(): Promise<void> {
    if (!(await this.#report())) await this.#resyncMembership();
    clearTimeout(this.#replayTimer);
    this.#replayTimer = setTimeout(() => this.#replayPresence(), PRESENCE_REPLAY_DELAY);
    this.#replayTimer.unref();
  }

  /** Writes the epoch key unless another node did, and returns the value Redis holds. */
  async #adoptEpoch(): Promise<string> {
    const candidate = randomUUID();
    const replies = await this.#pub!.multi().setnx(this.#epochKey, candidate).get(this.#epochKey).exec();
    const held = replies?.[1]?.[1];
    return typeof held === "string" ? held : candidate;
  }

  /**
   * Rewrites this node's room memberships in Redis from memory: its members are listed, and its
   * entries for members that left while Redis could not be told are removed, so they do not linger in
   * `presence` when Redis kept its data.
   */
  async #resyncMembership(): Promise<void> {
    const host = this.#host!;
    const pub = this.#pub!;
    const nodeRooms = this.#nodeRoomsKey(host.nodeId);
    const prefix = `${host.nodeId}|`;
    try {
      const rooms = new Set([...(await pub.smembers(nodeRooms)), ...host.localRooms()]);
      for (const room of rooms) {
        const key = this.#membersKey(room);
        const stored = Object.keys(await pub.hgetall(key));
        // Read the local members only now: a member who joined meanwhile has its entry written
        // before this pipeline runs, and must not be taken for one that left.
        const fields = new Map<string, string>();
        for (const member of host.localMembers(room)) fields.set(this.#field(member.clientId), JSON.stringify(member.userId));
        const stale = stored.filter((field) => field.startsWith(prefix) && !fields.has(field));
        const pipeline = pub.pipeline();
        if (stale.length > 0) pipeline.hdel(key, ...stale);
        if (fields.size > 0) pipeline.sadd(nodeRooms, room).hset(key, ...[...fields].flat());
        else pipeline.srem(nodeRooms, room);
        await pipeline.exec();
      }
    } catch (error) {
      this.#failed("resync", error);
    }
  }

  /**
   * Reports this node alive, then forgets nodes that stopped reporting.
   * @returns whether the report found this node missing and wrote its memberships back
   */
  async #report(): Promise<boolean> {
    const host = this.#host!;
    const pub = this.#pub!;
    const now = Date.now();
    let readded = false;
    try {
      const replies = await pub
        .multi()
        .zadd(this.#nodesKey, now, host.nodeId)
        .hset(this.#nodeClientsKey, host.nodeId, host.localClientCount())
        .get(this.#epochKey)
        .exec();
      // ZADD answers 1 when it added the node: after the first report, either another node reaped
      // this one while it was stalled past nodeTimeout (a long pause, a frozen VM), and the epoch is
      // unchanged; or Redis lost its data (a restart without persistence, a flush), epoch included.
      readded = replies?.[0]?.[1] === 1 && this.#reported;
      this.#reported = true;
      if (readded && replies?.[2]?.[1] === this.#epoch) {
        // The rejoin announces every member again, which covers what the outage swallowed.
        this.#missed.clear();
        await this.#rejoin();
      } else if (readded) {
        await this.#restore();
      }
      const dead = await pub.zrangebyscore(this.#nodesKey, "-inf", now - this.#options.nodeTimeout);
      for (const nodeId of dead) await this.#reap(nodeId);
    } catch (error) {
      this.#failed("heartbeat", error);
    }
    return readded;
  }

  /**
   * Redis lost the cluster's data, but no member left for it: every node writes its own memberships
   * back, and nobody is announced, since nobody was announced gone.
   */
  async #restore(): Promise<void> {
    this.#logger.warn({ nodeId: this.#host!.nodeId }, "redis lost the cluster's data: writing this node's memberships back");
    this.#epoch = await this.#adoptEpoch();
    await this.#resyncMembership();
  }

  /**
   * This node was reaped while alive: its members left every view and were announced gone. Puts them
   * back and announces them again (`member_joined` to every member of their rooms but themselves).
   */
  async #rejoin(): Promise<void> {
    const host = this.#host!;
    this.#logger.warn({ nodeId: host.nodeId }, "this node had been removed from the cluster after missing its reports: rejoining");
    await this.#resyncMembership();
    for (const room of host.localRooms()) {
      for (const member of host.localMembers(room)) host.announce("member_joined", room, member);
    }
  }

  /** Removes a dead node's traces. ZREM returns 1 to exactly one node, which does the cleanup. */
  async #reap(nodeId: string): Promise<void> {
    const pub = this.#pub!;
    if ((await pub.zrem(this.#nodesKey, nodeId)) !== 1) return;
    this.#logger.warn({ nodeId }, "node stopped reporting: removed from the cluster");
    const rooms = await pub.smembers(this.#nodeRoomsKey(nodeId));
    const prefix = `${nodeId}|`;
    for (const room of rooms) {
      const gone = Object.entries(await pub.hgetall(this.#membersKey(room))).filter(([field]) => field.startsWith(prefix));
      if (gone.length === 0) continue;
      await pub.hdel(this.#membersKey(room), ...gone.map(([field]) => field));
      for (const [field, userId] of gone) this.#announceLeft(room, field.slice(prefix.length), userId);
    }
    await pub.multi().del(this.#nodeRoomsKey(nodeId)).hdel(this.#nodeClientsKey, nodeId).exec();
  }

  /**
   * A dead node cannot tell the other members of a room that its clients left: the node that reaps it
   * announces `member_left` for each of them, to its own members and through the room's channel to
   * every other node's, as the dead node would have. Each node applies its own
   * `presenceEventsMaxMembers` on delivery.
   */
  #announceLeft(room: RoomName, clientId: ClientId, userIdJson: string): void {
    let userId: string | null = null;
    try {
      const parsed: unknown = JSON.parse(userIdJson);
      if (typeof parsed === "string") userId = parsed;
    } catch {
      // A value this version did not write: announce the member as anonymous.
    }
    // Skipping the member matters to a reaped node that was only stalled: it still holds the client.
    this.#host!.announce("member_left", room, { clientId, userId });
  }

  /** Stops reporting, removes this node from every view, and closes both connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#replayTimer);
    const pub = this.#pub;
    const sub = this.#sub;
    const host = this.#host;
    if (pub && host && this.#stats.connected) {
      await pub
        .multi()
        .zrem(this.#nodesKey, host.nodeId)
        .hdel(this.#nodeClientsKey, host.nodeId)
        .del(this.#nodeRoomsKey(host.nodeId))
        .exec()
        .catch((error: unknown) => this.#failed("close", error));
    }
    await Promise.all([pub?.quit().catch(() => pub.disconnect()), sub?.quit().catch(() => sub.disconnect())]);
  }

  // ---- messages -----------------------------------------------------------------------------

  /** Publishes a broadcast once; other nodes deliver it to their members. */
  publish(broadcast: ClusterBroadcast): void {
    const channel = broadcast.room === undefined ? this.#channel("all") : this.#channel("room", broadcast.room);
    const payload = encodeBroadcast(this.#host!.nodeId, broadcast);
    const key = presenceKey(broadcast);
    this.#publish(channel, payload, key, key === undefined ? undefined : { type: broadcast.type, channel, payload });
  }

  /** Publishes a message for a client on another node; the node that holds it delivers it. */
  publishToClient(clientId: ClientId, type: string, json: string): void {
    this.#publish(this.#channel("direct"), encodeDirect(this.#host!.nodeId, clientId, type, json));
  }

  /** Publishes a message for a user's connections; every other node delivers to those it holds. */
  publishToUser(userId: string, type: string, json: string): void {
    this.#publish(this.#channel("control"), encodeUserMessage(this.#host!.nodeId, userId, type, json));
  }

  /** Publishes a disconnect order; every other node closes the connections it names. */
  disconnect(order: DisconnectOrder): void {
    this.#publish(this.#channel("control"), encodeDisconnect(this.#host!.nodeId, order));
  }

  /**
   * Publishes a payload, or drops it while Redis is away. A dropped presence event (`presence`, about
   * the room and member `key`) is kept for after the outage.
   */
  #publish(channel: string, payload: string, key?: string, presence?: MissedPresence): void {
    const pub = this.#pub;
    if (pub === undefined || pub.status !== "ready") {
      this.#stats.publishFailed++;
      if (key !== undefined && presence) this.#missed.keep(key, presence);
      return;
    }
    this.#stats.published++;
    pub.spublish(channel, payload).catch((error: unknown) => {
      this.#stats.publishFailed++;
      if (key !== undefined && presence) this.#missed.keep(key, presence);
      this.#failed("spublish", error);
    });
  }

  /** Publishes the presence events kept during the outage; those that fail again are kept again. */
  #replayPresence(): void {
    for (const [key, event] of this.#missed.take()) this.#publish(event.channel, event.payload, key, event);
  }

  #onMessage(channel: string, payload: string): void {
    const host = this.#host!;
    if (channel === this.#channel("direct")) {
      const direct = decodeDirect(payload);
      if (direct === undefined || direct.nodeId === host.nodeId) return;
      this.#stats.received++;
      host.deliverToClient(direct.clientId, direct.type, direct.json);
      return;
    }
    if (channel === this.#channel("control")) {
      const control = decodeControl(payload);
      if (control === undefined || control.nodeId === host.nodeId) return;
      this.#stats.received++;
      if (control.kind === "user") host.deliverToUser(control.userId, control.type, control.json);
      else host.disconnectLocal(control.order);
      return;
    }
    const envelope = decodeBroadcast(payload);
    // A node hears its own publications; it has already delivered those locally.
    if (envelope === undefined || envelope.nodeId === host.nodeId) return;
    this.#stats.received++;
    host.deliver(envelope.broadcast);
  }

  // ---- rooms and members --------------------------------------------------------------------

  #field(clientId: ClientId): string {
    return `${this.#host!.nodeId}|${clientId}`;
  }

  /** Subscribes to the room's channel; resolves once Redis confirmed (or the attempt failed and was logged). */
  roomCreated(room: RoomName): Promise<void> {
    this.#pub?.sadd(this.#nodeRoomsKey(this.#host!.nodeId), room).catch((error: unknown) => this.#failed("sadd", error));
    const sub = this.#sub;
    if (sub === undefined) return Promise.resolve();
    const subscribing = this.#settled("ssubscribe", sub.ssubscribe(this.#channel("room", room)));
    // During an outage the subscription waits in the subscriber's queue and the resubscription after
    // reconnect covers it; the join itself must not wait for Redis to come back.
    return sub.status === "ready" ? subscribing : Promise.resolve();
  }

  roomDeleted(room: RoomName): void {
    this.#sub?.sunsubscribe(this.#channel("room", room)).catch((error: unknown) => this.#failed("sunsubscribe", error));
    this.#pub?.srem(this.#nodeRoomsKey(this.#host!.nodeId), room).catch((error: unknown) => this.#failed("srem", error));
  }

  /** Lists the member in Redis; resolves once written (or the attempt failed and was logged). */
  memberJoined(room: RoomName, member: MemberInfo): Promise<void> {
    const field = this.#field(member.clientId);
    return this.#settled("hset", this.#pub?.hset(this.#membersKey(room), field, JSON.stringify(member.userId)));
  }

  memberLeft(room: RoomName, member: MemberInfo): void {
    // While Redis is away the entry stays; the resync after reconnect removes it.
    this.#pub?.hdel(this.#membersKey(room), this.#field(member.clientId)).catch((error: unknown) => this.#failed("hdel", error));
  }

  /**
   * Members of a room on every live node. This node's members come from memory (always exact);
   * other nodes' from Redis. While Redis is unreachable, only this node's members are listed.
   */
  async roomMembers(room: RoomName): Promise<MemberInfo[]> {
    const host = this.#host!;
    const members = host.localMembers(room);
    try {
      const [live, stored] = await Promise.all([this.#liveNodeIds(), this.#pub!.hgetall(this.#membersKey(room))]);
      for (const [field, userId] of Object.entries(stored)) {
        const bar = field.indexOf("|");
        const nodeId = field.slice(0, bar);
        if (nodeId === host.nodeId || !live.has(nodeId)) continue;
        members.push({ clientId: field.slice(bar + 1), userId: parseUserId(userId) });
      }
    } catch (error) {
      this.#failed("roomMembers", error);
    }
    return members;
  }

  async roomSize(room: RoomName): Promise<number> {
    return (await this.roomMembers(room)).length;
  }

  async nodes(): Promise<NodeInfo[]> {
    const pub = this.#pub!;
    const since = Date.now() - this.#options.nodeTimeout;
    const [scored, clients] = await Promise.all([
      pub.zrangebyscore(this.#nodesKey, since, "+inf", "WITHSCORES"),
      pub.hgetall(this.#nodeClientsKey),
    ]);
    const nodes: NodeInfo[] = [];
    for (let i = 0; i < scored.length; i += 2) {
      const nodeId = scored[i]!;
      nodes.push({ nodeId, clients: Number(clients[nodeId] ?? 0), lastSeen: new Date(Number(scored[i + 1])) });
    }
    return nodes;
  }

  async #liveNodeIds(): Promise<Set<string>> {
    const since = Date.now() - this.#options.nodeTimeout;
    return new Set(await this.#pub!.zrangebyscore(this.#nodesKey, since, "+inf"));
  }

  /** A command's promise that never rejects: a failure is logged, and the join goes on locally. */
  async #settled(operation: string, command: Promise<unknown> | undefined): Promise<void> {
    try {
      await command;
    } catch (error) {
      this.#failed(operation, error);
    }
  }

  #failed(operation: string, error: unknown): void {
    if (this.#closed) return;
    this.#logger.debug({ operation, err: error instanceof Error ? error.message : String(error) }, "redis command failed");
  }
}

function parseUserId(stored: string): string | null {
  try {
    const value: unknown = JSON.parse(stored);
    return typeof value === "string" ? value : null;
  } catch {
    return null;
  }
}
