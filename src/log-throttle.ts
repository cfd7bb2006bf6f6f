/**
 * Keeps what callers can make the server log bounded: at most one line per key and interval, with a
 * count of the lines held back in between. Keyed by client for what a client's own messages can
 * trigger (a handler failing on its input); by the warning itself for refusals at a server's limits.
 *
 * @module
 */

/** One line per key and interval; keys are held weakly, so a closed client's entry goes with it. */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #entries = new WeakMap<object, { at: number; suppressed: number }>();

  /** @param intervalMs - the least time between two lines for one key */
  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Whether a line for `key` may be written at `now`.
   *
   * @returns undefined to skip the line; otherwise how many lines were skipped since the last one
   */
  admit(key: object, now: number = Date.now()): number | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#entries.set(key, { at: now, suppressed: 0 });
      return 0;
    }
    if (now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry.suppressed;
    entry.at = now;
    entry.suppressed = 0;
    return suppressed;
  }
}
