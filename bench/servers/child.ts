/**
 * What every server under test shares with the harness: the ready line, the `gc` request used before
 * an RSS reading, and exiting as soon as the harness is gone (its IPC channel closes), so that no
 * server outlives a benchmark that crashed.
 *
 * @module
 */
import { getHeapSpaceStatistics } from "node:v8";
import type { GcCommand, MemoryReport, Ready, Reply, Request } from "../shared/messages.js";

/** The address servers under test listen on: loopback only. */
export const HOST = "127.0.0.1";

/**
 * Prints the one line the harness waits for (`{"ready":true,"port":N}`, with what `extra` adds) and
 * starts answering its requests.
 */
export function announceReady(port: number, extra: Omit<Ready, "ready" | "port"> = {}): void {
  process.stdout.write(`${JSON.stringify({ ready: true, port, ...extra } satisfies Ready)}\n`);
  process.on("message", (message: Request<GcCommand>) => {
    let reply: Reply;
    if (message.command.op === "gc" && typeof globalThis.gc === "function") {
      // Twice: the first pass may only promote what the second then frees.
      globalThis.gc();
      globalThis.gc();
      reply = { seq: message.seq, ok: true, result: memoryReport() };
    } else {
      reply = { seq: message.seq, ok: false, error: `unsupported request ${JSON.stringify(message.command)}` };
    }
    process.send?.(reply);
  });
  process.on("disconnect", () => process.exit(0));
}

function memoryReport(): MemoryReport {
  const usage = process.memoryUsage();
  const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
  const kib = (bytes: number): number => Math.round(bytes / 1024);
  return {
    rssKiB: kib(usage.rss),
    heapUsedKiB: kib(usage.heapUsed),
    heapCommittedKiB: kib(usage.heapTotal),
    newSpaceCommittedKiB: kib(newSpace?.space_size ?? 0),
    externalKiB: kib(usage.external),
  };
}
