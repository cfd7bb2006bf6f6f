/**
 * The default history store: one process, kept in memory. Each room's history is a ring of at most
 * `size` publications; a room nobody published to or read for `ttl` seconds is forgotten, epoch
 * included, so memory is bounded by the rooms in use.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { RoomName } from "../types.js";
import {
  answerQuery,
  assertQuery,
  type HistoryQuery,
  type HistoryResult,
  type HistoryStore,
  type KeptPublication,
  type PublicationInput,
  type Retention,
  type StreamPosition,
} from "./store.js";

/** Options of {@link MemoryHistoryStore}. */
export interface MemoryHistoryStoreOptions {
  /**
   * Milliseconds between two sweeps that forget expired rooms and publications. Reads and publishes
   * never see expired data whatever this is; it only bounds how long that data holds memory.
   * @default 5000
   */
  sweepInterval?: number;
  /** The clock, in milliseconds (tests move it). @default Date.now */
  now?: () => number;
}

/** A new epoch: 72 random bits, so a room never gets an epoch it had before. */
export function newEpoch(): string {
  return randomBytes(9).toString("base64url");
}

/** One room: its position and its latest publications, in a ring of `capacity` slots. */
class RoomHistory {
  readonly epoch = newEpoch();
  offset = 0;
  /** When the room is forgotten: `ttl` after its latest publication or read. */
  expiresAt = 0;
  #ring: (KeptPublication | undefined)[] = [];
  /** Index of the oldest publication. */
  #head = 0;
  #count = 0;

  /** Adds a publication, dropping the oldest when `size` are kept (the ring is rebuilt if `size` changed). */
  add(publication: KeptPublication, size: number): void {
    if (this.#ring.length !== size) this.#resize(size);
    const tail = (this.#head + this.#count) % size;
    this.#ring[tail] = publication;
    if (this.#count < size) this.#count++;
    else this.#head = (this.#head + 1) % size;
  }

  /** The kept publications, oldest first. */
  list(): KeptPublication[] {
    const out: KeptPublication[] = [];
    for (let i = 0; i < this.#count; i++) out.push(this.#ring[(this.#head + i) % this.#ring.length]!);
    return out;
  }

  /** Releases publications that expired, oldest first (a later one cannot expire sooner under one ttl). */
  dropExpired(now: number): void {
    while (this.#count > 0 && this.#ring[this.#head]!.expiresAt <= now) {
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#ring.length;
      this.#count--;
    }
  }

  #resize(size: number): void {
    const kept = this.list().slice(-size);
    this.#ring = new Array(size);
    for (let i = 0; i < kept.length; i++) this.#ring[i] = kept[i];
    this.#head = 0;
    this.#count = kept.length;
  }
}

/**
 * The single-process {@link HistoryStore}. Epochs are random per room and per process start, so a
 * restart (or a room forgotten after `ttl`) tells every client its offsets are from a lost history.
 *
 * @example
 * ```ts
 * const store = new MemoryHistoryStore();
 * await store.start();
 * const { offset, epoch } = await store.publish("news:1", { type: "headline", json: '"hi"' }, { size: 100, ttlSeconds: 300 });
 * ```
 */
export class MemoryHistoryStore implements HistoryStore {
  readonly #rooms = new Map<RoomName, RoomHistory>();
  readonly #sweepInterval: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  /** @param options - see {@link MemoryHistoryStoreOptions} */
  constructor(options: MemoryHistoryStoreOptions = {}) {
    const sweepInterval = options.sweepInterval ?? 5000;
    if (!Number.isFinite(sweepInterval) || sweepInterval <= 0) {
      throw new TypeError("conduit-ws: MemoryHistoryStore sweepInterval must be a positive number of milliseconds");
    }
    this.#sweepInterval = sweepInterval;
    this.#now = options.now ?? Date.now;
  }

  /** How many rooms are held (for tests and metrics). */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** Starts the one sweep timer (unref'd: it never keeps the process alive). */
  async start(): Promise<void> {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sweep(), this.#sweepInterval);
    this.#timer.unref();
  }

  async publish(room: RoomName, publication: PublicationInput, retention: Retention): Promise<StreamPosition> {
    const now = this.#now();
    const history = this.#touch(room, retention, now);
    history.offset++;
    const kept: KeptPublication = { offset: history.offset, type: publication.type, expiresAt: now + retention.ttlSeconds * 1000 };
    if (publication.json !== undefined) kept.json = publication.json;
    history.add(kept, retention.size);
    return { offset: history.offset, epoch: history.epoch };
  }

  async history(room: RoomName, retention: Retention, query?: HistoryQuery): Promise<HistoryResult> {
    assertQuery(query);
    const now = this.#now();
    const history = this.#touch(room, retention, now);
    history.dropExpired(now);
    return answerQuery({ offset: history.offset, epoch: history.epoch }, history.list(), now, query);
  }

  async position(room: RoomName, retention: Retention): Promise<StreamPosition> {
    const history = this.#touch(room, retention, this.#now());
    return { offset: history.offset, epoch: history.epoch };
  }

  /** Forgets expired rooms and releases expired publications; the timer calls it, tests may too. */
  sweep(): void {
    const now = this.#now();
    for (const [room, history] of this.#rooms) {
      if (history.expiresAt <= now) this.#rooms.delete(room);
      else history.dropExpired(now);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#rooms.clear();
  }

  /** The room's history, created (with a new epoch) when it has none or it expired; kept `ttl` more. */
  #touch(room: RoomName, retention: Retention, now: number): RoomHistory {
    let history = this.#rooms.get(room);
    if (history === undefined || history.expiresAt <= now) {
      history = new RoomHistory();
      this.#rooms.set(room, history);
    }
    history.expiresAt = now + retention.ttlSeconds * 1000;
    return history;
  }
}
