/**
 * The benchmark harness in quick mode, end to end: every scenario runs against the servers it applies
 * to in child processes (the cluster and scale ones with their own redis-server), and the report and
 * JSON it writes into its `--out` folder (a temporary one here) say so. Figures are never compared
 * with a threshold
 * (timings on a shared machine mean nothing); what is checked is what a reader of the report relies
 * on: every delivery arrived, every count adds up, and no process outlives the run.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { ClusterRow } from "../bench/harness/cluster.js";
import type { ScaleRow } from "../bench/harness/scale.js";
import type { NoisyRow } from "../bench/harness/noisy.js";
import type { ApiRow } from "../bench/harness/api.js";
import type { ServerKind } from "../bench/shared/messages.js";
import type { ConnectRow, EchoRow, FanoutRow, ThroughputRow } from "../bench/harness/scenarios.js";
import { parseArgs, RESULTS_DIR } from "../bench/harness/config.js";
import { writeReport, type BenchResults, type Row } from "../bench/harness/report.js";
import { lastTick, readTick } from "../bench/load/tick.js";
import { now } from "../bench/shared/clock.js";
import { redisSkipReason } from "./helpers/redis.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVERS = ["conduit", "ws", "socketio"] as const;
const CLUSTER_SERVERS = ["conduit", "socketio"] as const;
/** Each attack of the noisy neighbour scenario and the servers it runs against (the ws hub has no presence). */
const NOISY_SERVERS: Record<string, ServerKind[]> = {
  "noisy-parse-escape": ["conduit", "ws"],
  "noisy-parse-nested": ["conduit", "ws"],
  "noisy-fanout": ["conduit", "ws"],
  "noisy-presence": ["conduit"],
  "noisy-join-leave": ["conduit"],
  "noisy-pongs": ["conduit", "ws"],
};
/** The api scenario's sizes: conduit-ws's CLI only, a fresh one per size. */
const API_SIZES = ["api-1k", "api-1"];
/** Servers the noisy scenario starts: one per attack and server. */
const NOISY_RUNS = Object.values(NOISY_SERVERS).flat().length;
const RUN_TIMEOUT_MS = 300_000;
/** Without redis-server the harness leaves the cluster and scale scenarios out (in CI this throws). */
const skipRedis = redisSkipReason();

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the harness (or another bench `script`); `onStderr` may signal it. Kills it (and fails) if it
 * runs past the bound.
 */
function runBench(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
  script = "bench/run.ts",
): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    onStderr?.(stderr, child);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bench did not finish within ${RUN_TIMEOUT_MS} ms:\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The pids the harness reported: servers, redis-servers, the CLI's primary ("… server started: pid
 * N"), the CLI's workers and the load processes.
 */
function childPids(stderr: string): number[] {
  const pids = [...stderr.matchAll(/(?:server|native latency client) started: pid (\d+)/g)].map((match) => Number(match[1]));
  for (const match of stderr.matchAll(/(?:load processes started: pids|, workers) (\d+(?:, \d+)*)/g)) {
    pids.push(...match[1]!.split(",").map((pid) => Number(pid.trim())));
  }
  return pids;
}

/** Whether `pid` is a running process (a zombie waiting to be reaped counts as gone). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * The pids still alive. A child killed by a harness that exits at once is reaped by init a moment
 * later, and nothing signals that to us: poll, within a bound.
 */
async function survivors(pids: number[]): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** The report and JSON one run wrote into `dir` (which must hold nothing else), and their contents. */
function reportIn(dir: string, mode: "quick" | "full"): { markdown: string; json: string; results: BenchResults } {
  const files = readdirSync(dir).sort();
  assert.equal(files.length, 2, `one report and one JSON in ${dir}: ${files.join(", ")}`);
  const [json, markdown] = files as [string, string];
  // <date>T<hhmm>-<mode>, UTC: the minute the run began.
  const base = new RegExp(`^(\\d{4}-\\d{2}-\\d{2}T\\d{4})-${mode}$`).exec(json.replace(/\.json$/, ""));
  assert.ok(base !== null && json.endsWith(".json") && markdown === `${base[0]}.md`, files.join(", "));
  const results = JSON.parse(readFileSync(join(dir, json), "utf8")) as BenchResults;
  assert.equal(base[1], results.date.slice(0, 16).replace(":", ""));
  return { markdown: readFileSync(join(dir, markdown), "utf8"), json, results };
}

/** What every api row must show, whatever the timings: both phases ran, nothing lost, nothing refused. */
function assertApiRow(row: ApiRow, where: string): void {
  for (const [name, phase] of [
    ["api", row.api],
    ["websocket", row.websocket],
  ] as const) {
    const at = `${where}/${name}`;
    assert.ok(phase.publications > 0, `${at}: published in the window`);
    assert.ok(phase.sent >= phase.publications);
    assert.equal(phase.expectedDeliveries, phase.sent * row.members, at);
    assert.equal(phase.totalDeliveries, phase.expectedDeliveries, at);
    assert.equal(phase.missing, 0, at);
    assert.equal(phase.failed, 0, `${at}: ${phase.errors.join("; ")}`);
    // One last-member time per publication of the window: every one completed.
    assert.equal(phase.lastMemberMs.samples, phase.publications, at);
    assert.ok(phase.serverCpuMs >= 0 && phase.windowMs > 0, at);
  }
  assert.equal(row.api.answerMs?.samples, row.api.publications, `${where}: an answer per POST`);
  assert.equal(row.websocket.answerMs, undefined);
}

