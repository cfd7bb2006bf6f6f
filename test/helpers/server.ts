/**
 * Starts a real conduit-ws server on a free port for one test.
 */
import { createServer, type ConduitServer, type ServerOptions } from "../../src/index.js";

/** A running server and the URL of its endpoint. */
export interface TestServer {
  server: ConduitServer;
  port: number;
  /** `ws://127.0.0.1:PORT/ws` */
  url: string;
  /** Shuts the server down (idempotent). */
  close(): Promise<void>;
}

/**
 * Creates a server with `options`, lets `setup` register handlers, and listens on 127.0.0.1:0.
 */
export async function startServer(options: Partial<ServerOptions> = {}, setup?: (server: ConduitServer) => void): Promise<TestServer> {
  const server = createServer(options);
  setup?.(server);
  const { port } = await server.listen(0, "127.0.0.1");
  return {
    server,
    port,
    url: `ws://127.0.0.1:${port}${server.options.path}`,
    close: () => server.shutdown(),
  };
}
