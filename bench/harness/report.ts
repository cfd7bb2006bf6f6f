/**
 * The report of a run: a Markdown file with the machine and versions it was made on, one table
 * comparing the servers and the targets table, and beside it the full results as JSON, both written
 * into the run's `--out` folder (bench/results by default, git-ignored: runs are not committed, a
 * figure worth quoting is copied into docs/BENCHMARKS.md by hand).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { basename, join } from "node:path";
import type { ServerKind } from "../shared/messages.js";
import { SERVERS, type BenchOptions, type LatencyClient } from "./config.js";
import { ROOT } from "./processes.js";
import type { ClusterRow } from "./cluster.js";
import type { ScaleRow } from "./scale.js";
import type { NoisyRow } from "./noisy.js";
import { API_TARGET_PER_SECOND, type ApiPhase, type ApiRow } from "./api.js";
import type { NamespacesConfig } from "../../src/namespaces/config.js";
import { noisySection, type BystanderTarget } from "./noisy-report.js";
import type { ConnectRow, EchoRow, FailedRow, FanoutRow, ThroughputRow } from "./scenarios.js";
import { targetsTable, type TargetCheck } from "./targets.js";

/** The machine a run was made on. */
export interface Machine {
  nproc: number;
  cpuModel: string;
  ramGiB: number;
  kernel: string;
  /** The 1-minute load average when the run began: well above 0 means others shared the CPUs. */
  loadAverageAtStart: number;
}

/** Versions of everything measured. */
export interface Versions {
  node: string;
  ws: string;
  socketIo: string;
  socketIoClient: string;
  conduit: string;
}

/** Any row of any scenario. */
export type Row = ConnectRow | FanoutRow | EchoRow | ThroughputRow | ClusterRow | ScaleRow | NoisyRow | ApiRow | FailedRow;

/** One scenario: what it did, and a row per server. */
export interface ScenarioResult {
  title: string;
  kind: "connect" | "fanout" | "echo" | "throughput" | "cluster" | "scale" | "noisy" | "api";
  /** A few words for a table's first column, where the title is too long (the noisy attacks). */
  label?: string;
  /**
   * Rounds run against each server (`--repeat`); absent for one. With several, each row's counts are
   * totals over the rounds, its other figures the rounds' median, and `rounds` in the row holds each.
   */
  rounds?: number;
  /** Servers this scenario does not apply to, and why (the table says so in their column). */
  omitted?: Partial<Record<ServerKind, string>>;
  results: Partial<Record<ServerKind, Row>>;
}

/** Everything one run produced; the JSON of the report. */
export interface BenchResults {
  date: string;
  mode: "full" | "quick";
  command: string;
  machine: Machine;
  versions: Versions;
  pinning: { serverCpu: number | null; loadCpu: number | null };
  /** Who held the fan-out latency and echo connections (`--latency-client`). */
  latencyClient: LatencyClient;
  /** Node flags every server under test started with besides `--expose-gc`; absent when none. */
  serverNodeFlags?: string[];
  /**
   * With `--namespaces`: the table conduit-ws ran with (every server start checked that it loaded
   * it), the scenarios' room and that room's namespace. Absent without.
   */
  namespaces?: { table: NamespacesConfig; room: string; namespace: string };
  scenarios: Record<string, ScenarioResult>;
  /**
   * The performance targets checked against this run (targets.ts), once every scenario has run;
   * empty when it measured no targeted scenario with both conduit-ws and the ws hub.
   */
  targets?: TargetCheck[];
  /** The noisy neighbour's target, the bystander's p99, checked for every attack and server that ran. */
  bystanderTarget?: BystanderTarget;
}

