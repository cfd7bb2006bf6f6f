/**
 * The api scenario's publisher: publications to a room this process's connections are members of,
 * sent through the server API (`POST /api/publish` over keep-alive sockets) or as the first member's
 * WebSocket `broadcast`, with the same flow control and the same timing either way, so that the two
 * phases of one run differ only by the way in.
 *
 * The members read in this process too, which is what lets the publisher see when the last member
 * has a publication; every member parses each tick's `seq` (the tick reader, tick.ts, costs no
 * allocation).
 *
 * @module
 */
import { Agent, request } from "node:http";
import { summarise } from "../harness/stats.js";
import { now, until } from "../shared/clock.js";
import { cpuMs } from "../shared/procfs.js";
import type { PublishCommand, PublishResult } from "../shared/messages.js";
import { heldClients } from "./routines.js";

/** Characters of an unexpected answer's body kept for the report. */
const ERROR_BODY_CHARS = 200;

/** Sends a publication; closes what it holds once the run is over. */
interface Publisher {
  post(seq: number, at: number): void;
  close(): void;
}

/** One request per publication over `sockets` keep-alive sockets; `done` is told when it is answered. */
function httpPublisher(command: PublishCommand, done: (seq: number, failure?: string) => void): Publisher {
  const url = new URL(command.apiUrl!);
  const agent = new Agent({ keepAlive: true, maxSockets: command.sockets });
  const room = JSON.stringify(command.room);
  const authorization = `Bearer ${command.apiKey!}`;
  const post = (seq: number, at: number): void => {
    const body = `{"room":${room},"type":"tick","data":{"seq":${seq},"t":${at}}}`;
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Authorization: authorization },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (text.length < ERROR_BODY_CHARS) text += chunk;
        });
        res.on("end", () => done(seq, res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}: ${text.slice(0, ERROR_BODY_CHARS)}`));
      },
    );
    req.on("error", (error) => done(seq, error.message));
    req.end(body);
  };
  return { post, close: () => agent.destroy() };
}

/** See {@link PublishCommand}. */
export async function publish(command: PublishCommand): Promise<PublishResult> {
  const members = heldClients();
  const n = members.length;
  const { firstSeq, window } = command;
  // By publication (index = seq - firstSeq): when it was sent, answered, and reached its last member.
  const sentAt: number[] = [];
  const answeredAt: number[] = [];
  const lastAt: number[] = [];
  const counts: number[] = [];
  const finished: boolean[] = [];
  const overHttp = command.via === "http";
  const errors = new Set<string>();
  let failed = 0;
  let sent = 0;
  let completed = 0;
  let deliveries = 0;
  let sending = true;
  let drained: (() => void) | undefined;

  // Done when every member has it and, over HTTP, its answer came (a failed request counts as done:
  // its deliveries will be missing, and the publisher must not wait for them).
  const settle = (k: number): void => {
    if (finished[k] || counts[k]! < n || (overHttp && answeredAt[k]! < 0)) return;
    finished[k] = true;
    completed++;
    if (!sending && completed === sent) drained?.();
    pump();
  };
  const answered = (seq: number, failure?: string): void => {
    const k = seq - firstSeq;
    answeredAt[k] = now();
    if (failure !== undefined) {
      failed++;
      if (errors.size < 5) errors.add(failure);
      counts[k] = n;
    }
    settle(k);
  };
  const http = overHttp ? httpPublisher(command, answered) : undefined;
  const sender = members[0]!;
  const pump = (): void => {
    while (sending && sent - completed < window) {
      const k = sent++;
      const at = now();
      sentAt.push(at);
      answeredAt.push(-1);
      lastAt.push(-1);
      counts.push(0);
      finished.push(false);
      if (http !== undefined) http.post(firstSeq + k, at);
      else sender.broadcast(command.room, firstSeq + k, at);
    }
  };
  for (const member of members) {
    member.parseTicks = true;
    member.onTick = (seq) => {
      const k = seq - firstSeq;
      if (k < 0 || k >= sent) return;
      deliveries++;
      if (++counts[k]! === n) {
        lastAt[k] = now();
        settle(k);
      }
    };
  }

  await until(command.startAt);
  pump();
  await until(command.startAt + command.warmupMs);
  const serverCpu = (): number => command.serverPids.reduce((total, pid) => total + cpuMs(pid, command.ticksPerSecond), 0);
  const start = { at: now(), sent, server: serverCpu(), load: process.cpuUsage() };
  await until(start.at + command.durationMs);
  const end = { at: now(), sent, server: serverCpu(), load: process.cpuUsage(start.load) };
  sending = false;
  if (completed < sent) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, command.graceMs);
      drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  for (const member of members) member.onTick = undefined;
  http?.close();

  const lastMemberMs: number[] = [];
  const answerMs: number[] = [];
  for (let k = start.sent; k < end.sent; k++) {
    if (lastAt[k]! >= 0) lastMemberMs.push(lastAt[k]! - sentAt[k]!);
    if (overHttp && answeredAt[k]! >= 0) answerMs.push(answeredAt[k]! - sentAt[k]!);
  }
  return {
    members: n,
    measured: end.sent - start.sent,
    elapsedMs: end.at - start.at,
    serverCpuMs: end.server - start.server,
    loadCpuMs: (end.load.user + end.load.system) / 1000,
    lastMemberMs: summarise(lastMemberMs),
    ...(overHttp ? { answerMs: summarise(answerMs) } : {}),
    sent,
    totalDeliveries: deliveries,
    failed,
    errors: [...errors],
  };
}
