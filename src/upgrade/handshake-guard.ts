/**
 * Slowloris protection: a socket that has not sent a complete request (an upgrade or plain HTTP)
 * within `handshakeTimeout` is closed (SPEC §3).
 *
 * One sweep timer serves every socket: a connection costs one map entry until its first request,
 * instead of a timer and a close listener for the socket's whole life.
 *
 * @module
 */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";

/** Watches new TCP connections until their first request. */
export class HandshakeGuard {
  readonly #timeout: number;
  readonly #sweepEvery: number;
  /** Sockets still waiting for their first complete request, with when they connected. */
  readonly #waiting = new Map<Duplex, number>();
  #timer: NodeJS.Timeout | undefined;
  #servers = 0;

  /** @param timeout - ms a socket has to send its first complete request */
  constructor(timeout: number) {
    this.#timeout = timeout;
    // Sockets are closed between `timeout` and `timeout + sweepEvery` ms after they connected.
    this.#sweepEvery = Math.min(1000, Math.max(10, Math.floor(timeout / 4)));
  }

  /**
   * Guards every connection `server` accepts from now on.
   * @returns a function that stops guarding this server
   */
  watch(server: HttpServer): () => void {
    const onConnection = (socket: Duplex): void => {
      this.#waiting.set(socket, Date.now());
    };
    const onRequest = (request: IncomingMessage): void => {
      this.#waiting.delete(request.socket);
    };
    server.on("connection", onConnection);
    server.on("request", onRequest);
    if (this.#servers++ === 0) {
      this.#timer = setInterval(() => this.#sweep(), this.#sweepEvery);
      this.#timer.unref();
    }
    return () => {
      server.off("connection", onConnection);
      server.off("request", onRequest);
      if (--this.#servers === 0) {
        clearInterval(this.#timer);
        this.#waiting.clear();
      }
    };
  }

  /** The socket's upgrade request arrived: it is no longer a slowloris suspect. */
  release(socket: Duplex): void {
    this.#waiting.delete(socket);
  }

  #sweep(): void {
    const deadline = Date.now() - this.#timeout;
    for (const [socket, connectedAt] of this.#waiting) {
      if (socket.destroyed) {
        this.#waiting.delete(socket);
      } else if (connectedAt <= deadline) {
        this.#waiting.delete(socket);
        socket.destroy();
      }
    }
  }
}
