/**
 * Slowloris protection: a socket that has not sent a complete request (an upgrade or plain HTTP)
 * within `handshakeTimeout` is closed (docs/PROTOCOL.md).
 *
 * One sweep timer serves every socket: a connection costs one map entry until its first request,
 * instead of a timer and a close listener for the socket's whole life.
 *
 * Node can do the same work itself: its HTTP server tracks every connection for its own
 * `headersTimeout` (a minute by default) and answers 408 and closes those past it. An HTTP server
 * made with {@link nodeHandshakeTimeout}'s options (the one `listen()` creates, the CLI's) needs no
 * guard, and the guard is left off it: that saves a listener call and a map entry per connection.
 *
 * @module
 */
import type { IncomingMessage, Server as HttpServer, ServerOptions as HttpServerOptions } from "node:http";
import type { Duplex } from "node:stream";

/**
 * How often sockets are checked against a handshake timeout of `timeout` ms: a quarter of it, between
 * 10 ms and 1 s. A socket is closed between `timeout` and `timeout` plus this after it connected.
 */
export function handshakeSweepInterval(timeout: number): number {
  return Math.min(1000, Math.max(10, Math.floor(timeout / 4)));
}

/**
 * The options of a node HTTP server that make node itself close sockets past `timeout` ms: a request
 * whose headers, or whose body, have not all arrived within `timeout` ms of its start gets a 408 and
 * its socket is closed.
 *
 * The request timeout matters as much as the header one: node's default (five minutes) lets a plain
 * HTTP request that announces a large body and trickles it hold its socket that long. The servers
 * conduit-ws creates read no request body (the endpoint is an upgrade, the standalone server's
 * routes are GET and HEAD), so a request gets no more time than a handshake.
 */
export function nodeHandshakeTimeout(
  timeout: number,
): Required<Pick<HttpServerOptions, "headersTimeout" | "requestTimeout" | "connectionsCheckingInterval">> {
  return {
    headersTimeout: timeout,
    // Node refuses a requestTimeout below headersTimeout.
    requestTimeout: timeout,
    connectionsCheckingInterval: handshakeSweepInterval(timeout),
  };
}

/** Whether node's own header timeout on `server` already closes sockets as a guard of `timeout` ms would. */
export function enforcedByNode(server: HttpServer, timeout: number): boolean {
  // Set from the server's options by node's constructor; not in @types/node.
  const { headersTimeout, connectionsCheckingInterval } = server as HttpServer & { connectionsCheckingInterval?: number };
  return (
    headersTimeout > 0 &&
    headersTimeout <= timeout &&
    typeof connectionsCheckingInterval === "number" &&
    connectionsCheckingInterval <= handshakeSweepInterval(timeout)
  );
}

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
    this.#sweepEvery = handshakeSweepInterval(timeout);
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
