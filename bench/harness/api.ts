/**
 * The api scenario: what publishing from an application's backend costs. conduit-ws's standalone
 * server (`conduit-ws --api-key KEY`, one process pinned like every server under test) holds a room
 * whose members read in a load process; the same load process publishes to it, first through the
 * server API's `POST /api/publish` over keep-alive sockets, then, against the same server and the
 * same members, as the first member's WebSocket `broadcast`. Both phases keep the same number of
 * publications on their way, so the report sets one way in beside the other.
 *
 * conduit-ws only: the baselines have no server API. The CLI rather than the library's
 * `createApiHandler` on the bench server, because the CLI is what docs/API.md tells a user to deploy
 * for it, with its defaults (metrics, logging, presence events).
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { now } from "../shared/clock.js";
import type { ConnectResult, PublishCommand, PublishResult } from "../shared/messages.js";
import { BENCH_NAMESPACES } from "../shared/namespaces.js";
import type { ApiSize } from "./config.js";
import { startApiCli, type ApiCli } from "./external.js";
import { log } from "./log.js";
import { cpuShare, GRACE_MS, ROOM, send, type Context, type CpuShare } from "./session.js";
import type { Summary } from "./stats.js";

/** One way in (HTTP or WebSocket) of the api scenario. */
export interface ApiPhase extends CpuShare {
  /** Publications sent inside the measured window. */
  publications: number;
  publishesPerSecond: number;
  deliveriesPerSecond: number;
  /** Server CPU per publication in the window, µs (its deliveries included). */
  serverCpuUsPerPublication: number;
  /** Per publication: ms from the send (the POST, or the member's frame) until the last member had it. */
  lastMemberMs: Summary;
  /** Per publication over HTTP: ms from the POST until its 200 answer. */
  answerMs?: Summary;
  /** Over the whole phase, warm-up included. */
  sent: number;
  expectedDeliveries: number;
  totalDeliveries: number;
  missing: number;
  /** Requests answered with anything but 200, or failed; their texts in `errors`. */
  failed: number;
  errors: string[];
}

/** The api scenario against conduit-ws's CLI. */
export interface ApiRow {
  members: number;
  sockets: number;
  window: number;
  durationMs: number;
  /** `POST /api/publish` over keep-alive sockets. */
  api: ApiPhase;
  /** The same publications as the first member's WebSocket `broadcast`. */
  websocket: ApiPhase;
}

/**
 * Publications per second the server API is to take through `POST /api/publish`, on one core. At
 * 1,000 members that is ten million deliveries a second, so the report states it beside both sizes.
 */
export const API_TARGET_PER_SECOND = 10_000;

/** The `seq` each phase starts at: far apart, so that no late copy of one is counted in the other. */
const FIRST_SEQ = { http: 0, websocket: 100_000_000 } as const;

/** Runs one size of the api scenario: a fresh CLI, the members, then both phases. */
export async function runApi(ctx: Context, size: ApiSize): Promise<ApiRow> {
  if (size.members > ctx.options.sizes.clientsPerProcess) {
    throw new Error("api needs every member in one load process (the publisher sees them all)");
  }
  const apiKey = randomBytes(32).toString("hex");
  const configDir = ctx.options.namespaces ? mkdtempSync(join(tmpdir(), "conduit-bench-config-")) : undefined;
  let configFile: string | undefined;
  if (configDir !== undefined) {
    configFile = join(configDir, "conduit.json");
    writeFileSync(configFile, JSON.stringify({ namespaces: BENCH_NAMESPACES }));
  }
  const load = ctx.loads[0]!;
  let cli: ApiCli | undefined;
  try {
    cli = await startApiCli({ apiKey, configFile, cpu: ctx.options.serverCpu, verbose: ctx.options.verbose });
    log(
      `conduit-ws api server started: pid ${cli.pid}, ${cli.url}${configFile === undefined ? "" : ", --config with the namespace table"}`,
    );
    const connected = await send<ConnectResult>(
      load,
      { op: "connect", kind: "ws-protocol", url: cli.url, count: size.members, concurrency: 100, startAt: now() },
      300_000,
    );
    if (connected.failed > 0) throw new Error(`${connected.failed} of ${size.members} connections failed: ${connected.errors.join("; ")}`);
    await send(load, { op: "join", room: ROOM }, 120_000);
    const phase = async (via: PublishCommand["via"]): Promise<ApiPhase> => {
      const command: PublishCommand = {
        op: "publish",
        via,
        room: ROOM,
        ...(via === "http" ? { apiUrl: cli!.publishUrl, apiKey } : {}),
        sockets: size.sockets,
        window: size.window,
        firstSeq: FIRST_SEQ[via],
        warmupMs: size.warmupMs,
        durationMs: size.durationMs,
        startAt: now() + 300,
        graceMs: GRACE_MS,
        serverPids: [cli!.pid],
        ticksPerSecond: ctx.ticksPerSecond,
      };
      const result = await send<PublishResult>(load, command, size.warmupMs + size.durationMs + GRACE_MS + 60_000);
      return apiPhase(result);
    };
    const api = await phase("http");
    const websocket = await phase("websocket");
    return { members: size.members, sockets: size.sockets, window: size.window, durationMs: size.durationMs, api, websocket };
  } finally {
    try {
      await send(load, { op: "reset" }, 60_000);
    } finally {
      await cli?.stop(10_000);
      if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
    }
  }
}

function apiPhase(result: PublishResult): ApiPhase {
  const expectedDeliveries = result.sent * result.members;
  const deliveries = result.measured * result.members;
  return {
    ...cpuShare(result.elapsedMs, result.serverCpuMs, result.loadCpuMs, 1),
    publications: result.measured,
    publishesPerSecond: (1000 * result.measured) / result.elapsedMs,
    deliveriesPerSecond: (1000 * deliveries) / result.elapsedMs,
    serverCpuUsPerPublication: (1000 * result.serverCpuMs) / result.measured,
    lastMemberMs: result.lastMemberMs,
    ...(result.answerMs === undefined ? {} : { answerMs: result.answerMs }),
    sent: result.sent,
    expectedDeliveries,
    totalDeliveries: result.totalDeliveries,
    missing: expectedDeliveries - result.totalDeliveries,
    failed: result.failed,
    errors: result.errors,
  };
}
