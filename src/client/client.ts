/**
 * The client: one logical connection to a conduit-ws server that survives the loss of its sockets.
 *
 * It reconnects by itself (exponential backoff with jitter) unless the close code says retrying cannot
 * help (`close-policy.ts`), asks the token function again before every attempt, refreshes the token
 * before it expires (`token-refresh.ts`), joins its rooms again before it reports `open`, and holds
 * sends in a bounded queue while it is not connected. It uses nothing but the WebSocket API, so the
 * same file runs in a browser (global `WebSocket`) and in Node (with `ws` passed in).
 *
 * @module
 */
import { backoffDelay, defaultReconnect, type ResolvedReconnect } from "./backoff.js";
import { nextStep } from "./close-policy.js";
import { ClientErrorCode, closedError, RequestError } from "./errors.js";
import { type AnyHandler, guarded, HandlerRegistry } from "./handlers.js";
import { encodeEnvelope, Outbox } from "./outbox.js";
import { TokenRefresher } from "./token-refresh.js";
import type {
  BuiltinEvents,
  ClientMessage,
  ClientOptions,
  ConnectionState,
  MessageHandler,
  Reply,
  ReplyData,
  RequestOptions,
  StateChange,
  StateListener,
  TokenSource,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

/** The events `on()` accepts: the built-in ones, plus your own map of type → data. */
export type EventMap<Events extends object> = BuiltinEvents & Events;

const OPEN = 1;
const noop = (): void => {};

/** Resolves a relative URL against the page and maps http(s) to ws(s), so `"/ws"` works in a page. */
function resolveUrl(url: string): URL {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
    throw new TypeError(`ConduitClient: expected a ws:, wss:, http: or https: URL, got ${JSON.stringify(url)}`);
  }
  return resolved;
}

/**
 * A connection to a conduit-ws server that reconnects by itself.
 *
 * @typeParam Events - your own server-sent types and their `data`, e.g. `{ chat: { text: string } }`;
 * the default accepts any type with `unknown` data.
 *
 * @example
 * ```ts
 * import { ConduitClient } from "@conduit/websocket/client";
 *
 * const client = new ConduitClient<{ chat: { name: string; text: string } }>("ws://localhost:8080/ws", {
 *   token: () => fetchFreshToken(),
 * });
 * client.onState(({ state, code }) => console.log("connection:", state, code ?? ""));
 * client.on("chat", ({ name, text }) => console.log(`${name}: ${text}`));
 * await client.join("lobby");
 * await client.ready();
 * await client.publish("lobby", "chat", { name: "ada", text: "hi" });
 * const { data } = await client.request("presence", { room: "lobby" }, { timeout: 5000 });
 * console.log(data.count, "in the room; I am", client.id);
 * ```
 */
export class ConduitClient<Events extends object = Record<string, unknown>> {
  /** The endpoint, without the token. */
  readonly url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #token: TokenSource | undefined;
  readonly #reconnect: ResolvedReconnect | false;
  readonly #requestTimeout: number;
  readonly #pingInterval: number;
  /** Undefined when refresh is off, or the token is not a function and so cannot be renewed. */
  readonly #refresher: TokenRefresher | undefined;

  #state: ConnectionState = "closed";
  /** What the last `closed` state change said, for `ready()` called after it. */
  #closedWith: StateChange | undefined;
  /** Failed attempts since the last open connection. */
  #attempt = 0;
  /** Bumped by connect() and close(): callbacks of an older epoch find it changed and do nothing. */
  #epoch = 0;
  #wanted = false;
  #socket: WebSocketLike | undefined;
  /** The token the current socket was opened with. */
  #socketToken: string | null | undefined;
  /** The server's id of the current connection, read with `status` once it opened. */
  #id: string | undefined;
  /** Whether the last attempt was refused with 401: a second refusal in a row ends in `closed`. */
  #tokenRefused = false;
  /** Open and rooms rejoined: sends go straight out. */
  #ready = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  readonly #outbox: Outbox;
  readonly #rooms = new Set<string>();
  readonly #handlers = new HandlerRegistry();
  readonly #stateListeners = new Set<StateListener>();

