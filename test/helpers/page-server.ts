/**
 * A library server behind an HTTP server that also serves what a browser page needs: the demo page at
 * `/`, a blank page at `/blank`, `GET /config` and the compiled SDK under `/sdk/` (from `dist/client/`,
 * so `npm run build` must have run). Unlike the standalone server, a test can register handlers on it.
 */
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { fileURLToPath } from "node:url";
import { type ConduitServer, createServer, type ServerOptions } from "../../src/index.js";

const DEMO = fileURLToPath(new URL("../../demo/index.html", import.meta.url));
const SDK = fileURLToPath(new URL("../../dist/client/", import.meta.url));

/** A running page server. */
export interface PageServer {
  server: ConduitServer;
  /** `http://127.0.0.1:PORT/` */
  http: string;
  /** `ws://127.0.0.1:PORT/ws` */
  ws: string;
  close(): Promise<void>;
}

/** Starts it on a free port; `setup` registers handlers before anything connects. */
export async function startPageServer(options: Partial<ServerOptions> = {}, setup?: (server: ConduitServer) => void): Promise<PageServer> {
  const http = createHttpServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const reply = (status: number, type: string, body: string | Buffer): void => {
      response.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" }).end(body);
    };
    const file = path === "/" ? DEMO : /^\/sdk\/[a-z-]+\.js$/.test(path) ? `${SDK}${path.slice(5)}` : undefined;
    if (path === "/config") return reply(200, "application/json", JSON.stringify({ path: "/ws", auth: false, protocol: 1 }));
    if (path === "/blank") return reply(200, "text/html", "<!doctype html><title>blank</title>");
    if (file === undefined) return reply(404, "text/plain", "not found");
    readFile(file).then(
      (body) => reply(200, file.endsWith(".js") ? "text/javascript" : "text/html", body),
      () => reply(404, "text/plain", "not found"),
    );
  });
  const server = createServer(options);
  setup?.(server);
  server.attach(http);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as { port: number };
  return {
    server,
    http: `http://127.0.0.1:${port}/`,
    ws: `ws://127.0.0.1:${port}/ws`,
    async close() {
      await server.shutdown();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
