/**
 * The write-coalescing half of the send path. Frames bound for one socket are gathered in that
 * socket's {@link SendQueue} and written together with a single `socket.write`: broadcast copies at
 * the end of the event-loop turn, messages the server sends to one client right after the callback
 * that produced them. A member of a busy room costs one system call per turn instead of one per
 * message. A handler's reply is written at once when nothing waits before it: a request gets one
 * reply, and scheduling a flush for it would only add work to every round trip.
 *
 * Coalescing pays only when a second broadcast follows in the same turn; for a lone broadcast it only
 * delays the first write until every member has been queued. So the scheduler predicts: after a turn
 * that carried at most one broadcast, the next turn's first broadcast is written to each member at
 * once, and only what follows it in that turn is queued; after a turn of two or more, everything is
 * queued again.
 *
 * Everything goes through node's public stream API (`write`, `cork`/`uncork`, `writableLength`).
 *
 * @module
 */
import type { Writable } from "node:stream";
import { WebSocketState } from "./ready-state.js";

/** Anything that can be flushed. */
interface Flushable {
  flush(): void;
}

/** Queues to flush together at one moment, and how that moment is scheduled. */
class FlushList {
  #queues: Flushable[] = [];
  #spare: Flushable[] = [];
  #pending = false;
  readonly #defer: (run: () => void) => void;

  constructor(defer: (run: () => void) => void) {
    this.#defer = defer;
  }

  add(queue: Flushable): void {
    this.#queues.push(queue);
    if (!this.#pending) {
      this.#pending = true;
      this.#defer(this.#run);
    }
  }

  readonly #run = (): void => {
    this.#pending = false;
    // Swap the two arrays instead of allocating: a flush may schedule queues for the next round.
    const queues = this.#queues;
    this.#queues = this.#spare;
    try {
      for (let i = 0; i < queues.length; i++) queues[i]!.flush();
    } finally {
      queues.length = 0;
      this.#spare = queues;
    }
  };
}

/**
 * When queued frames are written. Broadcast copies wait for the end of the event-loop turn (one
 * `setImmediate`, after every socket read of the current I/O phase), so a member gets all the
 * broadcasts of a turn, from every sender, in one write. A message for one client (`client.send`)
 * leaves as soon as the callback that produced it returns (a microtask): it coalesces with the other
 * messages that callback sends to the same socket, and does not wait for the rest of the I/O phase,
 * which would add to every request's round trip.
 */
export class FlushScheduler {
  readonly #endOfTurn = new FlushList(setImmediate);
  readonly #afterCallback = new FlushList(queueMicrotask);
  /** Broadcasts started in the current turn. */
  #broadcastsThisTurn = 0;
  /** Whether the last turn that had broadcasts had two or more: the stream is busy, so coalesce. */
  #busy = false;

  /**
   * Called once per broadcast, before its loop over the recipients.
   *
   * @returns how to hand the broadcast to each recipient: `"now"` for the first broadcast of a turn
   *   after a quiet one, `"turn"` (queue until the end of the turn) otherwise
   */
  startBroadcast(): SendTiming {
    if (this.#broadcastsThisTurn++ > 0) return "turn";
    setImmediate(this.#endTurn);
    return this.#busy ? "turn" : "now";
  }

  readonly #endTurn = (): void => {
    this.#busy = this.#broadcastsThisTurn > 1;
    this.#broadcastsThisTurn = 0;
  };

  /** Flushes `queue` at the end of this event-loop turn. */
  endOfTurn(queue: Flushable): void {
    this.#endOfTurn.add(queue);
  }

  /** Flushes `queue` once the current callback (and the microtasks before this one) has run. */
  afterCallback(queue: Flushable): void {
    this.#afterCallback.add(queue);
  }
}

/**
 * When a frame leaves: `"turn"` at the end of the event-loop turn (broadcasts), `"callback"` once the
 * current callback returns (`client.send`), `"now"` at once when nothing is queued before it (a
 * handler's reply, the first broadcast after a quiet turn); behind queued frames a `"now"` frame
 * leaves with them, after the callback, so that order is kept.
 */
export type SendTiming = "turn" | "callback" | "now";

const NOT_SCHEDULED = 0;
const END_OF_TURN = 1;
const AFTER_CALLBACK = 2;

/** The part of a `ws` WebSocket a queue reads: whether it is still open. */
export interface ReadyStateView {
  /** One of {@link WebSocketState}. */
  readonly readyState: number;
}

/** Below this many bytes, several queued frames are copied into one buffer; above it, written corked. */
const CONCAT_LIMIT = 64 * 1024;

/**
 * The frames waiting for one socket, and how many bytes the client has not yet received.
 */
export class SendQueue {
  readonly #socket: Writable;
  readonly #scheduler: FlushScheduler;
  /**
   * The first frame queued since the last flush. Most flushes carry one frame (one broadcast in a
   * turn), so it gets a field of its own: queueing it allocates nothing, in a loop that runs once per
   * member of a room.
   */
  #first: Buffer | undefined;
  /** Every frame queued since the last flush, the first included, once there are two or more. */
  #frames: Buffer[] | undefined;
  #bytes = 0;
  #scheduled: typeof NOT_SCHEDULED | typeof END_OF_TURN | typeof AFTER_CALLBACK = NOT_SCHEDULED;
  /** The WebSocket these frames belong to, when there is one: see the constructor. */
  readonly #webSocket: ReadyStateView | undefined;

