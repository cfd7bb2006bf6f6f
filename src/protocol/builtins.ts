/**
 * The built-in message types of the protocol (docs/PROTOCOL.md): ping, echo, join_room, leave_room, broadcast, status and
 * presence. Each is an ordinary handler registered at start-up, so `registerHandler` can replace it.
 *
 * They check their `data` by hand instead of through a schema: these run for every client, and a
 * typeof check costs nothing next to a schema library's call.
 *
 * @module
 */
import { ErrorCode } from "../errors.js";
import type { Handler } from "./router.js";
import { formatGoDuration } from "./duration.js";
import { RESERVED_TYPES } from "./message.js";

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

const joinRoom: Handler = (ctx, client, message) => {
  const room = roomOf(message.data);
  const outcome = client.joinRoom(room as string);
  if (!outcome.ok) return ctx.replyError(outcome.code, outcome.reason);
  // In a cluster, answer once the room's broadcasts from other nodes will reach this client.
  if (outcome.ready) return outcome.ready.then(() => ctx.reply("room_joined", { room }));
  ctx.reply("room_joined", { room });
};

const leaveRoom: Handler = (ctx, client, message) => {
  const room = roomOf(message.data);
  if (typeof room !== "string" || room.length === 0) {
    return ctx.replyError(ErrorCode.InvalidRoom, 'field "room" must be a non-empty string');
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
  const server = ctx.server;
  if (room === undefined || room === null) {
    if (!server.options.allowBroadcastToAll) {
      return ctx.replyError(ErrorCode.BroadcastForbidden, "broadcast to every client is disabled on this server");
    }
    server.broadcast(type, payload);
    return;
  }
  if (typeof room !== "string" || !client.rooms.has(room)) {
    return ctx.replyError(ErrorCode.NotInRoom, `join room ${JSON.stringify(room)} before broadcasting to it`);
  }
  server.broadcastToRoom(room, type, payload);
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

const presence: Handler = async (ctx, client, message) => {
  const room = roomOf(message.data);
  if (typeof room !== "string" || !client.rooms.has(room)) {
    return ctx.replyError(ErrorCode.NotInRoom, `join room ${JSON.stringify(room)} to see who is in it`);
  }
  const members = await ctx.server.roomMembers(room);
  ctx.reply("presence", {
    room,
    count: members.length,
    members: members.map((member) => ({ client_id: member.clientId, user_id: member.userId })),
  });
};

/** The built-in handlers by message type, in the order docs/PROTOCOL.md lists them. */
export const builtinHandlers: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ["ping", ping],
  ["join_room", joinRoom],
  ["leave_room", leaveRoom],
  ["broadcast", broadcast],
  ["echo", echo],
  ["status", status],
  ["presence", presence],
]);
