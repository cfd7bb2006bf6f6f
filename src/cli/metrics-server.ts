/**
 * `--metrics-port`: `/metrics` on a listener of its own, so the Prometheus text (connection counts,
 * message rates, process figures) can stay on an internal address while the public listener answers
 * 404 for it. It stays up while the server drains, so a scrape still sees the shutdown, and closes last.
 *
 * @module
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../logger.js";
import { createMetricsRequestListener, type MetricsSource } from "./http.js";

/** A running metrics listener. */
export interface MetricsListener {
  /** `http://HOST:PORT/metrics` for the bound address (the real port when asked for port 0). */
  readonly url: string;
  /** Stops listening and closes open scrape connections. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link listenMetrics}. */
export interface MetricsListenerOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Bind address. */
  host: string;
  /** The exposition each scrape gets. */
  metrics: MetricsSource;
  /** Request and error log. */
  logger: Logger;
}

/**
 * Starts the metrics listener. Rejects (with nothing left listening) when the address cannot be bound.
 *
 * @example
 * ```ts
 * const listener = await listenMetrics({ port: 9464, host: "127.0.0.1", metrics: source, logger });
 * ```
 */
export async function listenMetrics(options: MetricsListenerOptions): Promise<MetricsListener> {
  const server = createHttpServer(createMetricsRequestListener(options.metrics, options.logger));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address.includes(":") ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        // A scraper's keep-alive connection would hold close() open forever.
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
