/**
 * Reading a tick (`{"type":"tick","data":{"seq":N,"t":T}}`) without `JSON.parse`. The load
 * generator receives every broadcast copy and its receive time is part of every latency figure;
 * `JSON.parse(raw.toString())` costs a string and two objects per message, this costs neither.
 *
 * @module
 */

const SEQ_KEY = Buffer.from('"seq":');
const SENT_AT_KEY = Buffer.from('"t":');
const ZERO = 0x30;
const DOT = 0x2e;
const MINUS = 0x2d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** What {@link readTick} read last (one object, overwritten by every call). */
export const lastTick = { seq: 0, sentAt: 0 };

/** Where the last {@link readNumber} stopped. */
let numberEnd = 0;

/**
 * Reads a JSON number of the form `-?digits(.digits)?` starting at `at`; NaN for anything else (an
 * exponent included), so that the caller falls back to `JSON.parse`. Ticks carry integers and
 * clock readings in milliseconds, which `String(number)` writes in that form.
 */
function readNumber(raw: Buffer, at: number): number {
  let i = at;
  const negative = raw[i] === MINUS;
  if (negative) i++;
  let value = 0;
  let digits = 0;
  for (; i < raw.length; i++) {
    const digit = raw[i]! - ZERO;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
    digits++;
  }
  if (i < raw.length && raw[i] === DOT) {
    let scale = 1;
    for (i++; i < raw.length; i++) {
      const digit = raw[i]! - ZERO;
      if (digit < 0 || digit > 9) break;
      value = value * 10 + digit;
      scale *= 10;
      digits++;
    }
    value /= scale;
  }
  numberEnd = i;
  if (digits === 0 || raw[i] === LOWER_E || raw[i] === UPPER_E) return Number.NaN;
  return negative ? -value : value;
}

/**
 * Reads the `seq` and `t` of a tick into {@link lastTick}, searching from byte `from`.
 * @returns false when the payload is not laid out as expected (read it with `JSON.parse` then)
 */
export function readTick(raw: Buffer, from = 0): boolean {
  const seqAt = raw.indexOf(SEQ_KEY, from);
  if (seqAt === -1) return false;
  const seq = readNumber(raw, seqAt + SEQ_KEY.length);
  const sentAtAt = raw.indexOf(SENT_AT_KEY, numberEnd);
  if (sentAtAt === -1) return false;
  const sentAt = readNumber(raw, sentAtAt + SENT_AT_KEY.length);
  if (Number.isNaN(seq) || Number.isNaN(sentAt)) return false;
  lastTick.seq = seq;
  lastTick.sentAt = sentAt;
  return true;
}
