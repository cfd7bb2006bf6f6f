/**
 * conduit-ws beside Fastify 5: conduit attaches to `fastify.server`, the node http.Server Fastify
 * listens with. `POST /notify` pushes a message to every member of a room.
 *
 *   npx tsx examples/fastify.ts [port]      (or PORT=8080; port 0 picks a free one)
 *
 *   curl -X POST localhost:8080/notify -H 'content-type: application/json' \
 *        -d '{"room":"lobby","text":"deploy finished"}'
 *   → {"delivered":2}
 */
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { z } from "zod";
import { createServer } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const Notify = z.object({ room: z.string().min(1).max(128), text: z.string().min(1).max(1000) });

const conduit = createServer();
const app = Fastify();

app.post("/notify", async (request, reply) => {
  const parsed = Notify.safeParse(request.body);
  if (!parsed.success) return reply.code(400).send({ error: parsed.error.issues[0]?.message ?? "invalid body" });
  const { room, text } = parsed.data;
  return { delivered: conduit.broadcastToRoom(room, "notification", { text }) };
});

// roomMembers() asks the adapter, so with Redis it lists the members on every node.
app.get<{ Params: { room: string } }>("/rooms/:room", async (request) => {
  const members = await conduit.roomMembers(request.params.room);
  return { room: request.params.room, members: members.map((member) => member.clientId) };
});

conduit.attach(app.server, { path: "/ws" });
// preClose runs before Fastify closes its server: the WebSockets get close 1001 first, so that the
// server's close does not wait on them.
app.addHook("preClose", async () => {
  await conduit.shutdown();
});

await app.listen({ port, host });
const { port: actual } = app.server.address() as AddressInfo;
console.log(`fastify listening on http://${host}:${actual} (WebSocket: ws://${host}:${actual}/ws)`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void app.close());
}