function ok<T>(row: Row | undefined, where: string): T {
  assert.ok(row !== undefined, `${where}: no result`);
  assert.ok(!("error" in row), `${where} failed: ${"error" in row ? row.error : ""}`);
  return row as T;
}

describe("npm run bench -- --quick", () => {
  let dir: string;
  let run: Run;
  let results: BenchResults;
  let markdown: string;
  let jsonName: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    run = await runBench(["--quick", "--out", dir]);
    assert.equal(run.code, 0, `bench exited with ${run.code ?? run.signal}:\n${run.stderr}`);
    ({ markdown, json: jsonName, results } = reportIn(dir, "quick"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("records the run: quick mode, machine, versions and every scenario", () => {
    assert.equal(results.mode, "quick");
    assert.ok(results.machine.nproc >= 1);
    assert.match(results.versions.node, /^v\d+/);
    assert.match(results.versions.ws, /^8\./);
    assert.match(results.versions.socketIo, /^4\./);
    const single = ["connect", "fanout-1k", "fanout-10k", "echo", "throughput"];
    const redis = skipRedis ? [] : ["cluster-1-node", "cluster-2-nodes", "scale"];
    assert.deepEqual(Object.keys(results.scenarios), [...single, ...redis, ...Object.keys(NOISY_SERVERS), ...API_SIZES]);
    for (const id of single) assert.deepEqual(Object.keys(results.scenarios[id]!.results), [...SERVERS], id);
    for (const id of redis.filter((name) => name.startsWith("cluster"))) {
      assert.deepEqual(Object.keys(results.scenarios[id]!.results), [...CLUSTER_SERVERS], id);
      assert.deepEqual(results.scenarios[id]!.omitted, { ws: "no cluster mode" });
    }
    if (!skipRedis) assert.deepEqual(Object.keys(results.scenarios.scale!.results), ["conduit"]);
    for (const [id, servers] of Object.entries(NOISY_SERVERS)) {
      assert.deepEqual(Object.keys(results.scenarios[id]!.results), servers, id);
    }
    for (const id of API_SIZES) {
      assert.deepEqual(Object.keys(results.scenarios[id]!.results), ["conduit"], id);
      assert.deepEqual(results.scenarios[id]!.omitted, { ws: "no server API", socketio: "no server API" });
    }
    // No --namespaces: no table, and the report says nothing of one.
    assert.equal(results.namespaces, undefined);
    assert.doesNotMatch(markdown, /- namespaces:/);
  });

  it("connect: every connection opened, and the per-connection figures are computed from them", () => {
    for (const server of SERVERS) {
      const row = ok<ConnectRow>(results.scenarios.connect!.results[server], `connect/${server}`);
      assert.equal(row.failed, 0, row.errors.join("; "));
      assert.equal(row.opened, row.clients);
      assert.ok(row.rssBeforeKiB > 0 && row.rssAfterKiB > 0, "RSS was read from /proc");
      // The JSON keeps three decimals.
      assert.ok(Math.abs(row.rssPerConnectionKiB - (row.rssAfterKiB - row.rssBeforeKiB) / row.opened) < 0.001);
      assert.ok(Math.abs(row.serverCpuUsPerConnection - (1000 * row.serverCpuMs) / row.opened) < 0.001);
    }
  });

  it("fan-out: no delivery missing, one last-member time per broadcast, merged over load processes", () => {
    for (const id of ["fanout-1k", "fanout-10k"]) {
      for (const server of SERVERS) {
        const row = ok<FanoutRow>(results.scenarios[id]!.results[server], `${id}/${server}`);
        assert.equal(row.missing, 0);
        assert.equal(row.deliveries, row.broadcasts * row.clients);
        assert.equal(row.lastMemberMs.samples, row.broadcasts);
        assert.equal(row.firstMemberMs.samples, row.broadcasts);
        // Per broadcast the first arrival precedes the last, so every percentile does too.
        assert.ok(row.firstMemberMs.p50 <= row.lastMemberMs.p50 && row.firstMemberMs.max <= row.lastMemberMs.max);
      }
    }
    // By default one native client holds every member; the node load processes run in the --repeat test.
    assert.equal(results.latencyClient, "native");
    assert.equal((results.scenarios["fanout-10k"]!.results.conduit as FanoutRow).loadProcesses, 1);
    assert.match(markdown, /fan-out latency and echo connections: one C process holds them all/);
  });

  it("echo: every request answered, one round-trip time per reply", () => {
    for (const server of SERVERS) {
      const row = ok<EchoRow>(results.scenarios.echo!.results[server], `echo/${server}`);
      assert.ok(row.sent > 0);
      assert.equal(row.received, row.sent);
      assert.equal(row.missing, 0);
      assert.equal(row.rttMs.samples, row.sent);
    }
  });

  it("throughput: every broadcast reached every member", () => {
    for (const server of SERVERS) {
      const row = ok<ThroughputRow>(results.scenarios.throughput!.results[server], `throughput/${server}`);
      assert.ok(row.deliveries > 0);
      assert.equal(row.totalDeliveries, row.broadcasts * row.members);
      assert.equal(row.missing, 0);
    }
  });

  it("api: over HTTP and over WebSocket, every publication reached every member and every request was answered 200", () => {
    for (const id of API_SIZES) {
      const row = ok<ApiRow>(results.scenarios[id]!.results.conduit, `${id}/conduit`);
      assertApiRow(row, id);
    }
    assert.equal(ok<ApiRow>(results.scenarios["api-1"]!.results.conduit, "api-1").members, 1);
    assert.match(
      markdown,
      /\| api: `conduit-ws --api-key`, 50 members in one room; [^|]+ \| publishes per second, API \/ WebSocket \| [\d,]+ \/ [\d,]+ \| omitted: no server API \|/,
    );
    assert.match(markdown, /\| +\| deliveries missing, API \/ WebSocket \| 0 of \d+ \/ 0 of \d+ \|/);
  });

  it("cluster: with 1 node and with 2, every broadcast reached every member, on both nodes", { skip: skipRedis }, () => {
    for (const [id, nodes] of [
      ["cluster-1-node", 1],
      ["cluster-2-nodes", 2],
    ] as const) {
      for (const server of CLUSTER_SERVERS) {
        const row = ok<ClusterRow>(results.scenarios[id]!.results[server], `${id}/${server}`);
        assert.equal(row.nodes, nodes);
        assert.equal(row.membersPerNode.length, nodes);
        assert.equal(
          row.membersPerNode.reduce((a, b) => a + b, 0),
          row.members,
        );
        // Spread evenly: with two nodes, half the members can only be reached through Redis.
        assert.ok(Math.max(...row.membersPerNode) - Math.min(...row.membersPerNode) <= 1);
        const { latency, throughput } = row;
        assert.equal(latency.clients, row.members);
        assert.equal(latency.missing, 0);
        assert.equal(latency.deliveries, latency.broadcasts * row.members);
        assert.equal(latency.lastMemberMs.samples, latency.broadcasts);
        assert.ok(throughput.deliveries > 0);
        assert.equal(throughput.members, row.members);
        assert.equal(throughput.totalDeliveries, throughput.broadcasts * row.members);
        assert.equal(throughput.missing, 0);
        // Redis's CPU was read from /proc in both windows, apart from the nodes'.
        assert.equal(typeof latency.redisCpuMs, "number");
        assert.equal(typeof throughput.redisCpuSecondsPerMillion, "number");
      }
    }
  });

  it("scale: every connection opened, every broadcast reached all of them, RSS read per worker", { skip: skipRedis }, () => {
    const row = ok<ScaleRow>(results.scenarios.scale!.results.conduit, "scale/conduit");
    assert.equal(row.failed, 0, row.errors.join("; "));
    assert.equal(row.opened, row.clients);
    assert.equal(row.workers, 2);
    assert.equal(row.workerRssBeforeKiB.length, row.workers);
    assert.equal(row.workerRssAfterKiB.length, row.workers);
    assert.ok([...row.workerRssBeforeKiB, ...row.workerRssAfterKiB, row.primaryRssKiB].every((kib) => kib > 0));
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(row.rssPerConnectionKiB - (sum(row.workerRssAfterKiB) - sum(row.workerRssBeforeKiB)) / row.opened) < 0.001);
    const { latency } = row;
    assert.equal(latency.clients, row.opened);
    assert.equal(latency.missing, 0);
    assert.equal(latency.deliveries, latency.broadcasts * row.opened);
    assert.equal(latency.lastMemberMs.samples, latency.broadcasts);
    // Spread over two load processes, so the merge across processes is exercised here too.
    assert.equal(latency.loadProcesses, 2);
  });

  it("noisy neighbour: every attack reported, the bystander's percentiles computed from its own samples", () => {
    const checks = results.bystanderTarget?.checks ?? [];
    assert.equal(results.bystanderTarget?.limitMs, 100);
    assert.equal(checks.length, NOISY_RUNS);
    for (const [id, servers] of Object.entries(NOISY_SERVERS)) {
      for (const server of servers) {
        const row = ok<NoisyRow>(results.scenarios[id]!.results[server], `${id}/${server}`);
        assert.equal(`noisy-${row.attack}`, id);
        const { bystander, attacker } = row;
        // A server that crashed under the attack (the hand-written hub may) leaves the bystander
        // without pongs; conduit-ws must survive every attack.
        if (server === "conduit") assert.equal(row.serverExited, undefined, `${id}: ${row.serverExited}`);
        if (row.serverExited === undefined) {
          assert.ok(bystander.sent > 0 && bystander.received > 0, `${id}/${server}: the bystander was answered`);
          assert.ok(attacker.sent > 0, `${id}/${server}: the attack ran`);
          // The window's CPU was read for the server (one that crashed has none).
          assert.ok(row.serverCpuMs >= 0 && row.windowMs > 0, `${id}/${server}: server CPU`);
        }
        assert.equal(bystander.samplesMs.length, bystander.received);
        assert.equal(bystander.rttMs.samples, bystander.received);
        assert.equal(bystander.missing, bystander.sent - bystander.received - bystander.refused - bystander.errors);
        if (bystander.received > 0) {
          // Nearest rank over the samples the JSON keeps (both rounded to 3 decimals).
          const sorted = [...bystander.samplesMs].sort((a, b) => a - b);
          const rank = (p: number): number => sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
          assert.ok(Math.abs(bystander.rttMs.p50 - rank(50)) <= 0.001, `${id}/${server} p50`);
          assert.ok(Math.abs(bystander.rttMs.p99 - rank(99)) <= 0.001, `${id}/${server} p99`);
          assert.ok(Math.abs(bystander.rttMs.max - sorted.at(-1)!) <= 0.001, `${id}/${server} max`);
        }
        assert.equal(attacker.refused, attacker.errors.rate_limited ?? 0);
        const check = checks.find((candidate) => candidate.scenario === id && candidate.server === server);
        assert.ok(check !== undefined, `${id}/${server}: checked against the target`);
        // A p99 of no samples is NaN, which the JSON writes as null.
        assert.equal(check.p99Ms, bystander.rttMs.p99);
        const answered = bystander.received > 0 && bystander.received === bystander.sent && bystander.closed === undefined;
        assert.equal(check.met, answered && bystander.rttMs.p99 < 100);
      }
    }
    // The fan-out attack's broadcasts that were let through reached the members.
    for (const server of NOISY_SERVERS["noisy-fanout"]!) {
      assert.ok(ok<NoisyRow>(results.scenarios["noisy-fanout"]!.results[server], server).memberTicks > 0);
    }
    // One table, a row per attack and server (omitted ones say why), the target under it.
    assert.match(markdown, /\n\| attack \| server \| bystander ping p50 \/ p99 \/ max \(ms\) \|/);
    assert.match(markdown, /\| presence: 8 × in 200 members \| ws hub \| omitted: no presence request \|/);
    assert.match(markdown, /\| pongs: 2 floods \| conduit-ws \| [\d.]+ \/ [\d.]+ \/ [\d.]+ \| \d+ of \d+/);
    assert.match(markdown, /\nTarget: the bystander's p99 under 100 ms on this machine, every ping answered: met in \d+ of 10\./);
    assert.match(run.stdout, /\nTarget: the bystander's p99 under 100 ms/);
  });

  it("writes the report beside its JSON in the --out folder, prints the table and both paths", () => {
    assert.match(markdown, /^# Benchmark run \S+ — quick mode: smoke figures from tiny counts, NOT to be quoted\n/);
    assert.match(markdown, /\| scenario \| measure \| conduit-ws \| ws hub \(baseline\) \| Socket\.IO \|/);
    // The report names its JSON, and keeps no copy of it.
    assert.ok(markdown.includes(`\`${jsonName}\`, beside this file`), markdown);
    assert.doesNotMatch(markdown, /```json/);
    assert.match(run.stdout, /\| connect 300 clients \| time until all open \(s\) \|/);
    const base = join(dir, jsonName.replace(/\.json$/, ""));
    assert.ok(run.stdout.endsWith(`\nreport: ${base}.md\nJSON:   ${base}.json\n`), run.stdout.slice(-400));
    // The six targets, each from the two servers' rows; printed too.
    assert.deepEqual(
      (results.targets ?? []).map((check) => [check.scenario, check.limit, check.roundRatios.length]),
      [
        ["connect", 1.1, 1],
        ["connect", 1, 1],
        ["fanout-1k", 0.8, 1],
        ["fanout-10k", 0.8, 1],
        ["echo", 1, 1],
        ["throughput", 0.2, 1],
      ],
    );
    const throughput = results.targets!.find((check) => check.scenario === "throughput")!;
    const perMillion = (server: "conduit" | "ws"): number =>
      ok<ThroughputRow>(results.scenarios.throughput!.results[server], `throughput/${server}`).serverCpuSecondsPerMillion;
    assert.ok(Math.abs(throughput.ratio - perMillion("conduit") / perMillion("ws")) <= 0.01);
    assert.equal(throughput.lost, 0);
    assert.match(run.stdout, /\| throughput: server CPU-seconds per million deliveries \| ≤ 0\.2× \| /);
    assert.match(markdown, /\nThe targets, conduit-ws's figure over the ws hub's in this run\..*Quick mode/);
    if (!skipRedis) {
      assert.match(
        markdown,
        /\| cluster over Redis, 2 nodes: [^|]+ \| members on node A \+ B \| 20 \+ 20 \| omitted: no cluster mode \| 20 \+ 20 \|/,
      );
      assert.match(
        markdown,
        /\| scale: 300 connections [^|]+ \| connections opened \| 300 of 300 \| omitted: measures conduit-ws's CLI \|/,
      );
    }
  });

  it("leaves no server or load process behind", async () => {
    const pids = childPids(run.stderr);
    // 4 load processes (the noisy scenario's bystander and attackers have one each, its 200 members
    // two) and 3 servers; a native latency client per fan-out size, echo and server; cluster: 4
    // configurations, each with a redis-server, 6 nodes in all; scale: a redis-server, the CLI's
    // primary and its 2 workers; noisy: a server per attack and server; api: the CLI of each size.
    // api: a CLI per size.
    assert.equal(
      pids.length,
      4 + SERVERS.length + 3 * SERVERS.length + (skipRedis ? 0 : 4 + 6 + 1 + 1 + 2) + NOISY_RUNS + API_SIZES.length,
      run.stderr,
    );
    assert.deepEqual(await survivors(pids), []);
  });
});

describe("npm run bench -- --quick --repeat 2", () => {
  it("runs each round against every server in turn and reports the rounds' medians and totals", async () => {
    const dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    try {
      // With the node load processes, the larger room is spread over two: their merge is exercised.
      // --no-memory-reducer reaches every server: each one's command line is read while it runs.
      const args = [
        "--quick",
        "--repeat",
        "2",
        "--scenarios",
        "fanout,echo",
        "--servers",
        "conduit,ws",
        "--latency-client",
        "node",
        "--no-memory-reducer",
      ];
      const serverCommands = new Map<number, string>();
      const run = await runBench([...args, "--out", dir], (stderr) => {
        for (const match of stderr.matchAll(/(?:conduit|ws) server started: pid (\d+)/g)) {
          const pid = Number(match[1]);
          if (!serverCommands.has(pid)) serverCommands.set(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "));
        }
      });
      assert.equal(run.code, 0, `bench exited with ${run.code ?? run.signal}:\n${run.stderr}`);
      const { markdown, results } = reportIn(dir, "quick");
      // The servers take turns: round 2 starts with the server that ran last in round 1.
      const order = [...run.stderr.matchAll(/\] echo · (\w+) \(round (\d) of 2\) …/g)].map((match) => `${match[2]}:${match[1]}`);
      assert.deepEqual(order, ["1:conduit", "1:ws", "2:ws", "2:conduit"]);
      const median = (a: number, b: number): number => (a + b) / 2;
      for (const id of ["fanout-1k", "fanout-10k"]) {
        assert.equal(results.scenarios[id]!.rounds, 2);
        for (const server of ["conduit", "ws"] as const) {
          const row = ok<FanoutRow & { rounds: FanoutRow[] }>(results.scenarios[id]!.results[server], `${id}/${server}`);
          assert.equal(row.rounds.length, 2);
          const [first, second] = row.rounds as [FanoutRow, FanoutRow];
          if (id === "fanout-10k") assert.equal(first.loadProcesses, 2);
          // Counts add up over the rounds; figures are the median of the rounds (JSON keeps 3 decimals).
          assert.equal(row.missing, 0);
          assert.equal(row.deliveries, first.deliveries + second.deliveries);
          assert.equal(row.expectedDeliveries, first.expectedDeliveries + second.expectedDeliveries);
          assert.ok(Math.abs(row.lastMemberMs.p99 - median(first.lastMemberMs.p99, second.lastMemberMs.p99)) <= 0.001);
          assert.ok(Math.abs(row.serverCpuPct - median(first.serverCpuPct, second.serverCpuPct)) <= 0.001);
        }
      }
      const echo = ok<EchoRow & { rounds: EchoRow[] }>(results.scenarios.echo!.results.conduit, "echo/conduit");
      assert.equal(echo.sent, echo.rounds[0]!.sent + echo.rounds[1]!.sent);
      assert.equal(echo.missing, 0);
      assert.equal(results.latencyClient, "node");
      // Quick mode keeps one server of each kind for the whole run.
      assert.equal(serverCommands.size, 2, run.stderr);
      for (const command of serverCommands.values()) assert.match(command, / --expose-gc --no-memory-reducer /);
      assert.deepEqual(results.serverNodeFlags, ["--no-memory-reducer"]);
      assert.match(markdown, /- servers started with `--no-memory-reducer` \(every server under test/);
      assert.match(markdown, /fan-out latency and echo connections: the node load processes/);
      assert.match(markdown, /\| echo: 50 clients × 10\/s for 0\.6 s; median of 2 rounds \| round trip p50/);
      // The targets: each ratio is the two medians' quotient, each round's ratio its own rounds'.
      const targets = results.targets ?? [];
      assert.deepEqual(
        targets.map((check) => `${check.scenario}: ${check.target}`),
        [
          "fanout-1k: fan-out to 40 members: last-member p99",
          "fanout-10k: fan-out to 200 members: last-member p99",
          "echo: echo: round-trip p99",
        ],
      );
      for (const check of targets) {
        const figure = (row: Row): number => (check.scenario === "echo" ? (row as EchoRow).rttMs.p99 : (row as FanoutRow).lastMemberMs.p99);
        const conduit = ok<Row & { rounds: Row[] }>(results.scenarios[check.scenario]!.results.conduit, check.scenario);
        const hub = ok<Row & { rounds: Row[] }>(results.scenarios[check.scenario]!.results.ws, check.scenario);
        assert.ok(Math.abs(check.ratio - figure(conduit) / figure(hub)) <= 0.01, `${check.scenario}: ${check.ratio}`);
        assert.equal(check.roundRatios.length, 2);
        for (const [k, ratio] of check.roundRatios.entries()) {
          assert.ok(Math.abs(ratio - figure(conduit.rounds[k]!) / figure(hub.rounds[k]!)) <= 0.01);
        }
        assert.ok(Math.abs(check.medianRoundRatio - (check.roundRatios[0]! + check.roundRatios[1]!) / 2) <= 0.002);
        assert.equal(check.limit, check.scenario === "echo" ? 1 : 0.8);
        assert.equal(check.met, check.ratio <= check.limit && (check.lost ?? 0) === 0);
        if (check.scenario !== "echo") assert.equal(check.lost, 0);
      }
      assert.match(markdown, /The targets, conduit-ws's figure over the ws hub's in this run\..*Quick mode/);
      assert.match(markdown, /\| fan-out to 40 members: last-member p99 \| ≤ 0\.8× \| \d+\.\d\d× \| [012] of 2 \| /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("npm run bench -- --quick --namespaces", () => {
  it("starts conduit-ws with the namespace table (the library option, the CLI's --config), never the ws hub, and says so", async () => {
    assert.equal(parseArgs([]).namespaces, false, "off by default");
    assert.throws(() => parseArgs(["--help"]), /\n {2}--namespaces {12}run conduit-ws with the `namespaces` option/);
    const dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    try {
      const args = ["--quick", "--scenarios", "api,throughput", "--servers", "conduit,ws", "--namespaces"];
      // Each server's command line, read while it runs.
      const commands = new Map<string, string>();
      const run = await runBench([...args, "--out", dir], (stderr) => {
        for (const match of stderr.matchAll(/(conduit|ws|conduit-ws api) server started: pid (\d+)/g)) {
          const key = `${match[1]} ${match[2]}`;
          if (!commands.has(key)) commands.set(key, readFileSync(`/proc/${match[2]}/cmdline`, "utf8").split("\0").join(" "));
        }
      });
      assert.equal(run.code, 0, `bench exited with ${run.code ?? run.signal}:\n${run.stderr}`);
      const { markdown, results } = reportIn(dir, "quick");
      const of = (kind: string): string[] => [...commands].filter(([key]) => key.startsWith(`${kind} `)).map(([, command]) => command);
      // The warm-up's conduit server and the one quick mode keeps; the hub; a CLI per api size.
      assert.ok(of("conduit").length >= 1, run.stderr);
      for (const command of of("conduit")) assert.match(command, /bench\/\.build\/conduit\.mjs --namespaces\s*$/);
      for (const command of of("ws")) assert.doesNotMatch(command, /--namespaces/);
      assert.equal(of("conduit-ws api").length, API_SIZES.length, run.stderr);
      for (const command of of("conduit-ws api")) assert.match(command, /dist\/cli\/main\.js .*--config \S+conduit\.json/);
      // The server reported the table it resolved, and the harness checked it at every start.
      assert.match(run.stderr, /conduit server started: pid \d+, port \d+, namespaces loaded/);
      assert.deepEqual(Object.keys(results.namespaces?.table ?? {}), ["", "chat", "news", "team", "ops"]);
      assert.equal(results.namespaces?.room, "bench");
      assert.equal(results.namespaces?.namespace, "");
      assert.deepEqual(results.namespaces?.table[""], { join: "anyone", publish: "members" });
      assert.match(
        markdown,
        /\n- namespaces: conduit-ws ran with the `namespaces` option \(`--namespaces`; [^)]+\), 5 namespaces \("", "chat", "news", "team", "ops"\); the scenarios' room `bench` is in namespace "": \{"join":"anyone","publish":"members"\}/,
      );
      // With the table, broadcasts and publications still reach every member.
      for (const server of ["conduit", "ws"] as const) {
        const row = ok<ThroughputRow>(results.scenarios.throughput!.results[server], `throughput/${server}`);
        assert.equal(row.missing, 0);
      }
      for (const id of API_SIZES) assertApiRow(ok<ApiRow>(results.scenarios[id]!.results.conduit, id), id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("npm run bench interrupted", () => {
  it("kills its children on SIGINT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    try {
      let interrupted = false;
      // Interrupt as soon as the first server is up: load processes and a server are running.
      const run = await runBench(["--quick", "--scenarios", "echo", "--out", dir], (stderr, child) => {
        if (!interrupted && /server started: pid \d+/.test(stderr)) {
          interrupted = true;
          child.kill("SIGINT");
        }
      });
      assert.ok(interrupted, run.stderr);
      assert.equal(run.code, 130, run.stderr);
      const pids = childPids(run.stderr);
      assert.ok(pids.length >= 2, run.stderr);
      assert.deepEqual(await survivors(pids), []);
      // An interrupted run writes no report.
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("kills the CLI's primary, its workers and the redis-server on SIGINT", { skip: skipRedis }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    try {
      let interrupted = false;
      // Interrupt as soon as `conduit-ws --workers 2` is up: its workers are the harness's grandchildren.
      const args = ["--quick", "--scenarios", "scale", "--servers", "conduit", "--out", dir];
      const run = await runBench(args, (stderr, child) => {
        if (!interrupted && /cli server started: pid \d+, workers \d+, \d+/.test(stderr)) {
          interrupted = true;
          child.kill("SIGINT");
        }
      });
      assert.ok(interrupted, run.stderr);
      assert.equal(run.code, 130, run.stderr);
      const pids = childPids(run.stderr);
      // 2 load processes, the warm-up server, redis-server, the CLI's primary and its 2 workers.
      assert.equal(pids.length, 7, run.stderr);
      assert.deepEqual(await survivors(pids), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("npm run bench: where the report goes", () => {
  it("writes into bench/results by default, which git ignores", () => {
    assert.equal(parseArgs(["--quick"]).out, join(ROOT, "bench", "results"));
    assert.equal(RESULTS_DIR, join(ROOT, "bench", "results"));
    assert.match(readFileSync(join(ROOT, ".gitignore"), "utf8"), /^bench\/results\/$/m);
  });

  it("refuses a file name for --out and the former --json, saying why", () => {
    assert.throws(() => parseArgs(["--out", "docs/BENCHMARKS.md"]), /--out takes a folder/);
    assert.throws(() => parseArgs(["--json", "results.json"]), /--json is gone: every run writes its JSON beside its report/);
  });

  it("never overwrites a report: a second run of the same minute gets its own names", () => {
    const dir = mkdtempSync(join(tmpdir(), "conduit-bench-"));
    try {
      const results = {
        date: "2026-12-02T04:10:32.123Z",
        mode: "full",
        command: "npm run bench",
        machine: { nproc: 2, cpuModel: "test", ramGiB: 1, kernel: "linux", loadAverageAtStart: 0 },
        versions: { node: "v20", ws: "8", socketIo: "4", socketIoClient: "4", conduit: "0.1.0" },
        pinning: { serverCpu: 0, loadCpu: 1 },
        latencyClient: "native",
        scenarios: {},
      } satisfies BenchResults;
      const options = { ...parseArgs([]), out: dir };
      // A stray file of the next name: skipped too.
      writeFileSync(join(dir, "2026-12-02T0410-full-2.md"), "someone else's\n");
      const first = writeReport(results, options);
      const second = writeReport(results, options);
      assert.deepEqual(first, { markdown: join(dir, "2026-12-02T0410-full.md"), json: join(dir, "2026-12-02T0410-full.json") });
      assert.deepEqual(second, { markdown: join(dir, "2026-12-02T0410-full-3.md"), json: join(dir, "2026-12-02T0410-full-3.json") });
      assert.equal(readFileSync(join(dir, "2026-12-02T0410-full-2.md"), "utf8"), "someone else's\n");
      assert.deepEqual(JSON.parse(readFileSync(second.json, "utf8")), results);
      assert.match(readFileSync(second.markdown, "utf8"), /^# Benchmark run 2026-12-02T04:10:32\.123Z — full run\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("npm run bench:paired", () => {
  /** Runs bench:paired with `args` and checks what every run prints; returns the per-round figures. */
  async function paired(
    args: string[],
    unit: string,
    rounds: number,
    latency?: string,
    subject = "conduit-ws",
  ): Promise<{ conduit: number[]; hub: number[] }> {
    const { code, stdout, stderr } = await runBench(args, undefined, "bench/paired.ts");
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`^server CPU per ${unit}, `));
    const perRound = (label: string): number[] => {
      const match = new RegExp(`${label} \\(µs\\): ([\\d., ]+)\\n`).exec(stdout);
      assert.ok(match, `${label} line in:\n${stdout}`);
      return match[1]!.split(", ").map(Number);
    };
    const conduit = perRound(subject);
    const hub = perRound("ws hub");
    assert.equal(conduit.length, rounds);
    assert.equal(hub.length, rounds);
    assert.ok(
      [...conduit, ...hub].every((us) => us > 0),
      "each server used CPU for its load",
    );
    const ratios = /per round: ([\d., ]+); median ([\d.]+)/.exec(stdout);
    assert.ok(ratios, stdout);
    assert.equal(ratios[1]!.split(", ").length, rounds);
    // The µs are printed rounded, the ratio from the unrounded figures.
    const first = Number(ratios[1]!.split(", ")[0]);
    assert.ok(Math.abs(first - conduit[0]! / hub[0]!) <= 0.02 * first, `${first} against ${conduit[0]} / ${hub[0]}`);
    if (latency !== undefined) {
      // The p99 block: one figure per round for each server, in ms, and their ratio.
      const block = new RegExp(
        `${latency} p99 side by side.*\\n  ${subject}: ([\\d., ]+)\\n  ws hub: +([\\d., ]+)\\n  ${subject} ÷ ws hub per round: [\\d., ]+; median [\\d.]+\\n`,
      ).exec(stdout);
      assert.ok(block, `${latency} p99 block in:\n${stdout}`);
      for (const figures of [block[1]!, block[2]!]) {
        const values = figures.split(", ").map(Number);
        assert.equal(values.length, rounds);
        assert.ok(
          values.every((ms) => ms > 0 && ms < 10_000),
          figures,
        );
      }
    } else {
      assert.doesNotMatch(stdout, /p99/);
    }
    // Two servers and two native clients per round.
    const pids = childPids(stderr);
    assert.equal(pids.length, 4 * rounds, stderr);
    assert.deepEqual(await survivors(pids), []);
    return { conduit, hub };
  }

  it("measures both servers side by side, prints each round and the median ratio, and leaves nothing behind", async () => {
    await paired(["2", "300"], "connection", 2);
  });

  it("fanout: CPU per delivery and last-member p99 of the 1,000-member scenario's broadcasts, side by side", async () => {
    // 200 members × 100 measured broadcasts: enough server CPU to span many of /proc's 10 ms ticks.
    const { conduit, hub } = await paired(["fanout", "1", "200"], "delivery", 1, "last-member");
    // No server delivers in under 0.1 µs or spends 10 ms on one.
    assert.ok(
      [...conduit, ...hub].every((us) => us > 0.1 && us < 10_000),
      `${conduit} / ${hub}`,
    );
  });

  it("fanout --floor: the server making one socket.write per member delivers the same load in conduit-ws's place", async () => {
    const { conduit: floor, hub } = await paired(["fanout", "1", "200", "--floor"], "delivery", 1, "last-member", "floor");
    assert.ok(
      [...floor, ...hub].every((us) => us > 0.1 && us < 10_000),
      `${floor} / ${hub}`,
    );
  });

  it("--floor is refused outside fanout, with the usage", async () => {
    const { code, stderr } = await runBench(["echo", "1", "100", "--floor"], undefined, "bench/paired.ts");
    assert.equal(code, 2);
    assert.match(stderr, /usage: npm run bench:paired .*\[--floor\]\n {2}--floor {2}fanout only: /);
  });

  it("echo: CPU per echo and round-trip p99 over the echo scenario's load, side by side", async () => {
    // 100 connections × 10/s for 10 s: enough server CPU to span many of /proc's 10 ms ticks. A server
    // cannot answer an echo in under a microsecond of CPU, nor spend a millisecond on one here.
    const { conduit, hub } = await paired(["echo", "1", "100"], "echo", 1, "round-trip");
    assert.ok(
      [...conduit, ...hub].every((us) => us > 1 && us < 1000),
      `${conduit} / ${hub}`,
    );
  });
});

describe("bench load generator: reading ticks without JSON.parse", () => {
  const tickOf = (seq: number, sentAt: number): Buffer => Buffer.from(JSON.stringify({ type: "tick", data: { seq, t: sentAt } }));

  it("reads seq and t exactly as JSON.parse does, for the clock readings the generator writes", () => {
    const samples = [0, 1, 42, 9_999_999, 123_456.789, 1e-3, 98_765_432.109_876, now(), now() + 0.000_123];
    for (let i = 0; i < 200; i++) samples.push(Math.random() * 1e9);
    for (const sentAt of samples) {
      const raw = tickOf(sentAt === 0 ? 0 : Math.floor(sentAt) % 100_000, sentAt);
      const parsed = JSON.parse(raw.toString()) as { data: { seq: number; t: number } };
      assert.ok(readTick(raw), raw.toString());
      assert.equal(lastTick.seq, parsed.data.seq);
      // Digits accumulated in a double may round differently from JSON.parse in the last bit.
      assert.ok(Math.abs(lastTick.sentAt - parsed.data.t) <= Math.abs(parsed.data.t) * 1e-15, `${lastTick.sentAt} vs ${parsed.data.t}`);
    }
  });

  it("refuses what it does not read (an exponent, a missing field), so the caller falls back", () => {
    assert.equal(readTick(tickOf(1, 1e21)), false);
    assert.equal(readTick(tickOf(1, 1e-7)), false);
    assert.equal(readTick(Buffer.from('{"type":"tick","data":{"seq":3}}')), false);
    assert.equal(readTick(Buffer.from('{"type":"tick","data":{"t":3}}')), false);
    assert.ok(readTick(tickOf(-5, -2.5)));
    assert.deepEqual(lastTick, { seq: -5, sentAt: -2.5 });
  });

  it("the clock agrees with process.hrtime() across processes' shared monotonic clock", () => {
    const [seconds, nanoseconds] = process.hrtime();
    const reference = seconds * 1e3 + nanoseconds / 1e6;
    const reading = now();
    // Two clock reads apart: well under a millisecond unless the offset were wrong.
    assert.ok(Math.abs(reading - reference) < 0.5, `${reading} vs ${reference}`);
  });
});
