/**
 * The sockets of the attached HTTP servers that have not upgraded: they hold a file descriptor like
 * any client, so admission counts them against `maxConnections` (docs/RELIABILITY.md).
 *
 * @module
 */
import type { Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";

/** Counts each socket from its connection until it upgrades or closes. */
export class UnupgradedSockets {
  readonly #sockets = new Set<Duplex>();
  /** One close listener shared by every socket, instead of a closure each. */
  readonly #onClose: (this: Duplex) => void;

  constructor() {
    const sockets = this.#sockets;
    this.#onClose = function onClose(this: Duplex): void {
      sockets.delete(this);
    };
  }

  /** How many sockets are connected and not upgraded. */
  get size(): number {
    return this.#sockets.size;
  }

  /**
   * Counts every connection `server` accepts from now on.
   * @returns a function that stops counting this server's new connections
   */
  watch(server: HttpServer): () => void {
    const onConnection = (socket: Duplex): void => {
      this.#sockets.add(socket);
      socket.on("close", this.#onClose);
    };
    server.on("connection", onConnection);
    return () => {
      server.off("connection", onConnection);
    };
  }

  /** The socket's upgrade request arrived: from now on admission counts it as a handshake or client. */
  release(socket: Duplex): void {
    if (this.#sockets.delete(socket)) socket.off("close", this.#onClose);
  }
}
