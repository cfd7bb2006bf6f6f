/**
 * Reading the token and checking the origin of an upgrade request (docs/PROTOCOL.md).
 *
 * @module
 */
import type { IncomingMessage } from "node:http";

/**
 * The default token extractor: `?token=` in the URL, else `Authorization: Bearer <token>`.
 * Returns undefined when neither is present or the value is empty.
 */
export function defaultTokenExtractor(request: IncomingMessage): string | undefined {
  const url = request.url ?? "";
  const query = url.indexOf("?");
  if (query !== -1) {
    const token = new URLSearchParams(url.slice(query + 1)).get("token");
    if (token) return token;
  }
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Whether an `Origin` is allowed by an exact-match list. A request without `Origin` comes from a
 * non-browser client and is allowed; `null` (sandboxed frames, file: pages) is refused unless listed.
 * Comparison is exact on the serialised origin, so `https://good.example.evil.example` never matches
 * `https://good.example`.
 */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  return allowed.includes(origin);
}

/** The path part of a request URL, without the query string. */
export function pathOf(request: IncomingMessage): string {
  const url = request.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
