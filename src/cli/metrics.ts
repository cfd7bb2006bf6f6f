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
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Instrumentation } from "../instrumentation.js";
import type { ConduitServer } from "../server.js";

/**
 * Distinct `type` label values kept per metric. Clients choose broadcast types, so without a cap a
 * client could create unbounded series and exhaust the server's (and Prometheus's) memory; types
 * beyond the cap are counted under `type="other"`.
 */
export const MAX_TYPE_LABELS = 100;

/** A bounded set of label values: the first {@link MAX_TYPE_LABELS} seen, then `other`. */
class LabelCap {
  readonly #seen = new Set<string>();
  label(type: string): string {
    if (this.#seen.has(type)) return type;
    if (this.#seen.size >= MAX_TYPE_LABELS) return "other";
    this.#seen.add(type);
    return type;
  }
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
  readonly #inTypes = new LabelCap();
  readonly #outTypes = new LabelCap();
  readonly #errorTypes = new LabelCap();
  #server: ConduitServer | undefined;

  constructor() {
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
      help: "Messages received from clients, by type (unknown, invalid and binary are their own types).",
      labelNames: ["type"],
      registers,
    });
    this.#messagesOut = new Counter({
      name: "conduit_messages_out_total",
      help: "Messages queued for delivery to clients, by type (one per recipient).",
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
    server.on("disconnect", (_client, reason) => this.#disconnects.inc({ reason }));
  }

  /** @see Instrumentation.messageIn */
  messageIn(type: string): void {
    this.#messagesIn.inc({ type: this.#inTypes.label(type) });
  }

  /** @see Instrumentation.messageOut */
  messageOut(type: string, count: number): void {
    this.#messagesOut.inc({ type: this.#outTypes.label(type) }, count);
  }

  /** @see Instrumentation.handlerError */
  handlerError(type: string): void {
    this.#handlerErrors.inc({ type: this.#errorTypes.label(type) });
  }

  /** @see Instrumentation.broadcast */
  broadcast(recipients: number): void {
    this.#broadcastRecipients.observe(recipients);
  }
}
