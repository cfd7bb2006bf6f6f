/**
 * The history seam: where a room's publications get their position (offset and epoch) and are kept
 * for recovery and the `history` request. It sits beside the {@link Adapter}: the default
 * {@link MemoryHistoryStore} serves one process, the Redis store shares one history between every
 * node. Both pass one contract test suite (`test/history-contract.ts`).
 *
 * A store knows nothing about members or namespaces: the hub passes each call the room's retention
 * (its namespace's `history: { size, ttl }`), so rooms of different namespaces keep different amounts.
 *
 * @module
 */
import type { RoomName } from "../types.js";

/** Where a room stands, or where a client last was in it. */
export interface StreamPosition {
  /** The offset of the latest publication; 0 when the room has none in this epoch. */
  offset: number;
  /** The room's epoch: changes whenever the room's stored history was lost. */
  epoch: string;
}

/** How much of a room's history is kept: its namespace's `history` rule. */
export interface Retention {
  /** The most publications kept (the oldest go first). */
  size: number;
  /**
   * Seconds a publication is kept; the room's epoch and offset are kept this long after its latest
   * publication or read, so they outlive the room's last member by as much.
   */
  ttlSeconds: number;
}

/** One publication, as the hub hands it to the store. */
export interface PublicationInput {
  /** The message type the members receive. */
  type: string;
  /** The message's `data`, serialised as JSON; absent when the message has none. */
  json?: string | undefined;
}

/** One kept publication, as the store gives it back (oldest first). */
export interface Publication {
  /** Its offset in the room. */
  offset: number;
  /** The message type. */
  type: string;
  /** The message's `data` as JSON text, exactly as published; absent when it had none. */
  json?: string | undefined;
}

/**
 * A message a store that is shared between nodes publishes on a pub/sub channel in the same atomic
 * step that assigns the offset, so every node receives a room's publications in offset order (two
 * nodes publishing at once cannot have their messages overtake each other on the way). The text is
 * `segments[0] + value(slots[0]) + segments[1] + … + segments[n]`: the offset and the epoch are
 * known only inside that step. A single-process store ignores it.
 *
 * On Redis Cluster the channel must hash to the room's slot: put {@link roomHashTag} in its name.
 */
export interface RelayMessage {
  /** The sharded pub/sub channel. */
  channel: string;
  /** The literal text around the slots: exactly one more than `slots`. */
  segments: readonly string[];
  /** What goes between two segments. */
  slots: ReadonlyArray<"offset" | "epoch">;
}

/** What {@link HistoryStore.history} is asked. */
export interface HistoryQuery {
  /**
   * Recovery: return every publication after this position, if all of them are still kept and the
   * epoch is the room's; otherwise none, with `recovered: false`. Excludes `limit`.
   */
  since?: StreamPosition | undefined;
  /** Without `since`: the latest `limit` publications (default all kept). At least 1. */
  limit?: number | undefined;
}

/** What {@link HistoryStore.history} answers. */
export interface HistoryResult extends StreamPosition {
  /** Kept publications, oldest first: after `since`, or the latest `limit`. */
  publications: Publication[];
  /**
   * Only with `since`: true when `since.epoch` is the room's epoch and every publication after
   * `since.offset` is still kept (`publications` then holds them all, in order); false otherwise,
   * and `publications` is empty (the client must reload its state another way).
   */
  recovered?: boolean;
}

/**
 * Keeps rooms' publications and assigns their positions. Implementations declare
 * `implements HistoryStore` and run the shared contract tests in `test/history-contract.ts`.
 *
 * Every call that touches a room creates its epoch when it has none and keeps it for
 * `retention.ttlSeconds` more, so a client told an epoch at join finds the same epoch later.
 */
