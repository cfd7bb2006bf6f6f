/**
 * The local room registry: which of this node's clients are in which room. Rooms exist while they
 * have a member: created on first join, deleted on last leave.
 *
 * @module
 */
import type { RoomName } from "../types.js";
import type { Connection } from "./client.js";

/** Longest room name accepted. */
export const MAX_ROOM_NAME_LENGTH = 128;

// C0 and C1 control characters, DEL included: invisible in logs and UIs, so never part of a name.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's job
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

// A UTF-16 surrogate not part of a pair: JavaScript keeps it, but UTF-8 (Redis, logs, other clients)
// cannot, and turns every such name into the same bytes.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks a room name. Returns a human-readable reason when it is refused, undefined when valid.
 */
export function invalidRoomReason(room: unknown): string | undefined {
  if (typeof room !== "string" || room.length === 0) return 'field "room" must be a non-empty string';
  if (room.length > MAX_ROOM_NAME_LENGTH) return `room name is longer than ${MAX_ROOM_NAME_LENGTH} characters`;
  if (CONTROL_CHARACTER.test(room)) return "room name contains control characters";
  if (LONE_SURROGATE.test(room)) return "room name is not well-formed Unicode (a lone surrogate)";
  return undefined;
}

/** Rooms and their local members. The hub is its only owner. */
export class RoomRegistry {
  readonly #rooms = new Map<RoomName, Set<Connection>>();

  /**
   * Adds a member.
   * @returns "created" when the room is new, "added" when it existed, "already" when the client was a member
   */
  add(room: RoomName, client: Connection): "created" | "added" | "already" {
    let members = this.#rooms.get(room);
    if (members === undefined) {
      members = new Set();
      this.#rooms.set(room, members);
      members.add(client);
      return "created";
    }
    if (members.has(client)) return "already";
    members.add(client);
    return "added";
  }

  /**
   * Removes a member.
   * @returns "deleted" when the room became empty and was removed, "removed", or "absent"
   */
  remove(room: RoomName, client: Connection): "deleted" | "removed" | "absent" {
    const members = this.#rooms.get(room);
    if (members === undefined || !members.delete(client)) return "absent";
    if (members.size === 0) {
      this.#rooms.delete(room);
      return "deleted";
    }
    return "removed";
  }

  /** The members of a room; an empty set when the room does not exist. */
  members(room: RoomName): ReadonlySet<Connection> {
    return this.#rooms.get(room) ?? NO_MEMBERS;
  }

  /** Local member count of a room. */
  size(room: RoomName): number {
    return this.#rooms.get(room)?.size ?? 0;
  }

  /** How many rooms exist on this node. */
  get count(): number {
    return this.#rooms.size;
  }

  /** The names of every room on this node. */
  names(): IterableIterator<RoomName> {
    return this.#rooms.keys();
  }
}

const NO_MEMBERS: ReadonlySet<Connection> = new Set();
