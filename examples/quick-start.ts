/**
 * Quick start: a conduit-ws server with one handler of its own, as a library user writes it.
 *
 *   npx tsx examples/quick-start.ts [port]      (or PORT=8080; port 0 picks a free one)
 *
 * In your project, import from "@conduit/websocket"; the examples import the package's source so
 * that they run straight from a clone.
 */
import { createServer } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const server = createServer();

// A custom message type. `ctx.reply` answers the sender (carrying the request's `id`, if any).
server.registerHandler("hello", (ctx, client, message) => {
  ctx.reply("hello", { greeting: `hello, ${String(message.data ?? "stranger")}`, client_id: client.id });
});

// Every connection gets a welcome; the built-ins (ping, echo, join_room, broadcast, status, ...)
// are already registered.
server.on("connection", (client) => {
  client.send("welcome", { client_id: client.id });
});

const address = await server.listen(port, host);
console.log(`quick-start listening on ws://${host}:${address.port}${server.options.path}`);

// Ctrl-C or SIGTERM: every client gets close 1001, then the process exits by itself.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void server.shutdown());
}