export interface HistoryStore {
  /** Called once before the server accepts connections. Rejects if the backend cannot be reached. */
  start(): Promise<void>;
  /**
   * Gives a publication the room's next offset (exactly 1 more than the last, atomically across
   * every node sharing the store) and keeps it.
   *
   * @param relay - published atomically with the offset assignment by stores shared between nodes
   * @throws HistoryUnavailableError when no position can be given (the backend is unreachable):
   *   the publication must then go to nobody
   */
  publish(room: RoomName, publication: PublicationInput, retention: Retention, relay?: RelayMessage): Promise<StreamPosition>;
  /**
   * Kept publications of a room: after `query.since` (recovery) or the latest `query.limit`.
   *
   * @throws HistoryUnavailableError when the backend is unreachable
   */
  history(room: RoomName, retention: Retention, query?: HistoryQuery): Promise<HistoryResult>;
  /**
   * Where the room stands (`room_joined`): its latest offset (0 when none) and epoch.
   *
   * @throws HistoryUnavailableError when the backend is unreachable
   */
  position(room: RoomName, retention: Retention): Promise<StreamPosition>;
  /** Stops timers and releases connections. */
  close(): Promise<void>;
}

/**
 * A position could not be given or read because the store's backend is unreachable. The hub answers
 * with error code `unavailable` (the server API: HTTP 503), and sends the publication to nobody.
 */
export class HistoryUnavailableError extends Error {
  override name = "HistoryUnavailableError";
  /** The error code the hub replies with. */
  readonly code = "unavailable";
}

/**
 * The hash tag that keeps every Redis key (and the relay channel) of a room in one slot: the room's
 * name with `%`, `{` and `}` escaped, in braces. Escaping matters: a name starting with `}` would
 * otherwise make an empty tag, and Redis Cluster would hash each key on its own.
 */
export function roomHashTag(room: RoomName): string {
  return `{${room.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}}`;
}

/** One publication with the time after which it is no longer kept. */
export interface KeptPublication extends Publication {
  /** Milliseconds since the epoch (the clock of whoever stored it) after which it is gone. */
  expiresAt: number;
}

/**
 * Refuses a query no client input should produce (the hub checks with `checkSince`/`checkLimit`
 * first): a store must not turn a caller's bug into a malformed Redis command or a wrong answer.
 *
 * @throws RangeError naming the bad field
 */
export function assertQuery(query: HistoryQuery | undefined): void {
  if (query === undefined) return;
  const { since, limit } = query;
  if (since !== undefined && limit !== undefined) throw new RangeError("conduit-ws: a history query takes since or limit, not both");
  if (since !== undefined) {
    if (typeof since.epoch !== "string") throw new RangeError("conduit-ws: since.epoch must be a string");
    if (!Number.isSafeInteger(since.offset) || since.offset < 0)
      throw new RangeError("conduit-ws: since.offset must be a whole number from 0");
  }
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new RangeError("conduit-ws: limit must be a whole number from 1");
  }
}

/**
 * The answer to a history query, from a room's position and its stored publications (oldest first,
 * expired ones included): both stores share it so they answer alike.
 *
 * @param now - the current time on the clock `expiresAt` was set with
 */
export function answerQuery(
  position: StreamPosition,
  stored: readonly KeptPublication[],
  now: number,
  query?: HistoryQuery,
): HistoryResult {
  const kept = stored
    .filter((p) => p.expiresAt > now)
    .map(({ offset, type, json }): Publication => (json === undefined ? { offset, type } : { offset, type, json }));
  const since = query?.since;
  if (since === undefined) {
    const limit = query?.limit;
    const publications = limit === undefined || limit >= kept.length ? kept : kept.slice(kept.length - limit);
    return { ...position, publications };
  }
  if (since.epoch !== position.epoch || since.offset > position.offset) return { ...position, publications: [], recovered: false };
  const after = kept.filter((p) => p.offset > since.offset);
  // Complete only if nothing between since and the latest offset was trimmed or expired.
  const complete = after.length === position.offset - since.offset && (after.length === 0 || after[0]!.offset === since.offset + 1);
  return complete ? { ...position, publications: after, recovered: true } : { ...position, publications: [], recovered: false };
}
