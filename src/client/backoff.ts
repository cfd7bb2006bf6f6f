/**
 * The wait before a reconnection attempt: exponential backoff, capped, with jitter.
 *
 * @module
 */
import type { ReconnectOptions } from "./types.js";

/** {@link ReconnectOptions} with every default filled in. */
export type ResolvedReconnect = Required<ReconnectOptions>;

/** The defaults of {@link ReconnectOptions}. */
export const defaultReconnect: ResolvedReconnect = {
  initialDelay: 500,
  maxDelay: 10_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
};

/**
 * Milliseconds to wait before attempt number `attempt` (1 for the first retry).
 *
 * The jitter only ever shortens the wait, so `maxDelay` stays a true upper bound; it spreads the
 * clients of a restarted server over the interval instead of bringing them all back at once.
 */
export function backoffDelay(attempt: number, options: ResolvedReconnect, random: () => number = Math.random): number {
  const exponential = options.initialDelay * options.factor ** Math.max(0, attempt - 1);
  const capped = Math.min(options.maxDelay, exponential);
  return Math.round(capped * (1 - options.jitter * random()));
}
