/**
 * `@conduit/websocket/api`: the server API. A backend calls it with {@link ConduitApi}; a library user
 * mounts its HTTP routes on an HTTP server of their own with {@link createApiHandler} (the standalone
 * server does so with `--api-key`).
 *
 * @module
 */
export { ConduitApi, ConduitApiError, type ConduitApiOptions, type Recipient } from "./client.js";
export { createApiHandler, type ApiHandlerOptions, type ApiServer } from "./routes.js";
export { MAX_API_BODY_BYTES } from "./http.js";
export type { Logger, LogFn } from "../logger.js";
export type { MemberInfo } from "../adapter/adapter.js";
export type { ClientId } from "../types.js";
export type { ClusterInfo, ClusterNodeInfo, DisconnectOptions, PresenceMember, PublishResult, RoomPresence } from "./types.js";
