/**
 * The noisy neighbour scenario in the report: one table, a row per attack and server, and the
 * bystander's target under it. The target is absolute (a latency on this machine), not a ratio to
 * the ws hub as the other targets are: an attack the hub does not survive gives no figure to divide by.
 *
 * @module
 */
import type { AttackName, ServerKind } from "../shared/messages.js";
import { SERVERS } from "./config.js";
import type { NoisyRow } from "./noisy.js";
import type { BenchResults, ScenarioResult } from "./report.js";

/** The bystander's p99 must stay under this while any one attack runs. */
export const BYSTANDER_P99_LIMIT_MS = 100;

/** The bystander's target checked against one attack on one server. */
export interface BystanderCheck {
  /** The scenario's id in the results (`noisy-<attack>`). */
  scenario: string;
  attack: AttackName;
  server: ServerKind;
  p99Ms: number;
  /** Pings with no reply, or refused. */
  unanswered: number;
  /** Whether the bystander's connection was closed (the server crashed, or closed it). */
  closed: boolean;
  /** p99 under the limit, every ping answered, the bystander still connected. */
  met: boolean;
}

/** The target and its checks, as the JSON keeps them. */
export interface BystanderTarget {
  limitMs: number;
  checks: BystanderCheck[];
}

const HEADINGS: Record<ServerKind, string> = { conduit: "conduit-ws", ws: "ws hub", socketio: "Socket.IO" };

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "–";
}

function count(value: number): string {
  return value.toLocaleString("en-US");
}

function noisyScenarios(results: BenchResults): [string, ScenarioResult][] {
  return Object.entries(results.scenarios).filter(([, scenario]) => scenario.kind === "noisy");
}

/** A measured row of a noisy scenario, or undefined when it failed or did not run. */
function noisyRow(scenario: ScenarioResult, server: ServerKind): NoisyRow | undefined {
  const row = scenario.results[server];
  return row === undefined || "error" in row ? undefined : (row as NoisyRow);
}

/** Checks the bystander's target for every attack and server that ran. */
export function bystanderTarget(results: BenchResults): BystanderTarget {
  const checks: BystanderCheck[] = [];
  for (const [id, scenario] of noisyScenarios(results)) {
    for (const server of SERVERS) {
      const row = noisyRow(scenario, server);
      if (row === undefined) continue;
      const { rttMs, missing, refused, errors, closed } = row.bystander;
      const unanswered = missing + refused + errors;
      const met = rttMs.samples > 0 && rttMs.p99 < BYSTANDER_P99_LIMIT_MS && unanswered === 0 && closed === undefined;
      checks.push({ scenario: id, attack: row.attack, server, p99Ms: rttMs.p99, unanswered, closed: closed !== undefined, met });
    }
  }
  return { limitMs: BYSTANDER_P99_LIMIT_MS, checks };
}

function seconds(ms: number): string {
  return `${fixed(ms / 1000, 2)} s`;
}

function pingsCell(row: NoisyRow): string {
  const { sent, received, refused, closed } = row.bystander;
  const notes = [
    ...(refused > 0 ? [`${refused} refused`] : []),
    ...(closed === undefined ? [] : [`closed after ${seconds(closed.afterMs)}`]),
  ];
  return `${count(received)} of ${count(sent)}${notes.length > 0 ? `, ${notes.join(", ")}` : ""}`;
}

function sentCell(row: NoisyRow): string {
  const { sent, sentPerSecond, held } = row.attacker;
  return `${count(sent)} (${fixed(sentPerSecond, 0)}/s)${held > 0 ? `, ${count(held)} held back` : ""}`;
}

function otherErrorsCell(row: NoisyRow): string {
  const others = Object.entries(row.attacker.errors).filter(([code]) => code !== "rate_limited");
  return others.length === 0 ? "0" : others.map(([code, n]) => `${code} ${count(n)}`).join(", ");
}

function closedCell(row: NoisyRow): string {
  if (row.serverExited !== undefined) return "**server exited**";
  const { closed, closedConnections, connections } = row.attacker;
  if (closed === undefined) return "no";
  const of = connections > 1 ? ` (${closedConnections} of ${connections})` : "";
  return `${closed.code ?? "no close frame"} after ${seconds(closed.afterMs)}${of}`;
}

function verdictCell(check: BystanderCheck | undefined): string {
  if (check === undefined) return "–";
  if (check.met) return "met";
  if (!Number.isFinite(check.p99Ms)) return "**missed** (no pong)";
  const reasons = [
    ...(check.p99Ms < BYSTANDER_P99_LIMIT_MS ? [] : ["p99"]),
    ...(check.unanswered > 0 ? [`${check.unanswered} unanswered`] : []),
    ...(check.closed ? ["closed"] : []),
  ];
  return `**missed** (${reasons.join(", ")})`;
}

/**
 * The noisy neighbour table (a row per attack and selected server) with the bystander's target
 * under it; empty when the run did not include the scenario.
 */
export function noisySection(results: BenchResults, servers: readonly ServerKind[]): string {
  const scenarios = noisyScenarios(results);
  if (scenarios.length === 0) return "";
  const target = results.bystanderTarget ?? bystanderTarget(results);
  const lines = [
    "| attack | server | bystander ping p50 / p99 / max (ms) | pings answered | attacker sent (per s) | refused (rate_limited) | other errors | attacker closed | CPU server / load (% of a core) | bystander p99 |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |",
  ];
  for (const [id, scenario] of scenarios) {
    const label = scenario.label ?? id;
    for (const server of SERVERS.filter((kind) => servers.includes(kind))) {
      const omitted = scenario.omitted?.[server];
      const row = noisyRow(scenario, server);
      const prefix = `| ${label} | ${HEADINGS[server]} |`;
      if (omitted !== undefined) lines.push(`${prefix} omitted: ${omitted} | | | | | | | |`);
      else if (scenario.results[server] === undefined) lines.push(`${prefix} not run | | | | | | | |`);
      else if (row === undefined) lines.push(`${prefix} failed (see JSON) | | | | | | | |`);
      else {
        const { p50, p99, max } = row.bystander.rttMs;
        const check = target.checks.find((candidate) => candidate.scenario === id && candidate.server === server);
        lines.push(
          `${prefix} ${fixed(p50, 2)} / ${fixed(p99, 2)} / ${fixed(max, 2)} | ${pingsCell(row)} | ${sentCell(row)} | ` +
            `${count(row.attacker.refused)} | ${otherErrorsCell(row)} | ${closedCell(row)} | ` +
            `${fixed(row.serverCpuPct, 0)} / ${fixed(row.loadCpuPct, 0)} | ${verdictCell(check)} |`,
        );
      }
    }
  }
  const met = target.checks.filter((check) => check.met).length;
  const caveat = results.mode === "quick" ? " Quick mode: small rooms and 2 s windows, the verdicts say little." : "";
  return (
    `\nNoisy neighbour: a bystander's pings while one client attacks a server at its default limits (one attack at a time, a fresh server each).\n\n` +
    `${lines.join("\n")}\n\n` +
    `The bystander's figures are over the measured window; the attacker's over the whole attack, warm-up included ` +
    `(its rate is over the time it was sending: until the end, or until it was closed).\n\n` +
    `Target: the bystander's p99 under ${target.limitMs} ms on this machine, every ping answered: met in ${met} of ${target.checks.length}.${caveat}\n`
  );
}
