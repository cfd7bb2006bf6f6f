/**
 * The encode-once half of the send path: a message serialised to JSON once and framed once by `ws`,
 * so that a broadcast to ten thousand clients writes the same bytes ten thousand times instead of
 * stringifying and framing ten thousand times.
 *
 * @module
 */
import * as wsModule from "ws";
import type { Message } from "../protocol/message.js";

/** The options of `ws`'s `Sender.frame`; `@types/ws` does not declare the method. */
interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
type FrameBuilder = (data: Buffer, options: FrameOptions) => Buffer[];

/**
 * `ws`'s `Sender.frame`, the static method its own sender and Socket.IO's pre-encoded broadcasts use
 * to build a frame once for many sockets. It is not in `@types/ws`, so it is checked rather than
 * assumed: without it, every message goes through `WebSocket.send`, which frames per socket.
 */
const senderFrame: FrameBuilder | undefined = (() => {
  const sender = (wsModule as unknown as { Sender?: { frame?: unknown } }).Sender;
  return typeof sender?.frame === "function" ? (sender.frame.bind(sender) as FrameBuilder) : undefined;
})();

/** A server's frame of `opcode` (RFC 6455 §5.1): final fragment, no compression, unmasked. */
function serverFrame(opcode: number): FrameOptions {
  return { fin: true, rsv1: false, opcode, mask: false, readOnly: false };
}

/** A text frame sent by a server. */
const TEXT_FRAME = serverFrame(0x1);

/** `payload` framed by `ws` as one buffer (header and payload together). */
function frameOf(build: FrameBuilder, payload: Buffer, options: FrameOptions): Buffer {
  const parts = build(payload, options);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * A ping frame with no payload, as a server sends it, built once by `ws` for every heartbeat; undefined
 * without `Sender.frame` (then pings go through `WebSocket.ping`).
 */
export const PING_FRAME: Buffer | undefined = senderFrame && frameOf(senderFrame, Buffer.alloc(0), serverFrame(0x9));

/** Whether messages can be framed once for many sockets with this `ws`. */
export const sharedFramesAvailable = senderFrame !== undefined;

/** One outgoing message, serialised once and framed at most once, shareable by any number of recipients. */
export class PreparedMessage {
  /** The message type, kept for metrics and logs. */
  readonly type: string;
  /** The JSON text: what compressed connections hand to `ws.send`, and what a cluster node publishes. */
  readonly json: string;
  /** Whether a droppable send may skip a slow client (Socket.IO's "volatile"). */
  readonly droppable: boolean;
  /** Whether a client picked `type` (the built-in `broadcast`): metrics must not trust it. */
  readonly clientChosen: boolean;
  #frame: Buffer | undefined;

  private constructor(type: string, json: string, droppable: boolean, clientChosen: boolean) {
    this.type = type;
    this.json = json;
    this.droppable = droppable;
    this.clientChosen = clientChosen;
  }

  /**
   * Serialises a message once.
   *
   * @throws TypeError when `data` cannot be serialised (a cycle, a BigInt)
   */
  static encode(message: Message, droppable = false, clientChosen = false): PreparedMessage {
    return new PreparedMessage(message.type, JSON.stringify(message), droppable, clientChosen);
  }

  /** Wraps JSON that is already serialised (a message that arrived from another cluster node). */
  static fromJson(type: string, json: string, droppable = false): PreparedMessage {
    return new PreparedMessage(type, json, droppable, false);
  }

  /**
   * The complete WebSocket frame (header and payload in one buffer), built by `ws` on first use and
   * then shared: writing it to a socket copies nothing. Undefined when this `ws` has no
   * `Sender.frame`: then the message goes out through `WebSocket.send`.
   */
  get frame(): Buffer | undefined {
    if (this.#frame === undefined && senderFrame !== undefined) this.#frame = frameOf(senderFrame, Buffer.from(this.json), TEXT_FRAME);
    return this.#frame;
  }
}
