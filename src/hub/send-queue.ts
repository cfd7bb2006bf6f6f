/**
 * The write-coalescing half of the send path. Frames bound for one socket within one event-loop turn
 * are gathered in that socket's {@link SendQueue} and written with a single `write` when the turn
 * ends, so a member of a busy room costs one syscall per turn instead of one per message.
 *
 * @module
 */
import type { Duplex } from "node:stream";

/** Anything that can be flushed at the end of the turn. */
interface Flushable {
  flush(): void;
}

/**
 * Collects the queues that have frames waiting and flushes them all in one `setImmediate`, i.e. after
 * every socket read of the current I/O phase has been handled: messages that arrive together leave
 * together.
 */
export class FlushScheduler {
  #dirty: Flushable[] = [];
  #spare: Flushable[] = [];
  #scheduled = false;

  /** Schedules `queue` to be flushed at the end of this turn. Call once per turn per queue. */
  schedule(queue: Flushable): void {
    this.#dirty.push(queue);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    // Swap the two arrays instead of allocating: a flush may schedule queues for the next turn.
    const dirty = this.#dirty;
    this.#dirty = this.#spare;
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    dirty.length = 0;
    this.#spare = dirty;
  };
}

/** Below this many bytes, several queued frames are copied into one buffer; above it, written corked. */
const CONCAT_LIMIT = 64 * 1024;

/**
 * The frames waiting for one socket, and how many bytes the client has not yet received.
 */
export class SendQueue {
  readonly #socket: Duplex;
  readonly #scheduler: FlushScheduler;
  #frames: Buffer[] = [];
  #bytes = 0;

  /**
   * @param socket - the upgraded TCP socket (the same one `ws` reads from)
   * @param scheduler - the hub-wide scheduler that flushes at the end of the turn
   */
  constructor(socket: Duplex, scheduler: FlushScheduler) {
    this.#socket = socket;
    this.#scheduler = scheduler;
  }

  /** Bytes queued here plus bytes the socket has accepted but the kernel has not yet taken. */
  get unsentBytes(): number {
    return this.#bytes + this.#socket.writableLength;
  }

  /** Queues a complete frame; it is written when the current event-loop turn ends. */
  push(frame: Buffer): void {
    if (this.#frames.length === 0) this.#scheduler.schedule(this);
    this.#frames.push(frame);
    this.#bytes += frame.length;
  }

  /** Writes everything queued, now. Called by the scheduler, and before a close frame is sent. */
  flush(): void {
    const frames = this.#frames;
    if (frames.length === 0) return;
    const bytes = this.#bytes;
    this.#frames = [];
    this.#bytes = 0;
    const socket = this.#socket;
    if (!socket.writable) return;
    if (frames.length === 1) {
      socket.write(frames[0]!);
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
    this.#frames = [];
    this.#bytes = 0;
  }
}
