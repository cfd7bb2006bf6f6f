/**
 * The Redis history store: every node of a cluster shares one history per room, so a client that
 * reconnects to another node, or whose node died, recovers all the same.
 *
 * Per room, two keys in one hash slot: a hash with the epoch and the latest offset, and a stream of
 * the latest `size` publications (`XADD MAXLEN`). A Lua script assigns the offset, stores the
 * publication, refreshes both keys' ttl and (when asked) publishes the relay message in one atomic
 * step. When the keys are gone (expired, deleted, lost with Redis) the next call starts a new epoch.
 *
 * @module
 */
import { Redis } from "ioredis";
import { silentLogger, type Logger } from "../../logger.js";
import type { RoomName } from "../../types.js";
import { newEpoch } from "../memory.js";
import {
  answerQuery,
  assertQuery,
  type HistoryQuery,
  type HistoryResult,
  type HistoryStore,
  HistoryUnavailableError,
  type KeptPublication,
  type PublicationInput,
  type RelayMessage,
  type Retention,
  roomHashTag,
  type StreamPosition,
} from "../store.js";
import { RoomBatcher } from "./batch.js";
import { PUBLISH_SCRIPT, READ_SCRIPT } from "./scripts.js";

/** Options of {@link RedisHistoryStore}. */
export interface RedisHistoryStoreOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /**
   * Prefix of every key, so that several clusters can share one Redis.
   * @default "conduit"
   */
  keyPrefix?: string;
  /**
   * Milliseconds `start()` waits for Redis before it fails.
   * @default 5000
   */
  connectTimeout?: number;
  /**
   * Milliseconds a command may take before it fails with {@link HistoryUnavailableError} (a Redis
   * that accepts connections but does not answer must not hold publications for long).
   * @default 1000
   */
  commandTimeout?: number;
  /** Where connection losses and recoveries are logged. */
  logger?: Logger;
}

/** What a read script returns: offset, epoch, Redis's time in ms, and stream entries. */
type ReadReply = [offset: number, epoch: string, now: string, entries: [id: string, fields: string[]][]];

/** A publication waiting in its room's batch. */
interface PendingPublication {
  publication: PublicationInput;
  retention: Retention;
  relay: RelayMessage | undefined;
}

/**
 * The most publications in one script call: enough that a busy room needs few round trips, few
 * enough that one call holds Redis for about a millisecond.
 */
const MAX_BATCH = 256;
/** The most text in one script call (large messages go a few at a time, not 256 MiB at once). */
const MAX_BATCH_BYTES = 1 << 20;

/** A publication's share of a batch: its data and its relay (string lengths, close enough to bytes). */
function weigh({ publication, relay }: PendingPublication): number {
  let size = publication.type.length + (publication.json?.length ?? 0);
  for (const segment of relay?.segments ?? []) size += segment.length;
  return size;
}

/** The reconnection back-off's ceiling, as the adapter's. */
const RETRY_MAX_DELAY = 2000;

interface HistoryCommands {
  conduitHistoryPublish(meta: string, stream: string, ...args: string[]): Promise<[number, string]>;
  conduitHistoryRead(meta: string, stream: string, ...args: string[]): Promise<ReadReply>;
}

/**
 * The Redis {@link HistoryStore}: offsets assigned atomically in Redis, so two nodes publishing to
 * one room at once never share or skip one.
 *
 * @example
 * ```ts
 * import { RedisHistoryStore } from "@conduit/websocket/redis";
 * const history = new RedisHistoryStore({ url: "redis://127.0.0.1:6379" });
 * await history.start();
 * ```
 */
