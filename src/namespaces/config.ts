/**
 * The namespace configuration: which rules each room namespace has, as the library's `namespaces`
 * option and the standalone server's configuration file give them. One schema checks both, so a bad
 * value gets the same message, naming the namespace, the rule and what it accepts, wherever it came
 * from.
 *
 * @module
 */
import * as v from "valibot";

/** Who may join a namespace's rooms. */
export type JoinRule = "anyone" | "authenticated" | "granted";

/** Who may broadcast to a namespace's rooms. */
export type PublishRule = "members" | "server";

/** How much of a namespace's rooms' publications is kept (history and recovery). */
export interface HistoryConfig {
  /** The most publications kept per room. */
  size: number;
  /** Seconds a publication is kept; a room's history outlives its last member by this much. */
  ttl: number;
}

/** The rules of one namespace; every field is optional. */
export interface NamespaceConfig {
  /**
   * Who may join: anybody; a connection with a user id; only the rooms its token grants.
   * @default "anyone"
   */
  join?: JoinRule;
  /**
   * Who may broadcast to its rooms: their members; only the server (handlers, the server API).
   * @default "members"
   */
  publish?: PublishRule;
  /**
   * The `presence` request and the `member_joined`/`member_left` events.
   * @default true
   */
  presence?: boolean;
  /**
   * Keep the rooms' latest publications for recovery and the `history` request.
   * @default undefined (none kept)
   */
  history?: HistoryConfig;
}

/**
 * Rules by namespace: a room's namespace is its name up to the first `:` (`chat:42` is in `chat`),
 * `""` for a name without one. With a table, rooms of an unlisted namespace are refused.
 */
export type NamespacesConfig = Readonly<Record<string, NamespaceConfig>>;

/** What the configuration file holds. */
export interface ConfigFile {
  /** Rules by namespace. */
  namespaces: NamespacesConfig;
}

/** A configuration that cannot work; the message names where, what and what would be accepted. */
export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** The largest history a namespace may keep per room, and the longest time. */
const MAX_HISTORY_SIZE = 100_000;
const MAX_HISTORY_TTL = 30 * 24 * 3600;
/** A namespace is a room name's prefix: at most a room name's length, no `:` (it ends there). */
const MAX_NAMESPACE_LENGTH = 127;

const historySchema = v.strictObject({
  size: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_HISTORY_SIZE)),
  ttl: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_HISTORY_TTL)),
});

const namespaceSchema = v.strictObject({
  join: v.optional(v.picklist(["anyone", "authenticated", "granted"])),
  publish: v.optional(v.picklist(["members", "server"])),
  presence: v.optional(v.boolean()),
  history: v.optional(historySchema),
});

const namespacesSchema = v.pipe(
  v.custom<Record<string, unknown>>((input) => typeof input === "object" && input !== null && !Array.isArray(input), "an object"),
  v.record(
    v.pipe(v.string(), v.maxLength(MAX_NAMESPACE_LENGTH), v.regex(/^[^:\p{Cc}\p{Cs}]*$/u, "a namespace has no ':' or control character")),
    namespaceSchema,
  ),
);

const fileSchema = v.strictObject({ namespaces: namespacesSchema });

/** What each rule accepts, for messages: the schema's own text says it in types, not in words. */
const ACCEPTS: Readonly<Record<string, string>> = {
  join: '"anyone", "authenticated" or "granted"',
  publish: '"members" or "server"',
  presence: "true or false",
  history: '{ "size": N, "ttl": S } with whole numbers',
  size: `a whole number from 1 to ${MAX_HISTORY_SIZE}`,
  ttl: `a whole number of seconds from 1 to ${MAX_HISTORY_TTL}`,
};

/**
 * Turns the first issue of a failed parse into one sentence: where, what, what is accepted.
 *
 * @param path - the issue's path from the namespaces table down (namespace, rule, field)
 */
function describe(issue: v.BaseIssue<unknown>, path: readonly string[], source: string): string {
  const received = issue.received === undefined ? "" : `, got ${issue.received}`;
  const [namespace, rule, field] = path;
  if (namespace === undefined) return `${source}: "namespaces" must be an object of namespace rules${received}`;
  const where = `namespace ${JSON.stringify(namespace)}`;
  if (rule === undefined) {
    return issue.type === "regex" || issue.type === "max_length"
      ? `${source}: ${where}: a namespace name has no ':' or control character, and at most ${MAX_NAMESPACE_LENGTH} characters`
      : `${source}: ${where} must be an object of rules (join, publish, presence, history)${received}`;
  }
  const name = field === undefined ? rule : `${rule}.${field}`;
  const accepts = ACCEPTS[field ?? rule];
  if (accepts === undefined || issue.expected === "never") {
    return `${source}: ${where}: unknown rule "${name}"; the rules are join, publish, presence and history (history: size, ttl)`;
  }
  return `${source}: ${where}: rule "${name}" accepts ${accepts}${received}`;
}

function pathOf(issue: v.BaseIssue<unknown>): string[] {
  return (issue.path ?? []).map((item) => String(item.key));
}

/**
 * Checks a `namespaces` table.
 *
 * @param source - what to call it in the message (`option "namespaces"`, a file's path)
 * @throws ConfigurationError naming the namespace, the rule and what it accepts
 */
export function parseNamespaces(value: unknown, source: string): NamespacesConfig {
  const result = v.safeParse(namespacesSchema, value);
  if (!result.success) throw new ConfigurationError(describe(result.issues[0], pathOf(result.issues[0]), source));
  return result.output;
}

/**
 * Checks the content of a configuration file (already parsed from JSON).
 *
 * @param source - the file's path, for the message
 * @throws ConfigurationError naming the file, the namespace, the rule and what it accepts
 */
export function parseConfigFile(value: unknown, source: string): ConfigFile {
  const result = v.safeParse(fileSchema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const [top, ...path] = pathOf(issue);
  if (top === undefined) throw new ConfigurationError(`${source}: the file must hold a JSON object like { "namespaces": { "": {} } }`);
  if (top !== "namespaces") throw new ConfigurationError(`${source}: unknown key "${top}"; the file holds { "namespaces": { … } }`);
  throw new ConfigurationError(describe(issue, path, source));
}