  /**
   * @param url - the endpoint, e.g. `ws://localhost:8080/ws`; in a page, a relative URL (`/ws`) is
   * resolved against the page's address
   * @param options - see {@link ClientOptions}
   * @throws TypeError when the URL is invalid, `refreshBefore` is not a number ≥ 0 or false, or no
   * WebSocket implementation is available
   */
  constructor(url: string, options: ClientOptions = {}) {
    this.url = resolveUrl(url).toString();
    const Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Impl === undefined) {
      throw new TypeError("ConduitClient: no global WebSocket; pass the WebSocket option or import @conduit/websocket/client from Node");
    }
    const refreshBefore = options.refreshBefore ?? 10_000;
    if (refreshBefore !== false && !(typeof refreshBefore === "number" && refreshBefore >= 0 && Number.isFinite(refreshBefore))) {
      throw new TypeError(`ConduitClient: refreshBefore must be milliseconds (a number ≥ 0) or false, got ${String(refreshBefore)}`);
    }
    this.#WebSocket = Impl;
    this.#token = options.token;
    this.#reconnect = options.reconnect === false ? false : { ...defaultReconnect, ...options.reconnect };
    this.#requestTimeout = options.requestTimeout ?? 10_000;
    this.#outbox = new Outbox(options.maxQueue ?? 100);
    this.#pingInterval = options.pingInterval ?? 25_000;
    const token = this.#token;
    if (refreshBefore !== false && typeof token === "function") {
      this.#refresher = new TokenRefresher(
        {
          fetchToken: async () => token(),
          sendRefresh: (fresh) => this.#sendRefresh(fresh),
          failed: (code, message) => this.#handlers.dispatch({ type: "error", data: { code, message } }),
        },
        refreshBefore,
      );
    }
    if (options.autoConnect !== false) this.connect();
  }

  /** The connection state; {@link ConduitClient.onState} reports each change. */
  get state(): ConnectionState {
    return this.#state;
  }

  /**
   * This connection's id on the server (the `client_id` of presence and member events), known once
   * the state is `open`; undefined before, and while disconnected. Every reconnect brings a new one.
   */
  get id(): string | undefined {
    return this.#id;
  }

  /** The rooms joined through {@link ConduitClient.join}: they are joined again after a reconnect. */
  get rooms(): string[] {
    return [...this.#rooms];
  }

  /** Frames waiting in the queue for the connection to open. */
  get queued(): number {
    return this.#outbox.queued;
  }

  /** Starts connecting (done by the constructor unless `autoConnect` is false). Idempotent. */
  connect(): void {
    if (this.#wanted) return;
    this.#wanted = true;
    this.#attempt = 0;
    this.#tokenRefused = false;
    const epoch = ++this.#epoch;
    this.#setState("connecting", {});
    void this.#open(epoch);
  }

  /**
   * Closes the connection and stops reconnecting. Pending requests reject with code `closed`, and the
   * queue is emptied. `connect()` starts again; the rooms are remembered.
   */
  close(code = 1000, reason = ""): void {
    this.#wanted = false;
    this.#epoch++;
    clearTimeout(this.#retryTimer);
    const socket = this.#socket;
    this.#teardown(ClientErrorCode.Closed);
    if (socket !== undefined && socket.readyState <= OPEN) socket.close(code, reason);
    this.#outbox.failQueued(ClientErrorCode.Closed, "the client was closed");
    this.#setState("closed", {});
  }

  /**
   * Resolves once the state is `open`: connected, and every remembered room joined again. Rejects
   * with a {@link RequestError} of code `closed` when the client is closed, or becomes closed first
   * (`close()`, a close code after which it does not reconnect, `maxAttempts` run out).
   */
  ready(): Promise<void> {
    if (this.#state === "open") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(closedError(this.#closedWith));
    return new Promise((resolve, reject) => {
      const stop = this.onState((change) => {
        if (change.state === "open") resolve();
        else if (change.state === "closed") reject(closedError(change));
        else return;
        stop();
      });
    });
  }

  /**
   * Sends `{type, data}` without waiting for anything. While not connected it is queued; returns false
   * when the queue is full and the message was refused.
   */
  send(type: string, data?: unknown): boolean {
    return this.#write(encodeEnvelope(type, data), undefined);
  }

  /**
   * Sends `{type, data, id}` and resolves with the reply carrying that `id`. Rejects with a
   * {@link RequestError}: the server's code on an error reply, else `timeout`, `disconnected` (the
   * connection ended after the request was sent), `queue_full` or `closed`.
   *
   * @typeParam R - the reply's `data` type; inferred for the built-in types (`presence`, `status`, …)
   */
  request<R = never, K extends string = string>(
    type: K,
    data?: unknown,
    options: RequestOptions = {},
  ): Promise<Reply<[R] extends [never] ? ReplyData<K> : R>> {
    return this.#request(type, data, options.timeout ?? this.#requestTimeout, false) as Promise<
      Reply<[R] extends [never] ? ReplyData<K> : R>
    >;
  }

  /**
   * Joins a room and remembers it, so that it is joined again after every reconnect. A refusal
   * rejects with the server's code (`forbidden`, `too_many_rooms`, …) and the room is not remembered.
   */
  async join(room: string, options?: RequestOptions): Promise<void> {
    await this.request("join_room", { room }, options);
    this.#rooms.add(room);
  }

  /** Leaves a room; it is forgotten at once, so a reconnect during the call does not rejoin it. */
  async leave(room: string, options?: RequestOptions): Promise<void> {
    this.#rooms.delete(room);
    await this.request("leave_room", { room }, options);
  }

  /**
   * Sends `data` as a message of `type` to every member of `room` (the built-in `broadcast`, this
   * client included when it is a member). Resolves when the server has sent it out (its `ack`);
   * rejects like {@link ConduitClient.request}, e.g. with `not_in_room` or `forbidden`.
   */
  async publish(room: string, type: string, data?: unknown, options?: RequestOptions): Promise<void> {
    await this.request("broadcast", { room, type, payload: data }, options);
  }

  /**
   * Calls `handler` for every message of `type` the server sends unasked (replies to requests go to
   * their promise instead). Returns a function that removes the handler.
   */
  on<K extends keyof EventMap<Events> & string>(type: K, handler: MessageHandler<EventMap<Events>[K]>): () => void {
    this.#handlers.add(type, handler as AnyHandler, false);
    return () => this.off(type, handler);
  }

  /**
   * Like {@link ConduitClient.on}, for the next such message only. Returns a function that removes
   * the handler if it has not been called yet.
   */
  once<K extends keyof EventMap<Events> & string>(type: K, handler: MessageHandler<EventMap<Events>[K]>): () => void {
    this.#handlers.add(type, handler as AnyHandler, true);
    return () => this.off(type, handler);
  }

  /** Removes a handler added with {@link ConduitClient.on} or {@link ConduitClient.once}. */
  off<K extends keyof EventMap<Events> & string>(type: K, handler: MessageHandler<EventMap<Events>[K]>): void {
    this.#handlers.remove(type, handler as AnyHandler);
  }

  /**
   * Calls `listener` on every connection-state change, and for every new retry while reconnecting.
   * Returns a function that removes it.
   */
  onState(listener: StateListener): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  async #open(epoch: number): Promise<void> {
    let token: string | null | undefined;
    try {
      token = typeof this.#token === "function" ? await this.#token() : this.#token;
    } catch {
      if (epoch === this.#epoch) this.#retry(epoch, { reason: "token function failed" });
      return;
    }
    if (epoch !== this.#epoch) return;
    const url = new URL(this.url);
    if (token) url.searchParams.set("token", token);
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(url.toString());
    } catch {
      this.#retry(epoch, { reason: "WebSocket constructor failed" });
      return;
    }
    this.#socket = socket;
    this.#socketToken = token;
    socket.onopen = () => void this.#onOpen(socket, epoch);
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onclose = (event) => this.#onClose(socket, epoch, event.code, event.reason);
    // `ws` throws an 'error' event nobody listens to; the close event that follows does the work.
    socket.onerror = noop;
  }

  async #onOpen(socket: WebSocketLike, epoch: number): Promise<void> {
    this.#tokenRefused = false;
    // From the start, so that a `token_expiring` pushed during the rejoin is acted on.
    this.#refresher?.start(this.#socketToken);
    // Rooms first: a queued broadcast to a room must find the room joined again. The id comes with
    // them, in the same round trip, so that it is known when `open` is reported.
    const rooms = [...this.#rooms];
    const status = this.#request("status", undefined, this.#requestTimeout, true).catch(() => undefined);
    const outcomes = await Promise.allSettled(rooms.map((room) => this.#request("join_room", { room }, this.#requestTimeout, true)));
    const id = ((await status)?.data as { client_id?: unknown } | undefined)?.client_id;
    if (socket !== this.#socket || epoch !== this.#epoch) return;
    this.#id = typeof id === "string" ? id : undefined;
    outcomes.forEach((outcome, i) => {
      const error = outcome.status === "rejected" ? (outcome.reason as RequestError) : undefined;
      // The server refused the room (`forbidden`, a limit): asking again on every reconnect would be
      // refused the same way, so forget it and tell the application.
      if (error !== undefined && !Object.values<string>(ClientErrorCode).includes(error.code)) {
        this.#rooms.delete(rooms[i]!);
        this.#handlers.dispatch({ type: "room_left", data: { room: rooms[i]!, reason: error.code } });
      }
    });
    // A room_left handler may have closed the client.
    if (socket !== this.#socket || epoch !== this.#epoch) return;
    this.#ready = true;
    this.#attempt = 0;
    for (const frame of this.#outbox.drain()) this.#write(frame.text, frame.id);
    if (this.#pingInterval > 0) this.#pingTimer = setInterval(() => this.#ping(socket), this.#pingInterval);
    this.#setState("open", {});
  }

  #onMessage(raw: unknown): void {
    if (typeof raw !== "string") return;
    let message: ClientMessage;
    try {
      message = JSON.parse(raw) as ClientMessage;
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null || typeof message.type !== "string") return;
    // A reply goes to its request, never to on() handlers.
    if (typeof message.id === "string") return this.#outbox.settle(message as ClientMessage & { id: string });
    const data = message.data as { room?: unknown; expires_at?: unknown } | undefined;
    // The server took us out of a room (a refreshed token no longer grants it): do not rejoin it.
    if (message.type === "room_left" && typeof data?.room === "string") this.#rooms.delete(data.room);
    else if (message.type === "token_expiring") this.#refresher?.expiring(data?.expires_at);
    this.#handlers.dispatch(message);
  }

  #onClose(socket: WebSocketLike, epoch: number, code: number, reason: string): void {
    if (socket !== this.#socket || epoch !== this.#epoch) return;
    const status = socket.handshakeStatus;
    this.#teardown(ClientErrorCode.Disconnected);
    const detail: Partial<StateChange> = { code };
    if (reason) detail.reason = reason;
    if (status !== undefined) detail.status = status;
    const renewable = typeof this.#token === "function";
    const step = nextStep(code, status, renewable, this.#tokenRefused);
    this.#tokenRefused = status === 401;
    if (step === "stop") this.#giveUp(detail, "the server ended the connection");
    else this.#retry(epoch, detail);
  }

  /** Forgets the current socket and fails the requests it carried with `code`. */
  #teardown(code: ClientErrorCode): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#ready = false;
    this.#id = undefined;
    this.#refresher?.stop();
    clearInterval(this.#pingTimer);
    if (socket === undefined) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    this.#outbox.failSent(socket, code);
  }

  #retry(epoch: number, detail: Partial<StateChange>): void {
    if (this.#reconnect === false || this.#attempt >= this.#reconnect.maxAttempts) {
      this.#giveUp(detail, "gave up reconnecting");
      return;
    }
    this.#attempt++;
    const delay = backoffDelay(this.#attempt, this.#reconnect);
    this.#setState("reconnecting", { ...detail, delay });
    // A state listener may have called close() or connect(): then this retry is no longer ours.
    if (epoch !== this.#epoch) return;
    this.#retryTimer = setTimeout(() => {
      if (epoch === this.#epoch) void this.#open(epoch);
    }, delay);
  }

  /** Stops for good: state `closed`, with the close code, reason and HTTP status that led to it. */
  #giveUp(detail: Partial<StateChange>, why: string): void {
    this.#wanted = false;
    this.#outbox.failQueued(ClientErrorCode.Closed, why);
    this.#setState("closed", detail);
  }

  /** A connection can die without a close event (a cable pulled): a ping that goes unanswered finds out. */
  #ping(socket: WebSocketLike): void {
    this.#request("ping", undefined, this.#requestTimeout, false).catch((error: RequestError) => {
      if (error.code !== ClientErrorCode.Timeout || socket !== this.#socket) return;
      const epoch = this.#epoch;
      this.#teardown(ClientErrorCode.Disconnected);
      socket.close(4000, "ping timeout");
      this.#retry(epoch, { reason: "ping timeout" });
    });
  }

  /** The `refresh` request of the token refresher, on the open socket only: resolves with `expires_at`. */
  async #sendRefresh(token: string): Promise<unknown> {
    if (this.#socket?.readyState !== OPEN) throw new RequestError(ClientErrorCode.Disconnected, "not connected", "refresh");
    const reply = await this.#request("refresh", { token }, this.#requestTimeout, true);
    return (reply.data as { expires_at?: unknown } | undefined)?.expires_at;
  }

  #request(type: string, data: unknown, timeout: number, direct: boolean): Promise<Reply> {
    let request: ReturnType<Outbox["request"]>;
    try {
      request = this.#outbox.request(type, data, timeout);
    } catch (error) {
      return Promise.reject(error);
    }
    const { id, text, reply } = request;
    if (direct) this.#transmit(this.#socket!, text, id);
    else if (!this.#write(text, id)) this.#outbox.fail(id, ClientErrorCode.QueueFull, `the send queue is full (${this.#outbox.maxQueue})`);
    return reply;
  }

  /** Sends now when ready, else queues; false when the queue is full. */
  #write(text: string, id: string | undefined): boolean {
    const socket = this.#socket;
    if (this.#ready && socket !== undefined && socket.readyState === OPEN) {
      this.#transmit(socket, text, id);
      return true;
    }
    return this.#outbox.enqueue(text, id);
  }

  #transmit(socket: WebSocketLike, text: string, id: string | undefined): void {
    this.#outbox.sent(id, socket);
    socket.send(text);
  }

  #setState(state: ConnectionState, detail: Partial<StateChange>): void {
    const previous = this.#state;
    if (state === previous && state !== "reconnecting") return;
    this.#state = state;
    const change: StateChange = { ...detail, state, previous, attempt: this.#attempt };
    this.#closedWith = state === "closed" ? change : undefined;
    for (const listener of [...this.#stateListeners]) guarded(() => listener(change));
  }
}
