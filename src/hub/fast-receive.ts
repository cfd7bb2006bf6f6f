/**
 * The common incoming frame, read straight from the socket. Almost every frame a client sends is a
 * whole text message: one unfragmented, masked text frame, arriving complete in one read. `ws`'s
 * `Receiver` is a `Writable` stream that handles every case (fragments, control frames, partial
 * reads, compression) and pays for it on every frame: a stream write, three buffer views, an array
 * per message and two `emit` calls. For an echo that was about a tenth of the server's CPU.
 *
 * {@link FastReceive} puts its own `'data'` listener on the socket in place of `ws`'s. While
 * `ws`'s receiver is between frames (nothing buffered, no fragmented message, no close frame seen),
 * it takes complete text frames from the start of each chunk: checks the header, unmasks in place,
 * checks UTF-8, and hands the payload to the hub. At the first frame that is anything else (a ping,
 * a close, a fragment, binary, a frame cut by the read, a payload over `maxPayload`, invalid UTF-8)
 * it hands the rest of the chunk, from that frame's first byte, to `ws`'s receiver, which then
 * sees exactly the byte stream it would have seen and answers it as it always does (pong, close
 * handshake, 1002, 1007, 1009). Frames are delivered in order either way.
 *
 * It relies on `ws` internals, checked once on the first socket: the receiver's state fields
 * (`_state`, `_bufferedBytes`, `_fragmented`, `_opcode`, `_maxPayload`), the socket's link to its
 * `WebSocket` (`ws`'s `kWebSocket` symbol) and `ws`'s own `'data'` listener. Where anything differs
 * (another `ws` version), sockets keep `ws`'s listener and nothing changes.
 *
 * @module
 */
import { isUtf8 } from "node:buffer";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

/** The fields of `ws`'s `Receiver` this module reads. */
interface ReceiverState {
  /** 0 (`GET_INFO`): between frames. */
  _state: number;
  _bufferedBytes: number;
  /** Opcode of a fragmented message in progress, 0 when none. */
  _fragmented: number;
  /** Opcode of the last frame; 8 once a close frame came (ws ignores what follows it). */
  _opcode: number;
  /** 0: no limit. */
  _maxPayload: number;
  readonly writableLength: number;
  write(chunk: Buffer): boolean;
}

type WithReceiver = WebSocket & { _receiver?: ReceiverState };

/** `ws`'s receiver state between two frames. */
const GET_INFO = 0;
/** FIN set, RSV bits clear, opcode 1 (text). */
const WHOLE_TEXT_FRAME = 0x81;
/**
 * Longer payloads are left to `ws`, which unmasks them natively (bufferutil); up to this length a
 * JavaScript loop is cheaper than the call.
 */
const MAX_PAYLOAD_READ_HERE = 1024;

/** `ws`'s own `'data'` listener, as the first socket showed it. */
type WsDataListener = (...args: unknown[]) => void;

/**
 * Reads whole text frames from the socket for `ws`, see the module's description. One instance
 * serves every connection: the listener it installs is shared, not a closure per socket.
 */
export class FastReceive {
  /** undefined: not yet checked; null: `ws` is not what this module expects. */
  #wsDataListener: WsDataListener | null | undefined;
  /** `ws`'s symbol for a socket's `WebSocket`, once the first socket has shown it. */
  #webSocketKey: symbol | undefined;
  readonly #onData: (this: Duplex, chunk: Buffer) => void;

  /**
   * @param deliver - called with each text message read here, as `ws` would emit `'message'`
   *   (`this` the WebSocket, the payload, `false` for not binary)
   */
  constructor(deliver: (this: WebSocket, data: Buffer, isBinary: boolean) => void) {
    const reader = this;
    this.#onData = function onSocketData(this: Duplex, chunk: Buffer): void {
      const ws = (this as unknown as Record<symbol, WithReceiver>)[reader.#webSocketKey!]!;
      const receiver = ws._receiver!;
      let offset = 0;
      if (
        receiver._state === GET_INFO &&
        receiver._bufferedBytes === 0 &&
        receiver._fragmented === 0 &&
        receiver._opcode !== 8 &&
        receiver.writableLength === 0
      ) {
        offset = readTextFrames(ws, chunk, receiver._maxPayload, deliver);
        if (offset === chunk.length) return;
      }
      if (!receiver.write(offset === 0 ? chunk : chunk.subarray(offset))) this.pause();
    };
  }

  /**
   * Whether `ws` was as expected on the first socket (undefined before any socket was offered):
   * false means every socket is left to `ws`.
   */
  get available(): boolean | undefined {
    return this.#wsDataListener === undefined ? undefined : this.#wsDataListener !== null;
  }

