/**
 * The encode-once half of the send path: a message serialised to JSON once and framed once by `ws`,
 * so that a broadcast to ten thousand clients writes the same bytes ten thousand times instead of
 * stringifying and framing ten thousand times.
 *
 * @module
 */
import * as wsModule from "ws";
import type { Message } from "../protocol/message.js";

/** The part of `ws`'s `Sender` we use; `@types/ws` does not declare it. */
interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
interface SenderStatic {
  frame(data: Buffer, options: FrameOptions): Buffer[];
}

const { Sender } = wsModule as unknown as { Sender: SenderStatic };

/** A text frame sent by a server: final fragment, no compression, unmasked (RFC 6455 §5.1). */
const TEXT_FRAME: FrameOptions = { fin: true, rsv1: false, opcode: 0x1, mask: false, readOnly: false };

/**
 * One outgoing message, serialised and framed once, shareable by any number of recipients.
 *
 * @example
 * ```ts
 * const prepared = PreparedMessage.encode({ type: "tick", data: { n: 1 } });
 * for (const client of clients) client.sendPrepared(prepared);
 * ```
 */
export class PreparedMessage {
  /** The message type, kept for metrics and logs. */
  readonly type: string;
  /** The JSON text: what compressed connections hand to `ws.send`, and what a cluster node publishes. */
  readonly json: string;
  /** Whether a droppable send may skip a slow client (Socket.IO's "volatile"). */
  readonly droppable: boolean;
  #frame: Buffer | undefined;

  private constructor(type: string, json: string, droppable: boolean) {
    this.type = type;
    this.json = json;
    this.droppable = droppable;
  }

  /**
   * Serialises a message once.
   *
   * @throws TypeError when `data` cannot be serialised (a cycle, a BigInt)
   */
  static encode(message: Message, droppable = false): PreparedMessage {
    return new PreparedMessage(message.type, JSON.stringify(message), droppable);
  }

  /** Wraps JSON that is already serialised (a message that arrived from another cluster node). */
  static fromJson(type: string, json: string, droppable = false): PreparedMessage {
    return new PreparedMessage(type, json, droppable);
  }

  /**
   * The complete WebSocket frame (header and payload in one buffer), built by `ws` on first use and
   * then shared: writing it to a socket copies nothing.
   */
  get frame(): Buffer {
    if (this.#frame === undefined) {
      const parts = Sender.frame(Buffer.from(this.json), TEXT_FRAME);
      this.#frame = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    }
    return this.#frame;
  }
}
