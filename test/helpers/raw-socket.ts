/**
 * A WebSocket peer written by hand over `net.Socket`, for the reliability and protocol tests: it can
 * send what a well-behaved client never would (unmasked frames, reserved bits and opcodes, oversized
 * or fragmented control frames, invalid UTF-8, pre-compressed bombs), and it can stop reading or stop
 * answering pings. Client frames are masked here by hand on purpose: this is test code, the server's
 * own framing comes from `ws`.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";

/** RFC 6455 opcodes. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** How to build one frame. Every field but `opcode` has the value a correct client would use. */
export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** FIN bit. @default true */
  fin?: boolean;
  /** RSV1 (permessage-deflate's "compressed" bit). @default false */
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** Clients must mask; servers must refuse unmasked frames. @default true */
  mask?: boolean;
}

/** Builds one client frame (masked unless told otherwise). */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === "string" ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const mask = spec.mask ?? true;
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  header[0] =
    ((spec.fin ?? true) ? 0x80 : 0) | (spec.rsv1 ? 0x40 : 0) | (spec.rsv2 ? 0x20 : 0) | (spec.rsv3 ? 0x10 : 0) | (spec.opcode & 0x0f);
  header[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) header.writeUInt16BE(length, 2);
  if (lengthBytes === 8) header.writeBigUInt64BE(BigInt(length), 2);
  if (!mask) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  key.copy(header, 2 + lengthBytes);
  const masked = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, masked]);
}

/** A masked text frame carrying `value` (JSON-encoded unless it is already a string). */
export function textFrame(value: unknown): Buffer {
  return encodeFrame({ opcode: Opcode.Text, payload: typeof value === "string" ? value : JSON.stringify(value) });
}

/** A masked close frame with a code. */
export function closeFrame(code = 1000): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return encodeFrame({ opcode: Opcode.Close, payload });
}

/** One frame the server sent. */
export interface Frame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

/** The close code of a close frame, or undefined when it carries none. */
export function closeCodeOf(frame: Frame): number | undefined {
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
}

/** Splits a byte stream into frames as bytes arrive (any length form, masked or not). */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  /** Adds received bytes; returns every frame completed by them. */
  push(chunk: Buffer): Frame[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const buf = this.#pending;
      if (buf.length < 2) break;
      const masked = (buf[1]! & 0x80) !== 0;
      let length = buf[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buf.length < 4) break;
        length = buf.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buf.length < 10) break;
        length = Number(buf.readBigUInt64BE(2));
        offset = 10;
      }
      const keyAt = offset;
      if (masked) offset += 4;
      if (buf.length < offset + length) break;
      let payload = buf.subarray(offset, offset + length);
      if (masked) {
        const copy = Buffer.allocUnsafe(length);
        for (let i = 0; i < length; i++) copy[i] = payload[i]! ^ buf[keyAt + (i & 3)]!;
        payload = copy;
      }
      frames.push({ fin: (buf[0]! & 0x80) !== 0, rsv1: (buf[0]! & 0x40) !== 0, opcode: buf[0]! & 0x0f, payload });
      this.#pending = buf.subarray(offset + length);
    }
    return frames;
  }
}

/** How a raw connection ended. */
export interface RawEnd {
  /** The close frame the server sent, if any arrived before the TCP connection ended. */
  closeFrame: Frame | undefined;
  /** Its close code. */
  code: number | undefined;
}

/** Options of {@link RawWebSocket.connect}. */
export interface RawConnectOptions {
  path?: string;
  /** Extra header lines, e.g. `{ "Sec-WebSocket-Extensions": "permessage-deflate" }`. */
  headers?: Record<string, string>;
  /** Answer ping frames with pongs (a well-behaved peer). @default false */
  autoPong?: boolean;
}

/**
 * A connected raw WebSocket peer. It records every frame the server sends; it answers pings only
 * when asked to, and never answers a close frame on its own.
 */
