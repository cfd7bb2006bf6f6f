/**
 * Reading the standalone server's flag and environment values: one function per kind of value, each
 * refusing a bad one with a {@link ConfigError} that names the flag or variable and how to fix it.
 *
 * @module
 */
import { ConfigurationError, type ConfigFile } from "../namespaces/config.js";
import { defaultOptions } from "../options.js";
import { loadConfigFile } from "./config-file.js";

/** The log levels `--log-level` accepts (pino's, plus `silent`). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A bad flag or environment value; the message says which and how to fix it. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Where a raw value came from, for error messages. */
export interface RawValue {
  value: string;
  source: string;
}

// setTimeout/setInterval silently turn larger delays into 1 ms, so durations are capped here.
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The shortest `--jwt-secret` accepted, in bytes (UTF-8). RFC 7518 §3.2 requires an HS256 key of at
 * least the hash's size, 256 bits: a shorter secret can be guessed offline from any one token.
 */
export const MIN_JWT_SECRET_BYTES = 32;

/** The shortest `--api-key` accepted, in bytes: a shorter key could be guessed by trying. */
export const MIN_API_KEY_BYTES = 16;

/** `--jwt-secret` / `CONDUIT_JWT_SECRET`: at least {@link MIN_JWT_SECRET_BYTES}; an empty variable is refused, not ignored. */
export function jwtSecret(flag: string | boolean | undefined, env: string | undefined): string | undefined {
  const raw: RawValue | undefined =
    typeof flag === "string"
      ? { value: flag, source: "--jwt-secret" }
      : env === undefined
        ? undefined
        : { value: env, source: "CONDUIT_JWT_SECRET (environment)" };
  if (raw === undefined) return undefined;
  // Measured in bytes, as the HMAC key is; the value itself is never echoed.
  const bytes = Buffer.byteLength(raw.value, "utf8");
  if (raw.value.trim() === "" || bytes < MIN_JWT_SECRET_BYTES) {
    throw new ConfigError(
      `${raw.source} is ${raw.value === "" ? "empty" : `${bytes} bytes`}: an HS256 secret needs at least ${MIN_JWT_SECRET_BYTES} random bytes (RFC 7518 §3.2), e.g. from "openssl rand -base64 48"; to run without authentication, leave it unset`,
    );
  }
  return raw.value;
}

/** `--api-key` / `CONDUIT_API_KEY`: at least {@link MIN_API_KEY_BYTES}, no spaces. */
export function apiKey(raw: RawValue | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // Measured in bytes; the value itself is never echoed.
  const bytes = Buffer.byteLength(raw.value, "utf8");
  if (raw.value.trim() === "" || bytes < MIN_API_KEY_BYTES || /\s/.test(raw.value)) {
    throw new ConfigError(
      `${raw.source} is ${raw.value.trim() === "" ? "empty" : /\s/.test(raw.value) ? "not one word" : `${bytes} bytes`}: an API key needs at least ${MIN_API_KEY_BYTES} bytes without spaces, e.g. from "openssl rand -hex 32"; to run without the API, leave it unset`,
    );
  }
  return raw.value;
}

/** A whole number from `min` to `max`, or undefined when not given. */
export function optionalInteger(raw: RawValue | undefined, min: number, max: number, unit: string): number | undefined {
  return raw === undefined ? undefined : integer(raw, min, min, max, unit);
}

/** A whole number from `min` to `max`, or `fallback` when not given. */
export function integer(raw: RawValue | undefined, fallback: number, min: number, max: number, unit: string): number {
  if (raw === undefined) return fallback;
  const value = raw.value.trim();
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(`invalid ${raw.source} ${JSON.stringify(raw.value)}: expected a whole number from ${min} to ${max} (${unit})`);
  }
  return parsed;
}

