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

/** Milliseconds (with sub-millisecond precision) on the machine-wide monotonic clock. */
export function now(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/** Resolves at the monotonic time `at` (immediately when it has passed). */
export function until(at: number): Promise<void> {
  const delay = at - now();
  return delay <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delay));
}
