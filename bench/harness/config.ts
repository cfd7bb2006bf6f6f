/**
 * The command line and the size of every scenario, full and quick.
 *
 * @module
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { ServerKind } from "../shared/messages.js";

/** One fan-out latency scenario. */
export interface FanoutSize {
  /** Key in the results (e.g. `fanout-1k`). */
  id: string;
  clients: number;
  intervalMs: number;
  /** Measured broadcasts (the percentiles are over these). */
  broadcasts: number;
  /** Broadcasts sent first and not measured, so that the servers' code is warm. */
  warmup: number;
}

/**
 * The cluster scenario: one room on nodes joined by Redis, measured with one node and with two. The
 * same connections serve a fan-out latency run, then a throughput run.
 */
export interface ClusterSize {
  members: number;
  /** Fan-out latency: a broadcast every `intervalMs`, `broadcasts` measured after `warmup`. */
  intervalMs: number;
  broadcasts: number;
  warmup: number;
  /** Throughput: up to `window` broadcasts' worth of deliveries in flight. */
  window: number;
  warmupMs: number;
  durationMs: number;
}

/** The scale scenario: the standalone CLI with several workers, filled with connections in one room. */
export interface ScaleSize {
  clients: number;
  /** Handshakes in flight at a time, over all load processes. */
  concurrency: number;
  /** `conduit-ws --workers N`. */
  workers: number;
  /** `--max-connections` of each worker (a process may have 20,000 open files). */
  maxConnectionsPerWorker: number;
  intervalMs: number;
  broadcasts: number;
  warmup: number;
}

/** The echo scenario: how many clients, each sending `ratePerClient` echoes a second. */
export interface EchoSize {
  clients: number;
  ratePerClient: number;
  /** Sent before the measured window, not counted. */
  warmupMs: number;
  durationMs: number;
}

/**
 * The noisy neighbour scenario: a bystander pings while one attack runs against a server at its
 * default limits. The attacks' rates and message sizes are part of their definition (noisy.ts);
 * these are the rooms and the times.
 */
export interface NoisySize {
  /** Idle members of the room the fan-out and presence attacks use. */
  members: number;
  /**
   * Idle members of the room the join/leave attack toggles: with the attacker, at most conduit-ws's
   * default `presenceEventsMaxMembers` (1,000), so that every join and leave is announced to them.
   */
  joinLeaveMembers: number;
  /** The bystander's ping interval. */
  pingIntervalMs: number;
  /** The attack runs this long before the measured window (its burst spent, the server's code warm). */
  warmupMs: number;
  durationMs: number;
}

/**
 * Connections of the presence attack, the most any attack of the noisy scenario opens: with the
 * bystander, what that scenario holds besides its members.
 */
export const PRESENCE_ATTACKERS = 8;

/**
 * One size of the api scenario: publications to one room through the server API's
 * `POST /api/publish`, then the same through a member's WebSocket `broadcast`, with at most `window`
 * publications on their way (sent, and not yet answered or not yet with every member) at a time.
 */
export interface ApiSize {
  /** Key in the results (e.g. `api-1k`). */
  id: string;
  members: number;
  /** Keep-alive sockets of the publisher's `http.Agent`. */
  sockets: number;
  window: number;
  warmupMs: number;
  durationMs: number;
}

/** Every scenario's size. */
export interface Sizes {
  connect: { clients: number; concurrency: number };
  fanout: FanoutSize[];
  echo: EchoSize;
  throughput: { members: number; window: number; warmupMs: number; durationMs: number };
  cluster: ClusterSize;
  scale: ScaleSize;
  noisy: NoisySize;
  api: ApiSize[];
  /** Connections one load process holds at most (a process may have 20,000 open files). */
  clientsPerProcess: number;
}

