/**
 * Durations in Go's `time.Duration.String()` format (`5m30s`, `1.5s`, `150ms`), which the `status`
 * reply uses for `connection_duration` so that clients of the Go seed keep parsing it.
 *
 * @module
 */

const NS_PER_US = 1e3;
const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;
const NS_PER_MIN = 60e9;

/** `value / unit` as a decimal with trailing zeros removed, computed on integers to avoid 0.1+0.2. */
function decimal(value: number, unit: number, digits: number): string {
  const whole = Math.floor(value / unit);
  const fraction = value % unit;
  if (fraction === 0) return String(whole);
  return `${whole}.${String(fraction).padStart(digits, "0").replace(/0+$/, "")}`;
}

/**
 * Formats a duration given in milliseconds the way Go's `Duration.String()` does.
 *
 * @example
 * ```ts
 * formatGoDuration(330_000); // "5m30s"
 * formatGoDuration(1500);    // "1.5s"
 * formatGoDuration(150);     // "150ms"
 * ```
 */
export function formatGoDuration(milliseconds: number): string {
  let ns = Math.round(milliseconds * NS_PER_MS);
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  ns = Math.abs(ns);
  if (ns < NS_PER_US) return `${sign}${ns}ns`;
  if (ns < NS_PER_MS) return `${sign}${decimal(ns, NS_PER_US, 3)}µs`;
  if (ns < NS_PER_S) return `${sign}${decimal(ns, NS_PER_MS, 6)}ms`;

  let text = `${decimal(ns % NS_PER_MIN, NS_PER_S, 9)}s`;
  const minutes = Math.floor(ns / NS_PER_MIN);
  if (minutes > 0) {
    text = `${minutes % 60}m${text}`;
    const hours = Math.floor(minutes / 60);
    if (hours > 0) text = `${hours}h${text}`;
  }
  return sign + text;
}
