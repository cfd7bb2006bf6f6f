/**
 * Checks of what clients send about history (`join_room`'s `since`, the `history` request's
 * `limit`), for the hub: a bad value is answered with `invalid_message` before any store sees it, so
 * a store can trust its input.
 *
 * @module
 */
import type { StreamPosition } from "./store.js";

/** A checked value, or why it was refused (a sentence for the error reply). */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The longest epoch accepted from a client; the stores' own are much shorter. */
export const MAX_EPOCH_LENGTH = 64;

/** Whether `value` is an offset: a whole number from 0 to 2^53 - 1. */
export function isOffset(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks `join_room`'s `since`: absent (a plain join), or `{ "epoch": string, "offset": whole number }`.
 *
 * @example
 * ```ts
 * const since = checkSince(data.since);
 * if (!since.ok) return reply.error("invalid_message", since.reason);
 * ```
 */
export function checkSince(value: unknown): Checked<StreamPosition | undefined> {
  if (value === undefined) return { ok: true, value: undefined };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: '"since" must be an object like {"epoch":"…","offset":17}' };
  }
  const { epoch, offset } = value as Record<string, unknown>;
  if (typeof epoch !== "string" || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH) {
    return { ok: false, reason: `"since.epoch" must be a string of 1 to ${MAX_EPOCH_LENGTH} characters` };
  }
  if (!isOffset(offset)) return { ok: false, reason: '"since.offset" must be a whole number from 0' };
  return { ok: true, value: { epoch, offset } };
}

/**
 * Checks the `history` request's `limit`: absent (every kept publication), or a whole number from 1
 * to the namespace's `size`.
 *
 * @param size - the namespace's `history.size`
 */
export function checkLimit(value: unknown, size: number): Checked<number | undefined> {
  if (value === undefined) return { ok: true, value: undefined };
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > size) {
    return { ok: false, reason: `"limit" must be a whole number from 1 to ${size}` };
  }
  return { ok: true, value };
}
