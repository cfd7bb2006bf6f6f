/**
 * Refusing a handshake with a plain HTTP reply, before any upgrade (docs/PROTOCOL.md).
 *
 * @module
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Writes `HTTP/1.1 <status>` with a short text body and closes the socket. Used for 401, 403 and 503,
 * so that a refused client never sees a WebSocket at all.
 */
export function refuseHandshake(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.writable) {
    const body = `${message}\n`;
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
      "Connection: close",
      "Content-Type: text/plain; charset=utf-8",
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join("\r\n")}\r\n\r\n${body}`);
  }
  socket.destroy();
}
