/**
 * `npm run bench`: runs the same work against conduit-ws, a plain `ws` hub and Socket.IO, in one run
 * on one machine, and writes the comparison (Markdown) and every figure (JSON) into a git-ignored
 * folder, bench/results unless `--out DIR` names another, printing the two files' paths at the end.
 * Servers run pinned to one CPU and the load generators (separate processes) to another, and every
 * scenario reports both sides' CPU so that a reader sees which one was the bottleneck. See
 * docs/BENCHMARKS.md for the method.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { isAbsolute, relative } from "node:path";
import { clockTicksPerSecond, ephemeralPortCount, openFilesLimit } from "./shared/procfs.js";
import type { ServerKind } from "./shared/messages.js";
import { parseArgs, REDIS_SCENARIOS, REPEATABLE, SERVERS, type BenchOptions, type ScenarioName } from "./harness/config.js";
import { runApi, type ApiPhase } from "./harness/api.js";
import { runCluster } from "./harness/cluster.js";
import { ATTACKS, runNoisy } from "./harness/noisy.js";
import { bystanderTarget, noisySection } from "./harness/noisy-report.js";
import { redisServerAvailable } from "./shared/redis-server.js";
import { BENCH_NAMESPACE, BENCH_NAMESPACES } from "./shared/namespaces.js";
import { runScale } from "./harness/scale.js";
import { elapsedSeconds, log } from "./harness/log.js";
import { Child, installCleanup } from "./harness/processes.js";
import {
  markdownTable,
  machine,
  prepareResultsDir,
  targetsSection,
  versions,
  writeReport,
  type BenchResults,
  type Row,
  type ScenarioResult,
} from "./harness/report.js";
import { foldRounds, roundOrder } from "./harness/rounds.js";
import { targetChecks } from "./harness/targets.js";
import { compileChildScripts } from "./harness/compile.js";
import { runConnect, runEcho, runFanout, runThroughput } from "./harness/scenarios.js";
import { largestScenario, loadProcessesNeeded, ROOM, socketsPerProcess, stopServer, warmUp, type Context } from "./harness/session.js";

/** One scenario of the plan: its key in the results, its description, and how to run it against a server. */
interface Step {
  id: string;
  /** The `--scenarios` name it belongs to. */
  name: ScenarioName;
  scenario: Omit<ScenarioResult, "results">;
  /** The servers it applies to (default: all); the others are listed in `scenario.omitted`. */
  servers?: readonly ServerKind[];
  run: (ctx: Context, kind: ServerKind) => Promise<Row>;
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** Every scenario the options select, in the order they run. */
function plan(options: BenchOptions): Step[] {
  const { sizes, scenarios } = options;
  const steps: Step[] = [];
  if (scenarios.includes("connect")) {
    steps.push({
      id: "connect",
      name: "connect",
      scenario: { kind: "connect", title: `connect ${count(sizes.connect.clients)} clients` },
      run: runConnect,
    });
  }
  if (scenarios.includes("fanout")) {
    for (const size of sizes.fanout) {
      steps.push({
        id: size.id,
        name: "fanout",
        scenario: {
          kind: "fanout",
          title: `fan-out: ${count(size.clients)} in one room, a broadcast every ${size.intervalMs} ms (${size.broadcasts} measured)`,
        },
        run: (ctx, kind) => runFanout(ctx, kind, size),
      });
    }
  }
  if (scenarios.includes("echo")) {
    const { clients, ratePerClient, durationMs } = sizes.echo;
    steps.push({
      id: "echo",
      name: "echo",
      scenario: { kind: "echo", title: `echo: ${count(clients)} clients × ${ratePerClient}/s for ${durationMs / 1000} s` },
      run: runEcho,
    });
  }
  if (scenarios.includes("throughput")) {
    const { members, window, durationMs } = sizes.throughput;
    steps.push({
      id: "throughput",
      name: "throughput",
      scenario: {
        kind: "throughput",
        title: `fan-out throughput: ${count(members)} members, up to ${window} broadcasts in flight, ${durationMs / 1000} s`,
      },
      run: runThroughput,
    });
  }
  if (scenarios.includes("cluster")) {
    const { members, intervalMs, broadcasts, window, durationMs } = sizes.cluster;
    for (const nodes of [1, 2] as const) {
      steps.push({
        id: nodes === 1 ? "cluster-1-node" : "cluster-2-nodes",
        name: "cluster",
        scenario: {
          kind: "cluster",
          title:
            `cluster over Redis, ${nodes === 1 ? "1 node" : "2 nodes"}: ${count(members)} in one room, a broadcast every ${intervalMs} ms ` +
            `(${broadcasts} measured); then throughput, up to ${window} broadcasts in flight, ${durationMs / 1000} s`,
          omitted: { ws: "no cluster mode" },
        },
        servers: ["conduit", "socketio"],
        run: (ctx, kind) => runCluster(ctx, kind, nodes),
      });
    }
  }
  if (scenarios.includes("scale")) {
    const { clients, workers, intervalMs, broadcasts } = sizes.scale;
    steps.push({
      id: "scale",
      name: "scale",
      scenario: {
        kind: "scale",
        title:
          `scale: ${count(clients)} connections to \`conduit-ws --workers ${workers} --redis\`, one room, ` +
          `a broadcast every ${intervalMs} ms (${broadcasts} measured), not pinned`,
        omitted: { ws: "measures conduit-ws's CLI", socketio: "measures conduit-ws's CLI" },
      },
      servers: ["conduit"],
      run: (ctx) => runScale(ctx),
    });
  }
  if (scenarios.includes("noisy")) {
    const { pingIntervalMs, warmupMs, durationMs } = sizes.noisy;
    for (const attack of ATTACKS) {
      steps.push({
        id: `noisy-${attack.name}`,
        name: "noisy",
        scenario: {
          kind: "noisy",
          label: attack.label(sizes.noisy),
          title:
            `noisy neighbour, ${attack.label(sizes.noisy)}: ${attack.what(sizes.noisy)}, at the servers' default limits; ` +
            `a bystander pings every ${pingIntervalMs} ms, ${durationMs / 1000} s measured after ${warmupMs / 1000} s`,
          omitted: attack.omitted,
        },
        servers: SERVERS.filter((kind) => attack.omitted[kind] === undefined),
        run: (ctx, kind) => runNoisy(ctx, kind, attack),
      });
    }
  }
  if (scenarios.includes("api")) {
    for (const size of sizes.api) {
      steps.push({
        id: size.id,
        name: "api",
        scenario: {
          kind: "api",
          title:
            `api: \`conduit-ws --api-key\`, ${count(size.members)} ${size.members === 1 ? "member" : "members"} in one room; ` +
            `POST /api/publish over ${size.sockets} keep-alive sockets, then the same as a member's WebSocket broadcast; ` +
            `up to ${size.window} publications in flight, ${size.durationMs / 1000} s each`,
          omitted: { ws: "no server API", socketio: "no server API" },
        },
        servers: ["conduit"],
        run: (ctx) => runApi(ctx, size),
      });
    }
  }
  // A scenario none of whose servers is selected is left out.
  return steps.filter((step) => step.servers === undefined || step.servers.some((kind) => options.servers.includes(kind)));
}

/** One round's row as it is; several rounds folded into their median, or the first failure. */
function combine(rows: Row[]): Row {
  if (rows.length === 1) return rows[0]!;
  const failed = rows.findIndex((row) => "error" in row);
  if (failed !== -1) return { error: `round ${failed + 1}: ${(rows[failed] as { error: string }).error}` };
  return foldRounds(rows);
}

function summary(row: Row): string {
  if ("error" in row) return `FAILED: ${row.error}`;
  if ("bystander" in row) {
    const { bystander: b, attacker: a } = row;
    const closed =
      row.serverExited !== undefined
        ? ", server exited"
        : a.closed === undefined
          ? ""
          : `, attacker closed ${a.closed.code ?? "without a close frame"}`;
    return (
      `bystander p50 ${b.rttMs.p50.toFixed(2)} ms p99 ${b.rttMs.p99.toFixed(2)} ms max ${b.rttMs.max.toFixed(2)} ms, ${b.received}/${b.sent} answered; ` +
      `attacker ${a.sent} sent, ${a.refused} refused${closed}; cpu server ${row.serverCpuPct.toFixed(0)}%`
    );
  }
  if ("membersPerNode" in row) {
    const { latency, throughput } = row;
    return `${row.nodes} node(s): ${summary(latency)}; ${summary(throughput)}, redis ${throughput.redisCpuSecondsPerMillion?.toFixed(2)} cpu-s/M`;
  }
  if ("websocket" in row) {
    const phase = (name: string, p: ApiPhase): string =>
      `${name} ${count(Math.round(p.publishesPerSecond))}/s, last member p99 ${p.lastMemberMs.p99.toFixed(2)} ms, missing ${p.missing}, ` +
      `cpu server ${p.serverCpuPct.toFixed(0)}% load ${p.loadCpuPct.toFixed(0)}%`;
    return `${phase("API", row.api)}, ${row.api.failed} failed; ${phase("WebSocket", row.websocket)}`;
  }
  if ("workerRssAfterKiB" in row) {
    const open = `${row.opened}/${row.clients} open in ${(row.openAllMs / 1000).toFixed(2)} s, joined in ${(row.joinAllMs / 1000).toFixed(2)} s`;
    return `${open}, ${row.rssPerConnectionKiB.toFixed(1)} KiB/conn; ${summary(row.latency)}`;
  }
  const cpu = `cpu server ${row.serverCpuPct.toFixed(0)}% load ${row.loadCpuPct.toFixed(0)}%`;
  if ("openAllMs" in row)
    return `${row.opened}/${row.clients} open in ${(row.openAllMs / 1000).toFixed(2)} s, ${row.rssPerConnectionKiB.toFixed(1)} KiB/conn, ${cpu}`;
  if ("lastMemberMs" in row)
    return `last member p50 ${row.lastMemberMs.p50.toFixed(2)} ms p99 ${row.lastMemberMs.p99.toFixed(2)} ms, missing ${row.missing}, ${cpu}`;
  if ("rttMs" in row) return `rtt p50 ${row.rttMs.p50.toFixed(2)} ms p99 ${row.rttMs.p99.toFixed(2)} ms, missing ${row.missing}, ${cpu}`;
  return `${count(Math.round(row.deliveriesPerSecond))} deliveries/s, ${row.serverCpuSecondsPerMillion.toFixed(2)} cpu-s/M, missing ${row.missing}, ${cpu}`;
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  // Every socket is a file: the server holds all of a scenario's connections, a load process its share.
  const needed = socketsPerProcess(options) + 200;
  const limit = openFilesLimit();
  if (limit !== undefined && limit < needed) {
    process.stderr.write(`bench: this run needs ${needed} open files per process, the limit is ${limit} (raise it with ulimit -n)\n`);
    process.exit(2);
  }
  // Every connection needs a local port of its own (one source address, one server address).
  const ports = ephemeralPortCount();
  if (ports !== undefined && ports < largestScenario(options) + 500) {
    process.stderr.write(
      `bench: this run opens ${largestScenario(options)} connections to one server address; ` +
        `net.ipv4.ip_local_port_range offers ${ports} local ports (widen it, or run fewer with --scenarios)\n`,
    );
    process.exit(2);
  }
  if (options.scenarios.some((name) => REDIS_SCENARIOS.includes(name)) && !redisServerAvailable()) {
    const skipped = options.scenarios.filter((name) => REDIS_SCENARIOS.includes(name));
    // Asked for by name: a failure. Part of the default run: left out, loudly (the rest still runs).
    if (options.scenariosChosen || process.env.CI === "true") {
      process.stderr.write(`bench: ${skipped.join(" and ")} need redis-server, which is not installed (apt-get install redis-server)\n`);
      process.exit(2);
    }
    process.stderr.write(
      `\n!!! bench: redis-server is not installed: SKIPPING ${skipped.join(" and ")} (apt-get install redis-server)\n\n`,
    );
    options.scenarios = options.scenarios.filter((name) => !REDIS_SCENARIOS.includes(name));
  }
  // Before any measurement: a bad --out must not cost a whole run.
  try {
    prepareResultsDir(options.out);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exit(2);
  }
  installCleanup();
  compileChildScripts();
  // The harness is mostly idle, but it must not take turns on the server's CPU.
  if (options.loadCpu !== undefined) {
    try {
      execFileSync("taskset", ["--all-tasks", "--cpu-list", "--pid", String(options.loadCpu), String(process.pid)], { stdio: "ignore" });
    } catch {
      process.stderr.write("bench: taskset failed (is util-linux installed?); pass --no-pin to run unpinned\n");
      process.exit(2);
    }
  }

  const results: BenchResults = {
    date: new Date().toISOString(),
    mode: options.quick ? "quick" : "full",
    command: options.command,
    machine: machine(),
    versions: versions(),
    pinning: { serverCpu: options.serverCpu ?? null, loadCpu: options.loadCpu ?? null },
    latencyClient: options.latencyClient,
    ...(options.serverNodeFlags.length === 0 ? {} : { serverNodeFlags: options.serverNodeFlags }),
    ...(options.namespaces ? { namespaces: { table: BENCH_NAMESPACES, room: ROOM, namespace: BENCH_NAMESPACE } } : {}),
    scenarios: {},
  };
  const poolSize = loadProcessesNeeded(options);
  const withNamespaces = options.namespaces ? "; conduit-ws with the namespace table" : "";
  log(
    `${results.mode} run: ${options.scenarios.join(", ")} against ${options.servers.join(", ")}; ${poolSize} load process(es)${withNamespaces}`,
  );
  const loads = Array.from(
    { length: poolSize },
    (_, i) =>
      new Child({
        script: "bench/load/worker.ts",
        cpu: options.loadCpu,
        // 15,000 Socket.IO clients need more than the default heap. No memory reducer: its idle-time
        // collections would run on the load CPU mid-round (docs/BENCHMARKS.md, "Clean processes").
        nodeArgs: ["--max-old-space-size=4096", "--no-memory-reducer"],
        label: `load ${i}`,
        verbose: options.verbose,
      }),
  );
  await Promise.all(loads.map((load) => load.ready));
  log(`load processes started: pids ${loads.map((load) => load.pid).join(", ")}`);
  const ctx: Context = {
    options,
    loads,
    ticksPerSecond: clockTicksPerSecond(),
    reusedServers: options.quick ? new Map() : undefined,
  };

  log("warming up the load generators");
  await warmUp(ctx);

  const steps = plan(options);
  const serversOf = (step: Step): ServerKind[] => options.servers.filter((kind) => step.servers?.includes(kind) ?? true);
  const roundsOf = (step: Step): number => (REPEATABLE.includes(step.name) ? options.repeat : 1);
  const total = steps.reduce((n, step) => n + serversOf(step).length * roundsOf(step), 0);
  let done = 0;
  for (const step of steps) {
    const rounds = roundsOf(step);
    const scenario: ScenarioResult = { ...step.scenario, ...(rounds > 1 ? { rounds } : {}), results: {} };
    results.scenarios[step.id] = scenario;
    const rows = new Map<ServerKind, Row[]>();
    for (let round = 0; round < rounds; round++) {
      const label = rounds > 1 ? ` (round ${round + 1} of ${rounds})` : "";
      for (const kind of roundOrder(serversOf(step), round)) {
        done++;
        log(`[${done}/${total}] ${step.id} · ${kind}${label} …`);
        let row: Row;
        try {
          row = await step.run(ctx, kind);
        } catch (error) {
          row = { error: error instanceof Error ? error.message : String(error) };
        }
        rows.set(kind, [...(rows.get(kind) ?? []), row]);
        log(`[${done}/${total}] ${step.id} · ${kind}${label}: ${summary(row)}`);
      }
    }
    for (const kind of serversOf(step)) scenario.results[kind] = combine(rows.get(kind)!);
  }
  await Promise.all([...(ctx.reusedServers?.values() ?? [])].map((server) => stopServer(ctx, server)));
  await Promise.all(loads.map((load) => load.kill()));

  results.targets = targetChecks(results);
  if (options.scenarios.includes("noisy")) results.bystanderTarget = bystanderTarget(results);
  const files = writeReport(results, options);
  log(`done in ${elapsedSeconds().toFixed(0)} s`);
  process.stdout.write(
    `${markdownTable(results, options.servers)}\n${targetsSection(results)}${noisySection(results, options.servers)}\n` +
      `report: ${shown(files.markdown)}\nJSON:   ${shown(files.json)}\n`,
  );
}

/** `path` relative to the working directory when it lies below it (bench/results/…), else absolute. */
function shown(path: string): string {
  const below = relative(process.cwd(), path);
  return below.startsWith("..") || isAbsolute(below) ? path : below;
}

await main();