export class RawWebSocket {
  readonly socket: Socket;
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** The response head of the handshake (status line and headers). */
  readonly responseHead: string;
  /** Resolves when the TCP connection has ended, with the close frame seen before it (if any). */
  readonly ended: Promise<RawEnd>;
  /** Bytes received after the handshake. */
  bytesReceived = 0;
  readonly #reader = new FrameReader();
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket, head: string, rest: Buffer, autoPong: boolean) {
    this.socket = socket;
    this.responseHead = head;
    this.ended = new Promise((resolve) => {
      socket.once("close", () => {
        const closeFrame = this.frames.find((frame) => frame.opcode === Opcode.Close);
        resolve({ closeFrame, code: closeFrame === undefined ? undefined : closeCodeOf(closeFrame) });
        this.#wake();
      });
    });
    const onData = (chunk: Buffer): void => {
      this.bytesReceived += chunk.length;
      for (const frame of this.#reader.push(chunk)) {
        this.frames.push(frame);
        if (autoPong && frame.opcode === Opcode.Ping && socket.writable) {
          socket.write(encodeFrame({ opcode: Opcode.Pong, payload: frame.payload }));
        }
      }
      this.#wake();
    };
    socket.on("data", onData);
    if (rest.length > 0) onData(rest);
    // exchange() left the socket paused so that no byte could arrive before this listener existed.
    socket.resume();
  }

  /** Opens a TCP connection, upgrades it, and resolves once the `101` has been read. */
  static async connect(port: number, options: RawConnectOptions = {}): Promise<RawWebSocket> {
    const key = randomBytes(16).toString("base64");
    const extra = Object.entries(options.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    const request =
      `GET ${options.path ?? "/ws"} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
    const { socket, head, rest } = await exchange(port, request);
    if (!head.startsWith("HTTP/1.1 101")) {
      socket.destroy();
      throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    }
    const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    if (!head.includes(`Sec-WebSocket-Accept: ${accept}`)) throw new Error("bad Sec-WebSocket-Accept");
    return new RawWebSocket(socket, head, rest, options.autoPong ?? false);
  }

  /** Writes raw bytes (one frame, several, or a partial one). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a masked text frame with `value` as JSON (or as is, when a string). */
  sendText(value: unknown): void {
    this.write(textFrame(value));
  }

  /** The text frames received so far, parsed as JSON. */
  messages(): Array<{ type: string; data?: any; id?: string }> {
    return this.frames.filter((frame) => frame.opcode === Opcode.Text).map((frame) => JSON.parse(frame.payload.toString()));
  }

  /** Resolves once `condition` holds over the frames received; rejects when the connection ends first or after `timeoutMs`. */
  async until(condition: (frames: Frame[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.frames)) {
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`connection ended while waiting for ${what}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends `{type, data, id}` and resolves with the text message that carries `id` back. */
  async request(
    type: string,
    data?: unknown,
    id = `raw-${Math.random().toString(36).slice(2)}`,
  ): Promise<{ type: string; data?: any; id?: string }> {
    this.sendText(data === undefined ? { type, id } : { type, data, id });
    const find = () => this.messages().find((message) => message.id === id);
    await this.until(() => find() !== undefined, `a reply to ${id}`);
    return find()!;
  }

  /** Stops reading: the server's writes pile up in the kernel, then in the server's own buffers. */
  pause(): void {
    this.socket.pause();
  }

  /** Reads again. */
  resume(): void {
    this.socket.resume();
  }

  /** Ends the connection at once (no closing handshake). */
  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** What a raw HTTP exchange got back. */
export interface HttpAnswer {
  /** The HTTP status, or 0 when the server closed without answering. */
  status: number;
  /** The response head (status line and headers). */
  head: string;
}

/**
 * Writes `request` (raw HTTP bytes) to a new connection and resolves with the response status once
 * the response head has arrived, or with status 0 if the server ends the connection without one.
 * The connection is closed afterwards.
 */
export async function httpExchange(port: number, request: string | Buffer): Promise<HttpAnswer> {
  const { socket, head } = await exchange(port, request).catch(() => ({ socket: undefined, head: "" }));
  socket?.destroy();
  const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
  return { status: match ? Number(match[1]) : 0, head };
}

/** Sends bytes and reads until the end of a response head; the socket stays open for what follows. */
function exchange(port: number, request: string | Buffer): Promise<{ socket: Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      socket.off("close", onClose);
      // Paused until the caller attaches its own listener (RawWebSocket's constructor resumes it).
      socket.pause();
      resolve({ socket, head: received.subarray(0, end).toString("latin1"), rest: received.subarray(end + 4) });
    };
    const onClose = (): void => reject(new Error(`connection closed before a response: ${received.toString("latin1")}`));
    socket.on("error", () => {});
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("connect", () => socket.write(request));
  });
}
