/**
 * A tour of handlers: validation with valibot (any Standard Schema library works), async handlers,
 * errors a client can switch on, a built-in replaced by a stricter one, binary frames, direct
 * messages, and the connection/disconnect events.
 *
 *   npx tsx examples/handlers.ts [port]      (or PORT=8080; port 0 picks a free one)
 */
import { setTimeout as delay } from "node:timers/promises";
import * as v from "valibot";
import { ConduitError, createServer } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const server = createServer({ handlerTimeout: 5_000 });

// Validated data: a failure answers {"type":"error","data":{"code":"validation_failed","message":"data.b: ..."}}
// and the handler does not run. `message.data` is typed from the schema.
server.registerHandler("add", {
  schema: v.object({ a: v.number(), b: v.number() }),
  handler: (ctx, _client, message) => ctx.reply("sum", message.data.a + message.data.b),
});

// Async handlers are awaited: the reply (or `ack`) goes out when the promise settles. One that takes
// longer than `handlerTimeout` gets a `handler_timeout` error.
server.registerHandler("lookup", async (ctx, _client, message) => {
  await delay(10); // stands in for a database call
  const key = String(message.data);
  if (key !== "answer") throw new ConduitError("not_found", `no entry named "${key}"`);
  ctx.reply("found", { key, value: 42 });
});

// Any other thrown error reaches the client as a generic `handler_error`: no message, no stack.
server.registerHandler("crash", () => {
  throw new Error("database password is hunter2");
});

// Direct message to one client by id (on any node of a cluster).
server.registerHandler("whisper", {
  schema: v.object({ to: v.string(), text: v.pipe(v.string(), v.maxLength(200)) }),
  handler: (ctx, client, message) => {
    server.sendTo(message.data.to, "whisper", { from: client.id, text: message.data.text });
    ctx.reply("whispered", { to: message.data.to });
  },
});

// Replacing a built-in: only rooms named "public:..." may be joined here.
server.registerHandler("join_room", async (ctx, client, message) => {
  const room = (message.data as { room?: unknown } | undefined)?.room;
  if (typeof room !== "string" || !room.startsWith("public:")) {
    throw new ConduitError("forbidden_room", 'only rooms named "public:..." can be joined');
  }
  const outcome = client.joinRoom(room);
  if (!outcome.ok) throw new ConduitError(outcome.code, outcome.reason);
  await outcome.ready; // with the Redis adapter: until other nodes' broadcasts reach this client
  ctx.reply("room_joined", { room });
});

// Binary frames (without a binary handler they get a `binary_not_supported` error).
server.registerBinaryHandler((ctx, _client, data) => {
  ctx.reply("binary_received", { bytes: data.length });
});

// Lifecycle events. `droppable` skips clients that are behind on reading instead of queueing more.
server.on("connection", (client) => {
  client.send("welcome", { client_id: client.id });
  server.broadcast("online", { count: server.clientCount }, { droppable: true });
});
server.on("disconnect", (_client, reason) => {
  server.broadcast("online", { count: server.clientCount, reason }, { droppable: true });
});

const address = await server.listen(port, host);
console.log(`handlers listening on ws://${host}:${address.port}${server.options.path}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void server.shutdown());
}