/** The sizes of a full run: the ones the performance targets are stated for. */
export const FULL: Sizes = {
  connect: { clients: 15_000, concurrency: 200 },
  fanout: [
    { id: "fanout-1k", clients: 1_000, intervalMs: 50, broadcasts: 100, warmup: 10 },
    { id: "fanout-10k", clients: 10_000, intervalMs: 500, broadcasts: 100, warmup: 4 },
  ],
  echo: { clients: 1_000, ratePerClient: 10, warmupMs: 2_000, durationMs: 10_000 },
  throughput: { members: 1_000, window: 16, warmupMs: 2_000, durationMs: 10_000 },
  cluster: { members: 1_000, intervalMs: 50, broadcasts: 100, warmup: 10, window: 16, warmupMs: 2_000, durationMs: 10_000 },
  // Not 30,000: every connection from 127.0.0.1 to the one server address needs its own local port,
  // and Linux's default range (32768-60999) has 28,232 of them.
  scale: { clients: 27_000, concurrency: 200, workers: 2, maxConnectionsPerWorker: 19_000, intervalMs: 1_000, broadcasts: 20, warmup: 2 },
  noisy: { members: 2_000, joinLeaveMembers: 999, pingIntervalMs: 10, warmupMs: 1_000, durationMs: 8_000 },
  // The second size is the HTTP path's own ceiling: with one member, a publication costs the server
  // one request and one delivery, where at 1,000 members the deliveries decide the rate.
  api: [
    { id: "api-1k", members: 1_000, sockets: 16, window: 16, warmupMs: 2_000, durationMs: 10_000 },
    { id: "api-1", members: 1, sockets: 16, window: 16, warmupMs: 2_000, durationMs: 10_000 },
  ],
  clientsPerProcess: 15_000,
};

/**
 * A few seconds per server: enough to run every code path of the harness (several load processes
 * included), far too small for any figure to mean anything.
 */
export const QUICK: Sizes = {
  connect: { clients: 300, concurrency: 50 },
  fanout: [
    { id: "fanout-1k", clients: 40, intervalMs: 20, broadcasts: 20, warmup: 3 },
    { id: "fanout-10k", clients: 200, intervalMs: 50, broadcasts: 10, warmup: 2 },
  ],
  echo: { clients: 50, ratePerClient: 10, warmupMs: 200, durationMs: 600 },
  throughput: { members: 50, window: 16, warmupMs: 200, durationMs: 600 },
  cluster: { members: 40, intervalMs: 20, broadcasts: 20, warmup: 3, window: 16, warmupMs: 200, durationMs: 600 },
  scale: { clients: 300, concurrency: 50, workers: 2, maxConnectionsPerWorker: 300, intervalMs: 100, broadcasts: 5, warmup: 1 },
  noisy: { members: 200, joinLeaveMembers: 99, pingIntervalMs: 10, warmupMs: 300, durationMs: 2_000 },
  api: [
    { id: "api-1k", members: 50, sockets: 4, window: 8, warmupMs: 200, durationMs: 600 },
    { id: "api-1", members: 1, sockets: 4, window: 8, warmupMs: 200, durationMs: 600 },
  ],
  clientsPerProcess: 150,
};

/** The scenario names accepted by `--scenarios`. */
export const SCENARIOS = ["connect", "fanout", "echo", "throughput", "cluster", "scale", "noisy", "api"] as const;
/** A scenario name. */
export type ScenarioName = (typeof SCENARIOS)[number];
/**
 * Rounds per single-server scenario in a full run. A p99 over 100 samples is the second-largest
 * sample, which one stray pause on a shared virtual machine moves far between identical runs; with
 * three rounds the median of one server could still land on either side of another's in consecutive
 * runs, so a full run takes five.
 */
export const FULL_ROUNDS = 5;
/** The scenarios `--repeat` applies to: each runs against one server at a time. */
export const REPEATABLE: readonly ScenarioName[] = ["connect", "fanout", "echo", "throughput"];
/** The scenarios that need a `redis-server` binary (the harness starts its own). */
export const REDIS_SCENARIOS: readonly ScenarioName[] = ["cluster", "scale"];
/** Every server, in the order they run and appear in tables. */
export const SERVERS: readonly ServerKind[] = ["conduit", "ws", "socketio"];
/**
 * Where a run writes its report and JSON unless `--out` says otherwise: a git-ignored folder, since
 * runs are not committed (docs/BENCHMARKS.md keeps the method and the figures worth quoting).
 */
