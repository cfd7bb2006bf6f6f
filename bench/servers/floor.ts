/**
 * The floor of a room broadcast on node's public API: a `ws` server whose broadcast loop does
 * nothing per member but hand one shared, already framed buffer to the member's `socket.write`.
 * No readiness check, no byte accounting, no queue, no metrics: what is left per member is what
 * node's `net.Socket` write path and the kernel's `write` cost, which every node server that writes
 * once per member pays. `npm run bench:paired -- fanout … --floor` measures it against the plain ws
 * hub in place of conduit-ws, so a reader sees how far below the hub any node server can go with
 * one `socket.write` per member on this machine, and how close conduit-ws is to that.
 *
 * Not a server to copy: it never looks at what node buffers for a member that reads slowly (a real
 * server bounds that and drops the member, as conduit-ws does with `maxBufferedBytes`), sends no
 * heartbeat (the hub and conduit-ws ping every member every 30 s, a small share of the fan-out
 * load's writes) and speaks only what the fan-out load needs (`join_room`, `broadcast`).
 *
 * @module
 */
import type { Socket } from "node:net";
import { WebSocketServer, type RawData } from "ws";
import { announceReady, HOST } from "./child.js";

const OPCODE_TEXT = 0x1;
const FIN = 0x80;

/** The members of each room: the TCP socket each WebSocket runs on. */
const rooms = new Map<string, Set<Socket>>();

/**
 * One unmasked, final text frame (RFC 6455 §5.2) holding `payload`: the bytes every member of a
 * broadcast is sent, built once per broadcast.
 */
function textFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN | OPCODE_TEXT;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, header);
  return frame;
}

function onMessage(socket: Socket, joined: Set<string>, raw: RawData, reply: (text: string) => void): void {
  const message = JSON.parse(raw.toString()) as { type?: string; data?: { room?: string; type?: string; payload?: unknown } };
  const data = message.data ?? {};
  if (message.type === "join_room" && typeof data.room === "string") {
    let members = rooms.get(data.room);
    if (members === undefined) {
      members = new Set();
      rooms.set(data.room, members);
    }
    members.add(socket);
    joined.add(data.room);
    reply(JSON.stringify({ type: "room_joined", data: { room: data.room } }));
  } else if (message.type === "broadcast" && typeof data.room === "string") {
    const frame = textFrame(Buffer.from(JSON.stringify({ type: data.type, data: data.payload })));
    for (const member of rooms.get(data.room) ?? []) member.write(frame);
  }
}

const wss = new WebSocketServer({ host: HOST, port: 0, path: "/ws" });
wss.on("connection", (ws, request) => {
  // The upgrade request's socket (`http.IncomingMessage.socket`) is the one the WebSocket runs on.
  // A whole frame written to it cannot land inside one of ws's own: without permessage-deflate
  // (ws's server default) `ws.send` writes each frame whole before it returns.
  const socket = request.socket as Socket;
  const joined = new Set<string>();
  ws.on("message", (raw) => onMessage(socket, joined, raw, (text) => ws.send(text)));
  ws.on("error", () => ws.terminate());
  // A member leaves its rooms when it closes: no write to a closed socket, no room that only grows.
  ws.on("close", () => {
    for (const room of joined) rooms.get(room)?.delete(socket);
  });
});
wss.on("listening", () => {
  const address = wss.address();
  if (address === null || typeof address === "string") throw new Error("expected a TCP address");
  announceReady(address.port);
});
