/**
 * The standalone server's configuration: command-line flags and environment variables (docs/CLI.md),
 * parsed and validated once. A flag wins over its environment variable; an empty variable counts as
 * unset (so `PORT=` in a compose file falls back to the default), except `CONDUIT_JWT_SECRET`: an
 * empty secret is a mistake to refuse, not a request to run without authentication. Every refusal is a
 * {@link ConfigError} naming the flag or variable and how to fix it; `main` turns it into exit code 2.
 * The library's own checks run here too ({@link parseConfig} resolves the options), so a combination
 * the library refuses also ends with code 2 rather than as a failed start.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ConfigFile } from "../namespaces/config.js";
import { defaultOptions, resolveOptions, type RateLimitOptions, type ServerOptions } from "../options.js";
import {
  apiKey,
  ConfigError,
  configFile,
  host,
  integer,
  jwtSecret,
  LOG_LEVELS,
  type LogLevel,
  logLevel,
  MAX_TIMER_MS,
  MIN_API_KEY_BYTES,
  MIN_JWT_SECRET_BYTES,
  optionalInteger,
  origins,
  path,
  type RawValue,
  redisUrl,
  toggle,
} from "./values.js";

export { ConfigError, LOG_LEVELS, type LogLevel, MIN_API_KEY_BYTES, MIN_JWT_SECRET_BYTES };

/** Everything the standalone server needs to start, defaults applied. */
export interface CliConfig {
  /** TCP port; 0 picks a free one (the ready line names it). */
  port: number;
  /** Bind address. */
  host: string;
  /** WebSocket endpoint path. */
  path: string;
  /** HS256 secret of at least {@link MIN_JWT_SECRET_BYTES} bytes; when set every connection needs a valid JWT. */
  jwtSecret: string | undefined;
  /** Exact origins allowed to connect; undefined allows any. */
  allowedOrigins: string[] | undefined;
  /** Redis URL of the cluster; undefined runs alone. */
  redisUrl: string | undefined;
  /** Largest incoming frame in bytes. */
  maxPayload: number;
  /** Deepest nesting of arrays and objects in a client's message. */
  maxMessageDepth: number;
  /** Connections per process. */
  maxConnections: number;
  /** Messages per second per client (burst twice that); 0 turns the limit off. */
  rateLimit: number;
  /** Deliveries per second a client's messages may cause; undefined: the library's 100 × {@link CliConfig.rateLimit}. */
  deliveryBudget: number | undefined;
  /** Unsent bytes per client before close 1013. */
  maxBufferedBytes: number;
  /** Milliseconds between ping frames. */
  heartbeatInterval: number;
  /** Milliseconds of silence before a client is terminated. */
  heartbeatTimeout: number;
  /** Milliseconds shutdown waits for clients' closing handshakes. */
  shutdownTimeout: number;
  /** Whether the built-in broadcast without a room (to every client) is allowed. */
  broadcastToAll: boolean;
  /** Processes on this machine. */
  workers: number;
  /** Least severe level written to the log. */
  logLevel: LogLevel;
  /** Port of a listener of its own for `/metrics`; undefined serves `/metrics` on the public listener. */
  metricsPort: number | undefined;
  /** Bind address of the metrics listener (used only with {@link CliConfig.metricsPort}). */
  metricsHost: string;
  /** The configuration file's path and content (`--config`); undefined: every room open. */
  configFile: { path: string; content: ConfigFile } | undefined;
  /** The server API's key (`Authorization: Bearer KEY`); undefined: no API, `/api/*` is 404. Never logged. */
  apiKey: string | undefined;
  /** Port of a listener of its own for the API; undefined serves `/api/*` on the public listener. */
  apiPort: number | undefined;
  /** Bind address of the API listener (used only with {@link CliConfig.apiPort}). */
  apiHost: string;
}

/** What the command line asks for. */
export type ParseOutcome = { kind: "run"; config: CliConfig } | { kind: "help" } | { kind: "version" };

