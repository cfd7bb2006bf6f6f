/**
 * The built-in message types of the protocol (docs/PROTOCOL.md): ping, echo, join_room, leave_room,
 * broadcast, status and presence. Each is an ordinary handler registered at start-up, so
 * `registerHandler` can replace it. Those that cause work for other clients (broadcast, presence,
 * joins and leaves) go to the hub, which charges that work to the asking client's budget.
 *
 * They check their `data` by hand instead of through a schema: these run for every client, and a
 * typeof check costs nothing next to a schema library's call.
 *
 * @module
 */
import type { MemberInfo } from "../adapter/adapter.js";
import { ErrorCode } from "../errors.js";
import type { Connection } from "../hub/client.js";
import type { NamespaceRules } from "../namespaces/rules.js";
import type { Identity, TokenVerifier } from "../upgrade/tokens.js";
import type { Client, RoomName } from "../types.js";
import { invalidRoomReason } from "../hub/rooms.js";
import { formatGoDuration } from "./duration.js";
import { RESERVED_TYPES } from "./message.js";
import type { Handler, HandlerContext } from "./router.js";

/** What the built-ins need beyond the public API: the hub implements it. */
export interface BuiltinHost {
  /** Whether a client's broadcast without a room is allowed (`allowBroadcastToAll`). */
  readonly allowBroadcastToAll: boolean;
  /** A client's broadcast, charged to its budget; false when refused for it. */
  broadcastFor(client: Connection, room: RoomName | undefined, type: string, data: unknown): boolean;
  /** Charges deliveries to the client's work budget; false when it is spent. */
  charge(client: Connection, deliveries: number): boolean;
  /** Deliveries a join or leave of `room` causes (the members it notifies). */
  membershipCost(room: RoomName): number;
  /** The members of a room on every node. */
  roomMembers(room: RoomName): Promise<MemberInfo[]>;
  /** This node's member count of a room. */
  localRoomSize(room: RoomName): number;
  /** The rules of a room's namespace; undefined when the configuration does not list it. */
  rulesFor(room: RoomName): NamespaceRules | undefined;
  /** Why the client may not join the room (namespace rules, `canJoin`), or undefined; a promise only when `canJoin` is asked. */
  joinRefusal(client: Connection, room: RoomName): string | undefined | Promise<string | undefined>;
  /** Takes a refreshed token's expiry and grant, leaving rooms no longer granted. */
  refreshIdentity(client: Connection, identity: Identity): void;
}

const OVER_BUDGET = "work budget exceeded: message dropped";

/** The router hands handlers the hub's own connections; the public type hides what the hub needs. */
function connection(client: Client): Connection {
  return client as Connection;
}

/** Reads `data.room` when `data` is an object; undefined otherwise. */
function roomOf(data: unknown): unknown {
  return typeof data === "object" && data !== null ? (data as { room?: unknown }).room : undefined;
}

const ping: Handler = (ctx, _client, message) => {
  const timestamp = message.data !== undefined && message.data !== null ? message.data : new Date().toISOString();
  ctx.reply("pong", { timestamp });
};

const echo: Handler = (ctx, _client, message) => {
  ctx.reply("echo", { original: message.data ?? null });
};

const status: Handler = (ctx, client) => {
  const now = Date.now();
  ctx.reply("status", {
    client_id: client.id,
    user_id: client.userId,
    connected_at: client.connectedAt.toISOString(),
    connection_duration: formatGoDuration(now - client.connectedAt.getTime()),
    last_heartbeat: client.lastHeartbeat.toISOString(),
    rooms: [...client.rooms],
  });
};

