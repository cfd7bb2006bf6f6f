import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { FlushScheduler, SendQueue } from "../src/hub/send-queue.js";

/** A socket stand-in that records every `write` call it gets, as the kernel would see them. */
class RecordingSocket extends Writable {
  readonly writes: string[] = [];
  override write(chunk: Buffer): boolean {
    this.writes.push(chunk.toString());
    return true;
  }
}

function member(scheduler: FlushScheduler): { socket: RecordingSocket; queue: SendQueue } {
  const socket = new RecordingSocket();
  return { socket, queue: new SendQueue(socket, scheduler) };
}

/** What a hub does for one broadcast: asks the scheduler once, then hands the frame to each member. */
function broadcast(scheduler: FlushScheduler, queues: SendQueue[], text: string): void {
  const timing = scheduler.startBroadcast();
  for (const queue of queues) queue.push(Buffer.from(text), timing);
}

describe("send path: when broadcast frames are written", () => {
  it("writes a lone broadcast to each member at once, before the loop over the room ends", async () => {
    const scheduler = new FlushScheduler();
    const a = member(scheduler);
    const b = member(scheduler);
    const timing = scheduler.startBroadcast();
    a.queue.push(Buffer.from("one"), timing);
    // The first member has it before the second is even handed it: no waiting for the whole room.
    assert.deepEqual(a.socket.writes, ["one"]);
    assert.deepEqual(b.socket.writes, []);
    b.queue.push(Buffer.from("one"), timing);
    assert.deepEqual(b.socket.writes, ["one"]);
    await nextTurn();
    assert.deepEqual(a.socket.writes, ["one"], "nothing is written twice");
  });

  it("coalesces what follows the first broadcast of a turn, and all of the next busy turn", async () => {
    const scheduler = new FlushScheduler();
    const members = [member(scheduler), member(scheduler)];
    const queues = members.map((m) => m.queue);
    broadcast(scheduler, queues, "1;");
    broadcast(scheduler, queues, "2;");
    broadcast(scheduler, queues, "3;");
    for (const m of members) assert.deepEqual(m.socket.writes, ["1;"]);
    await nextTurn();
    for (const m of members) assert.deepEqual(m.socket.writes, ["1;", "2;3;"]);

    // The last turn carried three broadcasts: the stream is busy, so this turn's first one waits too.
    broadcast(scheduler, queues, "4;");
    broadcast(scheduler, queues, "5;");
    for (const m of members) assert.equal(m.socket.writes.length, 2);
    await nextTurn();
    for (const m of members) assert.deepEqual(m.socket.writes, ["1;", "2;3;", "4;5;"]);
  });

  it("goes back to writing at once after a turn with a single broadcast", async () => {
    const scheduler = new FlushScheduler();
    const { socket, queue } = member(scheduler);
    broadcast(scheduler, [queue], "a;");
    broadcast(scheduler, [queue], "b;");
    await nextTurn();
    broadcast(scheduler, [queue], "c;"); // after a busy turn: queued
    assert.deepEqual(socket.writes, ["a;", "b;"]);
    await nextTurn();
    assert.deepEqual(socket.writes, ["a;", "b;", "c;"]);
    broadcast(scheduler, [queue], "d;"); // after a turn of one: at once
    assert.deepEqual(socket.writes, ["a;", "b;", "c;", "d;"]);
  });

  it("keeps order: a broadcast handed over behind a queued reply leaves with it, after the callback", async () => {
    const scheduler = new FlushScheduler();
    const { socket, queue } = member(scheduler);
    queue.push(Buffer.from("reply;"), "callback");
    broadcast(scheduler, [queue], "news;");
    assert.deepEqual(socket.writes, [], "the broadcast did not overtake the reply");
    await Promise.resolve();
    assert.deepEqual(socket.writes, ["reply;news;"]);
  });

  it("writes nothing to a socket that is no longer writable", () => {
    const scheduler = new FlushScheduler();
    const { socket, queue } = member(scheduler);
    socket.destroy();
    broadcast(scheduler, [queue], "late;");
    assert.deepEqual(socket.writes, []);
  });
});
