/**
 * Client ids: random version 4 UUIDs (RFC 9562 §5.4), what `crypto.randomUUID()` returns, made for
 * the connection path.
 *
 * Why not `crypto.randomUUID()`: node builds its result by concatenating 20 pieces, and a
 * concatenated string must be flattened (copied) before it can be hashed; the hub hashes every id
 * as the key of its client map, once per connection. Here the bytes come from the same CSPRNG
 * (`randomFillSync`, 256 ids' worth at a time) and the text is written into one buffer and read out
 * as one flat string.
 *
 * @module
 */
import { randomFillSync } from "node:crypto";

/** Ids per refill of {@link random}: one system call per 256 connections. */
const IDS_PER_FILL = 256;
const random = Buffer.alloc(16 * IDS_PER_FILL);
/** The next unused id's slot in {@link random}; a full count means "refill first". */
let nextSlot = IDS_PER_FILL;
const text = Buffer.alloc(36);
const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");
const DASH = 0x2d;

/** A new random version 4 UUID in its canonical form, e.g. `"3f2b8c1e-9a4d-4e7f-b1c2-0d5e6f7a8b9c"`. */
export function randomClientId(): string {
  if (nextSlot === IDS_PER_FILL) {
    randomFillSync(random);
    nextSlot = 0;
  }
  const first = 16 * nextSlot++;
  let out = 0;
  for (let index = 0; index < 16; index++) {
    if (index === 4 || index === 6 || index === 8 || index === 10) text[out++] = DASH;
    let byte = random[first + index]!;
    if (index === 6)
      byte = (byte & 0x0f) | 0x40; // the version: 4 (random)
    else if (index === 8) byte = (byte & 0x3f) | 0x80; // the variant: RFC 9562
    text[out++] = HEX_DIGITS[byte >> 4]!;
    text[out++] = HEX_DIGITS[byte & 0x0f]!;
  }
  return text.toString("latin1", 0, 36);
}