/** One documented flag: drives `parseArgs`, `--help` and the error messages. */
interface FlagSpec {
  /** Long name without the dashes. */
  name: string;
  /** Environment variable, if any. */
  env?: string;
  /** Placeholder shown in help. */
  arg?: string;
  /** The default, as the help shows it. */
  defaultText: string;
  /** One-line meaning. */
  help: string;
}

/**
 * The deepest `--max-message-depth` accepted. Deeper messages would be parsed, and then walked by
 * every reply that echoes them and every schema, one stack frame per level.
 */
export const MAX_MESSAGE_DEPTH_LIMIT = 1000;

/** Where `--metrics-port` listens unless `--metrics-host` says otherwise: this machine only. */
export const DEFAULT_METRICS_HOST = "127.0.0.1";

/** Where `--api-port` listens unless `--api-host` says otherwise: this machine only. */
export const DEFAULT_API_HOST = "127.0.0.1";

/** The flags, in the order `--help` lists them. */
// biome-ignore format: one flag per line reads as a table
export const FLAGS: readonly FlagSpec[] = [
  { name: "port", env: "PORT", arg: "N", defaultText: "8080", help: "TCP port (0 picks a free one)" },
  { name: "host", env: "HOST", arg: "ADDR", defaultText: "0.0.0.0", help: "bind address (127.0.0.1: this machine only; :: for IPv6)" },
  { name: "path", env: "CONDUIT_PATH", arg: "PATH", defaultText: "/ws", help: "WebSocket endpoint" },
  { name: "jwt-secret", env: "CONDUIT_JWT_SECRET", arg: "SECRET", defaultText: "none", help: `require an HS256 JWT (?token= or Authorization: Bearer); its sub is the user_id; at least ${MIN_JWT_SECRET_BYTES} bytes` },
  { name: "allowed-origins", env: "CONDUIT_ALLOWED_ORIGINS", arg: "LIST", defaultText: "any", help: "comma-separated origins allowed to connect, e.g. https://app.example" },
  { name: "redis", env: "REDIS_URL", arg: "URL", defaultText: "none", help: "join a cluster over Redis (redis:// or rediss://)" },
  { name: "max-payload", env: "CONDUIT_MAX_PAYLOAD", arg: "BYTES", defaultText: String(defaultOptions.maxPayload), help: "largest incoming message; larger: close 1009" },
  { name: "max-message-depth", env: "CONDUIT_MAX_MESSAGE_DEPTH", arg: "N", defaultText: String(defaultOptions.maxMessageDepth), help: "deepest nesting of arrays and objects in a message; deeper: invalid_message" },
  { name: "max-connections", env: "CONDUIT_MAX_CONNECTIONS", arg: "N", defaultText: String(defaultOptions.maxConnections), help: "connections per process; above it: HTTP 503" },
  { name: "rate-limit", env: "CONDUIT_RATE_LIMIT", arg: "N", defaultText: String(defaultRate()), help: "messages per second per client, burst 2x; 0 turns it off" },
  { name: "delivery-budget", env: "CONDUIT_DELIVERY_BUDGET", arg: "N", defaultText: "100x --rate-limit", help: "deliveries per second a client's messages may cause, burst 2x; over it: rate_limited" },
  { name: "max-buffered-bytes", env: "CONDUIT_MAX_BUFFERED_BYTES", arg: "BYTES", defaultText: String(defaultOptions.maxBufferedBytes), help: "unsent bytes per client before close 1013" },
  { name: "heartbeat-interval", env: "CONDUIT_HEARTBEAT_INTERVAL", arg: "MS", defaultText: String(defaultOptions.heartbeatInterval), help: "ms between ping frames" },
  { name: "heartbeat-timeout", env: "CONDUIT_HEARTBEAT_TIMEOUT", arg: "MS", defaultText: String(defaultOptions.heartbeatTimeout), help: "ms of silence before a client is terminated" },
  { name: "shutdown-timeout", env: "CONDUIT_SHUTDOWN_TIMEOUT", arg: "MS", defaultText: String(defaultOptions.shutdownTimeout), help: "ms shutdown waits for clients to close before cutting them off" },
  { name: "broadcast-to-all", env: "CONDUIT_BROADCAST_TO_ALL", arg: "on|off", defaultText: "on", help: "off: a client's broadcast without a room is refused" },
  { name: "workers", env: "CONDUIT_WORKERS", arg: "N", defaultText: "1", help: "processes on this machine (above 1 needs --redis)" },
  { name: "log-level", env: "CONDUIT_LOG_LEVEL", arg: "LEVEL", defaultText: "info", help: `one of ${LOG_LEVELS.join(", ")}` },
  { name: "metrics-port", env: "CONDUIT_METRICS_PORT", arg: "N", defaultText: "the public port", help: "serve /metrics on a listener of its own (0 picks a free one); the public port then answers 404" },
  { name: "config", env: "CONDUIT_CONFIG", arg: "FILE", defaultText: "none", help: "JSON file with the room namespaces and their rules (docs/PERMISSIONS.md)" },
  { name: "metrics-host", env: "CONDUIT_METRICS_HOST", arg: "ADDR", defaultText: DEFAULT_METRICS_HOST, help: "bind address of the --metrics-port listener" },
  { name: "api-key", env: "CONDUIT_API_KEY", arg: "KEY", defaultText: "none", help: `serve the server API under /api/ to callers sending Authorization: Bearer KEY; at least ${MIN_API_KEY_BYTES} bytes (docs/API.md)` },
  { name: "api-port", env: "CONDUIT_API_PORT", arg: "N", defaultText: "the public port", help: "serve /api/ on a listener of its own (0 picks a free one); the public port then answers 404" },
  { name: "api-host", env: "CONDUIT_API_HOST", arg: "ADDR", defaultText: DEFAULT_API_HOST, help: "bind address of the --api-port listener" },
  { name: "help", defaultText: "", help: "print this help and exit" },
  { name: "version", defaultText: "", help: "print the version and exit" },
];

