/**
 * Progress on stderr (stdout carries only the final table), each line stamped with the time since
 * the run began so that a reader sees where a long run spends it.
 *
 * @module
 */
import { now } from "../shared/clock.js";

const began = now();

/** Writes one progress line to stderr. */
export function log(text: string): void {
  process.stderr.write(`bench ${((now() - began) / 1000).toFixed(1).padStart(6)}s: ${text}\n`);
}

/** Seconds since the run began. */
export function elapsedSeconds(): number {
  return (now() - began) / 1000;
}
