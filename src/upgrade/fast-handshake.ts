/**
 * The common handshake, answered without `ws`'s general path.
 *
 * Most upgrade requests are the plain case: GET, `Upgrade: websocket`, a well-formed key, version 13,
 * no subprotocol and no extension to negotiate. For those, this module writes the 101 itself and
 * hands the socket to a `ws` `WebSocket`, as `WebSocketServer.completeUpgrade` does, with the same
 * options, so the connection is `ws`'s in every way after the handshake. What it leaves out is what
 * the plain case does not need: `createHash` (a `Hash` object per connection, where node's one-shot
 * `crypto.hash` costs about half), the header array, the `headers` event (no one listens to it here)
 * and the error listener `ws` keeps on the socket between its checks and its reply (here there is no
 * gap: check, reply and hand-over run in one go). Every other request, valid or not, goes through
 * `WebSocketServer.handleUpgrade` unchanged, so refusals and negotiation stay exactly `ws`'s.
 *
 * It relies on two parts of `ws` beyond its documented surface, both what `WebSocketServer` itself
 * uses: the server-side constructor `new WebSocket(null, undefined, options)` (documented for the
 * `WebSocket` option) and `setSocket(socket, head, options)`. The tests run every handshake in the
 * suite through it and compare its reply with `ws`'s.
 *
 * @module
 */
import { createHash, hash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";

/** RFC 6455 §1.3: appended to the client's key before hashing. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A key is 16 random bytes in base64 (as `ws` checks it). */
const KEY = /^[+/0-9A-Za-z]{22}==$/;

/** The options `WebSocketServer` keeps (with its defaults filled in) and passes to each socket. */
interface WsServerOptions {
  WebSocket: new (address: null, protocols: undefined, options: WsServerOptions) => WebSocket;
  allowSynchronousEvents?: boolean;
  maxBufferedChunks?: number;
  maxFragments?: number;
  maxPayload?: number;
  skipUTF8Validation?: boolean;
  perMessageDeflate?: unknown;
}

/** `ws`'s server-side hand-over of a socket, which `completeUpgrade` calls. */
interface HandOver {
  setSocket(socket: Duplex, head: Buffer, options: Omit<WsServerOptions, "WebSocket" | "perMessageDeflate">): void;
}

/** The accept value of the 101: base64 of SHA-1 over key + GUID. `crypto.hash` since node 20.12. */
const acceptValue: (key: string) => string =
  typeof hash === "function"
    ? (key) => hash("sha1", key + GUID, "base64")
    : (key) => createHash("sha1").update(key + GUID).digest("base64");

/** Answers plain handshakes itself; see the module notes. */
export class FastHandshake {
  readonly #options: WsServerOptions;
  readonly #socketOptions: Omit<WsServerOptions, "WebSocket" | "perMessageDeflate">;

  constructor(wss: WebSocketServer) {
    this.#options = (wss as unknown as { options: WsServerOptions }).options;
    const { allowSynchronousEvents, maxBufferedChunks, maxFragments, maxPayload, skipUTF8Validation } = this.#options;
    this.#socketOptions = { allowSynchronousEvents, maxBufferedChunks, maxFragments, maxPayload, skipUTF8Validation };
  }

  /**
   * Completes the handshake when the request is the plain case.
   * @returns the open WebSocket; null when the socket had already closed (it is destroyed, as `ws`
   *   does); undefined when the request is not the plain case and `ws` should handle it
   */
  accept(request: IncomingMessage, socket: Duplex, head: Buffer): WebSocket | null | undefined {
    const headers = request.headers;
    const key = headers["sec-websocket-key"];
    if (
      request.method !== "GET" ||
      headers["sec-websocket-version"] !== "13" ||
      key === undefined ||
      !KEY.test(key) ||
      headers["sec-websocket-protocol"] !== undefined ||
      (this.#options.perMessageDeflate && headers["sec-websocket-extensions"] !== undefined) ||
      headers.upgrade?.toLowerCase() !== "websocket"
    ) {
      return undefined;
    }
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return null;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValue(key)}\r\n\r\n`,
    );
    const ws = new this.#options.WebSocket(null, undefined, this.#options);
    (ws as unknown as HandOver).setSocket(socket, head, this.#socketOptions);
    return ws;
  }
}
