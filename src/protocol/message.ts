/**
 * The wire envelope of protocol version 1 (docs/PROTOCOL.md) and the parser every incoming frame goes through.
 *
 * @module
 */
import { ErrorCode } from "../errors.js";

/** A message as it travels: `{ type, data?, id? }`, one JSON object per text frame. */
export interface Message<T = unknown> {
  /** Routes the message to a handler. */
  type: string;
  /** The payload; any JSON value. */
  data?: T;
  /** A client-chosen request id; the one direct reply carries it back. */
  id?: string;
}

/** Message types the server itself uses: a broadcast may not use them (docs/PROTOCOL.md). */
export const RESERVED_TYPES: ReadonlySet<string> = new Set([
  "error",
  "ack",
  "pong",
  "room_joined",
  "room_left",
  "status",
  "presence",
  "member_joined",
  "member_left",
  "history",
  "refresh",
  "refreshed",
  "token_expiring",
]);

/** What {@link parseMessage} found: a message, or the error to reply with. */
export type ParseResult = { ok: true; message: Message } | { ok: false; code: ErrorCode; reason: string; id?: string };

/**
 * Keys that could reach an object's prototype if a handler merged the parsed data into another object.
 * JSON.parse itself makes them own properties, harmless on their own; we strip them so that a careless
 * `Object.assign(target, data)` in user code cannot be turned into prototype pollution. A `\u` escape
 * can spell any of those keys (`"\u005f_proto__"` parses to `"__proto__"`), so text with an escape is
 * searched too.
 */
const DANGEROUS_KEY = /"(?:__proto__|constructor|prototype)"\s*:|\\u/;
const DANGEROUS_KEYS = ["__proto__", "constructor", "prototype"] as const;

/** The depth limit {@link parseMessage} applies when none is given. */
export const DEFAULT_MAX_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Below this length a character loop finds the depth fastest; above it, a regular expression. */
const LOOP_SCAN_LIMIT = 512;
/** What changes the depth, or starts a string (inside which brackets do not count). */
const STRUCTURE = /["[\]{}]/g;
/** What ends a string, or escapes the character after it. */
const STRING_END = /["\\]/g;

/**
 * Whether `text`, read as JSON, nests arrays and objects deeper than `maxDepth`. One pass over the
 * text, skipping strings, before anything is parsed: `JSON.parse` itself takes milliseconds over
 * thousands of levels, and every later walk (a reply that echoes it, a schema) a stack frame per
 * level, so deep input is refused unread. Long text is scanned with regular expressions, which skip
 * the digits and letters between brackets natively; short text with a loop, which starts faster.
 */
function nestedDeeperThan(text: string, maxDepth: number): boolean {
  // Each level takes at least one character: shorter text cannot be too deep.
  if (text.length <= maxDepth) return false;
  return text.length <= LOOP_SCAN_LIMIT ? deeperByLoop(text, maxDepth) : deeperByPattern(text, maxDepth);
}

function deeperByLoop(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

function deeperByPattern(text: string, maxDepth: number): boolean {
  let depth = 0;
  STRUCTURE.lastIndex = 0;
  for (let found = STRUCTURE.exec(text); found !== null; found = STRUCTURE.exec(text)) {
    const code = text.charCodeAt(found.index);
    if (code === QUOTE) {
      const end = stringEnd(text, found.index + 1);
      if (end === -1) return false;
      STRUCTURE.lastIndex = end + 1;
    } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else {
      depth--;
    }
  }
  return false;
}

/** The index of the quote that ends the string starting at `from`, or -1 when it does not end. */
function stringEnd(text: string, from: number): number {
  STRING_END.lastIndex = from;
  for (let found = STRING_END.exec(text); found !== null; found = STRING_END.exec(text)) {
    if (text.charCodeAt(found.index) === QUOTE) return found.index;
    STRING_END.lastIndex = found.index + 2;
  }
  return -1;
}

/**
 * Deletes the {@link DANGEROUS_KEYS} from every object in a parsed value, walking it with a stack of
 * its own rather than recursion (its depth is already bounded, but the walk needs no stack frames).
 */
function stripDangerousKeys(root: unknown): void {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "object" && item !== null) pending.push(item);
      continue;
    }
    const record = value as Record<string, unknown>;
    for (const key of DANGEROUS_KEYS) if (Object.hasOwn(record, key)) delete record[key];
    for (const key in record) {
      const item = record[key];
      if (typeof item === "object" && item !== null) pending.push(item);
    }
  }
}

/**
 * Parses one text frame into a {@link Message}. Never throws: any bad input becomes an error result.
 *
 * Plain `JSON.parse`, after a depth check; the dangerous keys are looked for only when the text can
 * contain them, so ordinary messages pay for one scan and one regular-expression test.
 *
 * @param maxDepth - the deepest nesting of arrays and objects accepted; deeper is `invalid_message`
 */
export function parseMessage(text: string, maxDepth: number = DEFAULT_MAX_DEPTH): ParseResult {
  if (nestedDeeperThan(text, maxDepth)) {
    return { ok: false, code: ErrorCode.InvalidMessage, reason: `message is nested deeper than ${maxDepth} levels` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: ErrorCode.InvalidJson, reason: "message is not valid JSON" };
  }
  if (DANGEROUS_KEY.test(text)) stripDangerousKeys(value);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, code: ErrorCode.InvalidMessage, reason: "message must be a JSON object" };
  }
  const candidate = value as { type?: unknown; id?: unknown; data?: unknown };
  const id = typeof candidate.id === "string" ? candidate.id : undefined;
  if (candidate.id !== undefined && id === undefined) {
    return { ok: false, code: ErrorCode.InvalidMessage, reason: 'field "id" must be a string' };
  }
  if (typeof candidate.type !== "string" || candidate.type.length === 0) {
    const failure: ParseResult = {
      ok: false,
      code: ErrorCode.InvalidMessage,
      reason: 'field "type" must be a non-empty string',
    };
    if (id !== undefined) failure.id = id;
    return failure;
  }
  const message: Message = { type: candidate.type, data: candidate.data };
  if (id !== undefined) message.id = id;
  return { ok: true, message };
}

/**
 * The envelope of an outgoing message: `{ type }`, `{ type, data }`, and `id` when it answers a
 * request. Absent fields are left out rather than set to undefined, so every message the server
 * sends has one of a few shapes.
 */
export function envelope(type: string, data: unknown, id?: string): Message {
  const message: Message = data === undefined ? { type } : { type, data };
  if (id !== undefined) message.id = id;
  return message;
}

/** The error envelope: `{"type":"error","data":{"message","code"}}`, with the request's `id`. */
export function errorMessage(code: string, message: string, id: string | undefined): Message {
  return envelope("error", { message, code }, id);
}