function defaultRate(): number {
  const limit = defaultOptions.rateLimit;
  return limit === false ? 0 : limit.messagesPerSecond;
}

/** The `--help` text. */
export function usage(): string {
  const rows = FLAGS.map((flag) => {
    const left = `  --${flag.name}${flag.arg ? ` ${flag.arg}` : ""}`;
    const right = [flag.help, flag.env ? `[env ${flag.env}]` : "", flag.defaultText ? `(default ${flag.defaultText})` : ""]
      .filter(Boolean)
      .join(" ");
    return `${left.padEnd(30)} ${right}`;
  });
  return [
    "Usage: conduit-ws [flags]",
    "",
    "A real-time WebSocket messaging server. Flags win over environment variables.",
    "HTTP: GET / (demo), /healthz, /metrics (or on --metrics-port), /config, /sdk/<name>.js; /api/* with --api-key (or on --api-port). Logs: JSON lines on stderr.",
    "",
    ...rows,
    "",
  ].join("\n");
}

/**
 * Parses `argv` (without `node` and the script) and `env` into a validated configuration.
 *
 * @throws ConfigError naming the flag or variable that is wrong and how to fix it
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseOutcome {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const flag of FLAGS) options[flag.name] = { type: flag.arg ? "string" : "boolean" };
  options.help = { type: "boolean", short: "h" };

  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}\nRun "conduit-ws --help" for the list of flags.`);
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  const raw = (name: string): RawValue | undefined => {
    const flagValue = values[name];
    if (typeof flagValue === "string") return { value: flagValue, source: `--${name}` };
    const envName = FLAGS.find((flag) => flag.name === name)?.env;
    const envValue = envName === undefined ? undefined : env[envName];
    if (envValue !== undefined && envValue !== "") return { value: envValue, source: `${envName} (environment)` };
    return undefined;
  };

  const heartbeatInterval = integer(raw("heartbeat-interval"), defaultOptions.heartbeatInterval, 1, MAX_TIMER_MS, "milliseconds");
  const heartbeatTimeout = integer(raw("heartbeat-timeout"), defaultOptions.heartbeatTimeout, 1, MAX_TIMER_MS, "milliseconds");
  if (heartbeatTimeout < heartbeatInterval) {
    throw new ConfigError(
      `--heartbeat-timeout (${heartbeatTimeout}) must be at least --heartbeat-interval (${heartbeatInterval}), or every client would time out between two pings; raise the timeout or lower the interval`,
    );
  }

  const config: CliConfig = {
    port: integer(raw("port"), 8080, 0, 65_535, "a port number"),
    host: host(raw("host")),
    path: path(raw("path")),
    jwtSecret: jwtSecret(values["jwt-secret"], env.CONDUIT_JWT_SECRET),
    allowedOrigins: origins(raw("allowed-origins")),
    redisUrl: redisUrl(raw("redis")),
    maxPayload: integer(raw("max-payload"), defaultOptions.maxPayload, 1, Number.MAX_SAFE_INTEGER, "bytes"),
    maxMessageDepth: integer(raw("max-message-depth"), defaultOptions.maxMessageDepth, 1, MAX_MESSAGE_DEPTH_LIMIT, "levels of nesting"),
    maxConnections: integer(raw("max-connections"), defaultOptions.maxConnections, 1, Number.MAX_SAFE_INTEGER, "connections"),
    rateLimit: integer(raw("rate-limit"), defaultRate(), 0, 1_000_000, "messages per second; 0 turns the limit off"),
    deliveryBudget: optionalInteger(raw("delivery-budget"), 1, Number.MAX_SAFE_INTEGER, "deliveries per second"),
    maxBufferedBytes: integer(raw("max-buffered-bytes"), defaultOptions.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER, "bytes"),
    heartbeatInterval,
    heartbeatTimeout,
    shutdownTimeout: integer(raw("shutdown-timeout"), defaultOptions.shutdownTimeout, 0, MAX_TIMER_MS, "milliseconds"),
    broadcastToAll: toggle(raw("broadcast-to-all"), defaultOptions.allowBroadcastToAll),
    workers: integer(raw("workers"), 1, 1, 1024, "processes"),
    logLevel: logLevel(raw("log-level")),
    metricsPort: optionalInteger(raw("metrics-port"), 0, 65_535, "a port number"),
    metricsHost: host(raw("metrics-host"), DEFAULT_METRICS_HOST),
    configFile: configFile(raw("config")),
    apiKey: apiKey(raw("api-key")),
    apiPort: optionalInteger(raw("api-port"), 0, 65_535, "a port number"),
    apiHost: host(raw("api-host"), DEFAULT_API_HOST),
  };
  if (config.workers > 1 && config.redisUrl === undefined) {
    throw new ConfigError(
      `--workers ${config.workers} needs --redis URL (or REDIS_URL): without Redis the workers could not see each other's clients and rooms; add --redis redis://host:6379 or use --workers 1`,
    );
  }
  if (config.deliveryBudget !== undefined && config.rateLimit === 0) {
    throw new ConfigError(
      `--delivery-budget ${config.deliveryBudget} cannot apply with --rate-limit 0, which turns the message rate and the delivery budget off together; set a --rate-limit or drop --delivery-budget`,
    );
  }
  if (config.metricsPort === undefined && raw("metrics-host") !== undefined) {
    throw new ConfigError(
      "--metrics-host needs --metrics-port N (or CONDUIT_METRICS_PORT): without it /metrics stays on the public listener",
    );
  }
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) {
    throw new ConfigError(
      `--metrics-port ${config.metricsPort} is the public --port: pick another port, or leave --metrics-port out to serve /metrics on the public one`,
    );
  }
  if (config.apiKey === undefined && (config.apiPort !== undefined || raw("api-host") !== undefined)) {
    throw new ConfigError(
      `${config.apiPort !== undefined ? "--api-port" : "--api-host"} needs --api-key KEY (or CONDUIT_API_KEY): without a key the server API is off`,
    );
  }
  if (config.apiPort === undefined && raw("api-host") !== undefined) {
    throw new ConfigError("--api-host needs --api-port N (or CONDUIT_API_PORT): without it the API stays on the public listener");
  }
  if (config.apiPort !== undefined && config.apiPort !== 0 && (config.apiPort === config.port || config.apiPort === config.metricsPort)) {
    throw new ConfigError(
      `--api-port ${config.apiPort} is already the ${config.apiPort === config.port ? "public --port" : "--metrics-port"}: pick another port, or leave --api-port out to serve /api/ on the public one`,
    );
  }
  checkLibraryOptions(config);
  return { kind: "run", config };
}

/** The library option each flag sets, so the library's messages can name the flag instead. */
const OPTION_FLAGS: Readonly<Record<string, string>> = {
  path: "--path",
  maxPayload: "--max-payload",
  maxMessageDepth: "--max-message-depth",
  maxConnections: "--max-connections",
  maxBufferedBytes: "--max-buffered-bytes",
  heartbeatInterval: "--heartbeat-interval",
  heartbeatTimeout: "--heartbeat-timeout",
  shutdownTimeout: "--shutdown-timeout",
  "rateLimit.messagesPerSecond": "--rate-limit",
  "rateLimit.deliveriesPerSecond": "--delivery-budget",
};

