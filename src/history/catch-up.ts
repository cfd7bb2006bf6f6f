/**
 * The seam between a replay and the live stream, for one member of one history room. Live copies
 * that arrive while the member's join is reading the room's position (and the replay) are held; once
 * the read answered, only those after the position it gave go out, in arrival order, which is offset
 * order (the store relays in that order). After that, a copy at or below the member's latest offset
 * in the same epoch is a duplicate and is skipped. So a member receives every publication after its
 * `room_joined` exactly once, in offset order, whichever came first: the read or the live copy.
 *
 * The hub routes the member's live copies of the room through the cursor from the moment the member
 * is subscribed, then reads, answers, replays and settles:
 *
 * @example
 * ```ts
 * const cursor = new RoomCursor<Frame>();
 * cursors.set(client, cursor);                 // live copies: for (const f of cursor.offer(o, e, f)) send(f)
 * await adapterSubscribed;
 * const result = await store.history(room, retention, { since });
 * client.send(roomJoined(result));
 * for (const p of result.publications) client.send(copy(p));
 * for (const frame of cursor.settle(result)) client.send(frame);
 * ```
 *
 * @module
 */
import type { StreamPosition } from "./store.js";

/** One held live copy. */
interface Held<T> {
  offset: number;
  epoch: string | undefined;
  item: T;
}

/** A member's place in one history room (see the module comment). */
export class RoomCursor<T> {
  /** Copies held until the read answers; undefined once settled. */
  #held: Held<T>[] | undefined = [];
  #epoch = "";
  #offset = 0;

  /** How many copies are held (a hub may bound this like a send queue). */
  get held(): number {
    return this.#held?.length ?? 0;
  }

  /** Where the member stands: the position settled with, advanced by every copy let through since. */
  get position(): StreamPosition {
    return { offset: this.#offset, epoch: this.#epoch };
  }

  /**
   * A live copy arrived: returns what to send now (nothing while the read is pending or for a
   * duplicate; the copy otherwise).
   *
   * @param epoch - the epoch the copy was published under, when the relay carries it. A copy of
   *   another epoch always goes out (the history was lost in between), and so does one without.
   */
  offer(offset: number, epoch: string | undefined, item: T): T[] {
    if (this.#held !== undefined) {
      this.#held.push({ offset, epoch, item });
      return [];
    }
    return this.#admit(offset, epoch) ? [item] : [];
  }

  /**
   * The read answered with `position` (the reply and the replay cover everything up to it): returns
   * the held copies to send after them, in order.
   */
  settle(position: StreamPosition): T[] {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#epoch = position.epoch;
    this.#offset = position.offset;
    return held.filter((h) => this.#admit(h.offset, h.epoch)).map((h) => h.item);
  }

  /** Whether a copy is new to the member; moves the cursor when it is. */
  #admit(offset: number, epoch: string | undefined): boolean {
    if (epoch === undefined) return true;
    if (epoch !== this.#epoch) {
      this.#epoch = epoch;
      this.#offset = offset;
      return true;
    }
    if (offset <= this.#offset) return false;
    this.#offset = offset;
    return true;
  }
}
