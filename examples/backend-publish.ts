/**
 * A backend publishing through the server API: an order service, a cron job or a webhook handler
 * tells the clients of a room, on every node of the cluster, that something happened.
 *
 *   conduit-ws --api-key "$CONDUIT_API_KEY"            (the server, in another terminal)
 *   CONDUIT_API_KEY=... npx tsx examples/backend-publish.ts [room] [text]
 *
 * CONDUIT_URL is the server's HTTP address (default http://127.0.0.1:8080; its --api-port listener
 * when the API has one). In your project, import from "@conduit/websocket/api"; the examples import
 * the package's source so that they run straight from a clone.
 */
import { ConduitApi, ConduitApiError } from "../src/api/index.js";

const room = process.argv[2] ?? "news:sport";
const text = process.argv[3] ?? "2-1 at half-time";

const api = new ConduitApi({
  url: process.env.CONDUIT_URL ?? "http://127.0.0.1:8080",
  apiKey: process.env.CONDUIT_API_KEY ?? "",
  // A backend's request should fail fast rather than hold its own caller.
  timeout: 3000,
});

try {
  const { connections, nodes } = await api.info();
  console.log(`cluster: ${connections} connections on ${nodes.length} node(s)`);
  // Every member of the room, on every node, receives {"type":"headline","data":{"text":...}}.
  await api.publish(room, "headline", { text, at: new Date().toISOString() });
  const { count } = await api.presence(room);
  console.log(`published to ${room} (${count} members)`);
} catch (error) {
  // status 401: wrong key; 400: a bad field (the message names it); 0: no answer (timeout, refused).
  if (!(error instanceof ConduitApiError)) throw error;
  console.error(`publish failed: HTTP ${error.status} ${error.code}: ${error.message}`);
  process.exitCode = 1;
}
