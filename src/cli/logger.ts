/**
 * The standalone server's log: pino JSON lines on stderr (stdout carries only the ready line, so a
 * script can read the URL without filtering logs). Tokens must never reach a log line (docs/PROTOCOL.md): the
 * library never passes them, and this logger redacts every field that could carry one anyway —
 * `token`, `authorization`, cookies, secrets, query strings — as defence in depth.
 *
 * @module
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";
import type { LogLevel } from "./config.js";

/** Written in place of a redacted value. */
export const REDACTED = "[redacted]";

// Field names that may carry a credential, at the top level and one level down (`req.headers` is two).
const SECRET_FIELDS = ["token", "authorization", "cookie", "password", "secret", "jwtSecret", "query"];
const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
];

/** `/ws?token=abc` → `/ws?[redacted]`: the path stays useful, the query (where tokens travel) goes. */
export function stripQuery(url: unknown): unknown {
  if (typeof url !== "string") return url;
  const query = url.indexOf("?");
  return query === -1 ? url : `${url.slice(0, query)}?${REDACTED}`;
}

/**
 * Creates the server's logger at `level`, writing to `destination` (default: stderr, synchronously,
 * so that the last lines before an exit are not lost).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): PinoLogger {
  return pino(
    {
      name: "conduit-ws",
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        err: pino.stdSerializers.err,
        url: stripQuery,
        req: (req: { method?: unknown; url?: unknown }) => ({ method: req.method, url: stripQuery(req.url) }),
      },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
