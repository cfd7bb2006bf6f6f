/**
 * The per-connection token bucket (docs/PROTOCOL.md): every frame a client sends takes a token; an empty
 * bucket drops the message; too many drops within a window is sustained abuse.
 *
 * @module
 */
import type { RateLimitOptions } from "../options.js";

/** What the limiter decided about one incoming frame. */
export type RateDecision = "allow" | "drop" | "abuse";

/** One client's bucket. Plain numbers, no timers: it refills lazily when a frame arrives. */
export class RateLimiter {
  readonly #options: RateLimitOptions;
  #tokens: number;
  #refilledAt: number;
  #dropped = 0;
  #windowStart = 0;

  /**
   * @param options - rate, burst and abuse thresholds
   * @param now - the current time in ms (passed in so one `Date.now()` serves the whole ingest)
   */
  constructor(options: RateLimitOptions, now: number) {
    this.#options = options;
    this.#tokens = options.burst;
    this.#refilledAt = now;
  }

  /** Takes a token for a frame that arrived at `now` (ms). */
  take(now: number): RateDecision {
    const { messagesPerSecond, burst, maxDropped, abuseWindowMs } = this.#options;
    const elapsed = now - this.#refilledAt;
    if (elapsed > 0) {
      this.#tokens = Math.min(burst, this.#tokens + (elapsed * messagesPerSecond) / 1000);
      this.#refilledAt = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return "allow";
    }
    if (now - this.#windowStart > abuseWindowMs) {
      this.#windowStart = now;
      this.#dropped = 0;
    }
    this.#dropped += 1;
    return this.#dropped > maxDropped ? "abuse" : "drop";
  }
}
