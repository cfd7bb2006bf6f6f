/**
 * Token expiry for every connection with an expiring token: one timer for all of them, like the
 * heartbeat sweep, rather than one per connection. Connections wait in buckets of a quarter second
 * by the moment they are due, so a tick touches only the buckets that came due, and a connection is
 * closed within a quarter second (plus the event loop's delay) of its token's expiry.
 *
 * @module
 */

/** Bucket width: the precision of warnings and closes. */
const BUCKET_MS = 250;

/** A connection as the watch sees it. */
export interface ExpiryTarget {
  /** When its token expires (ms since the epoch), or undefined. */
  readonly expiresAt: number | undefined;
}

/** Connections by the bucket they are due in. */
class Buckets<T> {
  readonly #buckets = new Map<number, Set<T>>();

  get size(): number {
    return this.#buckets.size;
  }

  add(at: number, target: T): void {
    const key = Math.ceil(at / BUCKET_MS);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(key, bucket);
    }
    bucket.add(target);
  }

  delete(at: number, target: T): void {
    const key = Math.ceil(at / BUCKET_MS);
    const bucket = this.#buckets.get(key);
    if (bucket?.delete(target) && bucket.size === 0) this.#buckets.delete(key);
  }

  /** Takes out every target due at or before `now`. */
  takeDue(now: number): T[] {
    const due: T[] = [];
    const last = Math.floor(now / BUCKET_MS);
    for (const [key, bucket] of this.#buckets) {
      if (key > last) continue;
      for (const target of bucket) due.push(target);
      this.#buckets.delete(key);
    }
    return due;
  }
}

/** Warns connections before their token expires and ends them when it has. */
export class ExpiryWatch<T extends ExpiryTarget> {
  readonly #warnBeforeMs: number;
  readonly #onWarn: (target: T) => void;
  readonly #onExpire: (target: T) => void;
  readonly #warnings = new Buckets<T>();
  readonly #expiries = new Buckets<T>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * @param warnBeforeMs - how long before expiry `onWarn` runs (at once when less is left)
   * @param onWarn - tells the connection its token is about to expire
   * @param onExpire - ends the connection
   */
  constructor(warnBeforeMs: number, onWarn: (target: T) => void, onExpire: (target: T) => void) {
    this.#warnBeforeMs = warnBeforeMs;
    this.#onWarn = onWarn;
    this.#onExpire = onExpire;
  }

  /** Starts watching `target` by its current `expiresAt` (nothing when it has none). */
  watch(target: T): void {
    const expiresAt = target.expiresAt;
    if (expiresAt === undefined || this.#stopped) return;
    const warnAt = expiresAt - this.#warnBeforeMs;
    if (warnAt <= Date.now()) this.#onWarn(target);
    else this.#warnings.add(warnAt, target);
    this.#expiries.add(expiresAt, target);
    this.#timer ??= setInterval(this.#tick, BUCKET_MS).unref();
  }

  /** Stops watching `target` (call before its `expiresAt` changes, and when it leaves). */
  unwatch(target: T): void {
    const expiresAt = target.expiresAt;
    if (expiresAt === undefined) return;
    this.#warnings.delete(expiresAt - this.#warnBeforeMs, target);
    this.#expiries.delete(expiresAt, target);
    if (this.#expiries.size === 0) this.#clearTimer();
  }

  /** Stops the timer for good (shutdown). */
  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    const now = Date.now();
    for (const target of this.#warnings.takeDue(now)) this.#onWarn(target);
    for (const target of this.#expiries.takeDue(now)) {
      this.#warnings.delete((target.expiresAt ?? 0) - this.#warnBeforeMs, target);
      this.#onExpire(target);
    }
    if (this.#expiries.size === 0) this.#clearTimer();
  };
}
