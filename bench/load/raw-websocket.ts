/**
 * A minimal WebSocket client for the load generator: the RFC 6455 handshake and frame layout written
 * out over a `net.Socket`, with none of a general client's machinery (no stream per connection, no
 * event per message, no UTF-8 validation, no extensions). The load generator's receive time is part
 * of every latency figure, so it must cost as little as possible, and the same for every server it
 * measures. Test code only: the servers under test use `ws`.
 *
 * Reads use node's `onread` option: the kernel's bytes land in one buffer that every connection of
 * the process shares, and a callback sees them directly. That skips the readable stream (a Buffer
 * allocated, pushed and emitted as `data` for every read), which would be the larger part of the
 * load generator's cost per message. The price is that nothing may keep a view of that buffer: a frame
 * cut in two by TCP is copied out, and {@link RawWebSocket.onText} must use its payload before it
 * returns.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;
const HEAD_END = Buffer.from("\r\n\r\n");
/** Largest handshake response accepted before the connection is given up. */
const MAX_HEAD = 16 * 1024;

/** The read buffer every connection of this process shares (reads are handled one at a time). */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

/** One client connection that sends and receives whole text frames. */
export class RawWebSocket {
  /**
   * Called with the payload of every text frame the server sends. The payload is a view of a shared
   * read buffer: valid only until the callback returns.
   */
  onText: ((payload: Buffer) => void) | undefined;
  /**
   * Called once when the open connection ends: with the code of the server's close frame, or
   * undefined when it ended without one (a reset, a server that exited).
   */
  onClose: ((code: number | undefined) => void) | undefined;
  readonly #socket: Socket;
  /** The code of the server's close frame, once one arrived. */
  #closeCode: number | undefined;
  /** Masking key for this connection's frames (client frames must be masked, RFC 6455 §5.3). */
  readonly #mask: Buffer = randomBytes(4);
  /** Bytes of an incomplete frame (copied out of the shared buffer), kept until the rest arrives. */
  #pending: Buffer | undefined;
  /** Until the handshake is answered: what the response has brought so far. */
  #head: Buffer | undefined = Buffer.alloc(0);
  readonly #closed: Promise<void>;
  readonly #opened: Promise<void>;
  /** The Sec-WebSocket-Accept the server must answer with (RFC 6455 §4.2.2). */
  readonly #expectedAccept: string;
  #settleOpen!: (error?: Error) => void;

  private constructor(url: string, timeoutMs: number) {
    const { hostname, port, pathname, search } = new URL(url);
    const key = randomBytes(16).toString("base64");
    const expectedAccept = createHash("sha1")
      .update(key + GUID)
      .digest("base64");
    this.#opened = new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#settleOpen(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
      this.#settleOpen = (error) => {
        clearTimeout(timer);
        this.#settleOpen = () => {};
        if (error === undefined) return resolve();
        this.#socket.destroy();
        reject(error);
      };
    });
    this.#expectedAccept = expectedAccept;
    const socket = connect({
      port: Number(port),
      host: hostname,
      onread: {
        buffer: readBuffer,
        callback: (length: number) => {
          this.#onRead(length);
          return true;
        },
      },
    });
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.once("close", () => {
      if (this.#head === undefined) this.onClose?.(this.#closeCode);
    });
    // A server killed at the end of a scenario resets its sockets: nothing to report once open.
    socket.on("error", (error) => this.#settleOpen(error));
    socket.once("close", () => this.#settleOpen(new Error("connection closed during the handshake")));
    socket.once("connect", () => {
      socket.write(
        `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** Connects and completes the handshake; rejects on refusal (with the HTTP status) or timeout. */
  static async open(url: string, timeoutMs = 60_000): Promise<RawWebSocket> {
    const socket = new RawWebSocket(url, timeoutMs);
    await socket.#opened;
    return socket;
  }

  /** Sends one text frame. */
  sendText(text: string): void {
    this.#sendFrame(OPCODE_TEXT, Buffer.from(text));
  }

  /**
   * Writes bytes that are already whole, masked frames (a flood of control frames built once).
   * @returns false when node holds more than its high-water mark for this socket: wait for {@link drained}
   */
  sendBytes(frames: Buffer): boolean {
    if (this.#socket.destroyed) return false;
    return this.#socket.write(frames);
  }

  /** Resolves when node's buffer for this socket has drained, or at once when the socket is gone. */
  drained(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off("drain", done);
        socket.off("close", done);
        resolve();
      };
      socket.once("drain", done);
      socket.once("close", done);
    });
  }

  /** Bytes written and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  /** Whether the connection has ended. */
  get isClosed(): boolean {
    return this.#socket.destroyed;
  }

  #sendFrame(opcode: number, payload: Buffer): void {
    if (this.#socket.destroyed) return;
    const length = payload.length;
    const headerLength = length < 126 ? 6 : length < 65_536 ? 8 : 14;
    const frame = Buffer.allocUnsafe(headerLength + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else if (length < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const mask = this.#mask;
    mask.copy(frame, headerLength - 4);
    for (let i = 0; i < length; i++) frame[headerLength + i] = payload[i]! ^ mask[i & 3]!;
    this.#socket.write(frame);
  }

  /** Every read, handshake response first, then frames; `length` bytes are in the shared buffer. */
  #onRead(length: number): void {
    const chunk = readBuffer.subarray(0, length);
    if (this.#head === undefined) return this.#onFrames(chunk);
    const head = Buffer.concat([this.#head, chunk]);
    this.#head = head;
    const end = head.indexOf(HEAD_END);
    if (end === -1) {
      if (head.length > MAX_HEAD) this.#settleOpen(new Error("handshake response too large"));
      return;
    }
    this.#head = undefined;
    const response = head.subarray(0, end).toString("latin1");
    const status = /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1];
    if (status !== "101") return this.#settleOpen(new Error(`handshake refused with HTTP ${status ?? "?"}`));
    if (!response.includes(this.#expectedAccept)) {
      return this.#settleOpen(new Error("handshake answered with a wrong Sec-WebSocket-Accept"));
    }
    this.#settleOpen();
    // `head` is a copy, so the frames that came with the response can be kept as they are.
    if (end + 4 < head.length) this.#onFrames(head.subarray(end + 4));
  }

  /** Cuts whole frames out of the TCP stream; server frames are unmasked (RFC 6455 §5.1). */
  #onFrames(chunk: Buffer): void {
    const data = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    let offset = 0;
    for (;;) {
      const available = data.length - offset;
      if (available < 2) break;
      const opcode = data[offset]! & 0x0f;
      let length = data[offset + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (available < 4) break;
        length = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (available < header + length) break;
      const payload = data.subarray(offset + header, offset + header + length);
      offset += header + length;
      if (opcode === OPCODE_TEXT) this.onText?.(payload);
      else if (opcode === OPCODE_PING) this.#sendFrame(OPCODE_PONG, payload);
      else if (opcode === OPCODE_CLOSE) {
        this.#closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
        this.#socket.end();
      }
    }
    // A copy: `data` may be the shared read buffer, which the next read overwrites.
    this.#pending = offset < data.length ? Buffer.from(data.subarray(offset)) : undefined;
  }

  /** Ends the connection at once; resolves when it is closed, or after `boundMs`. */
  destroy(boundMs: number): Promise<void> {
    this.#socket.destroy();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, boundMs);
    });
    return Promise.race([this.#closed, bound]).finally(() => clearTimeout(timer));
  }
}
