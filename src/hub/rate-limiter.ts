/**
 * The per-connection limits (docs/PROTOCOL.md): a token bucket of messages, where every frame a
 * client sends takes a token (ping and pong frames too), and a bucket of work, where the deliveries
 * its messages cause are charged (a broadcast's recipients, the members `presence` returns, the
 * members a join or leave notifies). An empty bucket drops the message; too many drops within a
 * window is sustained abuse.
 *
 * @module
 */
import { DELIVERIES_PER_MESSAGE, type RateLimitOptions } from "../options.js";

/** What the limiter decided about one incoming frame or one charge. */
export type RateDecision = "allow" | "drop" | "abuse";

/** One client's buckets. Plain numbers, no timers: they refill lazily when a frame arrives. */
export class RateLimiter {
  readonly #options: RateLimitOptions;
  #tokens: number;
  #refilledAt: number;
  /** Deliveries the client's messages may still cause; refilled with the message tokens. */
  #work: number;
  readonly #workPerSecond: number;
  #dropped = 0;
  #windowStart = 0;

  /**
   * @param options - rate, burst, work budget and abuse thresholds
   * @param now - the current time in ms (passed in so one `Date.now()` serves the whole ingest)
   */
  constructor(options: RateLimitOptions, now: number) {
    this.#options = options;
    this.#tokens = options.burst;
    this.#workPerSecond = options.deliveriesPerSecond ?? DELIVERIES_PER_MESSAGE * options.messagesPerSecond;
    this.#work = 2 * this.#workPerSecond;
    this.#refilledAt = now;
  }

  /** Takes a token for a frame that arrived at `now` (ms). */
  take(now: number): RateDecision {
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return "allow";
    }
    return this.#drop(now);
  }

  /**
   * Charges `deliveries` to the work budget at `now` (ms). Over budget, nothing is charged and the
   * message that asked for the work counts as dropped.
   */
  charge(deliveries: number, now: number): RateDecision {
    this.#refill(now);
    if (deliveries <= this.#work) {
      this.#work -= deliveries;
      return "allow";
    }
    return this.#drop(now);
  }

  #refill(now: number): void {
    const elapsed = now - this.#refilledAt;
    if (elapsed <= 0) return;
    const { messagesPerSecond, burst } = this.#options;
    this.#tokens = Math.min(burst, this.#tokens + (elapsed * messagesPerSecond) / 1000);
    this.#work = Math.min(2 * this.#workPerSecond, this.#work + (elapsed * this.#workPerSecond) / 1000);
    this.#refilledAt = now;
  }

  #drop(now: number): RateDecision {
    const { maxDropped, abuseWindowMs } = this.#options;
    if (now - this.#windowStart > abuseWindowMs) {
      this.#windowStart = now;
      this.#dropped = 0;
    }
    this.#dropped += 1;
    return this.#dropped > maxDropped ? "abuse" : "drop";
  }
}
