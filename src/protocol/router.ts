/**
 * The router: finds the handler for a message's `type`, validates its `data`, runs it, and makes sure
 * a message with an `id` gets exactly one reply (docs/PROTOCOL.md): the handler's, an error, or an `ack`.
 *
 * @module
 */
import type { MemberInfo, NodeInfo } from "../adapter/adapter.js";
import { ConduitError, ErrorCode } from "../errors.js";
import type { Connection } from "../hub/client.js";
import type { Instrumentation } from "../instrumentation.js";
import type { Logger } from "../logger.js";
import type { ServerOptions } from "../options.js";
import type { BroadcastOptions, Client, ClientId, RoomName } from "../types.js";
import { LogThrottle } from "../log-throttle.js";
import { envelope, errorMessage, type Message } from "./message.js";
import { describeIssues, type StandardSchemaV1 } from "./schema.js";

/** Where parsed messages go: the router implements this. */
export interface MessageDispatcher {
  /** Handles one parsed text message. Never throws. */
  dispatch(client: Connection, message: Message): void;
  /** Handles one binary frame. Never throws. */
  dispatchBinary(client: Connection, data: Buffer): void;
}

/**
 * What a handler reaches through `ctx.server`: delivery and the views of clients and rooms.
 * `ConduitServer` implements it.
 */
export interface HandlerServer {
  /** The resolved options (defaults applied). */
  readonly options: Readonly<ServerOptions>;
  /** This node's id in the cluster (random per process start). */
  readonly nodeId: string;
  /** How many clients this node holds. */
  readonly clientCount: number;
  /** Sends `{ type, data }` to every client of the cluster; returns the local recipient count. */
  broadcast(type: string, data?: unknown, options?: BroadcastOptions): number;
  /** Sends `{ type, data }` to every member of a room across the cluster; returns the local count. */
  broadcastToRoom(room: RoomName, type: string, data?: unknown, options?: BroadcastOptions): number;
  /** Sends `{ type, data }` to one client on any node; true when it is local and was queued. */
  sendTo(clientId: ClientId, type: string, data?: unknown): boolean;
  /** A local client by id. */
  getClient(clientId: ClientId): Client | undefined;
  /** Every client of this node. */
  clients(): IterableIterator<Client>;
  /** The local members of a room. */
  getRoomClients(room: RoomName): Client[];
  /** The members of a room on every node of the cluster. */
  roomMembers(room: RoomName): Promise<MemberInfo[]>;
  /** The member count of a room on every node of the cluster. */
  roomSize(room: RoomName): Promise<number>;
  /** The rooms with a member on this node. */
  rooms(): RoomName[];
  /** The live nodes of the cluster. */
  nodes(): Promise<NodeInfo[]>;
}

/** What a handler receives besides the client and the message. */
export interface HandlerContext {
  /** The server: broadcast, rooms, other clients. */
  readonly server: HandlerServer;
  /** The request's `id`, when the client sent one. */
  readonly id: string | undefined;
  /** Whether the one direct reply has been sent (by {@link HandlerContext.reply} or an error). */
  readonly replied: boolean;
  /**
   * Sends the direct reply, carrying the request's `id`. Only the first reply is sent; later calls are
   * ignored (use `client.send` for further messages). A handler that never replies to a request with
   * an `id` makes the router answer `{"type":"ack","id":…}`.
   */
  reply(type: string, data?: unknown): void;
  /** Sends the direct reply as an error (`{"type":"error","data":{"code","message"}}`). */
  replyError(code: string, message: string): void;
}

/**
 * A message handler. It may be async; a throw or rejection becomes an error reply without a stack
 * trace, and one that does not settle within `handlerTimeout` gets a `handler_timeout` error.
 *
 * @typeParam T - the type of `message.data` (inferred from the schema when one is given)
 */
export type Handler<T = unknown> = (ctx: HandlerContext, client: Client, message: Message<T>) => void | Promise<void>;

