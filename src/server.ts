/**
 * The server: wires options, hub, router, upgrader, heartbeat and adapter together, and owns start
 * and shutdown. Application code talks to this class; the parts behind it each have one job.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { Adapter, MemberInfo, NodeInfo } from "./adapter/adapter.js";
import { MemoryAdapter } from "./adapter/memory.js";
import {
  type ClusterInfo,
  DEFAULT_DISCONNECT_CODE,
  DEFAULT_DISCONNECT_REASON,
  type DisconnectOptions,
  disconnectOptionsProblem,
  type PublishResult,
} from "./api/types.js";
import { CloseCode, ConduitError, ErrorCode, type DisconnectReason } from "./errors.js";
import { HeartbeatSweep } from "./hub/heartbeat.js";
import { Hub } from "./hub/hub.js";
import { invalidRoomReason } from "./hub/rooms.js";
import { silentLogger, type Logger } from "./logger.js";
import { resolveOptions, type ServerOptions } from "./options.js";
import { builtinHandlers } from "./protocol/builtins.js";
import { RESERVED_TYPES } from "./protocol/message.js";
import { Router, type BinaryHandler, type Handler, type HandlerDefinition, type HandlerServer } from "./protocol/router.js";
import type { StandardSchemaV1 } from "./protocol/schema.js";
import type { BroadcastOptions, Client, ClientId, RoomName } from "./types.js";
import { pathOf } from "./upgrade/credentials.js";
import { enforcedByNode, nodeHandshakeTimeout } from "./upgrade/handshake-guard.js";
import { refuseHandshake } from "./upgrade/refuse.js";
import { limitSockets } from "./upgrade/socket-limit.js";
import { TokenVerifier, type AuthHandler } from "./upgrade/tokens.js";
import { Upgrader } from "./upgrade/upgrader.js";

/** Fragments of one message a client may send; more: close 1008. Browsers send one per message. */
const MAX_FRAGMENTS = 128;
/** Network reads `ws` may hold for one unfinished frame; more: close 1008. */
const MAX_BUFFERED_CHUNKS = 1024;

/** The events a {@link ConduitServer} emits. */
export interface ServerEvents {
  /** A client completed its handshake and joined the hub. */
  connection: [client: Client];
  /** A client left the hub (it has already left every room). */
  disconnect: [client: Client, reason: DisconnectReason];
}

/** Where {@link ConduitServer.listen} listens: the socket address and the endpoint's URL. */
export interface ListenInfo extends AddressInfo {
  /** `ws://HOST:PORT/PATH`, ready to hand to a client. */
  url: string;
}

/** Options of {@link ConduitServer.attach}. */
export interface AttachOptions {
  /** The endpoint's path on this HTTP server; defaults to the server's `path` option. */
  path?: string;
}

/**
 * A conduit-ws server: one hub of connections, a router of message types, rooms, broadcast,
 * heartbeats and authentication. Create it with {@link createServer}.
 *
 * @example
 * ```ts
 * const server = createServer({ heartbeatInterval: 15_000 });
 * server.registerHandler("chat", (ctx, client, msg) => {
 *   server.broadcastToRoom("lobby", "chat", { from: client.userId, text: msg.data });
 * });
 * const { port } = await server.listen(8080);
 * ```
 */
export class ConduitServer extends EventEmitter<ServerEvents> implements HandlerServer {
  /** The resolved options (defaults applied). */
  readonly options: Readonly<ServerOptions>;

  /** Clients, rooms and delivery. */
  readonly #hub: Hub;
  /** Connects this node to the cluster. */
  readonly #adapter: Adapter;
  readonly #logger: Logger;
  readonly #router: Router;
  readonly #upgrader: Upgrader;
  readonly #tokens: TokenVerifier;
  readonly #heartbeat: HeartbeatSweep;
  readonly #wss: WebSocketServer;
  readonly #detachers: Array<() => void> = [];
  #ownServer: HttpServer | undefined;
  #accepting = false;
  #started = false;
  #ready: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;

