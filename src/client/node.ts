/**
 * The Node entry of `@conduit/websocket/client`: the same SDK, with `ws` as the default WebSocket,
 * since Node 20 has no global one. The package's `node` export condition selects this file; browsers
 * and bundlers get `./index.js`, which never imports `ws`.
 *
 * @module
 */
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import { ConduitClient as BaseClient } from "./client.js";
import type { ClientOptions, WebSocketConstructor } from "./types.js";

export * from "./index.js";

/**
 * `ws` that keeps the HTTP status of a refused handshake, which a browser never shows: with it the
 * client tells a refused token (401) from a server that is down, and stops instead of retrying.
 */
class StatusAwareWebSocket extends WebSocket {
  handshakeStatus: number | undefined;

  constructor(url: string) {
    super(url);
    // With a listener, `ws` leaves the failed request to us: ending it reports close 1006 as usual.
    this.once("unexpected-response", (_request, response: IncomingMessage) => {
      this.handshakeStatus = response.statusCode;
      this.terminate();
    });
  }
}

/**
 * {@link BaseClient | ConduitClient} with `ws` as its default WebSocket implementation.
 *
 * @example
 * ```ts
 * import { ConduitClient } from "@conduit/websocket/client"; // resolves here under Node
 * const client = new ConduitClient("ws://127.0.0.1:8080/ws", { token: process.env.TOKEN });
 * ```
 */
export class ConduitClient<Events extends object = Record<string, unknown>> extends BaseClient<Events> {
  /**
   * @param url - the endpoint, e.g. `ws://127.0.0.1:8080/ws`
   * @param options - as for the browser client; `WebSocket` defaults to `ws`, which also reports the
   * HTTP status of a refused handshake
   */
  constructor(url: string, options: ClientOptions = {}) {
    // ws's event objects are richer than the WebSocketLike interface asks for; only the shape matters.
    super(url, { WebSocket: StatusAwareWebSocket as unknown as WebSocketConstructor, ...options });
  }
}
