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
]);

/** What {@link parseMessage} found: a message, or the error to reply with. */
export type ParseResult = { ok: true; message: Message } | { ok: false; code: ErrorCode; reason: string; id?: string };

/**
 * Keys that could reach an object's prototype if a handler merged the parsed data into another object.
 * JSON.parse itself makes them own properties, harmless on their own; we strip them so that a careless
 * `Object.assign(target, data)` in user code cannot be turned into prototype pollution. A `\u` escape
 * can spell any of those keys (`"\u005f_proto__"` parses to `"__proto__"`), so text with an escape
 * takes the reviver too.
 */
const DANGEROUS_KEY = /"(?:__proto__|constructor|prototype)"\s*:|\\u/;

function dropDangerousKeys(key: string, value: unknown): unknown {
  return key === "__proto__" || key === "constructor" || key === "prototype" ? undefined : value;
}

/**
 * Parses one text frame into a {@link Message}. Never throws: any bad input becomes an error result.
 *
 * The reviver that strips dangerous keys only runs when the text mentions one of them, so ordinary
 * messages pay for a single regular-expression scan, not a reviver call per value.
 */
export function parseMessage(text: string): ParseResult {
  let value: unknown;
  try {
    value = DANGEROUS_KEY.test(text) ? JSON.parse(text, dropDangerousKeys) : JSON.parse(text);
  } catch (error) {
    // The reviver recurses: valid JSON nested thousands deep can exhaust the stack.
    if (error instanceof RangeError) return { ok: false, code: ErrorCode.InvalidMessage, reason: "message is nested too deeply" };
    return { ok: false, code: ErrorCode.InvalidJson, reason: "message is not valid JSON" };
  }
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
