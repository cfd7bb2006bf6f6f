/**
 * Socket.IO 4 under test, as its documentation sets it up for WebSocket-only clients: the
 * `websocket` transport alone, rooms with `socket.join`, broadcasts with `io.to(room).emit`. The same
 * three operations as the other servers: `join_room` (answered through an acknowledgement, Socket.IO's
 * request/reply), `broadcast` to a room the sender is in, and `echo`.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { announceReady, HOST } from "./child.js";

interface BroadcastData {
  room?: unknown;
  type?: unknown;
  payload?: unknown;
}

const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"], serveClient: false });

io.on("connection", (socket) => {
  socket.on("join_room", (data: { room?: unknown } | undefined, ack?: (reply: unknown) => void) => {
    const room = data?.room;
    if (typeof room !== "string" || room.length === 0) return ack?.({ error: "invalid_room" });
    void socket.join(room);
    ack?.({ room });
  });
  socket.on("broadcast", (data: BroadcastData | undefined) => {
    const { room, type, payload } = data ?? {};
    if (typeof room !== "string" || typeof type !== "string" || !socket.rooms.has(room)) {
      socket.emit("bench_error", { code: "not_in_room" });
      return;
    }
    io.to(room).emit(type, payload);
  });
  socket.on("echo", (data: unknown) => socket.emit("echo", { original: data ?? null }));
});

httpServer.listen(0, HOST, () => announceReady((httpServer.address() as AddressInfo).port));