/** A handler with a Standard Schema (zod, valibot, arktype) for its `data`. */
export interface HandlerDefinition<S extends StandardSchemaV1> {
  /** Validates `data`; a failure is an error reply naming the field, and the handler is not run. */
  schema: S;
  /** Receives the parsed, typed `data`; it is always present, since the schema accepted it. */
  handler: (
    ctx: HandlerContext,
    client: Client,
    message: Message<StandardSchemaV1.InferOutput<S>> & { data: StandardSchemaV1.InferOutput<S> },
  ) => void | Promise<void>;
}

/** Handles binary frames (the default answers `binary_not_supported`). */
export type BinaryHandler = (ctx: HandlerContext, client: Client, data: Buffer) => void | Promise<void>;

/** The least time between two log lines about one client's failing handlers. */
const LOG_INTERVAL_MS = 10_000;

interface Route {
  handler: Handler;
  schema: StandardSchemaV1 | undefined;
}

/** The reply half of a {@link HandlerContext}: remembers whether the one reply went out. */
class RequestContext implements HandlerContext {
  readonly server: HandlerServer;
  readonly id: string | undefined;
  /** The client that sent the message (the router's own view; handlers get it as an argument). */
  readonly client: Connection;
  #replied = false;

  constructor(server: HandlerServer, client: Connection, id: string | undefined) {
    this.server = server;
    this.client = client;
    this.id = id;
  }

  get replied(): boolean {
    return this.#replied;
  }