/** The built-in handlers by message type, in the order docs/PROTOCOL.md lists them. */
export function builtinHandlers(host: BuiltinHost, tokens: TokenVerifier): ReadonlyMap<string, Handler> {
  /** Joins once the rules allowed it; answers when the join is in place (in a cluster, once subscribed). */
  const join = (ctx: HandlerContext, client: Client, room: unknown): void | Promise<void> => {
    const outcome = client.joinRoom(room as string);
    if (!outcome.ok) return ctx.replyError(outcome.code, outcome.reason);
    if (outcome.ready) return outcome.ready.then(() => ctx.reply("room_joined", { room }));
    ctx.reply("room_joined", { room });
  };

  /** Joins a room the rules answered for: refused, over the budget, or joined. */
  const joinIfAllowed = (ctx: HandlerContext, client: Client, room: RoomName, refusal: string | undefined): void | Promise<void> => {
    if (refusal !== undefined) return ctx.replyError(ErrorCode.Forbidden, refusal);
    if (!host.charge(connection(client), host.membershipCost(room))) return ctx.replyError(ErrorCode.RateLimited, OVER_BUDGET);
    return join(ctx, client, room);
  };

  // Not an async function: a join that needs no `canJoin` hook or cluster subscription stays
  // synchronous, with no promise, and no handler timer in the router.
  const joinRoom: Handler = (ctx, client, message) => {
    const room = roomOf(message.data);
    if (typeof room !== "string" || client.rooms.has(room)) return join(ctx, client, room);
    // A bad name is answered as such before any rule is asked about it.
    const invalid = invalidRoomReason(room);
    if (invalid !== undefined) return ctx.replyError(ErrorCode.InvalidRoom, invalid);
    const refusal = host.joinRefusal(connection(client), room);
    if (typeof refusal === "object") return refusal.then((reason) => joinIfAllowed(ctx, client, room, reason));
    return joinIfAllowed(ctx, client, room, refusal);
  };

  const leaveRoom: Handler = (ctx, client, message) => {
    const room = roomOf(message.data);
    if (typeof room !== "string" || room.length === 0) {
      return ctx.replyError(ErrorCode.InvalidRoom, 'field "room" must be a non-empty string');
    }
    // The members left behind are notified: the room's size less the one leaving.
    if (client.rooms.has(room) && !host.charge(connection(client), Math.max(0, host.membershipCost(room) - 1))) {
      return ctx.replyError(ErrorCode.RateLimited, OVER_BUDGET);
    }
    client.leaveRoom(room);
    ctx.reply("room_left", { room });
  };

  const broadcast: Handler = (ctx, client, message) => {
    const data = message.data;
    if (typeof data !== "object" || data === null) {
      return ctx.replyError(ErrorCode.InvalidMessage, 'broadcast needs data: {"type", "payload", "room"?}');
    }
    const { room, type, payload } = data as { room?: unknown; type?: unknown; payload?: unknown };
    if (typeof type !== "string" || type.length === 0) {
      return ctx.replyError(ErrorCode.InvalidMessage, 'field "data.type" must be a non-empty string');
    }
    if (RESERVED_TYPES.has(type)) {
      return ctx.replyError(ErrorCode.ReservedType, `"${type}" is reserved and cannot be broadcast`);
    }
    let target: RoomName | undefined;
    if (room === undefined || room === null) {
      if (!host.allowBroadcastToAll) {
        return ctx.replyError(ErrorCode.BroadcastForbidden, "broadcast to every client is disabled on this server");
      }
    } else if (typeof room !== "string" || !client.rooms.has(room)) {
      return ctx.replyError(ErrorCode.NotInRoom, `join room ${JSON.stringify(room)} before broadcasting to it`);
    } else if (host.rulesFor(room)?.publish !== "members") {
      return ctx.replyError(ErrorCode.Forbidden, `only the server publishes to room ${JSON.stringify(room)}`);
    } else {
      target = room;
    }
    if (!host.broadcastFor(connection(client), target, type, payload)) ctx.replyError(ErrorCode.RateLimited, OVER_BUDGET);
  };

  const presence: Handler = async (ctx, client, message) => {
    const room = roomOf(message.data);
    if (typeof room !== "string" || !client.rooms.has(room)) {
      return ctx.replyError(ErrorCode.NotInRoom, `join room ${JSON.stringify(room)} to see who is in it`);
    }
    if (host.rulesFor(room)?.presence !== true) {
      return ctx.replyError(ErrorCode.Forbidden, `presence is off for room ${JSON.stringify(room)}`);
    }
    // Charged before the members are listed, by this node's share (which costs nothing to count), so
    // a refused request does no work; members on other nodes are charged once they are known.
    const local = host.localRoomSize(room);
    if (!host.charge(connection(client), local)) return ctx.replyError(ErrorCode.RateLimited, OVER_BUDGET);
    const members = await host.roomMembers(room);
    if (members.length > local && !host.charge(connection(client), members.length - local)) {
      return ctx.replyError(ErrorCode.RateLimited, OVER_BUDGET);
    }
    ctx.reply("presence", {
      room,
      count: members.length,
      members: members.map((member) => ({ client_id: member.clientId, user_id: member.userId })),
    });
  };

  const refresh: Handler = async (ctx, client, message) => {
    const data = message.data;
    const token = typeof data === "object" && data !== null ? (data as { token?: unknown }).token : undefined;
    if (typeof token !== "string" || token.length === 0) {
      return ctx.replyError(ErrorCode.InvalidMessage, 'refresh needs data: {"token": "…"}');
    }
    if (!tokens.enabled) return ctx.replyError(ErrorCode.Forbidden, "this server does not authenticate connections by token");
    const identity = await tokens.verify({ client }, token);
    if (identity === undefined) return ctx.replyError(ErrorCode.Forbidden, "the token is invalid or expired");
    if (identity.userId !== client.userId) return ctx.replyError(ErrorCode.Forbidden, "the token is for another user");
    // The connection may have closed while the token was checked.
    if (!client.isOpen) return;
    host.refreshIdentity(connection(client), identity);
    ctx.reply("refreshed", { expires_at: identity.expiresAt === undefined ? null : new Date(identity.expiresAt).toISOString() });
  };

  return new Map<string, Handler>([
    ["ping", ping],
    ["join_room", joinRoom],
    ["leave_room", leaveRoom],
    ["broadcast", broadcast],
    ["echo", echo],
    ["status", status],
    ["presence", presence],
    ["refresh", refresh],
  ]);
}
