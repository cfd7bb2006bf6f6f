/**
 * The plain-HTTP routes beside the WebSocket endpoint (docs/CLI.md):
 *
 * | route | answer |
 * | --- | --- |
 * | `GET /` | the demo page (`demo/index.html` of the package), or a short page saying it is missing |
 * | `GET /healthz` | 200 `{"status":"ok"}` while serving, 503 `{"status":"draining"}` once shutdown began |
 * | `GET /metrics` | Prometheus text (404 when `--metrics-port` serves it on a listener of its own) |
 * | `GET /config` | `{"path","auth","protocol"}`: what a browser page needs to connect (see {@link ClientConfig}) |
 * | `GET /sdk/<name>.js` | the browser SDK from `dist/client/` as `text/javascript` |
 * | `/api/...` | the server API (docs/API.md) with `--api-key` on this listener; else 404 |
 * | `GET <endpoint path>` without upgrade | 426 Upgrade Required |
 * | anything else | 404 (a known route with another method: 405) |
 *
 * `HEAD` is answered like `GET` without the body.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "../logger.js";
import { pathOf } from "../upgrade/credentials.js";

/**
 * The body of `GET /config`: what a browser page needs to know before it connects, because a browser
 * cannot read the HTTP status of a refused WebSocket handshake (a 401 looks like a server that is down).
 * Public by design: it never carries the secret or any other setting.
 */
export interface ClientConfig {
  /** The WebSocket endpoint's path, e.g. `/ws`. */
  path: string;
  /** True when the handshake needs a token (`--jwt-secret` is set). */
  auth: boolean;
  /** The wire protocol's version (docs/PROTOCOL.md). */
  protocol: 1;
}

/** Produces the Prometheus exposition for one scrape. */
export type MetricsSource = () => Promise<{ contentType: string; body: string }>;

/** What the routes need from the running server. */
export interface HttpRoutesOptions {
  /** The WebSocket endpoint's path (a plain GET there gets 426). */
  wsPath: string;
  /** Whether the handshake needs a token; published by `GET /config`. */
  auth: boolean;
  /** True once shutdown has begun: `/healthz` answers 503 so load balancers stop sending traffic. */
  isDraining(): boolean;
  /** The Prometheus exposition; undefined when another listener serves it (`/metrics` is then 404). */
  metrics: MetricsSource | undefined;
  /** The demo page file. */
  demoFile: URL;
  /** The directory the SDK is served from (with a trailing slash). */
  sdkDir: URL;
  /** Request log (debug level); query strings are never logged. */
  logger: Logger;
  /** The server API's routes (true: it took the request); undefined when the API is off or on its own listener. */
  api?: ApiRoutes;
}

/** Serves `/api/*`: true when it took the request (see `createApiHandler`). */
export type ApiRoutes = (request: IncomingMessage, response: ServerResponse) => boolean;

/** The demo page of the package: `demo/index.html` next to `dist/`, resolved from this compiled file. */
export const DEFAULT_DEMO_FILE = new URL("../../demo/index.html", import.meta.url);

/** The compiled browser SDK: `dist/client/`, resolved from this compiled file. */
export const DEFAULT_SDK_DIR = new URL("../client/", import.meta.url);