  /** @param options - see {@link ServerOptions}; every field is optional */
  constructor(options: Partial<ServerOptions> = {}) {
    super();
    const resolved = resolveOptions(options);
    this.options = resolved;
    this.#logger = resolved.logger ?? silentLogger;
    this.#adapter = resolved.adapter ?? new MemoryAdapter();
    this.#hub = new Hub(resolved, this.#adapter, this.#logger, {
      connected: (client) => this.emit("connection", client),
      disconnected: (client, reason) => this.emit("disconnect", client, reason),
    });
    this.#router = new Router(this, resolved.handlerTimeout, this.#logger, resolved.instrumentation);
    this.#tokens = new TokenVerifier(this.#logger);
    for (const [type, handler] of builtinHandlers(this.#hub, this.#tokens)) this.#router.register(type, handler);
    this.#hub.setDispatcher(this.#router);
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: resolved.maxPayload,
      // ws's defaults let one connection hold thousands of pending fragments or read chunks, each a
      // Buffer of its own: megabytes pinned by a few kilobytes sent (docs/RELIABILITY.md).
      maxFragments: MAX_FRAGMENTS,
      maxBufferedChunks: MAX_BUFFERED_CHUNKS,
      perMessageDeflate: resolved.enableCompression,
      closeTimeout: resolved.shutdownTimeout,
    } as ConstructorParameters<typeof WebSocketServer>[0]);
    const server = this;
    this.#upgrader = new Upgrader(this.#wss, this.#hub, this.#tokens, resolved, this.#logger, {
      get started() {
        return server.#started;
      },
      get accepting() {
        return server.#accepting;
      },
      get ready() {
        return server.start();
      },
    });
    this.#heartbeat = new HeartbeatSweep(
      resolved.heartbeatInterval,
      resolved.heartbeatTimeout,
      () => this.#hub.clients(),
      () => this.#hub.clientCount,
    );
  }

  // ---- handlers -----------------------------------------------------------------------------

  /**
   * Registers the handler for a message type, replacing any earlier one (built-ins included).
   *
   * @example
   * ```ts
   * server.registerHandler("chat", {
   *   schema: z.object({ room: z.string(), text: z.string().max(500) }),
   *   handler: (ctx, client, msg) => server.broadcastToRoom(msg.data.room, "chat", msg.data),
   * });
   * ```
   */
  registerHandler<T = unknown>(type: string, handler: Handler<T>): this;
  registerHandler<S extends StandardSchemaV1>(type: string, definition: HandlerDefinition<S>): this;
  registerHandler(type: string, handlerOrDefinition: Handler | HandlerDefinition<StandardSchemaV1>): this {
    if (typeof handlerOrDefinition === "function") {
      this.#router.register(type, handlerOrDefinition);
    } else {
      const { schema, handler } = handlerOrDefinition ?? {};
      if (typeof schema?.["~standard"]?.validate !== "function") {
        throw new TypeError(`conduit-ws: the schema for "${type}" is not a Standard Schema (zod, valibot, arktype)`);
      }
      this.#router.register(type, handler as Handler, schema);
    }
    return this;
  }

  /** Removes the handler for a type (built-ins included); true when one was registered. */
  unregisterHandler(type: string): boolean {
    return this.#router.unregister(type);
  }

  /** Handles binary frames; without one, a binary frame gets a `binary_not_supported` error. */
  registerBinaryHandler(handler: BinaryHandler | undefined): this {
    this.#router.setBinaryHandler(handler);
    return this;
  }

  /**
   * Requires a token at the handshake. Missing or refused tokens get HTTP 401 and no upgrade. The
   * handler may grant rooms (`rooms`) and set an expiry (`expiresAt`): the connection is warned with
   * `token_expiring`, and closed with 4001 unless it sends a new token with the built-in `refresh`,
   * which the same handler checks (with `ctx.client` set) unless {@link ConduitServer.setRefreshHandler}
   * gave another.
   *
   * @example
   * ```ts
   * server.setAuthHandler((ctx, token) => (token === process.env.SECRET ? "admin" : null));
   * ```
   */
  setAuthHandler(handler: AuthHandler | undefined): this {
    this.#tokens.authHandler = handler;
    return this;
  }

  /**
   * Checks the tokens of the built-in `refresh` with another function than the auth handler (a
   * refresh token's format, say). It must return the same user id as the connection has, or the
   * refresh is refused with `forbidden`.
   */
  setRefreshHandler(handler: AuthHandler | undefined): this {
    this.#tokens.refreshHandler = handler;
    return this;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Starts the adapter and the heartbeat. `listen()` and the first upgrade call it; call it yourself
   * to learn early that the adapter cannot reach its backend.
   */
  start(): Promise<void> {
    this.#ready ??= this.#adapter.start(this.#hub).then(() => {
      this.#started = true;
      if (this.#shutdown) return;
      this.#accepting = true;
      this.#heartbeat.start();
    });
    return this.#ready;
  }

  /**
   * Serves the endpoint on an existing HTTP server (Express, Fastify, plain node). Requests for other
   * paths are left to the server's other `'upgrade'` listeners, or refused with 400 if there is none.
   * Sockets that send no complete request within `handshakeTimeout` are closed: by node itself when
   * the server's `headersTimeout` is at most `handshakeTimeout` and its `connectionsCheckingInterval`
   * at most a quarter of it (1 s at most), else by a sweep of conduit-ws's own. Every socket of the
   * server that has not upgraded counts against `maxConnections`, so at the limit upgrades get 503.
   *
   * The server stays the application's: conduit-ws changes none of its settings. Its `requestTimeout`
   * (node's default: 5 minutes) bounds how long a plain HTTP request may take to send its body, and
   * its `maxConnections` (default: none) how many sockets it holds; set both for the application's
   * routes, and listen for `'error'` (node reports a connection it could not accept, out of file
   * descriptors, as an `'error'` of the server).
   */
  attach(httpServer: HttpServer, options: AttachOptions = {}): this {
    const path = options.path ?? this.options.path;
    const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (pathOf(request) === path) return this.#upgrader.handle(request, socket, head);
      if (httpServer.listenerCount("upgrade") === 1) refuseHandshake(socket, 400, "no WebSocket endpoint at this path");
    };
    httpServer.on("upgrade", onUpgrade);
    const stopGuard = enforcedByNode(httpServer, this.options.handshakeTimeout) ? undefined : this.#upgrader.guardHandshakes(httpServer);
    const stopCount = this.#upgrader.countSockets(httpServer);
    this.#detachers.push(() => {
      httpServer.off("upgrade", onUpgrade);
      stopGuard?.();
      stopCount();
    });
    void this.start().catch((error: unknown) => this.#logger.error({ err: error }, "adapter failed to start"));
    return this;
  }

  /**
   * An `'upgrade'` listener for your own routing. It handles requests for the endpoint's path and
   * returns true; for any other path it returns false and leaves the socket to you.
   * Unlike {@link ConduitServer.attach}, it does not see the HTTP server, so it neither starts the
   * server (call {@link ConduitServer.start}) nor guards sockets that never finish their request:
   * bound those with your server's own `headersTimeout` and `requestTimeout`.
   *
   * @example
   * ```ts
   * const onUpgrade = server.handler();
   * httpServer.on("upgrade", (req, socket, head) => {
   *   if (!onUpgrade(req, socket, head)) socket.destroy();
   * });
   * ```
   */
  handler(): (request: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
    return (request, socket, head) => {
      if (!this.#upgrader.matches(request)) return false;
      this.#upgrader.handle(request, socket, head);
      return true;
    };
  }

  /**
   * Starts a minimal HTTP server of its own that serves only the endpoint (other requests: 426).
   * Resolves when listening, with the address and the endpoint's URL; `port: 0` picks a free port.
   * A request on it, upgrade or not, has `handshakeTimeout` to arrive whole, and the server holds at
   * most `maxConnections` plus a small headroom of sockets (more are dropped at accept and logged).
   */
  async listen(port = 8080, host?: string): Promise<ListenInfo> {
    // Node itself closes sockets past the handshake timeout on this server, plain HTTP requests
    // included (see attach()).
    const httpServer = createHttpServer(nodeHandshakeTimeout(this.options.handshakeTimeout), (_request, response) => {
      response.writeHead(426, { "Content-Type": "text/plain" }).end(`connect with WebSocket to ${this.options.path}\n`);
    });
    this.#ownServer = httpServer;
    this.attach(httpServer);
    await this.start();
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(port, host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
    limitSockets(httpServer, this.options.maxConnections, this.#logger);
    const address = httpServer.address() as AddressInfo;
    const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return { ...address, url: `ws://${shownHost}:${address.port}${this.options.path}` };
  }

  /** Whether {@link ConduitServer.shutdown} has begun. */
  get isShuttingDown(): boolean {
    return this.#shutdown !== undefined;
  }

  /**
   * Graceful shutdown: refuses new connections (503), sends close 1001 to every client, waits up to
   * `shutdownTimeout` ms for their closing handshakes, terminates the rest, then closes the adapter
   * (and the HTTP server, if `listen()` created it). Calling it again returns the same promise.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#drain();
    return this.#shutdown;
  }

  async #drain(): Promise<void> {
    this.#accepting = false;
    this.#heartbeat.stop();
    this.#hub.stopExpiry();
    const clients = [...this.#hub.clients()];
    this.#logger.info({ clients: clients.length }, "shutting down");
    const closed = clients.map((client) => client.whenClosed());
    for (const client of clients) client.close(CloseCode.GoingAway, "server shutdown", "server_shutdown");
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.options.shutdownTimeout);
    });
    const outcome = await Promise.race([Promise.all(closed), deadline]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      for (const client of clients) client.terminate("server_shutdown");
    }
    for (const detach of this.#detachers.splice(0)) detach();
    this.#wss.close();
    await this.#adapter.close();
    const own = this.#ownServer;
    if (own) {
      own.closeAllConnections();
      await new Promise<void>((resolve) => own.close(() => resolve()));
    }
    this.#logger.info({}, "shut down");
  }

  // ---- delivery and views -------------------------------------------------------------------

  /** Sends `{ type, data }` to every client of the cluster; returns the local recipient count. */
  broadcast(type: string, data?: unknown, options?: BroadcastOptions): number {
    return this.#hub.broadcast(type, data, options);
  }

  /** Sends `{ type, data }` to every member of a room across the cluster; returns the local count. */
  broadcastToRoom(room: RoomName, type: string, data?: unknown, options?: BroadcastOptions): number {
    return this.#hub.broadcastToRoom(room, type, data, options);
  }

  /** Sends `{ type, data }` to one client on any node; true when it is local and was queued. */
  sendTo(clientId: ClientId, type: string, data?: unknown): boolean {
    return this.#hub.sendTo(clientId, type, data);
  }

  /**
   * Publishes `{ type, data }` to a room across the cluster, as the server: a namespace whose
   * `publish` rule is `"server"` is published to this way. Resolves `{}`; in a room that keeps
   * history it will resolve the publication's `offset`.
   *
   * @throws ConduitError `invalid_room` for a malformed room name, `forbidden` for a room in a
   * namespace this server does not serve, `reserved_type` for a type the server itself uses
   *
   * @example
   * ```ts
   * await server.publish("news:sport", "headline", { text: "2-1" });
   * ```
   */
  async publish(room: RoomName, type: string, data?: unknown): Promise<PublishResult> {
    const problem = invalidRoomReason(room);
    if (problem !== undefined) throw new ConduitError(ErrorCode.InvalidRoom, problem);
    if (this.#hub.rulesFor(room) === undefined) {
      throw new ConduitError(ErrorCode.Forbidden, `room ${JSON.stringify(room)} is in a namespace this server does not serve`);
    }
    if (typeof type !== "string" || type.length === 0)
      throw new ConduitError(ErrorCode.InvalidMessage, 'field "type" must be a non-empty string');
    if (RESERVED_TYPES.has(type)) throw new ConduitError(ErrorCode.ReservedType, `"${type}" is reserved and cannot be published`);
    // History seam: when the room's namespace keeps history, the history store gives the
    // publication its offset before delivery (or refuses with `unavailable`), and this resolves it.
    this.#hub.broadcastToRoom(room, type, data ?? null);
    return {};
  }

  /**
   * Sends `{ type, data }` to every connection of a user, on every node.
   * @returns how many connections of this node it was queued for
   */
  sendToUser(userId: string, type: string, data?: unknown): number {
    return this.#hub.sendToUser(userId, type, data);
  }

  /** Sends `{ type, data }` to one client on any node (the same as {@link ConduitServer.sendTo}). */
  sendToClient(clientId: ClientId, type: string, data?: unknown): boolean {
    return this.#hub.sendTo(clientId, type, data);
  }

  /**
   * Closes every connection of a user, on every node (default close code 4003, reason `disconnected`).
   * Its `disconnect` event says `"disconnected"`.
   * @returns how many connections of this node it closed
   * @throws TypeError for a code other than 1000 or 3000–4999, or a reason longer than 123 bytes
   */
  disconnectUser(userId: string, options: DisconnectOptions = {}): number {
    return this.#hub.disconnect({ target: { userId }, ...closeFrame(options) });
  }

  /**
   * Closes one client on whichever node holds it (default close code 4003, reason `disconnected`).
   * @returns how many connections of this node it closed (0 or 1)
   * @throws TypeError for a code other than 1000 or 3000–4999, or a reason longer than 123 bytes
   */
  disconnectClient(clientId: ClientId, options: DisconnectOptions = {}): number {
    return this.#hub.disconnect({ target: { clientId }, ...closeFrame(options) });
  }

  /** The cluster's connections: the total and each live node's, this node's counted now. */
  async info(): Promise<ClusterInfo> {
    const listed = await this.#adapter.nodes();
    const nodes = listed.map((node) => ({ id: node.nodeId, connections: node.nodeId === this.nodeId ? this.clientCount : node.clients }));
    // This node answers even while its report is missing (Redis away): it is live, it is asking.
    if (!nodes.some((node) => node.id === this.nodeId)) nodes.push({ id: this.nodeId, connections: this.clientCount });
    return { connections: nodes.reduce((sum, node) => sum + node.connections, 0), nodes };
  }

  /** A local client by id. */
  getClient(clientId: ClientId): Client | undefined {
    return this.#hub.getClient(clientId);
  }

  /** The local members of a room. */
  getRoomClients(room: RoomName): Client[] {
    return this.#hub.getRoomClients(room);
  }

  /** The members of a room on every node of the cluster. */
  roomMembers(room: RoomName): Promise<MemberInfo[]> {
    return this.#adapter.roomMembers(room);
  }

  /** The member count of a room on every node of the cluster. */
  roomSize(room: RoomName): Promise<number> {
    return this.#adapter.roomSize(room);
  }

  /** The rooms with a member on this node. */
  rooms(): RoomName[] {
    return this.#hub.roomNames();
  }

  /** The live nodes of the cluster. */
  nodes(): Promise<NodeInfo[]> {
    return this.#adapter.nodes();
  }

  /** Every client of this node. */
  clients(): IterableIterator<Client> {
    return this.#hub.clients();
  }

  /** How many clients this node holds. */
  get clientCount(): number {
    return this.#hub.clientCount;
  }

  /** How many rooms have a member on this node. */
  get roomCount(): number {
    return this.#hub.roomCount;
  }

  /** This node's id in the cluster (random per process start). */
  get nodeId(): string {
    return this.#hub.nodeId;
  }
}

/** The close code and reason of a disconnect, defaults applied, checked before anything closes. */
function closeFrame(options: DisconnectOptions): { code: number; reason: string } {
  const problem = disconnectOptionsProblem(options.code, options.reason);
  if (problem !== undefined) throw new TypeError(`conduit-ws: ${problem}`);
  return { code: options.code ?? DEFAULT_DISCONNECT_CODE, reason: options.reason ?? DEFAULT_DISCONNECT_REASON };
}

/**
 * Creates a conduit-ws server. Nothing listens until you call `listen()` or `attach()`.
 *
 * @example
 * ```ts
 * import { createServer } from "@conduit/websocket";
 * const server = createServer();
 * await server.listen(8080); // ws://localhost:8080/ws
 * ```
 */
export function createServer(options: Partial<ServerOptions> = {}): ConduitServer {
  return new ConduitServer(options);
}
