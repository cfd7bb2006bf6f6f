/**
 * The one clock every benchmark process reads.
 *
 * `process.hrtime()` is CLOCK_MONOTONIC, which the kernel shares between all processes of a machine:
 * a timestamp taken by the sending load process can be subtracted from one taken by another load
 * process or by the harness. `performance.now()` could not be used that way (each process counts
 * from its own start).
 *
 * @module
 */

function hrtimeMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/**
 * `performance.now()` counts on the same CLOCK_MONOTONIC from this process's start, and reading it
 * allocates nothing (`process.hrtime()` returns a new array): the load generator reads the clock for
 * every message it receives. The offset between the two is taken from the tightest of a few readings
 * of one bracketed by two of the other (the first call of either is slow), so it is right to about a
 * microsecond.
 */
const MONOTONIC_AT_ZERO = ((): number => {
  performance.now();
  hrtimeMs();
  let bracket = Infinity;
  let offset = 0;
  for (let i = 0; i < 8; i++) {
    const before = performance.now();
    const monotonic = hrtimeMs();
    const after = performance.now();
    if (after - before < bracket) {
      bracket = after - before;
      offset = monotonic - (before + after) / 2;
    }
  }
  return offset;
})();

/** Milliseconds (with sub-millisecond precision) on the machine-wide monotonic clock. */
export function now(): number {
  return MONOTONIC_AT_ZERO + performance.now();
}

/** Resolves at the monotonic time `at` (immediately when it has passed). */
export function until(at: number): Promise<void> {
  const delay = at - now();
  return delay <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delay));
}