  reply(type: string, data?: unknown): void {
    if (this.#replied) return;
    const message = envelope(type, data, this.id);
    // Serialising may throw (a cycle, a BigInt, data nested too deep for JSON.stringify). Mark the
    // reply as sent only once it was, so the router's error reply can still take its place.
    this.client.sendReply(message);
    this.#replied = true;
  }

  replyError(code: string, message: string): void {
    if (this.#replied) return;
    this.#replied = true;
    this.client.sendReply(errorMessage(code, message, this.id));
  }

  /** Called when the handler has finished: a request nobody answered gets its ack. */
  settle(): void {
    if (!this.#replied && this.id !== undefined) this.reply("ack");
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
}

/** Routes messages by `type` to registered handlers. Owned by the server. */
export class Router implements MessageDispatcher {
  readonly #routes = new Map<string, Route>();
  readonly #server: HandlerServer;
  readonly #logger: Logger;
  readonly #metrics: Instrumentation | undefined;
  readonly #timeout: number;
  #binaryHandler: BinaryHandler | undefined;
  readonly #logThrottle = new LogThrottle(LOG_INTERVAL_MS);

  /**
   * @param server - passed to handlers as `ctx.server`
   * @param handlerTimeout - ms before an unsettled handler gets a `handler_timeout` reply
   */
  constructor(server: HandlerServer, handlerTimeout: number, logger: Logger, metrics: Instrumentation | undefined) {
    this.#server = server;
    this.#timeout = handlerTimeout;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  /** Registers (or replaces) the handler for `type`. */
  register(type: string, handler: Handler, schema?: StandardSchemaV1): void {
    if (typeof type !== "string" || type.length === 0) {
      throw new TypeError("conduit-ws: registerHandler needs a non-empty string type");
    }
    if (typeof handler !== "function") {
      throw new TypeError(`conduit-ws: the handler for "${type}" must be a function`);
    }
    this.#routes.set(type, { handler, schema });
  }

  /** Removes the handler for `type`; true when there was one. */
  unregister(type: string): boolean {
    return this.#routes.delete(type);
  }

  /** Whether a handler is registered for `type`. */
  has(type: string): boolean {
    return this.#routes.has(type);
  }

  /** Registers the binary-frame handler, or removes it with `undefined`. */
  setBinaryHandler(handler: BinaryHandler | undefined): void {
    this.#binaryHandler = handler;
  }

  /** The hub calls this for every parsed message. */
  dispatch(client: Connection, message: Message): void {
    const route = this.#routes.get(message.type);
    this.#metrics?.messageIn?.(route === undefined ? "unknown" : message.type);
    if (route === undefined) {
      client.sendError(ErrorCode.UnknownType, `unknown message type "${message.type}"`, message.id);
      return;
    }
    const ctx = new RequestContext(this.#server, client, message.id);
    if (route.schema === undefined) {
      this.#run(ctx, message.type, route.handler, client, message);
      return;
    }
    let checked: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
    try {
      checked = route.schema["~standard"].validate(message.data);
    } catch (error) {
      // A schema can throw (a recursive schema on deeply nested data): answer like a failed handler.
      this.#fail(ctx, message.type, error);
      return;
    }
    if (checked instanceof Promise) {
      checked.then(
        (result) => this.#afterValidation(ctx, client, message, route, result),
        (error: unknown) => this.#fail(ctx, message.type, error),
      );
      return;
    }
    this.#afterValidation(ctx, client, message, route, checked);
  }

  #afterValidation(
    ctx: RequestContext,
    client: Connection,
    message: Message,
    route: Route,
    result: StandardSchemaV1.Result<unknown>,
  ): void {
    if (result.issues) {
      ctx.replyError(ErrorCode.ValidationFailed, describeIssues(result.issues));
      return;
    }
    const parsed: Message = { ...message, data: result.value };
    this.#run(ctx, message.type, route.handler, client, parsed);
  }

  /** The hub calls this for every binary frame. */
  dispatchBinary(client: Connection, data: Buffer): void {
    this.#metrics?.messageIn?.("binary");
    const handler = this.#binaryHandler;
    const ctx = new RequestContext(this.#server, client, undefined);
    if (handler === undefined) {
      ctx.replyError(ErrorCode.BinaryNotSupported, "binary frames are not supported by this server");
      return;
    }
    this.#run(ctx, "binary", handler, client, data);
  }

  /**
   * Runs a handler; sync handlers settle at once, async ones race the handler timeout. The handler
   * and its arguments are passed in rather than wrapped in a closure: one allocation less per message.
   */
  #run<T>(
    ctx: RequestContext,
    type: string,
    handler: (ctx: HandlerContext, client: Client, payload: T) => void | Promise<void>,
    client: Connection,
    payload: T,
  ): void {
    let result: unknown;
    try {
      result = handler(ctx, client, payload);
    } catch (error) {
      this.#fail(ctx, type, error);
      return;
    }
    if (!isThenable(result)) {
      ctx.settle();
      return;
    }
    const timer = setTimeout(() => {
      this.#metrics?.handlerError?.(type);
      const suppressed = this.#logThrottle.admit(ctx.client);
      if (suppressed !== undefined)
        this.#logger.warn({ type, timeoutMs: this.#timeout, clientId: ctx.client.id, suppressed }, "handler timed out");
      ctx.replyError(ErrorCode.HandlerTimeout, `handler for "${type}" did not finish within ${this.#timeout} ms`);
    }, this.#timeout);
    // A handler that never settles must not keep a shut-down server's process alive.
    timer.unref();
    result.then(
      () => {
        clearTimeout(timer);
        ctx.settle();
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.#fail(ctx, type, error);
      },
    );
  }

  #fail(ctx: RequestContext, type: string, error: unknown): void {
    this.#metrics?.handlerError?.(type);
    if (error instanceof ConduitError) {
      ctx.replyError(error.code, error.message);
      return;
    }
    // The stack goes to the server's log, never to the client; a client whose messages keep making a
    // handler fail gets one line per interval, with the count of the ones held back.
    const suppressed = this.#logThrottle.admit(ctx.client);
    if (suppressed !== undefined) this.#logger.error({ type, err: error, clientId: ctx.client.id, suppressed }, "handler failed");
    ctx.replyError(ErrorCode.HandlerError, `handler for "${type}" failed`);
  }
}
