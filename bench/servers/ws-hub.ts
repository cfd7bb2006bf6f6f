/**
 * The baseline: the hub a user would write by hand on the `ws` package (with bufferutil and
 * utf-8-validate installed, as `ws` picks up by default). Rooms are a `Map<string, Set<WebSocket>>`;
 * a broadcast is `JSON.stringify`'d once and handed to `ws.send` for each member. It speaks the SPEC §2
 * messages the benchmark uses (join_room, leave_room, broadcast, echo, ping), answers errors as
 * SPEC §2 does, and keeps the heartbeat from the `ws` README at conduit's default interval (30 s).
 *
 * @module
 */
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { announceReady, HOST } from "./child.js";

interface Envelope {
  type?: unknown;
  data?: unknown;
  id?: unknown;
}

interface Member extends WebSocket {
  rooms: Set<string>;
  isAlive: boolean;
}

const HEARTBEAT_INTERVAL = 30_000;
const rooms = new Map<string, Set<WebSocket>>();

function reply(ws: WebSocket, type: string, data: unknown, id: unknown): void {
  ws.send(JSON.stringify(typeof id === "string" ? { type, data, id } : { type, data }));
}

function replyError(ws: WebSocket, code: string, message: string, id: unknown): void {
  reply(ws, "error", { message, code }, id);
}

function roomOf(data: unknown): unknown {
  return typeof data === "object" && data !== null ? (data as { room?: unknown }).room : undefined;
}

function onMessage(ws: Member, raw: RawData, isBinary: boolean): void {
  if (isBinary) return replyError(ws, "binary_not_supported", "binary frames are not supported", undefined);
  let message: Envelope;
  try {
    message = JSON.parse(raw.toString()) as Envelope;
  } catch {
    return replyError(ws, "invalid_json", "message is not valid JSON", undefined);
  }
  const { type, data, id } = message;
  switch (type) {
    case "join_room": {
      const room = roomOf(data);
      if (typeof room !== "string" || room.length === 0) return replyError(ws, "invalid_room", "room must be a string", id);
      let members = rooms.get(room);
      if (members === undefined) {
        members = new Set();
        rooms.set(room, members);
      }
      members.add(ws);
      ws.rooms.add(room);
      return reply(ws, "room_joined", { room }, id);
    }
    case "leave_room": {
      const room = roomOf(data);
      if (typeof room !== "string") return replyError(ws, "invalid_room", "room must be a string", id);
      leave(ws, room);
      return reply(ws, "room_left", { room }, id);
    }
    case "broadcast": {
      const { room, type: kind, payload } = (data ?? {}) as { room?: unknown; type?: unknown; payload?: unknown };
      if (typeof room !== "string" || typeof kind !== "string" || !ws.rooms.has(room)) {
        return replyError(ws, "not_in_room", "join the room before broadcasting to it", id);
      }
      const text = JSON.stringify({ type: kind, data: payload });
      for (const member of rooms.get(room) ?? []) member.send(text);
      if (typeof id === "string") reply(ws, "ack", undefined, id);
      return;
    }
    case "echo":
      return reply(ws, "echo", { original: data ?? null }, id);
    case "ping":
      return reply(ws, "pong", { timestamp: data ?? new Date().toISOString() }, id);
    default:
      return replyError(ws, "unknown_type", `unknown message type ${JSON.stringify(type)}`, id);
  }
}

function leave(ws: Member, room: string): void {
  const members = rooms.get(room);
  if (members === undefined) return;
  members.delete(ws);
  ws.rooms.delete(room);
  if (members.size === 0) rooms.delete(room);
}

const wss = new WebSocketServer({ host: HOST, port: 0, path: "/ws" });
wss.on("connection", (socket) => {
  const ws = socket as Member;
  ws.rooms = new Set();
  ws.isAlive = true;
  ws.on("pong", () => (ws.isAlive = true));
  ws.on("message", (raw, isBinary) => onMessage(ws, raw, isBinary));
  ws.on("error", () => ws.terminate());
  ws.on("close", () => {
    for (const room of [...ws.rooms]) leave(ws, room);
  });
});

const heartbeat = setInterval(() => {
  for (const socket of wss.clients) {
    const ws = socket as Member;
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, HEARTBEAT_INTERVAL);
heartbeat.unref();

wss.on("listening", () => {
  const address = wss.address();
  if (address === null || typeof address === "string") throw new Error("expected a TCP address");
  announceReady(address.port);
});
