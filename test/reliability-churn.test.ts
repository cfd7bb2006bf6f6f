/**
 * Reliability, churn: 20,000 connect / join / disconnect cycles leave nothing behind in
 * the server: no client, room, socket, listener or timer, and the heap after GC returns to within a
 * stated bound of where it started. The server runs in a child process with `--expose-gc` so that GC
 * can be forced and its heap read without the test's own clients in the numbers. Clients are raw
 * sockets, 50 at a time, leaving in three ways: a close frame, a TCP FIN, a TCP RST.
 */
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startChildServer, type ChildServer, type ChildStats } from "./fixtures/child-server.js";
import { closeFrame, FrameReader, Opcode, textFrame } from "./helpers/raw-socket.js";

const CYCLES = 20_000;
const WARM_UP = 1_000;
const CONCURRENCY = 50;
/** Bound on heap growth after GC across the 20,000 cycles (see docs/RELIABILITY.md). */
const HEAP_GROWTH_BOUND = 4 * 1024 * 1024;

/**
 * One cycle: upgrade, join a shared room and a room of its own (pipelined in the same write as the
 * upgrade request), wait for both `room_joined`, then leave as `mode` says.
 */
function cycle(port: number, index: number, mode: "close" | "fin" | "rst"): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const reader = new FrameReader();
    let head = true;
    let buffered = Buffer.alloc(0);
    let joined = 0;
    let leaving = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`cycle ${index} did not finish`));
    }, 30_000);
    socket.on("error", () => {});
    socket.once("close", () => {
      clearTimeout(timer);
      if (leaving) resolve();
      else reject(new Error(`cycle ${index}: connection ended before both rooms were joined`));
    });
    socket.once("connect", () => {
      socket.write(
        Buffer.concat([
          Buffer.from(
            `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          ),
          textFrame({ type: "join_room", data: { room: `shared-${index % 20}` } }),
          textFrame({ type: "join_room", data: { room: `own-${index}` } }),
        ]),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      let bytes = chunk;
      if (head) {
        buffered = Buffer.concat([buffered, chunk]);
        const end = buffered.indexOf("\r\n\r\n");
        if (end === -1) return;
        if (!buffered.subarray(0, 12).toString().startsWith("HTTP/1.1 101")) {
          socket.destroy();
          return;
        }
        head = false;
        bytes = buffered.subarray(end + 4);
      }
      for (const frame of reader.push(bytes)) {
        if (frame.opcode === Opcode.Text && frame.payload.includes('"room_joined"')) joined++;
      }
      if (joined === 2 && !leaving) {
        leaving = true;
        if (mode === "close") socket.write(closeFrame(1000));
        else if (mode === "fin") socket.end();
        else socket.resetAndDestroy();
      }
    });
  });
}

/** Runs `count` cycles, `CONCURRENCY` at a time. */
async function churn(port: number, first: number, count: number): Promise<void> {
  let next = first;
  const end = first + count;
  const modes = ["close", "fin", "rst"] as const;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const index = next++;
      await cycle(port, index, modes[index % 3]!);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Polls the child until nothing of the cycles is left (no event reports that from another process). */
async function settled(child: ChildServer): Promise<ChildStats> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const stats = await child.stats();
    if ((stats.clients === 0 && stats.rooms === 0 && stats.sockets === 0) || Date.now() > deadline) return stats;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("churn: 20,000 connect/join/disconnect cycles", () => {
  let child: ChildServer;
  before(async () => {
    child = await startChildServer({ rateLimit: false });
  });
  after(() => child.stop());

  it("leave no client, room, socket, listener or timer behind, and the heap after GC returns to its start", async () => {
    // Warm up first, so that code compiled and caches filled on first use are in the baseline.
    await churn(child.port, 0, WARM_UP);
    await settled(child);
    const start = await child.stats(true);

    const began = Date.now();
    await churn(child.port, WARM_UP, CYCLES);
    const seconds = (Date.now() - began) / 1000;
    const left = await settled(child);
    assert.deepEqual({ clients: left.clients, rooms: left.rooms, sockets: left.sockets }, { clients: 0, rooms: 0, sockets: 0 });
    const end = await child.stats(true);
    assert.deepEqual(end.listeners, start.listeners, "listeners on the HTTP server");
    assert.equal(end.resources.Timeout ?? 0, start.resources.Timeout ?? 0, "timers");
    assert.equal(end.resources.TCPSocketWrap ?? 0, start.resources.TCPSocketWrap ?? 0, "sockets");
    const growth = end.heapUsed - start.heapUsed;
    console.log(
      `# churn: ${CYCLES} cycles in ${seconds.toFixed(1)} s; heap after GC ${(start.heapUsed / 1048576).toFixed(2)} -> ${(end.heapUsed / 1048576).toFixed(2)} MiB (growth ${(growth / 1024).toFixed(0)} KiB)`,
    );
    assert.ok(growth < HEAP_GROWTH_BOUND, `heap after GC grew by ${(growth / 1024).toFixed(0)} KiB over ${CYCLES} cycles`);
  });
});
