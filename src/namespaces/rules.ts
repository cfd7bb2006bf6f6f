/**
 * The namespace rules as the hub asks them, once per join, broadcast or presence request: one
 * `indexOf` and one `Map` lookup, and the rooms a token grants.
 *
 * @module
 */
import type { RoomName } from "../types.js";
import type { HistoryConfig, JoinRule, NamespacesConfig, PublishRule } from "./config.js";

/** One namespace's rules with every default filled in. */
export interface NamespaceRules {
  readonly join: JoinRule;
  readonly publish: PublishRule;
  readonly presence: boolean;
  readonly history: HistoryConfig | undefined;
}

/** The rules of every room when no configuration is given: anyone joins, members publish. */
export const OPEN_RULES: NamespaceRules = Object.freeze({ join: "anyone", publish: "members", presence: true, history: undefined });

/** The namespace of a room: its name up to the first `:`, or `""`. */
export function namespaceOf(room: RoomName): string {
  const colon = room.indexOf(":");
  return colon === -1 ? "" : room.slice(0, colon);
}

/** Looks up a room's rules. Without a configuration every room has {@link OPEN_RULES}. */
export class NamespaceTable {
  readonly #rules: Map<string, NamespaceRules> | undefined;

  /** @param config - the checked configuration, or undefined for none */
  constructor(config: NamespacesConfig | undefined) {
    if (config === undefined) return;
    this.#rules = new Map();
    for (const [namespace, rules] of Object.entries(config)) {
      this.#rules.set(
        namespace,
        Object.freeze({
          join: rules.join ?? "anyone",
          publish: rules.publish ?? "members",
          presence: rules.presence ?? true,
          history: rules.history,
        }),
      );
    }
  }

  /** Whether a configuration was given (then unlisted namespaces are refused). */
  get configured(): boolean {
    return this.#rules !== undefined;
  }

  /** The rules of `room`, or undefined when its namespace is not listed (every request refused). */
  rulesFor(room: RoomName): NamespaceRules | undefined {
    return this.#rules === undefined ? OPEN_RULES : this.#rules.get(namespaceOf(room));
  }
}

/**
 * The rooms a token grants: exact names, and prefixes written with a trailing `*` (`"team:42:*"`
 * grants every room whose name starts with `team:42:`).
 */
export class RoomGrant {
  readonly #exact: ReadonlySet<RoomName>;
  readonly #prefixes: readonly string[];

  /** @param patterns - the claim's entries; non-strings are ignored */
  constructor(patterns: readonly unknown[]) {
    const exact = new Set<RoomName>();
    const prefixes: string[] = [];
    for (const pattern of patterns) {
      if (typeof pattern !== "string" || pattern.length === 0) continue;
      if (pattern.endsWith("*")) prefixes.push(pattern.slice(0, -1));
      else exact.add(pattern);
    }
    this.#exact = exact;
    this.#prefixes = prefixes;
  }

  /** Whether `room` is granted. */
  allows(room: RoomName): boolean {
    if (this.#exact.has(room)) return true;
    for (const prefix of this.#prefixes) if (room.startsWith(prefix)) return true;
    return false;
  }
}

/** What a join needs to know about the connection asking. */
export interface JoinCredentials {
  readonly userId: string | null;
  readonly grant: RoomGrant | undefined;
}

/** Whether `rules` let a connection with `credentials` join; a reason when they do not. */
export function joinRefusal(rules: NamespaceRules, credentials: JoinCredentials, room: RoomName): string | undefined {
  switch (rules.join) {
    case "anyone":
      return undefined;
    case "authenticated":
      return credentials.userId === null ? `room ${JSON.stringify(room)} is for authenticated connections` : undefined;
    case "granted":
      return credentials.grant?.allows(room) ? undefined : `room ${JSON.stringify(room)} is not granted by this connection's token`;
  }
}
