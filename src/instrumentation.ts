/**
 * Metric hooks. The hub calls these on its hot paths, so each is optional and cheap to skip; the
 * standalone server plugs Prometheus counters in here (see `src/cli/metrics.ts`).
 *
 * @module
 */

/** Callbacks the hub invokes as traffic flows. All optional. */
export interface Instrumentation {
  /** A message of `type` arrived from a client (after parsing; `"invalid"` when it did not parse). */
  messageIn?(type: string): void;
  /** `count` copies of a message of `type` were queued for delivery. */
  messageOut?(type: string, count: number): void;
  /** A handler for `type` threw, rejected or timed out. */
  handlerError?(type: string): void;
  /** A broadcast (to a room or to all) reached `recipients` local clients. */
  broadcast?(recipients: number): void;
}
