/**
 * The namespace table conduit-ws runs with under `--namespaces`: the library's `namespaces` option
 * (and, for the CLI of the api scenario, the same table in a `--config` file). Every scenario uses
 * one room, {@link BENCH_ROOM}, whose name has no `:`, so its namespace is `""`; that namespace is
 * listed with the rules an open chat room has. The other entries are there so that the lookup on
 * every join and broadcast is a `Map` lookup among several keys, as in a real configuration, and
 * not a table of one.
 *
 * @module
 */
import type { NamespacesConfig } from "../../src/namespaces/config.js";

/** The one room every scenario's members join and every broadcast goes to. */
export const BENCH_ROOM = "bench";

/** The namespace of {@link BENCH_ROOM}: its name up to the first `:`, none here. */
export const BENCH_NAMESPACE = "";

/** Rules by namespace; the first one covers every room the scenarios use. */
export const BENCH_NAMESPACES = {
  [BENCH_NAMESPACE]: { join: "anyone", publish: "members" },
  chat: { join: "authenticated", publish: "members" },
  news: { join: "anyone", publish: "server" },
  team: { join: "granted", publish: "members", presence: false },
  ops: { join: "authenticated", publish: "server", presence: false },
} as const satisfies NamespacesConfig;

/** The namespace names, in the table's order: what the server confirms it loaded. */
export const BENCH_NAMESPACE_NAMES: readonly string[] = Object.keys(BENCH_NAMESPACES);
