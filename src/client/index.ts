/**
 * `@conduit/websocket/client`: the client SDK for browsers and Node.
 *
 * This entry has no imports outside this folder, so a page can load it as a plain ES module
 * (`import { ConduitClient } from "/sdk/index.js"`). It uses the global `WebSocket`; in Node, the
 * package's `node` export condition resolves `@conduit/websocket/client` to `./node.js`, which passes
 * `ws` in for you.
 *
 * @example
 * ```ts
 * import { ConduitClient } from "@conduit/websocket/client";
 * const client = new ConduitClient("wss://chat.example.com/ws", { token: () => getToken() });
 * client.on("chat", (data) => console.log(data));
 * await client.join("lobby");
 * await client.publish("lobby", "chat", { text: "hi" });
 * ```
 *
 * @module
 */
export { ConduitClient, type EventMap } from "./client.js";
export { RequestError, ClientErrorCode } from "./errors.js";
export { backoffDelay, defaultReconnect, type ResolvedReconnect } from "./backoff.js";
export type {
  BuiltinEvents,
  BuiltinReplies,
  ClientMessage,
  ClientOptions,
  ConnectionState,
  ErrorData,
  MemberEvent,
  MessageHandler,
  PresenceData,
  PresenceMember,
  ReconnectOptions,
  Reply,
  ReplyData,
  RequestOptions,
  RoomLeftEvent,
  StateChange,
  StateListener,
  StatusData,
  TokenExpiringEvent,
  TokenSource,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
