/**
 * Direct writes (src/hub/direct-write.ts): frames go to the socket's libuv handle past node's stream,
 * on real TCP connections over loopback. What a user relies on: every frame arrives, in the order it
 * was handed over, also behind and before what node's own `socket.write` sends (ws's close frames);
 * bytes the kernel has not taken still count against `maxBufferedBytes`; a peer that resets the
 * connection ends it without crashing anything.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import { setImmediate as nextTurn } from "node:timers/promises";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { directTarget, directWritesSupported, isWritable } from "../src/hub/direct-write.js";
import { FlushScheduler, SendQueue } from "../src/hub/send-queue.js";

/** A connected pair over loopback: `writer` is the side the queue writes to, `reader` the peer. */
interface Pair {
  writer: Socket;
  reader: Socket;
  /** Calls of the writer's own `socket.write` (node's stream path). */
  streamWrites: number;
}

let listener: Server;
let port: number;
const accepted: Socket[] = [];
const waiting: Array<(socket: Socket) => void> = [];

before(async () => {
  listener = createServer((socket) => {
    const take = waiting.shift();
    if (take) take(socket);
    else accepted.push(socket);
  });
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  port = (listener.address() as { port: number }).port;
});
after(() => listener.close());

async function pair(): Promise<Pair> {
  const serverSide = new Promise<Socket>((resolve) => {
    const ready = accepted.shift();
    if (ready) resolve(ready);
    else waiting.push(resolve);
  });
  const reader = connect(port, "127.0.0.1");
  await once(reader, "connect");
  const writer = await serverSide;
  const result: Pair = { writer, reader, streamWrites: 0 };
  const write = writer.write.bind(writer) as (chunk: Buffer) => boolean;
  writer.write = ((chunk: Buffer) => {
    result.streamWrites++;
    return write(chunk);
  }) as Socket["write"];
  return result;
}

/** Reads from `socket` until `length` bytes have arrived. */
async function readBytes(socket: Socket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    total += chunk.length;
    if (total >= length) break;
  }
  return Buffer.concat(chunks);
}

function frames(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, String.fromCharCode(97 + (i % 26))));
}

/**
 * Stops the reader and pushes 64 KiB frames until the kernel's buffers are full and a write waits in
 * libuv, where node's stream cannot see it; returns the frames pushed.
 */
function fillPastTheKernel(p: Pair, queue: SendQueue): Buffer[] {
  p.reader.pause();
  const sent: Buffer[] = [];
  for (const frame of frames(2000, 64 * 1024)) {
    queue.push(frame, "now");
    sent.push(frame);
    if (queue.unsentBytes > 0) break;
  }
  assert.ok(queue.unsentBytes > 0, `the kernel took all ${sent.length} frames`);
  return sent;
}

describe("direct writes", () => {
  it("are available on this node, for a plain TCP socket", async () => {
    // If a node release moves the internals, this says so (and frames quietly take socket.write).
    assert.equal(directWritesSupported, true);
    const { writer, reader } = await pair();
    assert.notEqual(directTarget(writer), undefined);
    writer.destroy();
    reader.destroy();
  });

  it("read node's writable state as socket.writable and socket.writableLength do, from open to destroyed", async () => {
    // The send queue reads these from the state it looked up once, not through the socket's getters.
    const { writer, reader } = await pair();
    const target = directTarget(writer)!;
    const agree = (when: string): void => {
      assert.equal(isWritable(target.state), writer.writable, `writable, ${when}`);
      assert.equal(target.state.length, writer.writableLength, `writableLength, ${when}`);
    };
    agree("open");
    writer.cork();
    writer.write(Buffer.alloc(100));
    assert.equal(target.state.length, 100, "a corked write is held by node");
    agree("corked");
    writer.uncork();
    agree("uncorked");
    writer.end();
    assert.equal(isWritable(target.state), false);
    agree("ending");
    writer.destroy();
    assert.equal(target.state.destroyed, true);
    agree("destroyed");
    reader.destroy();
  });

  it("are not offered for a stream that is not a TCP socket", () => {
    assert.equal(directTarget(new PassThrough()), undefined);
  });

  it("deliver every frame in order without node's stream, and directWrites: false goes through it", async () => {
    for (const direct of [true, false]) {
      const p = await pair();
      const queue = new SendQueue(p.writer, new FlushScheduler(), direct);
      const sent = frames(50, 100);
      for (const frame of sent) queue.push(frame, "now");
      assert.deepEqual(await readBytes(p.reader, 5000), Buffer.concat(sent));
      assert.equal(p.streamWrites, direct ? 0 : 50, `socket.write calls with directWrites: ${direct}`);
      p.writer.destroy();
      p.reader.destroy();
    }
  });

  it("count what the kernel did not take until libuv has written it, and keep node's writes behind it", async () => {
    const p = await pair();
    const queue = new SendQueue(p.writer, new FlushScheduler(), true);
    const sent = fillPastTheKernel(p, queue);
    assert.equal(p.writer.writableLength, 0, "node's stream holds none of it");
    // Then one more frame through the queue and one through node's stream (as ws writes a close
    // frame): both must come after everything before them.
    const last = Buffer.from("last direct;");
    const tail = Buffer.from("tail via socket.write");
    queue.push(last, "now");
    p.writer.write(tail);
    const expected = Buffer.concat([...sent, last, tail]);
    p.reader.resume();
    const received = await readBytes(p.reader, expected.length);
    assert.equal(received.length, expected.length);
    assert.ok(received.equals(expected), "the bytes arrived in the order they were written");
    for (let turn = 0; turn < 100 && queue.unsentBytes > 0; turn++) await nextTurn();
    assert.equal(queue.unsentBytes, 0, "nothing is counted once everything is written");
    p.writer.destroy();
    p.reader.destroy();
  });

  it("end the connection cleanly when the peer resets it while writes wait in libuv", async () => {
    const p = await pair();
    const queue = new SendQueue(p.writer, new FlushScheduler(), true);
    fillPastTheKernel(p, queue);
    // (events.once would reject on the "error" that comes first.)
    const closed = new Promise((resolve) => p.writer.once("close", resolve));
    const errors: Error[] = [];
    p.writer.on("error", (error) => errors.push(error));
    p.reader.resetAndDestroy();
    await closed;
    assert.equal(p.writer.destroyed, true);
    for (const error of errors) assert.match(String((error as NodeJS.ErrnoException).code), /^(ECONNRESET|EPIPE)$/);
    assert.equal(queue.unsentBytes, 0, "the cancelled writes are no longer counted");
    // Nothing more is written to a closed socket, and nothing throws.
    queue.push(Buffer.from("late"), "now");
  });
});