  /**
   * @param socket - the upgraded TCP socket (the same one `ws` reads from)
   * @param scheduler - the hub-wide scheduler that flushes at the end of the turn
   * @param webSocket - the WebSocket whose frames these are: once it has left OPEN, a flush writes
   *   nothing, because its close frame may already be out and no frame may follow one (RFC 6455
   *   §5.5.1). `ws` answers a peer's close frame at once, in the same turn as the broadcasts queued
   *   before it. Undefined for a bare socket.
   */
  constructor(socket: Writable, scheduler: FlushScheduler, webSocket?: ReadyStateView) {
    this.#socket = socket;
    this.#scheduler = scheduler;
    this.#webSocket = webSocket;
  }

  /** Bytes queued here plus bytes the socket has accepted but the kernel has not yet taken. */
  get unsentBytes(): number {
    return this.#bytes + this.#socket.writableLength;
  }

  /**
   * Queues a complete frame, or writes it at once (see {@link SendTiming}); frames always leave in
   * the order they were handed over.
   */
  push(frame: Buffer, timing: SendTiming): void {
    if (this.#first === undefined) {
      if (timing === "now") {
        if (this.#socket.writable) this.#socket.write(frame);
        return;
      }
      this.#first = frame;
    } else if (this.#frames === undefined) this.#frames = [this.#first, frame];
    else this.#frames.push(frame);
    this.#bytes += frame.length;
    if (timing !== "turn") {
      if (this.#scheduled !== AFTER_CALLBACK) {
        this.#scheduled = AFTER_CALLBACK;
        this.#scheduler.afterCallback(this);
      }
    } else if (this.#scheduled === NOT_SCHEDULED) {
      this.#scheduled = END_OF_TURN;
      this.#scheduler.endOfTurn(this);
    }
  }

  /** Writes everything queued, now. Called by the scheduler, and before a close frame is sent. */
  flush(): void {
    this.#scheduled = NOT_SCHEDULED;
    const first = this.#first;
    if (first === undefined) return;
    const frames = this.#frames;
    const bytes = this.#bytes;
    this.#first = undefined;
    this.#frames = undefined;
    this.#bytes = 0;
    const socket = this.#socket;
    if (!socket.writable || (this.#webSocket !== undefined && this.#webSocket.readyState !== WebSocketState.Open)) return;
    if (frames === undefined) {
      socket.write(first);
    } else if (bytes <= CONCAT_LIMIT) {
      socket.write(Buffer.concat(frames, bytes));
    } else {
      socket.cork();
      for (const frame of frames) socket.write(frame);
      socket.uncork();
    }
  }

  /** Drops everything queued (the client is gone or being closed for being slow). */
  clear(): void {
    this.#first = undefined;
    this.#frames = undefined;
    this.#bytes = 0;
  }
}
