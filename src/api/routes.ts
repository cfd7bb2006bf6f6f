/**
 * The server API's HTTP routes (SPEC §11, docs/API.md): what an application's backend calls to
 * publish, send and disconnect across the cluster. A small router of its own on node's `http`: the
 * WebSocket path stays untouched, no dependency is added, and the few routes fit in one table.
 *
 * | route | body | answer |
 * | --- | --- | --- |
 * | `POST /api/publish` | `{"room","type","data"}` | `{}` (`{"offset"}` once history is on) |
 * | `POST /api/broadcast` | `{"type","data"}` | `{}` |
 * | `POST /api/send` | `{"user_id"` or `"client_id","type","data"}` | `{}` |
 * | `POST /api/disconnect` | `{"user_id"` or `"client_id","code"?,"reason"?}` | `{}` |
 * | `GET /api/rooms/ROOM/presence` | | `{"room","count","members"}` |
 * | `GET /api/rooms/ROOM/history` | | 501 until history is enabled |
 * | `GET /api/info` | | `{"connections","nodes"}` |
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ConduitError, ErrorCode } from "../errors.js";
import { invalidRoomReason } from "../hub/rooms.js";
import { silentLogger, type Logger } from "../logger.js";
import { RESERVED_TYPES } from "../protocol/message.js";
import type { MemberInfo } from "../adapter/adapter.js";
import { ApiError, bearerMatches, digest, readJsonObject, sendError, sendJson } from "./http.js";
import { type ClusterInfo, type DisconnectOptions, disconnectOptionsProblem, type PublishResult } from "./types.js";

/**
 * What the routes call: the server's API methods (a `ConduitServer` is one). Written out so that this
 * entry point does not carry the whole server's declaration.
 */
export interface ApiServer {
  /** See `ConduitServer.publish`. */
  publish(room: string, type: string, data?: unknown): Promise<PublishResult>;
  /** See `ConduitServer.broadcast`. */
  broadcast(type: string, data?: unknown): unknown;
  /** See `ConduitServer.sendToUser`. */
  sendToUser(userId: string, type: string, data?: unknown): unknown;
  /** See `ConduitServer.sendToClient`. */
  sendToClient(clientId: string, type: string, data?: unknown): unknown;
  /** See `ConduitServer.disconnectUser`. */
  disconnectUser(userId: string, options?: DisconnectOptions): unknown;
  /** See `ConduitServer.disconnectClient`. */
  disconnectClient(clientId: string, options?: DisconnectOptions): unknown;
  /** See `ConduitServer.roomMembers`. */
  roomMembers(room: string): Promise<MemberInfo[]>;
  /** See `ConduitServer.info`. */
  info(): Promise<ClusterInfo>;
  /** See `ConduitServer.isShuttingDown`. */
  readonly isShuttingDown: boolean;
}

/** Options of {@link createApiHandler}. */
export interface ApiHandlerOptions {
  /** The key every request must present as `Authorization: Bearer KEY`. Never logged. */
  apiKey: string;
  /** Request log (debug level: method and path, never headers or bodies). */
  logger?: Logger;
  /** True once shutdown began (every route then answers 503); defaults to the server's own state. */
  isDraining?: () => boolean;
}

/**
 * Serves the API's routes for `/api` and everything under it: returns true when it took the request,
 * false for any other path (left to the caller).
 *
 * @example
 * ```ts
 * const api = createApiHandler(server, { apiKey: process.env.CONDUIT_API_KEY! });
 * const httpServer = http.createServer((req, res) => {
 *   if (!api(req, res)) res.writeHead(404).end();
 * });
 * server.attach(httpServer);
 * ```
 */
