/**
 * conduit-ws inside an Express 5 app: one HTTP server serves the REST routes and the WebSocket
 * endpoint. `POST /notify` pushes a message to every member of a room.
 *
 *   npx tsx examples/express.ts [port]      (or PORT=8080; port 0 picks a free one)
 *
 *   curl -X POST localhost:8080/notify -H 'content-type: application/json' \
 *        -d '{"room":"lobby","text":"deploy finished"}'
 *   → {"delivered":2}   and every member of "lobby" receives {"type":"notification","data":{"text":"deploy finished"}}
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { z } from "zod";
import { createServer } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const Notify = z.object({ room: z.string().min(1).max(128), text: z.string().min(1).max(1000) });

const conduit = createServer();
const app = express();
app.use(express.json());

app.post("/notify", (request, response) => {
  const parsed = Notify.safeParse(request.body);
  if (!parsed.success) {
    response.status(400).json({ error: parsed.error.issues[0]?.message ?? "invalid body" });
    return;
  }
  const { room, text } = parsed.data;
  // Returns how many local members it was queued for (with Redis, other nodes deliver too).
  const delivered = conduit.broadcastToRoom(room, "notification", { text });
  response.json({ delivered });
});

// roomMembers() asks the adapter, so with Redis it lists the members on every node.
app.get("/rooms/:room", async (request, response) => {
  const members = await conduit.roomMembers(request.params.room);
  response.json({ room: request.params.room, members: members.map((member) => member.clientId) });
});

// One http.Server for both: Express answers requests, conduit answers upgrades on /ws.
const httpServer = createHttpServer(app);
conduit.attach(httpServer, { path: "/ws" });

httpServer.listen(port, host, () => {
  const { port: actual } = httpServer.address() as AddressInfo;
  console.log(`express listening on http://${host}:${actual} (WebSocket: ws://${host}:${actual}/ws)`);
});

// Close the WebSockets first (close 1001), then the HTTP server that they were sharing.
async function stop(): Promise<void> {
  await conduit.shutdown();
  httpServer.closeAllConnections();
  httpServer.close();
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stop());
}
