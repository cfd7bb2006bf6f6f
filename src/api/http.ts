/**
 * The plumbing of the server API's HTTP routes: the bearer key check, a bounded JSON body reader and
 * the error replies. Node's `http` only, so the API adds no dependency and no framework's request
 * handling sits between a backend and the hub.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** The largest request body the API reads (1 MiB); larger: 413. */
export const MAX_API_BODY_BYTES = 1024 * 1024;

/** A refusal with its HTTP status and its `{"error":{"code","message"}}` body. */
export class ApiError extends Error {
  /**
   * @param status - the HTTP status
   * @param code - the machine-readable code
   * @param message - what went wrong, naming the field when a field is wrong
   */
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/**
 * Checks `Authorization: Bearer KEY` against the key. Both sides are hashed first, so the comparison
 * takes the same time whatever the presented key's length and content.
 */
export function bearerMatches(header: string | undefined, keyDigest: Buffer): boolean {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  const presented = digest(match?.[1] ?? "");
  // Compared even when the header is missing, so a missing and a wrong key take as long.
  return timingSafeEqual(presented, keyDigest) && match !== null;
}

/** The SHA-256 of a key, as {@link bearerMatches} compares it. */
export function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/**
 * Reads a JSON object body of at most {@link MAX_API_BODY_BYTES}. A body past the limit is refused
 * as soon as it is announced (Content-Length) or read: nothing more is read, and the connection is
 * closed after the 413 so the rest of the upload goes nowhere.
 */
export async function readJsonObject(request: IncomingMessage): Promise<Record<string, unknown>> {
  const contentType = request.headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") {
    throw new ApiError(415, "unsupported_media_type", "the body must be JSON with Content-Type: application/json");
  }
  const announced = Number(request.headers["content-length"]);
  if (announced > MAX_API_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  // Listeners rather than an async iterator: leaving the iterator early would destroy the socket
  // before the 413 is written.
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_API_BODY_BYTES) return void chunks.push(chunk);
      request.off("data", onData).pause();
      reject(tooLarge());
    };
    request.on("data", onData).once("end", resolve).once("error", reject);
  });
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ApiError(400, "invalid_json", "the body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(400, "invalid_json", "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

function tooLarge(): ApiError {
  return new ApiError(413, "payload_too_large", `the body is larger than ${MAX_API_BODY_BYTES} bytes`);
}

/** Writes a JSON answer; `close` ends the connection after it (a body left unread). */
export function sendJson(response: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  };
  if (close) headers.Connection = "close";
  if (status === 401) headers["WWW-Authenticate"] = 'Bearer realm="conduit-ws"';
  response.writeHead(status, headers);
  response.end(text);
}

/** Writes an {@link ApiError} as `{"error":{"code","message"}}`. */
export function sendError(response: ServerResponse, error: ApiError): void {
  sendJson(response, error.status, { error: { code: error.code, message: error.message } }, error.status === 413);
}
