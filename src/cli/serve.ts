/**
 * One serving process of the standalone server: the conduit-ws hub attached to a node HTTP server
 * that also answers the plain routes (`/`, `/healthz`, `/metrics`, `/config`, `/sdk/`). Used alone, and by
 * each worker under `--workers`.
 *
 * @module
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Adapter } from "../adapter/adapter.js";
import { createApiHandler } from "../api/routes.js";
import type { Logger } from "../logger.js";
import { createServer } from "../server.js";
import { nodeHandshakeTimeout } from "../upgrade/handshake-guard.js";
import { limitSockets } from "../upgrade/socket-limit.js";
import { toServerOptions, type CliConfig } from "./config.js";
import { DEFAULT_DEMO_FILE, DEFAULT_SDK_DIR, createApiRequestListener, createRequestListener } from "./http.js";
import { createJwtAuthHandler } from "./jwt.js";
import { ServerMetrics } from "./metrics.js";

/** A process that is serving. */
export interface RunningServer {
  /** The endpoint's URL, e.g. `ws://127.0.0.1:8080/ws` (with the real port when `--port 0`). */
  readonly url: string;
  /** This process's metrics. */
  readonly metrics: ServerMetrics;
  /** The server API's base URL when `--api-port` gives it a listener of its own, e.g. `http://127.0.0.1:9090`. */
  readonly apiUrl: string | undefined;
  /**
   * Graceful shutdown: `/healthz` turns 503, clients get close 1001 (and up to `shutdownTimeout`
   * to answer it), the adapter closes, then the HTTP server. Idempotent.
   */
  stop(): Promise<void>;
}

/** Hooks for a worker process; a single process needs none. */
export interface ServeHooks {
  /** Replaces this process's `/metrics` (a worker answers with the whole cluster's). */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

// Loaded on demand so that a server without --redis never loads ioredis.
async function createRedisAdapter(url: string, logger: Logger): Promise<Adapter> {
  const { RedisAdapter } = await import("../adapter/redis/index.js");
  return new RedisAdapter({ url, logger });
}

/**
 * Starts serving according to `config`. Rejects when the adapter cannot reach its backend or the
 * address cannot be bound; nothing is left listening then.
 */
export async function serve(config: CliConfig, logger: Logger, hooks: ServeHooks = {}): Promise<RunningServer> {
  const metrics = new ServerMetrics();
  const adapter = config.redisUrl === undefined ? undefined : await createRedisAdapter(config.redisUrl, logger);
  const server = createServer({ ...toServerOptions(config), logger, instrumentation: metrics, adapter });
  if (config.jwtSecret !== undefined) server.setAuthHandler(createJwtAuthHandler(config.jwtSecret, logger));
  metrics.observe(server);

  let draining = false;
  const api =
    config.apiKey === undefined ? undefined : createApiHandler(server, { apiKey: config.apiKey, logger, isDraining: () => draining });
  // With --api-port the API has a listener of its own, and the public one answers 404 for /api/.
  const apiServer =
    api !== undefined && config.apiPort !== undefined
      ? createHttpServer(nodeHandshakeTimeout(server.options.handshakeTimeout), createApiRequestListener(api))
      : undefined;
  const httpServer = createHttpServer(
    // Node's own header and request timeouts close slow handshakes and slow plain requests (the
    // routes are GET or HEAD, and an API body is at most 1 MiB, so no request needs longer), and
    // attach() adds no sweep of its own.
    nodeHandshakeTimeout(server.options.handshakeTimeout),
    createRequestListener({
      wsPath: config.path,
      auth: config.jwtSecret !== undefined,
      isDraining: () => draining,
      // With --metrics-port, /metrics lives on its own listener: the public one answers 404 for it.
      metrics:
        config.metricsPort !== undefined
          ? undefined
          : (hooks.metrics ?? (async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }))),
      demoFile: DEFAULT_DEMO_FILE,
      sdkDir: DEFAULT_SDK_DIR,
      logger,
      api: apiServer === undefined ? api : undefined,
    }),
  );
  try {
    // Started before attach(), so a Redis failure is reported once, here, and nothing is served.
    await server.start();
    server.attach(httpServer);
    await listen(httpServer, config.port, config.host);
    limitSockets(httpServer, server.options.maxConnections, logger);
    if (apiServer !== undefined) {
      await listen(apiServer, config.apiPort!, config.apiHost);
      logger.info({ url: httpUrl(apiServer.address() as AddressInfo) }, "api listening");
    }
  } catch (error) {
    await server.shutdown().catch(() => undefined);
    httpServer.close();
    apiServer?.close();
    throw error;
  }

  let stopped: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    draining = true;
    await server.shutdown();
    // Keep-alive connections (a metrics scraper, a browser) would hold close() open forever.
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    if (apiServer !== undefined) {
      // After the hub: the API answers 503 while draining rather than refusing connections.
      apiServer.closeAllConnections();
      await new Promise<void>((resolve) => apiServer.close(() => resolve()));
    }
  };
  return {
    url: endpointUrl(httpServer.address() as AddressInfo, config.path),
    apiUrl: apiServer === undefined ? undefined : httpUrl(apiServer.address() as AddressInfo),
    metrics,
    stop: () => (stopped ??= stop()),
  };
}

function listen(server: HttpServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** `http://HOST:PORT` for the bound address; IPv6 addresses in brackets. */
function httpUrl(address: AddressInfo): string {
  const host = address.address.includes(":") ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** `ws://HOST:PORT/PATH` for the bound address; IPv6 addresses in brackets. */
export function endpointUrl(address: AddressInfo, path: string): string {
  const host = address.address.includes(":") ? `[${address.address}]` : address.address;
  return `ws://${host}:${address.port}${path}`;
}