export const RESULTS_DIR = fileURLToPath(new URL("../results", import.meta.url));

/** The parsed command line. */
export interface BenchOptions {
  quick: boolean;
  sizes: Sizes;
  scenarios: ScenarioName[];
  /** Whether `--scenarios` named them (rather than the default, all). */
  scenariosChosen: boolean;
  servers: ServerKind[];
  /**
   * The folder each run writes its report (`<date>T<hhmm>-<mode>.md`) and its results
   * (`….json`) into, created when missing; {@link RESULTS_DIR} by default.
   */
  out: string;
  serverCpu: number | undefined;
  loadCpu: number | undefined;
  verbose: boolean;
  /** Write a V8 CPU profile of every server process into this directory. */
  profile: string | undefined;
  /**
   * Node flags every server under test starts with, besides `--expose-gc` (the scale scenario's CLI
   * excepted): `--no-memory-reducer` with the option of that name, none by default, so that each
   * server pays for its own collections as it would when a user starts it.
   */
  serverNodeFlags: string[];
  /**
   * Rounds of each single-server scenario (connect, fan-out, echo, throughput), the servers taking
   * turns; the report gives the median of the rounds. The cluster, scale and noisy scenarios run once.
   * {@link FULL_ROUNDS} by default, one in quick mode.
   */
  repeat: number;
  /**
   * Who holds the connections of the fan-out latency and echo scenarios: `native`, one C process
   * (bench/native/latency-client.c, built with `cc`), or `node`, the load processes. The connect,
   * throughput, cluster and scale scenarios always use the node load processes.
   */
  latencyClient: LatencyClient;
  /**
   * conduit-ws runs with a namespace table (bench/shared/namespaces.ts) that lists the namespace of
   * every room the scenarios use: the library's `namespaces` option, or the CLI's `--config` file in
   * the api scenario. Off by default (no table: every room open, no lookup).
   */
  namespaces: boolean;
  /** The command line as typed, for the report. */
  command: string;
}

/** The latency scenarios' load generators, see {@link BenchOptions.latencyClient}. */
export const LATENCY_CLIENTS = ["native", "node"] as const;
/** One of {@link LATENCY_CLIENTS}. */
export type LatencyClient = (typeof LATENCY_CLIENTS)[number];

const USAGE = `usage: npm run bench -- [options]
  --quick                 small counts, a few seconds per server (checks the harness, not the servers)
  --scenarios a,b         among ${SCENARIOS.join(", ")} (default: all;
                          cluster and scale start their own redis-server, scale runs unpinned;
                          noisy runs conduit-ws at its default limits; api runs conduit-ws's
                          CLI with --api-key, publishing through POST /api/publish and, in the
                          same run, through a member's WebSocket broadcast)
  --servers a,b           among ${SERVERS.join(", ")} (default: all)
  --out DIR               write the report (.md) and the results (.json) into DIR
                          (default: bench/results, git-ignored); their paths are printed at the end
  --server-cpu N          pin servers to CPU N (default 0)
  --load-cpu N            pin load generators to CPU N (default 1)
  --no-pin                do not pin processes to CPUs
  --verbose               forward the children's stderr
  --profile DIR           write a CPU profile (.cpuprofile) of every server process to DIR
  --no-memory-reducer     start every server under test with node's --no-memory-reducer (not the
                          scale scenario's CLI); the report says so
  --namespaces            run conduit-ws with the \`namespaces\` option set to a small table that
                          lists the scenarios' room (bench/shared/namespaces.ts; the api
                          scenario's CLI gets it as --config); the report says so (default: off)
  --latency-client native|node
                          who holds the fan-out latency and echo connections: one C process
                          (default; built with cc) or the node load processes
  --repeat N              run connect, fanout, echo and throughput N times per server, the servers
                          taking turns, and report the median of the rounds (default ${FULL_ROUNDS}; --quick: 1)`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] {
  const items = (value ?? "").split(",").filter((item) => item.length > 0);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`${flag}: unknown "${item}" (one of ${allowed.join(", ")})\n${USAGE}`);
  }
  if (items.length === 0) throw new Error(`${flag} needs a value\n${USAGE}`);
  return items as T[];
}