  /**
   * Replaces `ws`'s `'data'` listener on `socket` (just handed to `ws`, whose `WebSocket` is `ws`)
   * with this reader's.
   *
   * @returns false when `ws` is not as expected and the socket keeps `ws`'s listener
   */
  install(ws: WebSocket, socket: Duplex): boolean {
    const wsDataListener = (this.#wsDataListener ??= this.#inspect(ws, socket));
    if (wsDataListener === null || socket.listenerCount("data") !== 1) return false;
    // Ours first, then ws's out: a readable stream whose last 'data' listener goes may stop flowing.
    socket.on("data", this.#onData);
    socket.removeListener("data", wsDataListener);
    if (socket.listenerCount("data") === 1) return true;
    // Not ws's listener after all: undo.
    socket.removeListener("data", this.#onData);
    return false;
  }

  /** Checks `ws`'s internals on the first socket; keeps the symbol, returns `ws`'s listener. */
  #inspect(ws: WebSocket, socket: Duplex): WsDataListener | null {
    const receiver = (ws as WithReceiver)._receiver;
    const fields = ["_state", "_bufferedBytes", "_fragmented", "_opcode", "_maxPayload"] as const;
    if (receiver === undefined || fields.some((field) => typeof receiver[field] !== "number")) return null;
    if (typeof receiver.write !== "function" || typeof receiver.writableLength !== "number") return null;
    const webSocketKey = Object.getOwnPropertySymbols(socket).find(
      (symbol) => (socket as unknown as Record<symbol, unknown>)[symbol] === ws,
    );
    const listeners = socket.listeners("data");
    if (webSocketKey === undefined || listeners.length !== 1 || listeners[0]!.name !== "socketOnData") return null;
    this.#webSocketKey = webSocketKey;
    return listeners[0] as WsDataListener;
  }
}

/**
 * Delivers the whole text frames at the start of `chunk`.
 *
 * @returns the offset of the first byte not consumed (the start of a frame left to `ws`)
 */
function readTextFrames(
  ws: WebSocket,
  chunk: Buffer,
  maxPayload: number,
  deliver: (this: WebSocket, data: Buffer, isBinary: boolean) => void,
): number {
  let offset = 0;
  const end = chunk.length;
  while (end - offset >= 6) {
    // A client's frames are masked (RFC 6455 §5.1): bit 7 of the second byte.
    const second = chunk[offset + 1]!;
    if (chunk[offset] !== WHOLE_TEXT_FRAME || second < 0x80) break;
    let length = second & 0x7f;
    let maskAt = offset + 2;
    if (length === 126) {
      if (end - offset < 8) break;
      length = (chunk[offset + 2]! << 8) | chunk[offset + 3]!;
      maskAt = offset + 4;
    } else if (length === 127) {
      break;
    }
    const start = maskAt + 4;
    const stop = start + length;
    if (stop > end || length > MAX_PAYLOAD_READ_HERE || (maxPayload > 0 && length > maxPayload)) break;
    if (!unmaskText(chunk, maskAt, start, stop)) {
      // Masked again (XOR twice is the identity), so that ws reads the frame as it came and
      // closes with 1007 as it always does.
      unmaskText(chunk, maskAt, start, stop);
      break;
    }
    offset = stop;
    deliver.call(ws, chunk.subarray(start, stop), false);
    // A handler may have closed the connection: ws decides what happens to the rest.
    if (ws.readyState !== 1) break;
  }
  return offset;
}

/**
 * Unmasks `chunk[start, stop)` in place with the four bytes at `maskAt`.
 *
 * @returns whether the payload is valid UTF-8
 */
function unmaskText(chunk: Buffer, maskAt: number, start: number, stop: number): boolean {
  const m0 = chunk[maskAt]!;
  const m1 = chunk[maskAt + 1]!;
  const m2 = chunk[maskAt + 2]!;
  const m3 = chunk[maskAt + 3]!;
  // OR of every byte: below 0x80 means ASCII, valid UTF-8 without a further look.
  let high = 0;
  let i = start;
  for (; i + 4 <= stop; i += 4) {
    high |= chunk[i] = chunk[i]! ^ m0;
    high |= chunk[i + 1] = chunk[i + 1]! ^ m1;
    high |= chunk[i + 2] = chunk[i + 2]! ^ m2;
    high |= chunk[i + 3] = chunk[i + 3]! ^ m3;
  }
  const tail = stop - i;
  if (tail > 0) high |= chunk[i] = chunk[i]! ^ m0;
  if (tail > 1) high |= chunk[i + 1] = chunk[i + 1]! ^ m1;
  if (tail > 2) high |= chunk[i + 2] = chunk[i + 2]! ^ m2;
  return high < 0x80 || isUtf8(chunk.subarray(start, stop));
}