export function createApiHandler(
  server: ApiServer,
  options: ApiHandlerOptions,
): (request: IncomingMessage, response: ServerResponse) => boolean {
  if (typeof options?.apiKey !== "string" || options.apiKey === "") {
    throw new TypeError("conduit-ws: createApiHandler needs a non-empty apiKey");
  }
  const keyDigest = digest(options.apiKey);
  const logger = options.logger ?? silentLogger;
  const isDraining = options.isDraining ?? (() => server.isShuttingDown);
  return (request, response) => {
    const path = new URL(request.url ?? "/", "http://api.invalid").pathname;
    if (path !== "/api" && !path.startsWith("/api/")) return false;
    logger.debug({ method: request.method, url: path }, "api request");
    handle(request, response, path).catch((error: unknown) => {
      if (error instanceof ApiError) return sendError(response, error);
      logger.error({ err: error, url: path }, "api request failed");
      if (!response.headersSent) sendError(response, new ApiError(500, ErrorCode.InternalError, "internal error"));
      else response.destroy();
    });
    return true;
  };

  async function handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (!bearerMatches(request.headers.authorization, keyDigest)) {
      throw new ApiError(401, "unauthorized", "missing or wrong API key: send Authorization: Bearer KEY");
    }
    const route = match(request.method ?? "GET", path);
    if (isDraining()) throw new ApiError(503, ErrorCode.Unavailable, "the server is shutting down");
    const result = await route(request);
    sendJson(response, 200, result);
  }

  /** The handler of a method and path; a known path with another method is 405, anything else 404. */
  function match(method: string, path: string): (request: IncomingMessage) => Promise<unknown> {
    const post = POST_ROUTES[path];
    if (post !== undefined) return allow(method, "POST", async (request) => post(server, await readJsonObject(request)));
    if (path === "/api/info") {
      return allow(method, "GET", async () => {
        try {
          return await server.info();
        } catch (error) {
          // The other nodes' reports live in the adapter's backend: without it the answer would
          // silently count this node alone.
          logger.warn({ err: error instanceof Error ? error.message : String(error) }, "api info: the cluster view is unreachable");
          throw new ApiError(503, ErrorCode.Unavailable, "the cluster's view is unreachable (is Redis down?); try again");
        }
      });
    }
    const rooms = /^\/api\/rooms\/([^/]+)\/(presence|history)$/.exec(path);
    if (rooms !== null) {
      const room = roomFrom(rooms[1]!);
      if (rooms[2] === "history") {
        // History seam: once the server keeps history, this reads `limit` from the query and answers
        // the `history` reply's data (SPEC §9), 503 `unavailable` when the store is unreachable.
        return allow(method, "GET", async () => {
          throw new ApiError(
            501,
            "history_not_enabled",
            `history is not enabled on this server, so room ${JSON.stringify(room)} keeps none`,
          );
        });
      }
      return allow(method, "GET", async () => {
        const members = await server.roomMembers(room);
        return {
          room,
          count: members.length,
          members: members.map((member) => ({ client_id: member.clientId, user_id: member.userId })),
        };
      });
    }
    throw new ApiError(404, "not_found", `no API route ${path}`);
  }
}

function allow(method: string, expected: "GET" | "POST", handler: (request: IncomingMessage) => Promise<unknown>) {
  if (method !== expected) throw new ApiError(405, "method_not_allowed", `use ${expected} for this route`);
  return handler;
}

function roomFrom(segment: string): string {
  let room: string;
  try {
    room = decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, ErrorCode.InvalidRoom, "the room in the path is not valid URL encoding");
  }
  const problem = invalidRoomReason(room);
  if (problem !== undefined) throw new ApiError(400, ErrorCode.InvalidRoom, problem);
  return room;
}

type PostRoute = (server: ApiServer, body: Record<string, unknown>) => Promise<unknown> | unknown;

const POST_ROUTES: Readonly<Record<string, PostRoute>> = {
  "/api/publish": async (server, body) => {
    const problem = invalidRoomReason(body.room);
    if (problem !== undefined) throw new ApiError(400, ErrorCode.InvalidRoom, problem);
    const type = messageType(body);
    try {
      return await server.publish(body.room as string, type, body.data ?? null);
    } catch (error) {
      // The library's refusals (a namespace this server does not serve) are the caller's mistake.
      if (error instanceof ConduitError) throw new ApiError(error.code === ErrorCode.Unavailable ? 503 : 400, error.code, error.message);
      throw error;
    }
  },
  "/api/broadcast": (server, body) => {
    server.broadcast(messageType(body), body.data ?? null);
    return {};
  },
  "/api/send": (server, body) => {
    const target = recipient(body);
    const type = messageType(body);
    if ("userId" in target) server.sendToUser(target.userId, type, body.data ?? null);
    else server.sendToClient(target.clientId, type, body.data ?? null);
    return {};
  },
  "/api/disconnect": (server, body) => {
    const target = recipient(body);
    const problem = disconnectOptionsProblem(body.code ?? undefined, body.reason ?? undefined);
    if (problem !== undefined) throw new ApiError(400, "invalid_field", problem);
    const options = { code: (body.code ?? undefined) as number | undefined, reason: (body.reason ?? undefined) as string | undefined };
    if ("userId" in target) server.disconnectUser(target.userId, options);
    else server.disconnectClient(target.clientId, options);
    return {};
  },
};

/** The body's `type`: a non-empty string the server does not use itself. */
function messageType(body: Record<string, unknown>): string {
  const type = body.type;
  if (typeof type !== "string" || type.length === 0) throw new ApiError(400, "invalid_field", 'field "type" must be a non-empty string');
  if (RESERVED_TYPES.has(type))
    throw new ApiError(400, ErrorCode.ReservedType, `field "type": "${type}" is reserved for the server's own messages`);
  return type;
}

/** Exactly one of `user_id` and `client_id`, a non-empty string. */
function recipient(body: Record<string, unknown>): { userId: string } | { clientId: string } {
  const { user_id: userId, client_id: clientId } = body;
  if ((userId === undefined) === (clientId === undefined)) {
    throw new ApiError(400, "invalid_field", 'give exactly one of the fields "user_id" and "client_id"');
  }
  if (userId !== undefined) {
    if (typeof userId !== "string" || userId === "") throw new ApiError(400, "invalid_field", 'field "user_id" must be a non-empty string');
    return { userId };
  }
  if (typeof clientId !== "string" || clientId === "")
    throw new ApiError(400, "invalid_field", 'field "client_id" must be a non-empty string');
  return { clientId };
}