/** A bind address: an IP address or a host name. */
export function host(raw: RawValue | undefined, fallback = "0.0.0.0"): string {
  if (raw === undefined) return fallback;
  const value = raw.value.trim();
  // A bracketed IPv6 address is how users write it in URLs; listen() wants it bare.
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (!/^[A-Za-z0-9.:_-]+$/.test(bare)) {
    throw new ConfigError(
      `invalid ${raw.source} ${JSON.stringify(raw.value)}: expected an address like 0.0.0.0, 127.0.0.1, :: or a host name`,
    );
  }
  return bare;
}

/** A URL path starting with `/`, without a query string. */
export function path(raw: RawValue | undefined): string {
  if (raw === undefined) return defaultOptions.path;
  const value = raw.value;
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(value)) {
    throw new ConfigError(
      `invalid ${raw.source} ${JSON.stringify(value)}: expected a URL path starting with "/" and without a query string, e.g. /ws`,
    );
  }
  return value;
}

/** A comma-separated list of origins (`*`: any), normalised. */
export function origins(raw: RawValue | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw.value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 1 && items[0] === "*") return undefined;
  if (items.length === 0) {
    throw new ConfigError(
      `invalid ${raw.source}: expected a comma-separated list of origins like https://app.example,http://localhost:3000 (or * for any)`,
    );
  }
  return items.map((item) => {
    const url = tryUrl(item);
    if (url === undefined || !isBareOrigin(item, url)) {
      throw new ConfigError(
        `invalid ${raw.source} entry ${JSON.stringify(item)}: expected an origin like https://app.example or http://localhost:3000 (scheme, host and optional port; no path or trailing slash)`,
      );
    }
    return url.origin;
  });
}

// An origin is scheme://host[:port] only; a path or a trailing slash would never match a browser's Origin.
function isBareOrigin(text: string, url: URL): boolean {
  return (
    (url.protocol === "http:" || url.protocol === "https:") &&
    !text.endsWith("/") &&
    url.pathname === "/" &&
    url.search === "" &&
    url.hash === "" &&
    url.username === "" &&
    url.password === ""
  );
}

function tryUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** A `redis://` or `rediss://` URL; a bad one is refused without echoing it (it may hold a password). */
export function redisUrl(raw: RawValue | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const url = tryUrl(raw.value);
  if (url === undefined || (url.protocol !== "redis:" && url.protocol !== "rediss:")) {
    // The value may carry a password: name the source, never echo the value.
    throw new ConfigError(`invalid ${raw.source}: expected a URL like redis://localhost:6379 or rediss://user:password@host:6380`);
  }
  return raw.value;
}

// The words people write for a switch in flags and compose files.
const ON = ["on", "true", "1", "yes"];
const OFF = ["off", "false", "0", "no"];

/** `on`/`off` (also true/false, 1/0, yes/no). */
export function toggle(raw: RawValue | undefined, fallback: boolean): boolean {
  if (raw === undefined) return fallback;
  const value = raw.value.trim().toLowerCase();
  if (ON.includes(value)) return true;
  if (OFF.includes(value)) return false;
  throw new ConfigError(`invalid ${raw.source} ${JSON.stringify(raw.value)}: expected on or off (also true/false, 1/0, yes/no)`);
}

/** One of {@link LOG_LEVELS}. */
export function logLevel(raw: RawValue | undefined): LogLevel {
  if (raw === undefined) return "info";
  const value = raw.value.trim().toLowerCase();
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) {
    throw new ConfigError(`invalid ${raw.source} ${JSON.stringify(raw.value)}: expected one of ${LOG_LEVELS.join(", ")}`);
  }
  return level;
}

/** `--config FILE`: the file read and checked, or undefined when not given. */
export function configFile(raw: RawValue | undefined): { path: string; content: ConfigFile } | undefined {
  if (raw === undefined) return undefined;
  try {
    return { path: raw.value, content: loadConfigFile(raw.value) };
  } catch (error) {
    if (error instanceof ConfigurationError) throw new ConfigError(`${raw.source}: ${error.message}`);
    throw error;
  }
}
