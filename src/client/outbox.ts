/**
 * What the client has to send and what it waits for: the bounded queue of frames held while not
 * connected, and the requests waiting for their reply. The connection logic lives in `client.ts`;
 * this file only keeps the books.
 *
 * @module
 */
import { ClientErrorCode, RequestError } from "./errors.js";
import type { ClientMessage, ErrorData, Reply, WebSocketLike } from "./types.js";

/**
 * The JSON text of `{ type, data?, id? }`, absent fields left out: every message the SDK sends is
 * built here.
 */
export function encodeEnvelope(type: string, data: unknown, id?: string): string {
  const message: ClientMessage = data === undefined ? { type } : { type, data };
  if (id !== undefined) message.id = id;
  return JSON.stringify(message);
}

/** A request waiting for its reply. */
interface Pending {
  type: string;
  resolve: (reply: Reply) => void;
  reject: (error: RequestError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** The socket it was written to; undefined while queued. A lost socket fails only what it carried. */
  socket: WebSocketLike | undefined;
}

/** A frame held while not connected; `id` links it to its request, if it is one. */
export interface QueuedFrame {
  /** The serialised message. */
  text: string;
  /** The request id, for a request. */
  id: string | undefined;
}

/** The send queue and the pending requests of one client. */
export class Outbox {
  /** Frames the queue holds at most; a new one beyond that is refused. */
  readonly maxQueue: number;
  #nextId = 0;
  readonly #pending = new Map<string, Pending>();
  #queue: QueuedFrame[] = [];

  /** @param maxQueue - frames the queue holds at most */
  constructor(maxQueue: number) {
    this.maxQueue = maxQueue;
  }

  /** Frames waiting in the queue. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Registers a request and starts its timeout. The caller sends or queues `text`; `reply` settles
   * with the reply carrying `id`, or rejects on an error reply or a failure.
   */
  request(type: string, data: unknown, timeout: number): { id: string; text: string; reply: Promise<Reply> } {
    const id = String(++this.#nextId);
    // Serialise first: data that JSON cannot carry throws here, before anything is registered.
    const text = encodeEnvelope(type, data, id);
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(id, ClientErrorCode.Timeout, `no reply to "${type}" within ${timeout} ms`), timeout);
      this.#pending.set(id, { type, resolve, reject, timer, socket: undefined });
    });
    return { id, text, reply };
  }

  /** Holds a frame until the connection opens; false when the queue is full. */
  enqueue(text: string, id: string | undefined): boolean {
    if (this.#queue.length >= this.maxQueue) return false;
    this.#queue.push({ text, id });
    return true;
  }

  /** Takes every queued frame, oldest first. */
  drain(): QueuedFrame[] {
    const queue = this.#queue;
    this.#queue = [];
    return queue;
  }

  /** Records that request `id` (if it is one) was written to `socket`. */
  sent(id: string | undefined, socket: WebSocketLike): void {
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (pending !== undefined) pending.socket = socket;
  }

  /**
   * Settles the request a reply answers: an `error` reply rejects with the server's code. A reply
   * nobody waits for any more (its request timed out) is dropped.
   */
  settle(reply: ClientMessage & { id: string }): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.type === "error") {
      const error = (reply.data ?? {}) as Partial<ErrorData>;
      pending.reject(new RequestError(String(error.code ?? "error"), String(error.message ?? "error"), pending.type));
    } else {
      pending.resolve(reply as Reply);
    }
  }

  /** Rejects request `id` with `code`, taking it out of the queue if it is still there. */
  fail(id: string, code: ClientErrorCode, message: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (pending.socket === undefined) this.#queue = this.#queue.filter((frame) => frame.id !== id);
    pending.reject(new RequestError(code, message, pending.type));
  }

  /** Rejects every request that was written to `socket`: its connection ended before the reply. */
  failSent(socket: WebSocketLike, code: ClientErrorCode): void {
    for (const [id, pending] of this.#pending) {
      if (pending.socket === socket) this.fail(id, code, `the connection ended before "${pending.type}" was answered`);
    }
  }

  /** Empties the queue, rejecting the requests in it. */
  failQueued(code: ClientErrorCode, message: string): void {
    for (const frame of this.drain()) if (frame.id !== undefined) this.fail(frame.id, code, message);
  }
}
