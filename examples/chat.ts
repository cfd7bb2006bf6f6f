/**
 * A chat server: validated `chat` messages broadcast to a room with the sender's display name, and a
 * `set_name` message that stores that name on the connection.
 *
 *   npx tsx examples/chat.ts [port]      (or PORT=8080; port 0 picks a free one)
 *
 * A client session (one JSON object per WebSocket text frame):
 *
 *   → {"type":"set_name","data":{"name":"Ada"},"id":"1"}     ← {"type":"name_set","data":{"name":"Ada"},"id":"1"}
 *   → {"type":"join_room","data":{"room":"lobby"}}            ← {"type":"room_joined","data":{"room":"lobby"}}
 *   → {"type":"chat","data":{"room":"lobby","text":"hi"}}      ← every member: {"type":"chat","data":{"room":"lobby","from":"Ada","text":"hi",...}}
 */
import { z } from "zod";
import { ConduitError, createServer, ErrorCode } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

/** Longest chat line accepted; longer ones get a `validation_failed` error naming `data.text`. */
const MAX_TEXT_LENGTH = 500;

const ChatMessage = z.object({
  room: z.string().min(1).max(128),
  text: z.string().min(1).max(MAX_TEXT_LENGTH),
});
const SetName = z.object({
  name: z.string().trim().min(1).max(32),
});

const server = createServer();

server.registerHandler("set_name", {
  schema: SetName,
  handler: (ctx, client, message) => {
    // Metadata lives on the connection: every later handler of this client can read it.
    client.setMetadata("name", message.data.name);
    ctx.reply("name_set", { name: message.data.name });
  },
});

server.registerHandler("chat", {
  schema: ChatMessage,
  handler: (_ctx, client, message) => {
    const { room, text } = message.data;
    // A ConduitError becomes {"type":"error","data":{"code","message"}} for the sender only.
    if (!client.rooms.has(room)) throw new ConduitError(ErrorCode.NotInRoom, `join "${room}" before chatting in it`);
    const from = client.getMetadata<string>("name") ?? "anonymous";
    // Encoded once, delivered to every member of the room, the sender included. The sender's
    // request (when it carried an `id`) is answered with {"type":"ack","id":…} automatically.
    server.broadcastToRoom(room, "chat", { room, from, text, at: new Date().toISOString() });
  },
});

const address = await server.listen(port, host);
console.log(`chat listening on ws://${host}:${address.port}${server.options.path}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void server.shutdown());
}
