/**
 * The performance targets, read off a run: each a ratio of conduit-ws's figure to the plain ws hub's
 * from the same run, against the limit set for it (docs/BENCHMARKS.md lists the targets). The report
 * prints them under the comparison table so that a run's verdict is the harness's arithmetic, not a
 * reader's.
 *
 * With `--repeat`, the verdict is the ratio of the two servers' medians (the figures the table
 * shows), and every round's own ratio is listed beside it: round k of both servers ran in the same
 * rotation, minutes apart, so the spread of those ratios is how far one run's verdict can be trusted
 * on the machine (on a shared virtual machine a p99 ratio moves noticeably from round to round), and
 * their median is a reading less moved by the host's drift over the run than the ratio of medians.
 *
 * @module
 */
import type { BenchResults, Row, ScenarioResult } from "./report.js";
import { median } from "./rounds.js";
import type { ConnectRow, EchoRow, FanoutRow, ThroughputRow } from "./scenarios.js";

/** One target checked against one run. */
export interface TargetCheck {
  /** What is compared, in words. */
  target: string;
  /** The scenario (its id in the results) the figures come from. */
  scenario: string;
  /** The highest ratio that meets the target. */
  limit: number;
  /** conduit-ws's figure over the ws hub's (medians, with several rounds). */
  ratio: number;
  /** Each round's own ratio, in round order; one element without `--repeat`. */
  roundRatios: number[];
  /**
   * The median of {@link TargetCheck.roundRatios}: less moved by the host's drift over the run than
   * the ratio of medians, since each round's ratio compares two rounds minutes apart. Shown for
   * reading; the verdict stays on {@link TargetCheck.ratio}, the figures the table shows.
   */
  medianRoundRatio: number;
  /**
   * Deliveries or replies conduit-ws lost in the scenario, for the targets that demand none lost;
   * undefined for the others.
   */
  lost?: number;
  /** The ratio is within the limit and, where it counts, nothing was lost. */
  met: boolean;
}

/** How one target reads its figure from a row, and what it demands. */
interface TargetRule<R> {
  target: string;
  limit: number;
  figure: (row: R) => number;
  /** What conduit-ws lost, for targets that demand nothing lost. */
  lost?: (row: R) => number;
}

const CONNECT: TargetRule<ConnectRow>[] = [
  { target: "server RSS per idle connection", limit: 1.1, figure: (row) => row.rssPerConnectionKiB },
  { target: "server CPU per accepted connection", limit: 1, figure: (row) => row.serverCpuUsPerConnection },
];
const FANOUT: TargetRule<FanoutRow>[] = [
  { target: "last-member p99", limit: 0.8, figure: (row) => row.lastMemberMs.p99, lost: (row) => row.missing },
];
const ECHO: TargetRule<EchoRow>[] = [{ target: "round-trip p99", limit: 1, figure: (row) => row.rttMs.p99 }];
const THROUGHPUT: TargetRule<ThroughputRow>[] = [
  {
    target: "server CPU-seconds per million deliveries",
    limit: 0.2,
    figure: (row) => row.serverCpuSecondsPerMillion,
    lost: (row) => row.missing,
  },
];

/**
 * The targets of each scenario kind that has any. A rule over one kind's rows is a rule over `never`
 * rows, so the four lists share one type without casts; `targetChecks` applies each to its own rows.
 */
const RULES: Partial<Record<ScenarioResult["kind"], readonly TargetRule<never>[]>> = {
  connect: CONNECT,
  fanout: FANOUT,
  echo: ECHO,
  throughput: THROUGHPUT,
};

/**
 * `conduit / hub`; NaN when it would mean nothing: a figure at or below zero (quick mode's tiny
 * counts can make an RSS difference negative), which no verdict should read as "met".
 */
function ratioOf(conduit: number, hub: number): number {
  return conduit >= 0 && hub > 0 ? conduit / hub : Number.NaN;
}

/** "fan-out to 1,000 members" or the scenario's kind: short enough for a table's first column. */
function scenarioLabel(scenario: ScenarioResult, firstRound: Row): string {
  // From one round's row: a folded row's counts are totals over the rounds.
  if (scenario.kind === "fanout") return `fan-out to ${(firstRound as FanoutRow).clients.toLocaleString("en-US")} members`;
  return scenario.kind;
}

/** A row that ran: not a failure, not missing. */
function measuredRow(row: Row | undefined): (Row & { rounds?: Row[] }) | undefined {
  return row === undefined || "error" in row ? undefined : (row as Row & { rounds?: Row[] });
}

/**
 * Every target the run can check: the scenarios with a target, where both conduit-ws and the ws hub
 * have a row. Scenarios with a failed or missing row are left out (the table shows why).
 */
export function targetChecks(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const [id, scenario] of Object.entries(results.scenarios)) {
    const conduit = measuredRow(scenario.results.conduit);
    const hub = measuredRow(scenario.results.ws);
    if (conduit === undefined || hub === undefined) continue;
    for (const rule of (RULES[scenario.kind] ?? []) as readonly TargetRule<Row>[]) {
      const ratio = ratioOf(rule.figure(conduit), rule.figure(hub));
      const conduitRounds = conduit.rounds ?? [conduit];
      const hubRounds = hub.rounds ?? [hub];
      const roundRatios = conduitRounds.map((row, k) => ratioOf(rule.figure(row), rule.figure(hubRounds[k]!)));
      const lost = rule.lost?.(conduit);
      checks.push({
        target: `${scenarioLabel(scenario, conduitRounds[0]!)}: ${rule.target}`,
        scenario: id,
        limit: rule.limit,
        ratio,
        roundRatios,
        medianRoundRatio: roundRatios.every(Number.isFinite) ? median(roundRatios) : Number.NaN,
        ...(lost === undefined ? {} : { lost }),
        met: ratio <= rule.limit && (lost ?? 0) === 0,
      });
    }
  }
  return checks;
}

function ratioText(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "–";
}

function verdict(check: TargetCheck): string {
  if (check.met) return "met";
  const reasons: string[] = [];
  if (!(check.ratio <= check.limit)) {
    reasons.push(Number.isFinite(check.ratio) ? `over by ${Math.round((check.ratio / check.limit - 1) * 100)} %` : "no ratio");
  }
  if ((check.lost ?? 0) > 0) reasons.push(`${check.lost} lost`);
  return `**missed** (${reasons.join(", ")})`;
}

/** The targets as a Markdown table; empty when the run checked none (no ws hub, or nothing targeted). */
export function targetsTable(checks: readonly TargetCheck[]): string {
  if (checks.length === 0) return "";
  const lines = [
    "| target (conduit-ws ÷ ws hub) | limit | ratio | rounds within the limit | each round's ratio | their median | verdict |",
    "| --- | ---: | ---: | ---: | --- | ---: | --- |",
  ];
  for (const check of checks) {
    const within = check.roundRatios.filter((ratio) => ratio <= check.limit).length;
    lines.push(
      `| ${check.target} | ≤ ${check.limit}× | ${ratioText(check.ratio)} | ${within} of ${check.roundRatios.length} | ` +
        `${check.roundRatios.map((ratio) => (Number.isFinite(ratio) ? ratio.toFixed(2) : "–")).join(", ")} | ` +
        `${ratioText(check.medianRoundRatio)} | ${verdict(check)} |`,
    );
  }
  return lines.join("\n");
}
