/**
 * A raw TCP client that speaks just enough HTTP to upgrade and then stays silent: it never answers a
 * ping or a close frame. Tests use it for peers that `ws` would otherwise answer for them.
 */
import { randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";

/** A raw socket after (or during) its handshake. */
export interface RawPeer {
  socket: Socket;
  /** Every byte received, in order. */
  readonly bytes: () => Buffer;
  /** Resolves when the TCP connection has ended (either side). */
  closed: Promise<void>;
}

/** Opens a TCP connection to 127.0.0.1:`port`; resolves once connected. */
export async function openRaw(port: number): Promise<RawPeer> {
  const socket = netConnect({ host: "127.0.0.1", port });
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, bytes: () => Buffer.concat(chunks), closed };
}

/**
 * Opens a raw connection and completes a WebSocket upgrade on `path`; resolves once the `101`
 * response has been read. Afterwards the peer reads but never writes.
 */
export async function rawUpgrade(port: number, path = "/ws"): Promise<RawPeer> {
  const peer = await openRaw(port);
  const key = randomBytes(16).toString("base64");
  peer.socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      const text = peer.bytes().toString("latin1");
      if (!text.includes("\r\n\r\n")) return;
      peer.socket.off("data", check);
      if (text.startsWith("HTTP/1.1 101")) resolve();
      else reject(new Error(`upgrade refused: ${text.split("\r\n")[0]}`));
    };
    peer.socket.on("data", check);
    peer.closed.then(() => reject(new Error("connection closed during the upgrade")));
  });
  return peer;
}

/** One frame a server sent (servers never mask). */
export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * Splits the bytes a raw peer received after the `101` response into frames. Handles the 7-bit and
 * 16-bit length forms, which is all the small frames of a test need; stops at an incomplete frame.
 */
export function serverFrames(received: Buffer): ServerFrame[] {
  const headerEnd = received.indexOf("\r\n\r\n");
  let offset = headerEnd === -1 ? received.length : headerEnd + 4;
  const frames: ServerFrame[] = [];
  while (offset + 2 <= received.length) {
    const opcode = received[offset]! & 0x0f;
    let length = received[offset + 1]! & 0x7f;
    let start = offset + 2;
    if (length === 126) {
      if (start + 2 > received.length) break;
      length = received.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      throw new Error("serverFrames: 64-bit lengths are not supported");
    }
    if (start + length > received.length) break;
    frames.push({ opcode, payload: received.subarray(start, start + length) });
    offset = start + length;
  }
  return frames;
}
