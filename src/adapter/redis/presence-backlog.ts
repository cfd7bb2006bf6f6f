/**
 * The presence events a node could not publish while Redis was away, kept to be published once it is
 * back: the other nodes' members would otherwise never hear of a join or a leave during the outage.
 *
 * @module
 */
import type { ClusterBroadcast } from "../adapter.js";

/** The events the hub publishes about a room's members. */
const PRESENCE_EVENTS: ReadonlySet<string> = new Set(["member_joined", "member_left"]);

/** A presence event that could not be published, ready to be published as it was. */
export interface MissedPresence {
  /** `member_joined` or `member_left`. */
  type: string;
  /** The room's channel. */
  channel: string;
  /** The encoded publication. */
  payload: string;
}

/**
 * The room and member a broadcast is a presence event about (the member is the one it skips), or
 * undefined for any other broadcast.
 */
export function presenceKey(broadcast: ClusterBroadcast): string | undefined {
  const { room, type, except } = broadcast;
  return room !== undefined && except !== undefined && PRESENCE_EVENTS.has(type) ? `${room}\n${except}` : undefined;
}

/**
 * One event per room and member, so the memory is bounded by the memberships, not by the traffic: a
 * second event of the same kind replaces the first, an opposite one cancels it (a member who joined
 * and left during the outage changed nothing the other nodes know of).
 */
export class PresenceBacklog {
  #events = new Map<string, MissedPresence>();

  /** Keeps an event that could not be published. */
  keep(key: string, event: MissedPresence): void {
    const kept = this.#events.get(key);
    if (kept !== undefined && kept.type !== event.type) this.#events.delete(key);
    else this.#events.set(key, event);
  }

  /** Hands over every kept event and forgets them. */
  take(): Map<string, MissedPresence> {
    const events = this.#events;
    this.#events = new Map();
    return events;
  }

  /** Forgets every kept event (something else announced the members again). */
  clear(): void {
    this.#events.clear();
  }
}
