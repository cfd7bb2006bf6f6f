/**
 * `@conduit/websocket`: a real-time messaging hub for Node.js.
 *
 * @example
 * ```ts
 * import { createServer } from "@conduit/websocket";
 * const server = createServer();
 * server.registerHandler("hello", (ctx) => ctx.reply("hello", "world"));
 * await server.listen(8080);
 * ```
 *
 * @module
 */
export { createServer, ConduitServer, type ServerEvents, type AttachOptions, type ListenInfo } from "./server.js";
export { defaultOptions, type ServerOptions, type RateLimitOptions } from "./options.js";
export { ErrorCode, CloseCode, ConduitError, type DisconnectReason } from "./errors.js";
export type { Client, ClientId, RoomName, SendOptions, BroadcastOptions, JoinOutcome } from "./types.js";
export type { Handler, HandlerContext, HandlerDefinition, HandlerServer, BinaryHandler } from "./protocol/router.js";
export type { Message } from "./protocol/message.js";
export { RESERVED_TYPES } from "./protocol/message.js";
export type { StandardSchemaV1 } from "./protocol/schema.js";
export { MAX_USER_ID_LENGTH, type AuthHandler, type AuthContext, type AuthResult, type AuthGrant } from "./upgrade/tokens.js";
export type { NamespacesConfig, NamespaceConfig, JoinRule, PublishRule, HistoryConfig } from "./namespaces/config.js";
export { defaultTokenExtractor } from "./upgrade/credentials.js";
export type { Adapter, AdapterHost, ClusterBroadcast, DisconnectOrder, MemberInfo, NodeInfo } from "./adapter/adapter.js";
export type { ClusterInfo, ClusterNodeInfo, DisconnectOptions, PublishResult } from "./api/types.js";
export { MemoryAdapter } from "./adapter/memory.js";
export type { Logger, LogFn } from "./logger.js";
export type { Instrumentation } from "./instrumentation.js";