const FALLBACK_DEMO = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>conduit-ws</title></head>
<body><h1>conduit-ws is running</h1>
<p>The demo page (<code>demo/index.html</code>) is missing from this installation.
The WebSocket endpoint, <code>/healthz</code> and <code>/metrics</code> work as usual.</p></body></html>
`;

// One path segment of an SDK file: no leading dot (so no `..`, no hidden files), no encoded bytes.
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Creates the request listener for the standalone server's HTTP server. */
export function createRequestListener(options: HttpRoutesOptions): RequestListener {
  const sdkRoot = fileURLToPath(options.sdkDir);
  // Fixed for the process's life, so encoded once; only these three fields, never the options object.
  const clientConfig: ClientConfig = { path: options.wsPath, auth: options.auth, protocol: 1 };
  const clientConfigBody = JSON.stringify(clientConfig);
  return (request, response) => {
    if (options.api?.(request, response)) return;
    route(request, response).catch((error: unknown) => {
      options.logger.error({ err: error, url: pathOf(request) }, "http request failed");
      if (!response.headersSent) send(request, response, 500, "text/plain; charset=utf-8", "internal error\n");
      else response.destroy();
    });
  };

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = pathOf(request);
    options.logger.debug({ method: request.method, url: path }, "http request");
    const known =
      path === "/" ||
      path === "/healthz" ||
      (path === "/metrics" && options.metrics !== undefined) ||
      path === "/config" ||
      path === options.wsPath ||
      path.startsWith("/sdk/");
    if (!known) return send(request, response, 404, "text/plain; charset=utf-8", "not found\n");
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      return send(request, response, 405, "text/plain; charset=utf-8", "method not allowed\n");
    }

    if (path === "/healthz") {
      const draining = options.isDraining();
      response.setHeader("Cache-Control", "no-store");
      return send(request, response, draining ? 503 : 200, "application/json", JSON.stringify({ status: draining ? "draining" : "ok" }));
    }
    // Before the endpoint's 426: with `--path /config` the page must still learn where to connect.
    if (path === "/config") {
      // no-store: a restart with or without --jwt-secret must not be hidden by a cached answer.
      response.setHeader("Cache-Control", "no-store");
      return send(request, response, 200, "application/json", clientConfigBody);
    }
    if (path === "/metrics" && options.metrics !== undefined) return sendMetrics(request, response, options.metrics);
    if (path === "/") {
      const page = (await readOptional(fileURLToPath(options.demoFile))) ?? FALLBACK_DEMO;
      response.setHeader("Cache-Control", "no-cache");
      return send(request, response, 200, "text/html; charset=utf-8", page);
    }
    if (path === options.wsPath) {
      response.setHeader("Upgrade", "websocket");
      return send(request, response, 426, "text/plain; charset=utf-8", `connect with WebSocket to ${options.wsPath}\n`);
    }
    const file = sdkFile(sdkRoot, path.slice("/sdk/".length));
    const body = file === undefined ? undefined : await readOptional(file.path);
    if (file === undefined || body === undefined) return send(request, response, 404, "text/plain; charset=utf-8", "not found\n");
    response.setHeader("Cache-Control", "no-cache");
    return send(request, response, 200, file.contentType, body);
  }
}

/**
 * Creates the request listener of the `--metrics-port` listener: `GET /metrics` and nothing else, so
 * the port can be opened to a scraper without exposing the demo, the SDK or the WebSocket endpoint.
 */
export function createMetricsRequestListener(metrics: MetricsSource, logger: Logger): RequestListener {
  return (request, response) => {
    const path = pathOf(request);
    logger.debug({ method: request.method, url: path }, "metrics request");
    if (path !== "/metrics") return send(request, response, 404, "text/plain; charset=utf-8", "not found\n");
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      return send(request, response, 405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    sendMetrics(request, response, metrics).catch((error: unknown) => {
      logger.error({ err: error, url: path }, "metrics request failed");
      if (!response.headersSent) send(request, response, 500, "text/plain; charset=utf-8", "internal error\n");
      else response.destroy();
    });
  };
}

/**
 * Creates the request listener of the `--api-port` listener: the server API and nothing else, so the
 * port can stay on a private network while the public one faces clients.
 */
export function createApiRequestListener(api: ApiRoutes): RequestListener {
  return (request, response) => {
    if (api(request, response)) return;
    const body = JSON.stringify({ error: { code: "not_found", message: "this listener serves only /api/" } });
    response.writeHead(404, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    response.end(body);
  };
}

async function sendMetrics(request: IncomingMessage, response: ServerResponse, metrics: MetricsSource): Promise<void> {
  const { contentType, body } = await metrics();
  send(request, response, 200, contentType, body);
}

/**
 * Maps `<name>.js` (or `a/b.js`, or a `.js.map`) under `/sdk/` to a file inside `root`. Anything
 * that could leave the directory (`..`, encoded bytes, hidden files, absolute paths) maps to nothing.
 */
export function sdkFile(root: string, relative: string): { path: string; contentType: string } | undefined {
  const segments = relative.split("/");
  if (!segments.every((segment) => SAFE_SEGMENT.test(segment))) return undefined;
  let contentType: string;
  if (relative.endsWith(".js")) contentType = "text/javascript; charset=utf-8";
  else if (relative.endsWith(".js.map")) contentType = "application/json";
  else return undefined;
  const base = root.endsWith(sep) ? root : root + sep;
  const path = base + segments.join(sep);
  // Belt and braces: the segment pattern already rules out `..`.
  if (!path.startsWith(base)) return undefined;
  return { path, contentType };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") return undefined;
    throw error;
  }
}

function send(request: IncomingMessage, response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(body),
    "X-Content-Type-Options": "nosniff",
  });
  response.end(request.method === "HEAD" ? undefined : body);
}