/** The machine this process runs on. */
export function machine(): Machine {
  const list = cpus();
  return {
    nproc: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${process.platform} ${release()}`,
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

function packageVersion(directory: string): string {
  try {
    return (JSON.parse(readFileSync(join(directory, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Versions of node, the baselines' packages and conduit-ws (with its git commit when known). */
export function versions(): Versions {
  let commit = "";
  try {
    const git = (...args: string[]): string => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
    // What was measured is the working tree's build: say so when it differs from the commit.
    const modified = git("status", "--porcelain", "--", "src") === "" ? "" : ", with uncommitted changes to src/";
    commit = ` (${git("rev-parse", "--short", "HEAD")}${modified})`;
  } catch {
    // not a git checkout: the package version alone
  }
  return {
    node: process.version,
    ws: packageVersion(join(ROOT, "node_modules/ws")),
    socketIo: packageVersion(join(ROOT, "node_modules/socket.io")),
    socketIoClient: packageVersion(join(ROOT, "node_modules/socket.io-client")),
    conduit: `${packageVersion(ROOT)}${commit}`,
  };
}

const HEADINGS: Record<ServerKind, string> = { conduit: "conduit-ws", ws: "ws hub (baseline)", socketio: "Socket.IO" };

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "–";
}

function cpuCell(row: { serverCpuPct: number; loadCpuPct: number }): string {
  return `${fixed(row.serverCpuPct, 0)} / ${fixed(row.loadCpuPct, 0)}`;
}

type Measure<R> = [label: string, cell: (row: R) => string];

const CONNECT: Measure<ConnectRow>[] = [
  ["time until all open (s)", (r) => fixed(r.openAllMs / 1000, 2)],
  ["server CPU per connection (µs)", (r) => fixed(r.serverCpuUsPerConnection, 0)],
  ["server RSS per connection (KiB)", (r) => fixed(r.rssPerConnectionKiB, 1)],
  ["connections failed", (r) => `${r.failed} of ${r.clients}`],
  ["CPU server / load (% of a core)", cpuCell],
];
const FANOUT: Measure<FanoutRow>[] = [
  ["last member has it, p50 (ms)", (r) => fixed(r.lastMemberMs.p50, 2)],
  ["last member has it, p99 (ms)", (r) => fixed(r.lastMemberMs.p99, 2)],
  ["deliveries missing", (r) => `${r.missing} of ${r.expectedDeliveries}`],
  ["CPU server / load (% of a core)", cpuCell],
];
const ECHO: Measure<EchoRow>[] = [
  ["round trip p50 (ms)", (r) => fixed(r.rttMs.p50, 2)],
  ["round trip p99 (ms)", (r) => fixed(r.rttMs.p99, 2)],
  ["replies missing", (r) => `${r.missing} of ${r.sent}`],
  ["CPU server / load (% of a core)", cpuCell],
];
const THROUGHPUT: Measure<ThroughputRow>[] = [
  ["deliveries per second", (r) => fixed(r.deliveriesPerSecond, 0)],
  ["server CPU-seconds per million deliveries", (r) => fixed(r.serverCpuSecondsPerMillion, 2)],
  ["deliveries missing", (r) => `${r.missing} of ${r.expectedDeliveries}`],
  ["CPU server / load (% of a core)", cpuCell],
];

function count(value: number): string {
  return value.toLocaleString("en-US");
}

/** "nodes / load / Redis": the Redis share is part of what a cluster costs. */
function clusterCpuCell(row: { serverCpuPct: number; loadCpuPct: number; redisCpuPct?: number }): string {
  return `${cpuCell(row)} / ${fixed(row.redisCpuPct ?? Number.NaN, 0)}`;
}

const CLUSTER: Measure<ClusterRow>[] = [
  ["members on node A + B", (r) => r.membersPerNode.map(count).join(" + ")],
  ["last member has it, p50 (ms)", (r) => fixed(r.latency.lastMemberMs.p50, 2)],
  ["last member has it, p99 (ms)", (r) => fixed(r.latency.lastMemberMs.p99, 2)],
  ["deliveries missing (latency)", (r) => `${r.latency.missing} of ${r.latency.expectedDeliveries}`],
  ["CPU nodes / load / Redis, latency (% of a core)", (r) => clusterCpuCell(r.latency)],
  ["deliveries per second", (r) => fixed(r.throughput.deliveriesPerSecond, 0)],
  ["nodes' CPU-seconds per million deliveries (all nodes)", (r) => fixed(r.throughput.serverCpuSecondsPerMillion, 2)],
  ["Redis CPU-seconds per million deliveries", (r) => fixed(r.throughput.redisCpuSecondsPerMillion ?? Number.NaN, 2)],
  ["deliveries missing (throughput)", (r) => `${r.throughput.missing} of ${r.throughput.expectedDeliveries}`],
  ["CPU nodes / load / Redis, throughput (% of a core)", (r) => clusterCpuCell(r.throughput)],
];
const SCALE: Measure<ScaleRow>[] = [
  ["connections opened", (r) => `${count(r.opened)} of ${count(r.clients)}`],
  ["connections failed", (r) => count(r.failed)],
  ["time until all open (s)", (r) => fixed(r.openAllMs / 1000, 2)],
  ["time until all joined the room (s)", (r) => fixed(r.joinAllMs / 1000, 2)],
  ["RSS per worker, all joined (MiB)", (r) => r.workerRssAfterKiB.map((kib) => fixed(kib / 1024, 0)).join(" + ")],
  ["workers' RSS per connection (KiB)", (r) => fixed(r.rssPerConnectionKiB, 1)],
  ["last member has it, p50 (ms)", (r) => fixed(r.latency.lastMemberMs.p50, 2)],
  ["last member has it, p99 (ms)", (r) => fixed(r.latency.lastMemberMs.p99, 2)],
  ["deliveries missing", (r) => `${r.latency.missing} of ${r.latency.expectedDeliveries}`],
  ["CPU server / load, broadcasting (% of a core)", (r) => cpuCell(r.latency)],
];

/** "API / WebSocket" for one figure of both phases. */
function bothWays(figure: (phase: ApiPhase) => string): (row: ApiRow) => string {
  return (row) => `${figure(row.api)} / ${figure(row.websocket)}`;
}

const API: Measure<ApiRow>[] = [
  ["publishes per second, API / WebSocket", bothWays((p) => fixed(p.publishesPerSecond, 0))],
  ["last member has it, p50 (ms), API / WebSocket", bothWays((p) => fixed(p.lastMemberMs.p50, 2))],
  ["last member has it, p99 (ms), API / WebSocket", bothWays((p) => fixed(p.lastMemberMs.p99, 2))],
  ["HTTP answer p50 / p99 (ms)", (r) => `${fixed(r.api.answerMs?.p50 ?? Number.NaN, 2)} / ${fixed(r.api.answerMs?.p99 ?? Number.NaN, 2)}`],
  ["server CPU per publication (µs), API / WebSocket", bothWays((p) => fixed(p.serverCpuUsPerPublication, 0))],
  ["deliveries missing, API / WebSocket", bothWays((p) => `${p.missing} of ${p.expectedDeliveries}`)],
  ["requests failed (API)", (r) => `${r.api.failed} of ${r.api.sent}`],
  [
    `target: ≥ ${count(API_TARGET_PER_SECOND)} publishes/s through the API`,
    (r) => (r.api.publishesPerSecond >= API_TARGET_PER_SECOND && r.api.missing === 0 && r.api.failed === 0 ? "met" : "**missed**"),
  ],
  ["CPU server / load (% of a core), API; WebSocket", (r) => `${cpuCell(r.api)}; ${cpuCell(r.websocket)}`],
];

/** The measures of each kind's rows; the noisy attacks have a table of their own (noisy-report.ts). */
function measuresOf(kind: ScenarioResult["kind"]): Measure<never>[] {
  const all = { connect: CONNECT, fanout: FANOUT, echo: ECHO, throughput: THROUGHPUT, cluster: CLUSTER, scale: SCALE, noisy: [], api: API };
  return all[kind] as Measure<never>[];
}

/** The comparison table: a row per measure, a column per server. */
export function markdownTable(results: BenchResults, servers: readonly ServerKind[]): string {
  const columns = SERVERS.filter((server) => servers.includes(server));
  const lines = [
    `| scenario | measure | ${columns.map((server) => HEADINGS[server]).join(" | ")} |`,
    `| --- | --- | ${columns.map(() => "---:").join(" | ")} |`,
  ];
  for (const scenario of Object.values(results.scenarios)) {
    measuresOf(scenario.kind).forEach(([label, cell], index) => {
      const cells = columns.map((server) => {
        const row = scenario.results[server];
        const omitted = scenario.omitted?.[server];
        if (omitted !== undefined) return index === 0 ? `omitted: ${omitted}` : "–";
        if (row === undefined) return "not run";
        if ("error" in row) return "failed (see JSON)";
        return (cell as (row: Row) => string)(row);
      });
      const title = scenario.rounds === undefined ? scenario.title : `${scenario.title}; median of ${scenario.rounds} rounds`;
      lines.push(`| ${index === 0 ? title : ""} | ${label} | ${cells.join(" | ")} |`);
    });
  }
  // Only scenarios with tables of their own (`--scenarios noisy`): no empty table.
  return lines.length === 2 ? "" : lines.join("\n");
}

/** The results as JSON, fractions rounded to three decimals (the clocks are not finer than that). */
export function toJson(results: BenchResults): string {
  return JSON.stringify(
    results,
    (_key, value: unknown) => (typeof value === "number" && !Number.isInteger(value) ? Math.round(value * 1000) / 1000 : value),
    2,
  );
}

/** The targets table under its heading, or nothing when the run checked no target. */
export function targetsSection(results: BenchResults): string {
  const table = targetsTable(results.targets ?? []);
  if (table === "") return "";
  const rounds = (results.targets ?? []).some((check) => check.roundRatios.length > 1)
    ? " The ratio divides the two servers' medians; each round's ratio divides the figures of the two rounds that ran in the same rotation."
    : "";
  const caveat = results.mode === "quick" ? " Quick mode: from tiny counts, these verdicts say nothing about the targets." : "";
  return `\nThe targets, conduit-ws's figure over the ws hub's in this run.${rounds}${caveat}\n\n${table}\n`;
}

/**
 * The Markdown report of one run: heading, command, machine, versions, pinning, the comparison
 * table and the targets; `jsonName` is the file beside it with the full results.
 */
export function reportMarkdown(results: BenchResults, servers: readonly ServerKind[], jsonName: string): string {
  const { machine: m, versions: v, pinning: p } = results;
  const heading =
    results.mode === "quick"
      ? `# Benchmark run ${results.date} — quick mode: smoke figures from tiny counts, NOT to be quoted`
      : `# Benchmark run ${results.date} — full run`;
  const ids = Object.keys(results.scenarios);
  const exceptions = [
    ...(ids.some((id) => id.startsWith("cluster")) ? [`cluster: both nodes on CPU ${p.serverCpu}, Redis on CPU ${p.loadCpu}`] : []),
    ...(ids.includes("scale") ? ["scale: not pinned"] : []),
    ...(ids.some((id) => id.startsWith("api"))
      ? [`api: the CLI on CPU ${p.serverCpu}, its members and publisher on CPU ${p.loadCpu}`]
      : []),
  ];
  const pinning =
    p.serverCpu === null
      ? "not pinned"
      : [`servers on CPU ${p.serverCpu}, load generators and harness on CPU ${p.loadCpu}`, ...exceptions].join("; ");
  const rounds = Math.max(1, ...Object.values(results.scenarios).map((scenario) => scenario.rounds ?? 1));
  const roundsLine =
    rounds === 1
      ? ""
      : `- rounds: ${rounds} of each scenario marked "median of ${rounds} rounds", the servers taking turns (in a full run, a fresh server each round); ` +
        `each figure is the median of the rounds' figures, counts (deliveries, missing, failed) are totals over the rounds, every round is in the JSON\n`;
  const latency = !ids.some((id) => id.startsWith("fanout") || id === "echo")
    ? ""
    : results.latencyClient === "native"
      ? "- fan-out latency and echo connections: one C process holds them all (bench/native/latency-client.c)\n"
      : "- fan-out latency and echo connections: the node load processes\n";
  const flagsLine =
    results.serverNodeFlags === undefined
      ? ""
      : `- servers started with \`${results.serverNodeFlags.join(" ")}\` (every server under test but the scale scenario's CLI; not node's default)\n`;
  const ns = results.namespaces;
  const namespacesLine =
    ns === undefined
      ? ""
      : `- namespaces: conduit-ws ran with the \`namespaces\` option (\`--namespaces\`; the api scenario's CLI with the same table as \`--config\`), ` +
        `${Object.keys(ns.table).length} namespaces (${Object.keys(ns.table)
          .map((name) => JSON.stringify(name))
          .join(", ")}); ` +
        `the scenarios' room \`${ns.room}\` is in namespace ${JSON.stringify(ns.namespace)}: ${JSON.stringify(ns.table[ns.namespace])}; ` +
        `every conduit-ws server reported the table loaded at start\n`;
  return `${heading}

Written by \`npm run bench\`; docs/BENCHMARKS.md explains the method and what each figure means.

- command: \`${results.command}\`
- machine: ${m.nproc} × ${m.cpuModel}, ${m.ramGiB} GiB RAM, ${m.kernel}; load average ${m.loadAverageAtStart} when the run began
- versions: node ${v.node}, ws ${v.ws}, socket.io ${v.socketIo} (client ${v.socketIoClient}), conduit-ws ${v.conduit}
- pinning: ${pinning}
${latency}${roundsLine}${flagsLine}${namespacesLine}- every figure of every round: \`${jsonName}\`, beside this file

${markdownTable(results, servers)}
${targetsSection(results)}${noisySection(results, servers)}`;
}

/**
 * Creates the results folder `dir` when missing.
 *
 * @throws Error when `dir` exists and is not a folder, or cannot be created: called before the run
 * starts, so that a bad `--out` fails at once rather than after the measurements
 */
export function prepareResultsDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new Error(`--out ${dir}: cannot create the folder (${(error as Error).message})`);
  }
  if (!statSync(dir).isDirectory()) throw new Error(`--out ${dir}: not a folder`);
}

/** The paths one run's report and results were written to. */
export interface ReportFiles {
  markdown: string;
  json: string;
}

/**
 * Writes the run's report and its results into `options.out` as `<date>T<hhmm>-<mode>.md` and
 * `.json` (UTC, from the run's start), with `-2`, `-3`, … added when a run of the same minute is
 * already there: a file is never overwritten.
 */
export function writeReport(results: BenchResults, options: BenchOptions): ReportFiles {
  prepareResultsDir(options.out);
  // "2026-12-02T04:10:32.123Z" -> "2026-12-02T0410": sorts by time, and is a valid file name anywhere.
  const stamp = `${results.date.slice(0, 13)}${results.date.slice(14, 16)}-${results.mode}`;
  for (let n = 1; ; n++) {
    const base = join(options.out, n === 1 ? stamp : `${stamp}-${n}`);
    const files = { markdown: `${base}.md`, json: `${base}.json` };
    if (existsSync(files.markdown)) continue;
    try {
      // "wx": fails if the file exists, so two runs finishing in the same minute never share a name.
      writeFileSync(files.json, `${toJson(results)}\n`, { flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw error;
    }
    writeFileSync(files.markdown, reportMarkdown(results, options.servers, basename(files.json)));
    return files;
  }
}