/**
 * Runs the library's own validation on the options the flags make, so a combination it refuses
 * (say `--max-buffered-bytes` below `--max-payload`) is a configuration error, exit code 2, before
 * anything listens, in the primary of `--workers` too, rather than a failed start of every process.
 */
function checkLibraryOptions(config: CliConfig): void {
  try {
    resolveOptions(toServerOptions(config));
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const message = error.message
      .replace(/^conduit-ws: /, "")
      .replace(/"([A-Za-z.]+)"/g, (quoted, name: string) => OPTION_FLAGS[name] ?? quoted);
    throw new ConfigError(message);
  }
}

/**
 * Maps the configuration onto the library's options (docs/CLI.md ↔ `ServerOptions`). The logger,
 * instrumentation and adapter are added by the caller.
 */
export function toServerOptions(config: CliConfig): Partial<ServerOptions> {
  // deliveriesPerSecond left undefined lets the library derive the budget from the message rate.
  const rateLimit: RateLimitOptions | false =
    config.rateLimit === 0
      ? false
      : {
          ...(defaultOptions.rateLimit as RateLimitOptions),
          messagesPerSecond: config.rateLimit,
          burst: 2 * config.rateLimit,
          deliveriesPerSecond: config.deliveryBudget,
        };
  return {
    path: config.path,
    maxPayload: config.maxPayload,
    maxMessageDepth: config.maxMessageDepth,
    maxConnections: config.maxConnections,
    rateLimit,
    maxBufferedBytes: config.maxBufferedBytes,
    // Droppable messages must be skipped well before the close threshold, or they would never be.
    droppableBufferedBytes: Math.min(defaultOptions.droppableBufferedBytes, Math.floor(config.maxBufferedBytes / 4)),
    heartbeatInterval: config.heartbeatInterval,
    heartbeatTimeout: config.heartbeatTimeout,
    shutdownTimeout: config.shutdownTimeout,
    allowedOrigins: config.allowedOrigins,
    allowBroadcastToAll: config.broadcastToAll,
    namespaces: config.configFile?.content.namespaces,
  };
}

/** The configuration as it may be logged: the JWT secret, the API key and any Redis password left out. */
export function describeConfig(config: CliConfig): Record<string, unknown> {
  let redis: string | undefined;
  if (config.redisUrl !== undefined) {
    const url = new URL(config.redisUrl);
    if (url.password) url.password = "***";
    redis = url.toString();
  }
  const { jwtSecret, redisUrl: _redisUrl, configFile, apiKey, ...rest } = config;
  return {
    ...rest,
    jwt: jwtSecret === undefined ? "off" : "HS256",
    redis: redis ?? "off",
    config: configFile?.path ?? "none",
    api: apiKey === undefined ? "off" : "on",
  };
}
