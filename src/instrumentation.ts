/**
 * Metric hooks. The hub calls these on its hot paths, so each is optional and cheap to skip; the
 * standalone server plugs Prometheus counters in here (see `src/cli/metrics.ts`).
 *
 * @module
 */

/**
 * Callbacks the hub invokes as traffic flows. All optional.
 *
 * Clients choose some of the types passed here: the built-in `broadcast` sends whatever `data.type`
 * the client named, and {@link Instrumentation.messageOut} says so with `clientChosen`. An
 * implementation that keeps something per type (a metric label, a map entry) should key it only by
 * types the application knows (built-in ones and those it registered handlers for) and fold the rest
 * into one bucket: a bounded count of "first seen" types would let a client's junk types crowd out the
 * application's own. The standalone server's metrics do this (`src/cli/metrics.ts`). `messageIn`
 * and `handlerError` only ever see the types of registered handlers, `"invalid"`, `"unknown"` and
 * `"binary"`.
 */
export interface Instrumentation {
  /** A message of `type` arrived from a client (after parsing; `"invalid"` when it did not parse). */
  messageIn?(type: string): void;
  /**
   * `count` copies of a message of `type` were queued for delivery. `clientChosen` is true when a
   * client picked `type` (the built-in `broadcast` relays its `data.type`); false or absent when the
   * server or the application did.
   */
  messageOut?(type: string, count: number, clientChosen?: boolean): void;
  /** A handler for `type` threw, rejected or timed out. */
  handlerError?(type: string): void;
  /** A broadcast (to a room or to all) reached `recipients` local clients. */
  broadcast?(recipients: number): void;
}