export class RedisHistoryStore implements HistoryStore {
  readonly #url: string;
  readonly #prefix: string;
  readonly #connectTimeout: number;
  readonly #commandTimeout: number;
  readonly #logger: Logger;
  #redis: (Redis & HistoryCommands) | undefined;
  #closed = false;
  readonly #batcher = new RoomBatcher<PendingPublication, StreamPosition>(
    (room, batch) => this.#publishBatch(room, batch),
    MAX_BATCH,
    MAX_BATCH_BYTES,
    weigh,
  );

  /** @param options - see {@link RedisHistoryStoreOptions} */
  constructor(options: RedisHistoryStoreOptions) {
    if (typeof options?.url !== "string" || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError('conduit-ws: RedisHistoryStore needs a url like "redis://127.0.0.1:6379"');
    }
    const prefix = options.keyPrefix ?? "conduit";
    if (/[{}]/.test(prefix)) throw new TypeError("conduit-ws: RedisHistoryStore keyPrefix must not contain { or }");
    this.#url = options.url;
    this.#prefix = prefix;
    this.#connectTimeout = options.connectTimeout ?? 5000;
    this.#commandTimeout = options.commandTimeout ?? 1000;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Connects; rejects with a clear message when Redis cannot be reached. */
  async start(): Promise<void> {
    const redis = new Redis(this.#url, {
      lazyConnect: true,
      connectTimeout: this.#connectTimeout,
      commandTimeout: this.#commandTimeout,
      // Reconnect for ever, but never queue: a publication waits for no outage, it fails at once.
      retryStrategy: (attempt) => Math.min(attempt * 200, RETRY_MAX_DELAY),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    }) as Redis & HistoryCommands;
    redis.defineCommand("conduitHistoryPublish", { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    redis.defineCommand("conduitHistoryRead", { numberOfKeys: 2, lua: READ_SCRIPT });
    this.#watch(redis);
    this.#redis = redis;
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`conduit-ws: history cannot reach Redis at ${this.#url.replace(/\/\/[^@/]*@/, "//***@")}: ${reason}`);
    }
  }

  /** Logs a loss and a recovery once each, not every failed reconnection attempt. */
  #watch(redis: Redis): void {
    let lost = false;
    redis.on("error", (error: Error) => {
      if (!lost && !this.#closed) this.#logger.warn({ err: error.message }, "history: redis connection error");
    });
    redis.on("close", () => {
      if (lost || this.#closed) return;
      lost = true;
      this.#logger.warn({}, "history: redis connection lost: publications to history rooms fail until it returns");
    });
    redis.on("ready", () => {
      if (!lost) return;
      lost = false;
      this.#logger.info({}, "history: redis connection restored");
    });
  }

  /**
   * Publications to one room made while its previous batch is on its way to Redis leave together
   * as the next batch (one script call), in the order they were made.
   */
  publish(room: RoomName, publication: PublicationInput, retention: Retention, relay?: RelayMessage): Promise<StreamPosition> {
    if (relay !== undefined && relay.segments.length !== relay.slots.length + 1) {
      return Promise.reject(new TypeError("conduit-ws: a relay needs one more segment than slots"));
    }
    return this.#batcher.add(room, { publication, retention, relay });
  }

  /** Sends one room's batch; the retention of its latest publication applies to the room. */
  async #publishBatch(room: RoomName, batch: PendingPublication[]): Promise<StreamPosition[]> {
    const { size, ttlSeconds } = batch[batch.length - 1]!.retention;
    const args = [newEpoch(), String(ttlSeconds), String(size), String(batch.length)];
    for (const { publication, relay } of batch) {
      const { type, json } = publication;
      args.push(type, json === undefined ? "0" : "1", json ?? "", relay?.channel ?? "", String(relay?.slots.length ?? 0));
      if (relay === undefined) continue;
      for (const [i, slot] of relay.slots.entries()) args.push(relay.segments[i]!, slot === "offset" ? "o" : "e");
      args.push(relay.segments[relay.slots.length]!);
    }
    const [first, epoch] = await this.#call((redis) => redis.conduitHistoryPublish(...this.#keys(room), ...args));
    return batch.map((_, i) => ({ offset: first + i, epoch }));
  }

  async history(room: RoomName, retention: Retention, query?: HistoryQuery): Promise<HistoryResult> {
    assertQuery(query);
    const since = query?.since;
    const limit = query?.limit;
    const read =
      since !== undefined
        ? ["after", `${since.offset + 1}-0`]
        : ["latest", limit === undefined || limit >= retention.size ? "0" : String(limit)];
    const [offset, epoch, now, entries] = await this.#read(room, retention, read);
    return answerQuery({ offset, epoch }, entries.map(toPublication), Number(now), query);
  }

  async position(room: RoomName, retention: Retention): Promise<StreamPosition> {
    const [offset, epoch] = await this.#read(room, retention, ["position", ""]);
    return { offset, epoch };
  }

  /** Closes the connection; later calls reject with {@link HistoryUnavailableError}. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const redis = this.#redis;
    await redis?.quit().catch(() => redis.disconnect());
  }

  #read(room: RoomName, retention: Retention, [mode, arg]: string[]): Promise<ReadReply> {
    return this.#call((redis) => redis.conduitHistoryRead(...this.#keys(room), newEpoch(), String(retention.ttlSeconds), mode!, arg!));
  }

  #keys(room: RoomName): [meta: string, stream: string] {
    const base = `${this.#prefix}:history:${roomHashTag(room)}`;
    return [`${base}:meta`, `${base}:stream`];
  }

  /** Runs a command, turning every failure (no connection, timeout, a Redis error) into one error type. */
  async #call<T>(command: (redis: Redis & HistoryCommands) => Promise<T>): Promise<T> {
    const redis = this.#redis;
    if (redis === undefined || this.#closed || redis.status !== "ready") {
      throw new HistoryUnavailableError(
        `history: Redis is unreachable (${this.#closed ? "store closed" : (redis?.status ?? "not started")})`,
      );
    }
    try {
      return await command(redis);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new HistoryUnavailableError(`history: Redis command failed: ${reason}`, { cause: error });
    }
  }
}

/** A stream entry (`<offset>-0`, fields `y`, `x`, `d`) as a kept publication. */
function toPublication([id, fields]: [string, string[]]): KeptPublication {
  const publication: KeptPublication = { offset: Number(id.slice(0, id.indexOf("-"))), type: "", expiresAt: 0 };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    if (fields[i] === "y") publication.type = value;
    else if (fields[i] === "x") publication.expiresAt = Number(value);
    else if (fields[i] === "d") publication.json = value;
  }
  return publication;
}
