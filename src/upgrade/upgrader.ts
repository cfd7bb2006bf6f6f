/**
 * The handshake: admission (connection limit, shutdown), origin, token and auth, then the upgrade by
 * `ws`. Every refusal is a plain HTTP reply sent before the upgrade (docs/PROTOCOL.md).
 *
 * @module
 */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";
import type { Hub } from "../hub/hub.js";
import type { Logger } from "../logger.js";
import type { ServerOptions } from "../options.js";
import { defaultTokenExtractor, originAllowed, pathOf } from "./credentials.js";
import { HandshakeGuard } from "./handshake-guard.js";
import { refuseHandshake } from "./refuse.js";
import { ThrottledWarning } from "./socket-limit.js";
import { ANONYMOUS, type Identity, type TokenVerifier } from "./tokens.js";
import { UnupgradedSockets } from "./unupgraded.js";

/** Whether new connections are accepted; the server flips it on shutdown. */
export interface AdmissionState {
  /** True once the adapter has started (then `ready` has resolved). */
  readonly started: boolean;
  /** False while starting up is incomplete or once shutdown has begun. */
  readonly accepting: boolean;
  /** Resolves when the adapter has started. */
  readonly ready: Promise<void>;
}

/** Runs the handshake of every new WebSocket connection. Owned by the server. */
export class Upgrader {
  readonly #tokens: TokenVerifier;
  readonly #wss: WebSocketServer;
  readonly #hub: Hub;
  readonly #options: ServerOptions;
  readonly #logger: Logger;
  readonly #admission: AdmissionState;
  readonly #allowedOrigins: readonly string[] | undefined;
  readonly #guard: HandshakeGuard;
  readonly #unupgraded = new UnupgradedSockets();
  readonly #atLimit: ThrottledWarning;
  #pending = 0;
  constructor(wss: WebSocketServer, hub: Hub, tokens: TokenVerifier, options: ServerOptions, logger: Logger, admission: AdmissionState) {
    this.#tokens = tokens;
    this.#wss = wss;
    this.#hub = hub;
    this.#options = options;
    this.#logger = logger;
    this.#admission = admission;
    this.#allowedOrigins = options.allowedOrigins?.map(normaliseOrigin);
    this.#guard = new HandshakeGuard(options.handshakeTimeout);
    this.#atLimit = new ThrottledWarning(logger, "connection refused: at maxConnections");
  }

  /** Whether a request is for the WebSocket endpoint. */
  matches(request: IncomingMessage): boolean {
    return pathOf(request) === this.#options.path;
  }

  /**
   * Closes sockets of `server` that do not finish an upgrade or request in `handshakeTimeout` ms
   * (slowloris).
   * @returns a function that stops guarding the server
   */
  guardHandshakes(server: HttpServer): () => void {
    return this.#guard.watch(server);
  }

  /**
   * Counts the sockets of `server` against `maxConnections` from their connection until they upgrade
   * or close, so that sockets that never upgrade cannot take every file descriptor unnoticed.
   * @returns a function that stops counting the server's new connections
   */
  countSockets(server: HttpServer): () => void {
    return this.#unupgraded.watch(server);
  }

  /** Handles one upgrade request on the endpoint's path. Never throws. */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#guard.release(socket);
    this.#unupgraded.release(socket);
    // The common case (started, no auth handler) runs synchronously: no promise per connection.
    if (this.#admission.started && !this.#tokens.enabled) {
      try {
        if (!this.#refused(request, socket)) this.#upgrade(request, socket, head, ANONYMOUS);
      } catch (error) {
        this.#internalError(socket, error);
      }
      return;
    }
    this.#handleAsync(request, socket, head).catch((error: unknown) => this.#internalError(socket, error));
  }

  #internalError(socket: Duplex, error: unknown): void {
    this.#logger.error({ err: error }, "upgrade failed");
    refuseHandshake(socket, 500, "internal error");
  }

  async #handleAsync(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Node takes its own error listener off the socket when it emits 'upgrade', and ws puts one on
    // only when the upgrade starts: a peer that resets its connection while its auth is pending would
    // raise an uncaught error in between.
    socket.on("error", destroyOnError);
    let identity: Identity | undefined;
    try {
      await this.#admission.ready;
      if (this.#refused(request, socket)) return;
      this.#pending++;
      try {
        identity = await this.#authenticate(request);
      } finally {
        this.#pending--;
      }
    } finally {
      socket.off("error", destroyOnError);
    }
    if (identity === undefined) return refuseHandshake(socket, 401, "missing or invalid token");
    // The peer may have given up, or shutdown may have begun, while the auth handler ran.
    if (socket.destroyed) return;
    if (!this.#admission.accepting) return refuseHandshake(socket, 503, "server is shutting down");
    this.#upgrade(request, socket, head, identity);
  }

  /** Admission and origin: refuses with 503 or 403 and returns true, or returns false to go on. */
  #refused(request: IncomingMessage, socket: Duplex): boolean {
    if (!this.#admission.accepting) {
      refuseHandshake(socket, 503, "server is shutting down");
      return true;
    }
    // Clients in the hub, sockets the server closed that are still closing, handshakes in auth, and
    // the other sockets that have not upgraded (idle, or sending a plain HTTP request).
    const held = this.#hub.clientCount + this.#hub.closingCount + this.#pending + this.#unupgraded.size;
    if (held >= this.#options.maxConnections) {
      // One line per interval: a flood at the limit would otherwise write one per socket.
      this.#atLimit.note({ limit: this.#options.maxConnections });
      refuseHandshake(socket, 503, "server is at its connection limit", { "Retry-After": "5" });
      return true;
    }
    const origin = request.headers.origin;
    if (!this.#originOk(origin, request)) {
      this.#logger.warn({ origin }, "connection refused: origin not allowed");
      refuseHandshake(socket, 403, "origin not allowed");
      return true;
    }
    return false;
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, identity: Identity): void {
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      this.#hub.accept(ws, socket, identity);
    });
  }

  #originOk(origin: string | undefined, request: IncomingMessage): boolean {
    if (this.#options.checkOrigin) return this.#options.checkOrigin(origin, request);
    if (this.#allowedOrigins === undefined) return true;
    return originAllowed(origin, this.#allowedOrigins);
  }

  /** Returns the identity, or undefined to refuse with 401. Never logs the token. */
  async #authenticate(request: IncomingMessage): Promise<Identity | undefined> {
    if (!this.#tokens.enabled) return ANONYMOUS;
    const token = (this.#options.tokenExtractor ?? defaultTokenExtractor)(request);
    if (!token) {
      this.#logger.debug({}, "connection refused: no token");
      return undefined;
    }
    const identity = await this.#tokens.verify({ request }, token);
    if (identity === undefined) this.#logger.debug({}, "connection refused: token rejected");
    return identity;
  }
}

/** The error listener of a socket waiting for its auth: the socket is already being destroyed. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** `https://App.Example:443` and `https://app.example` are the same origin; compare them normalised. */
function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    return origin;
  }
}
