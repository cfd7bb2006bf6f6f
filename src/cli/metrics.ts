/**
 * Prometheus metrics for the standalone server: a prom-client registry of its own (never the global
 * one, so the library can be embedded next to other metrics) that implements the library's
 * {@link Instrumentation} hooks, plus gauges read from the server at scrape time and the default
 * process metrics.
 *
 * Metric names:
 * - `conduit_connections` (gauge) open WebSocket connections
 * - `conduit_rooms` (gauge) rooms with a member on this process
 * - `conduit_connections_accepted_total` (counter) handshakes completed
 * - `conduit_disconnects_total{reason}` (counter) connections ended, by reason
 * - `conduit_messages_in_total{type}` (counter) messages received, by type
 * - `conduit_messages_out_total{type}` (counter) messages queued for delivery, by type
 * - `conduit_handler_errors_total{type}` (counter) handlers that threw, rejected or timed out
 * - `conduit_broadcast_recipients` (histogram) local recipients per broadcast
 *
 * A `type` label names only a type the server knows: a built-in one ({@link BUILTIN_TYPES}) or one
 * the embedding code says it registered a handler for. Every other type, and every type a client
 * chose for its `broadcast`, is counted as `type="other"`: clients pick those freely, so labelling
 * them would let any client create series without end, and a first-come cap would let junk types
 * crowd out the application's own. Every label value is also cut to {@link MAX_LABEL_LENGTH}.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Instrumentation } from "../instrumentation.js";
import { RESERVED_TYPES } from "../protocol/message.js";
import type { ConduitServer } from "../server.js";

/** The label value of every type that gets no label of its own. */
export const OTHER_TYPE = "other";

/**
 * Longest label value kept, in UTF-16 code units. Every value here is chosen by the server, but a
 * registered type or a disconnect reason is still a string of any length, and each scrape repeats it
 * once per series; longer values are cut and end in `…`.
 */
export const MAX_LABEL_LENGTH = 64;

/**
 * The types the server itself defines: the built-in handlers' types, the replies and events it sends
 * (`pong`, `echo`, `error`, `ack`, `member_joined`, …), and the router's stand-ins for messages
 * without a handler (`unknown`), that did not parse (`invalid`) and binary frames (`binary`).
 */
export const BUILTIN_TYPES: ReadonlySet<string> = new Set([
  // The built-in handlers (docs/PROTOCOL.md); a server that replaces one keeps its label.
  "ping",
  "join_room",
  "leave_room",
  "broadcast",
  "echo",
  "status",
  "presence",
  // What the server sends on its own account; clients may not broadcast these.
  ...RESERVED_TYPES,
  "unknown",
  "invalid",
  "binary",
]);

/** Options of {@link ServerMetrics}. */
export interface ServerMetricsOptions {
  /**
   * Whether `type` has a handler the embedding code registered, so it earns a label of its own
   * beside {@link BUILTIN_TYPES}. Called per message: keep it a set lookup.
   * @default () => false (the standalone server registers no handlers beyond the built-ins)
   */
  isRegistered?: (type: string) => boolean;
}

/** `value` cut to {@link MAX_LABEL_LENGTH}, never splitting a surrogate pair. */
export function boundedLabel(value: string): string {
  if (value.length <= MAX_LABEL_LENGTH) return value;
  let end = MAX_LABEL_LENGTH - 1;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${value.slice(0, end)}…`;
}

/** The standalone server's metrics. */
export class ServerMetrics implements Instrumentation {
  /** The registry `/metrics` serves. */
  readonly registry = new Registry();
  readonly #messagesIn: Counter<"type">;
  readonly #messagesOut: Counter<"type">;
  readonly #handlerErrors: Counter<"type">;
  readonly #broadcastRecipients: Histogram;
  readonly #accepted: Counter;
  readonly #disconnects: Counter<"reason">;
  readonly #isRegistered: (type: string) => boolean;
  #server: ConduitServer | undefined;

  constructor(options: ServerMetricsOptions = {}) {
    this.#isRegistered = options.isRegistered ?? (() => false);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const metrics = this;
    new Gauge({
      name: "conduit_connections",
      help: "Open WebSocket connections on this process.",
      registers,
      collect() {
        this.set(metrics.#server?.clientCount ?? 0);
      },
    });
    new Gauge({
      name: "conduit_rooms",
      help: "Rooms with at least one member on this process.",
      registers,
      collect() {
        this.set(metrics.#server?.roomCount ?? 0);
      },
    });
    this.#accepted = new Counter({ name: "conduit_connections_accepted_total", help: "WebSocket handshakes completed.", registers });
    this.#disconnects = new Counter({
      name: "conduit_disconnects_total",
      help: "Connections ended, by reason (client_closed, heartbeat_timeout, slow_consumer, rate_limited, ...).",
      labelNames: ["reason"],
      registers,
    });
    this.#messagesIn = new Counter({
      name: "conduit_messages_in_total",
      help: "Messages received from clients, by type (unknown, invalid and binary are their own types; unregistered types: other).",
      labelNames: ["type"],
      registers,
    });
    this.#messagesOut = new Counter({
      name: "conduit_messages_out_total",
      help: "Messages queued for delivery to clients, by type (one per recipient; client-chosen and unregistered types: other).",
      labelNames: ["type"],
      registers,
    });
    this.#handlerErrors = new Counter({
      name: "conduit_handler_errors_total",
      help: "Handlers that threw, rejected or timed out, by message type.",
      labelNames: ["type"],
      registers,
    });
    this.#broadcastRecipients = new Histogram({
      name: "conduit_broadcast_recipients",
      help: "Local recipients per broadcast (to a room or to all).",
      buckets: [0, 1, 10, 100, 1000, 10_000, 100_000],
      registers,
    });
  }

  /** Reads the gauges from `server` and counts its connections; call once, after creating it. */
  observe(server: ConduitServer): void {
    this.#server = server;
    server.on("connection", () => this.#accepted.inc());
    server.on("disconnect", (_client, reason) => this.#disconnects.inc({ reason: boundedLabel(reason) }));
  }

  /** @see Instrumentation.messageIn */
  messageIn(type: string): void {
    this.#messagesIn.inc({ type: this.#typeLabel(type) });
  }

  /** @see Instrumentation.messageOut */
  messageOut(type: string, count: number, clientChosen?: boolean): void {
    this.#messagesOut.inc({ type: clientChosen === true ? OTHER_TYPE : this.#typeLabel(type) }, count);
  }

  /** @see Instrumentation.handlerError */
  handlerError(type: string): void {
    this.#handlerErrors.inc({ type: this.#typeLabel(type) });
  }

  /** @see Instrumentation.broadcast */
  broadcast(recipients: number): void {
    this.#broadcastRecipients.observe(recipients);
  }

  #typeLabel(type: string): string {
    return BUILTIN_TYPES.has(type) || this.#isRegistered(type) ? boundedLabel(type) : OTHER_TYPE;
  }
}