function cpu(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a CPU number\n${USAGE}`);
  return n;
}

/**
 * Parses `argv` (without node and the script).
 *
 * @throws Error with the usage text on a bad flag
 */
export function parseArgs(argv: string[]): BenchOptions {
  const options: BenchOptions = {
    quick: false,
    sizes: FULL,
    scenarios: [...SCENARIOS],
    scenariosChosen: false,
    servers: [...SERVERS],
    out: RESULTS_DIR,
    serverCpu: 0,
    loadCpu: 1,
    verbose: false,
    profile: undefined,
    serverNodeFlags: [],
    repeat: FULL_ROUNDS,
    latencyClient: "native",
    namespaces: false,
    command: ["npm run bench", ...(argv.length > 0 ? ["--", ...argv] : [])].join(" "),
  };
  let pin = true;
  let repeatChosen = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case "--quick":
        options.quick = true;
        options.sizes = QUICK;
        break;
      case "--scenarios":
        options.scenarios = list(argv[++i], SCENARIOS, flag);
        options.scenariosChosen = true;
        break;
      case "--servers":
        options.servers = list(argv[++i], SERVERS, flag);
        break;
      case "--out":
      case "--profile": {
        const value = argv[++i];
        if (value === undefined) throw new Error(`${flag} needs a path\n${USAGE}`);
        // A file name here is the old meaning of --out (a Markdown file to append to): refuse it
        // rather than create a folder of that name.
        if (flag === "--out" && /\.(md|json)$/i.test(value)) {
          throw new Error(`--out takes a folder, the report and its JSON are written into it (got ${value})\n${USAGE}`);
        }
        if (flag === "--out") options.out = value;
        else options.profile = value;
        break;
      }
      case "--json":
        throw new Error(`--json is gone: every run writes its JSON beside its report, in the --out folder\n${USAGE}`);
      case "--server-cpu":
        options.serverCpu = cpu(argv[++i], flag);
        break;
      case "--load-cpu":
        options.loadCpu = cpu(argv[++i], flag);
        break;
      case "--repeat": {
        const n = Number(argv[++i]);
        if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error(`--repeat needs a whole number from 1 to 50\n${USAGE}`);
        options.repeat = n;
        repeatChosen = true;
        break;
      }
      case "--latency-client": {
        const [client, ...more] = list(argv[++i], LATENCY_CLIENTS, flag);
        if (more.length > 0) throw new Error(`${flag} takes one value\n${USAGE}`);
        options.latencyClient = client!;
        break;
      }
      case "--no-pin":
        pin = false;
        break;
      case "--verbose":
        options.verbose = true;
        break;
      case "--namespaces":
        options.namespaces = true;
        break;
      case "--no-memory-reducer":
        options.serverNodeFlags = ["--no-memory-reducer"];
        break;
      case "--help":
      case "-h":
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option ${String(flag)}\n${USAGE}`);
    }
  }
  // Quick mode checks the harness: one round unless asked for more.
  if (options.quick && !repeatChosen) options.repeat = 1;
  const cpus = availableParallelism();
  if (!pin || cpus < 2) {
    if (pin) process.stderr.write(`bench: only ${cpus} CPU available, processes are not pinned\n`);
    options.serverCpu = undefined;
    options.loadCpu = undefined;
  } else if (options.serverCpu! >= cpus || options.loadCpu! >= cpus) {
    throw new Error(`--server-cpu and --load-cpu must be below ${cpus}`);
  }
  return options;
}
