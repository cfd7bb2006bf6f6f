/**
 * Coalesces the publications to one room into batches: at most one batch per room is on its way to
 * Redis at a time, and whatever is published meanwhile leaves together as the next one. An idle room
 * pays nothing extra (its publication leaves at once); a busy room pays one round trip per batch
 * instead of one per publication. Order is kept: a batch holds publications in the order they were
 * made, and a room's batches leave one after another.
 *
 * @module
 */

/** One publication waiting for its offset. */
interface Waiting<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/** Sends one room's batch, answering one result per item, in order. */
export type SendBatch<Item, Result> = (room: string, items: Item[]) => Promise<Result[]>;

/** Per-room batching of calls that must keep their order (see the module comment). */
export class RoomBatcher<Item, Result> {
  readonly #send: SendBatch<Item, Result>;
  readonly #maxBatch: number;
  readonly #maxBytes: number;
  readonly #weigh: (item: Item) => number;
  /** Rooms with a batch on its way, and what waits for the next one (possibly nothing). */
  readonly #rooms = new Map<string, Waiting<Item, Result>[]>();

  /**
   * @param send - sends one batch
   * @param maxBatch - the most items in one batch (bounds how long one script holds Redis)
   * @param maxBytes - the most bytes in one batch, by `weigh` (a batch always takes one item)
   * @param weigh - an item's size in bytes
   */
  constructor(send: SendBatch<Item, Result>, maxBatch: number, maxBytes: number, weigh: (item: Item) => number) {
    this.#send = send;
    this.#maxBatch = maxBatch;
    this.#maxBytes = maxBytes;
    this.#weigh = weigh;
  }

  /** Queues an item for its room; settles when its batch has been answered. */
  add(room: string, item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const waiting = this.#rooms.get(room);
      if (waiting !== undefined) {
        waiting.push({ item, resolve, reject });
        return;
      }
      this.#rooms.set(room, []);
      void this.#run(room, [{ item, resolve, reject }]);
    });
  }

  /** Sends a batch, then the next one for the room while there is one. */
  async #run(room: string, batch: Waiting<Item, Result>[]): Promise<void> {
    let current = batch;
    while (current.length > 0) {
      try {
        const results = await this.#send(
          room,
          current.map((w) => w.item),
        );
        for (const [i, waiting] of current.entries()) waiting.resolve(results[i]!);
      } catch (error) {
        for (const waiting of current) waiting.reject(error);
      }
      current = this.#take(this.#rooms.get(room) ?? []);
    }
    this.#rooms.delete(room);
  }

  /** Takes the next batch off the front of a room's queue: up to `maxBatch` items and `maxBytes`. */
  #take(queued: Waiting<Item, Result>[]): Waiting<Item, Result>[] {
    let count = 0;
    let bytes = 0;
    while (count < queued.length && count < this.#maxBatch) {
      bytes += this.#weigh(queued[count]!.item);
      if (count > 0 && bytes > this.#maxBytes) break;
      count++;
    }
    return queued.splice(0, count);
  }
}
