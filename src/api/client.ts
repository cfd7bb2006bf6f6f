/**
 * The typed client of the server API for Node backends: one method per route, node's global `fetch`,
 * no dependency. Every failure is a {@link ConduitApiError}: the server's refusals with its status
 * and code, a timeout or an unreachable server with status 0.
 *
 * @module
 */
import type { ClusterInfo, DisconnectOptions, PublishResult, RoomPresence } from "./types.js";

/** Options of {@link ConduitApi}. */
export interface ConduitApiOptions {
  /** The server's HTTP base URL, e.g. `http://127.0.0.1:8080` (the API's own listener with `--api-port`). */
  url: string;
  /** The server's `--api-key`. */
  apiKey: string;
  /**
   * Milliseconds a call may take before it fails with code `timeout`.
   * @default 10000
   */
  timeout?: number;
}

/** Who a send or a disconnect is for: every connection of a user, or one client. */
export type Recipient = { userId: string } | { clientId: string };

/** A call that failed: the server refused it, or it never got an answer. */
export class ConduitApiError extends Error {
  /** The HTTP status; 0 when there was no answer (`timeout`, `network_error`). */
  readonly status: number;
  /** The server's error code (`unauthorized`, `invalid_field`, …), or `timeout`, `network_error`, `bad_response`. */
  readonly code: string;

  /**
   * @param status - the HTTP status, 0 without an answer
   * @param code - the machine-readable code
   * @param message - what went wrong
   */
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ConduitApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls a conduit-ws server's API from a backend.
 *
 * @example
 * ```ts
 * import { ConduitApi } from "@conduit/websocket/api";
 * const api = new ConduitApi({ url: "http://127.0.0.1:8080", apiKey: process.env.CONDUIT_API_KEY! });
 * await api.publish("news:sport", "headline", { text: "2-1" });
 * await api.send({ userId: "alice" }, "notice", { unread: 3 });
 * ```
 */
export class ConduitApi {
  readonly #base: string;
  readonly #authorization: string;
  readonly #timeout: number;

  /** @param options - see {@link ConduitApiOptions} */
  constructor(options: ConduitApiOptions) {
    if (typeof options?.url !== "string" || !/^https?:\/\//.test(options.url)) {
      throw new TypeError('conduit-ws: ConduitApi needs a url like "http://127.0.0.1:8080"');
    }
    if (typeof options.apiKey !== "string" || options.apiKey === "") throw new TypeError("conduit-ws: ConduitApi needs an apiKey");
    const timeout = options.timeout ?? 10_000;
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new TypeError("conduit-ws: ConduitApi timeout must be a positive number of milliseconds");
    this.#base = options.url.replace(/\/+$/, "");
    this.#authorization = `Bearer ${options.apiKey}`;
    this.#timeout = timeout;
  }

  /** Publishes `{ type, data }` to a room's members on every node. */
  publish(room: string, type: string, data?: unknown): Promise<PublishResult> {
    return this.#call("POST", "/api/publish", { room, type, data: data ?? null });
  }

  /** Sends `{ type, data }` to every connected client. */
  async broadcast(type: string, data?: unknown): Promise<void> {
    await this.#call("POST", "/api/broadcast", { type, data: data ?? null });
  }

  /** Sends `{ type, data }` to every connection of a user, or to one client. */
  async send(to: Recipient, type: string, data?: unknown): Promise<void> {
    await this.#call("POST", "/api/send", { ...recipientFields(to), type, data: data ?? null });
  }

  /** Closes every connection of a user, or one client (default close code 4003, reason `disconnected`). */
  async disconnect(who: Recipient, options: DisconnectOptions = {}): Promise<void> {
    await this.#call("POST", "/api/disconnect", { ...recipientFields(who), code: options.code, reason: options.reason });
  }

  /** The members of a room on every node. */
  presence(room: string): Promise<RoomPresence> {
    return this.#call("GET", `/api/rooms/${encodeURIComponent(room)}/presence`);
  }

  /** A room's kept publications, oldest first (section 9 of the protocol); fails while history is off. */
  history(room: string, limit?: number): Promise<unknown> {
    const query = limit === undefined ? "" : `?limit=${encodeURIComponent(String(limit))}`;
    return this.#call("GET", `/api/rooms/${encodeURIComponent(room)}/history${query}`);
  }

  /** The cluster's connections, in total and per node. */
  info(): Promise<ClusterInfo> {
    return this.#call("GET", "/api/info");
  }

  async #call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: this.#authorization };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.#base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeout),
      });
      text = await response.text();
    } catch (error) {
      if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
        throw new ConduitApiError(0, "timeout", `${method} ${path}: no answer within ${this.#timeout} ms`);
      }
      throw new ConduitApiError(0, "network_error", `${method} ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConduitApiError(response.status, "bad_response", `${method} ${path}: HTTP ${response.status} without a JSON body`);
    }
    if (response.ok) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === "string" ? error.code : "http_error";
    const message = typeof error?.message === "string" ? error.message : `HTTP ${response.status}`;
    throw new ConduitApiError(response.status, code, `${method} ${path}: ${message}`);
  }
}

function recipientFields(to: Recipient): { user_id: string } | { client_id: string } {
  return "userId" in to ? { user_id: to.userId } : { client_id: to.clientId };
}
