/**
 * Socket.IO 4 under test, as its documentation sets it up for WebSocket-only clients: the
 * `websocket` transport alone, rooms with `socket.join`, broadcasts with `io.to(room).emit`. The same
 * three operations as the other servers: `join_room` (answered through an acknowledgement, Socket.IO's
 * request/reply), `broadcast` to a room the sender is in, and `echo`.
 *
 * With a Redis URL as its argument (the cluster scenario), it is one node of a cluster: Socket.IO's
 * Redis adapter (`@socket.io/redis-adapter` 8, `createAdapter` with its defaults) on two ioredis
 * connections, one to publish and one to subscribe, as its documentation sets it up.
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

const redisUrl = process.argv[2];
if (redisUrl !== undefined) {
  // Loaded only for the cluster scenario, so that the other scenarios never load them.
  const { Redis } = await import("ioredis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = new Redis(redisUrl);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
  // Commands on one connection run in order: once this PING is answered, the adapter's
  // (P)SUBSCRIBE before it has taken effect, and no broadcast from another node can be missed.
  await Promise.all([pub.ping(), sub.ping()]);
}

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
