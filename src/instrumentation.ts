/**
 * Metric hooks. The hub calls these on its hot paths, so each is optional and cheap to skip; the
 * standalone server plugs Prometheus counters in here (see `src/cli/metrics.ts`).
 *
 * @module
 */

/**
 * Callbacks the hub invokes as traffic flows. All optional.
 *
 * A `type` passed to {@link Instrumentation.messageOut} can be chosen by a client: the built-in
 * `broadcast` sends whatever `data.type` the client named. An implementation that keeps something
 * per type (a metric label, a map entry) must bound how many it keeps, or a client sending a new
 * type per message grows it without end; the standalone server's metrics keep the first 100 and
 * count the rest as `other` (`src/cli/metrics.ts`). `messageIn` and `handlerError` only ever see
 * the types of registered handlers, `"invalid"`, `"unknown"` and `"binary"`.
 */
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
