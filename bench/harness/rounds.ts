/**
 * `--repeat N`: one scenario run N times against each server, the servers taking turns, and the N
 * rows folded into one. A p99 over 100 broadcasts is the second-largest of 100 samples, and on a
 * shared virtual machine one stray pause moves it far between identical runs; the median of several
 * rounds, each measured exactly as a single run is, is the figure that repeats.
 *
 * @module
 */
import type { ServerKind } from "../shared/messages.js";

/**
 * Fields that count things (connections, deliveries, samples): the folded row carries their total
 * over the rounds, so that "missing 0 of 300000" says what every round delivered. Every other
 * number is the median of the rounds' values.
 */
const TOTALS = new Set([
  "clients",
  "opened",
  "failed",
  "broadcasts",
  "expectedDeliveries",
  "deliveries",
  "totalDeliveries",
  "missing",
  "sent",
  "received",
  "samples",
]);

/** The median of `values` (the mean of the middle two when their number is even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function fold(key: string, values: readonly unknown[]): unknown {
  const first = values[0];
  if (typeof first === "number") {
    const numbers = values as number[];
    return TOTALS.has(key) ? numbers.reduce((total, value) => total + value, 0) : median(numbers);
  }
  if (Array.isArray(first)) {
    // Failure messages: every distinct one. Per-process or per-worker figures: element by element.
    const arrays = values as unknown[][];
    if (typeof first[0] === "string") return [...new Set(arrays.flat())];
    return first.map((_, index) =>
      fold(
        key,
        arrays.map((array) => array[index]),
      ),
    );
  }
  if (typeof first === "object" && first !== null) {
    const objects = values as Record<string, unknown>[];
    return Object.fromEntries(
      Object.keys(first).map((field) => [
        field,
        fold(
          field,
          objects.map((object) => object[field]),
        ),
      ]),
    );
  }
  return first;
}

/**
 * Folds the rows of several rounds of one scenario against one server into one row: counts added
 * up, every other figure the median of the rounds (so a p99 is the median of the rounds' p99s, never
 * a percentile over pooled samples). The rounds' own rows are kept under `rounds` for the JSON.
 */
export function foldRounds<R extends object>(rows: readonly R[]): R & { rounds: R[] } {
  return { ...(fold("", rows) as R), rounds: [...rows] };
}

/**
 * The order servers run in during round `round`: rotated by one each round, so that no server is
 * always the first after a fresh load generator or always the last of a long run.
 */
export function roundOrder(servers: readonly ServerKind[], round: number): ServerKind[] {
  const shift = round % servers.length;
  return [...servers.slice(shift), ...servers.slice(0, shift)];
}
