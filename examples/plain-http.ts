/**
 * conduit-ws on a plain node http.Server with your own upgrade routing: `server.handler()` returns an
 * `'upgrade'` listener that takes requests for the endpoint's path and returns false for the others.
 *
 *   npx tsx examples/plain-http.ts [port]      (or PORT=8080; port 0 picks a free one)
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer } from "../src/index.js";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";

const conduit = createServer({ path: "/ws" });
const handleConduitUpgrade = conduit.handler();

const httpServer = createHttpServer((request, response) => {
  if (request.url === "/healthz") {
    response.writeHead(conduit.isShuttingDown ? 503 : 200, { "Content-Type": "text/plain" }).end("ok\n");
    return;
  }
  response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
});

httpServer.on("upgrade", (request, socket, head) => {
  if (handleConduitUpgrade(request, socket, head)) return;
  // Not ours: another WebSocket library could take it here. Nobody does, so refuse it.
  socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
});

// With handler() (unlike attach() and listen()) nothing starts the server until the first upgrade;
// starting it here surfaces an adapter that cannot reach its backend before we listen.
await conduit.start();
httpServer.listen(port, host, () => {
  const { port: actual } = httpServer.address() as AddressInfo;
  console.log(`plain-http listening on http://${host}:${actual} (WebSocket: ws://${host}:${actual}/ws)`);
});

async function stop(): Promise<void> {
  await conduit.shutdown();
  httpServer.closeAllConnections();
  httpServer.close();
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stop());
}
