import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkLimit, checkSince, copyJson, copyRelay, isOffset, MemoryHistoryStore, RoomCursor } from "../src/history/index.js";
import { runHistoryContract } from "./history-contract.js";

runHistoryContract("memory (one process)", () => ({
  newStore: () => new MemoryHistoryStore(),
  shared: false,
  // A process restart: the old store is gone, the new one knows nothing.
  lose: async (store) => {
    await store.close();
    const fresh = new MemoryHistoryStore();
    await fresh.start();
    return fresh;
  },
}));

describe("memory history store: bounded memory", () => {
  it("the sweep forgets rooms untouched for ttl and releases expired publications", async () => {
    let now = 1_000_000;
    const store = new MemoryHistoryStore({ now: () => now, sweepInterval: 60_000 });
    await store.start();
    const short = { size: 5, ttlSeconds: 1 };
    const long = { size: 5, ttlSeconds: 10 };
    for (let i = 0; i < 100; i++) await store.publish(`short-${i}`, { type: "t" }, short);
    await store.publish("long", { type: "t" }, long);
    assert.equal(store.roomCount, 101);
    now += 1000;
    store.sweep();
    assert.equal(store.roomCount, 1, "rooms past their ttl are dropped");
    now += 9000;
    store.sweep();
    assert.equal(store.roomCount, 0);
    await store.close();
  });

  it("a room keeps at most `size` publications however many are published, and follows a new size", async () => {
    const store = new MemoryHistoryStore();
    for (let i = 1; i <= 10_000; i++) await store.publish("big", { type: "t", json: String(i) }, { size: 7, ttlSeconds: 60 });
    const { publications } = await store.history("big", { size: 7, ttlSeconds: 60 });
    assert.deepEqual(
      publications.map((p) => p.offset),
      [9994, 9995, 9996, 9997, 9998, 9999, 10000],
    );
    await store.publish("big", { type: "t" }, { size: 3, ttlSeconds: 60 });
    const smaller = await store.history("big", { size: 3, ttlSeconds: 60 });
    assert.deepEqual(
      smaller.publications.map((p) => p.offset),
      [9999, 10000, 10001],
    );
    await store.close();
  });

  it("rejects a sweep interval that is not a positive number", () => {
    assert.throws(() => new MemoryHistoryStore({ sweepInterval: 0 }), TypeError);
    assert.throws(() => new MemoryHistoryStore({ sweepInterval: Number.NaN }), TypeError);
  });
});

describe("history input checks (the hub answers invalid_message when they fail)", () => {
  it("since: absent, or an epoch string and a whole offset from 0", () => {
    assert.deepEqual(checkSince(undefined), { ok: true, value: undefined });
    assert.deepEqual(checkSince({ epoch: "E", offset: 0 }), { ok: true, value: { epoch: "E", offset: 0 } });
    assert.deepEqual(checkSince({ epoch: "E", offset: 17, extra: 1 }), { ok: true, value: { epoch: "E", offset: 17 } });
    const bad: unknown[] = [
      null,
      "E:17",
      17,
      [],
      {},
      { epoch: "E" },
      { offset: 1 },
      { epoch: 5, offset: 1 },
      { epoch: null, offset: 1 },
      { epoch: "", offset: 1 },
      { epoch: "x".repeat(65), offset: 1 },
      { epoch: "E", offset: -1 },
      { epoch: "E", offset: 1.5 },
      { epoch: "E", offset: "3" },
      { epoch: "E", offset: Number.NaN },
      { epoch: "E", offset: Number.POSITIVE_INFINITY },
      { epoch: "E", offset: 2 ** 53 },
    ];
    for (const value of bad) {
      const checked = checkSince(value);
      assert.equal(checked.ok, false, JSON.stringify(value));
      if (!checked.ok) assert.match(checked.reason, /since/);
    }
  });

  it("limit: absent, or a whole number from 1 to the namespace's size", () => {
    assert.deepEqual(checkLimit(undefined, 100), { ok: true, value: undefined });
    assert.deepEqual(checkLimit(1, 100), { ok: true, value: 1 });
    assert.deepEqual(checkLimit(100, 100), { ok: true, value: 100 });
    for (const value of [0, -1, 1.5, 101, 1e308, Number.NaN, "5", null, {}]) {
      const checked = checkLimit(value, 100);
      assert.equal(checked.ok, false, String(value));
      if (!checked.ok) assert.equal(checked.reason, '"limit" must be a whole number from 1 to 100');
    }
  });

  it("isOffset accepts exactly the safe whole numbers from 0", () => {
    assert.deepEqual([0, 1, Number.MAX_SAFE_INTEGER, -1, 0.5, 2 ** 53, "1"].map(isOffset), [true, true, true, false, false, false, false]);
  });
});

describe("RoomCursor: the seam between a replay and the live copies", () => {
  it("holds copies until the read answers, then lets through only those after its position", () => {
    const cursor = new RoomCursor<number>();
    for (const offset of [4, 5, 6, 7]) assert.deepEqual(cursor.offer(offset, "E", offset), []);
    assert.equal(cursor.held, 4);
    assert.deepEqual(cursor.settle({ epoch: "E", offset: 5 }), [6, 7]);
    assert.deepEqual(cursor.position, { epoch: "E", offset: 7 });
    assert.deepEqual(cursor.offer(7, "E", 7), [], "a duplicate is skipped");
    assert.deepEqual(cursor.offer(8, "E", 8), [8]);
  });

  it("a copy of another epoch, or without one, always goes out", () => {
    const cursor = new RoomCursor<string>();
    assert.deepEqual(cursor.offer(1, "NEW", "n1"), []);
    assert.deepEqual(cursor.offer(9, undefined, "x"), []);
    assert.deepEqual(cursor.settle({ epoch: "OLD", offset: 40 }), ["n1", "x"]);
    assert.deepEqual(cursor.offer(2, "NEW", "n2"), ["n2"]);
    assert.deepEqual(cursor.offer(2, "NEW", "n2"), []);
    assert.deepEqual(cursor.offer(1, undefined, "y"), ["y"]);
  });

  it("with the memory store, a member recovering while others publish gets every publication after K once, in order", async () => {
    const store = new MemoryHistoryStore();
    const retention = { size: 1000, ttlSeconds: 60 };
    const room = "catch-up";
    const received: number[] = [];
    let cursor: RoomCursor<number> | undefined;
    // The hub's broadcast: position first, then the copy to the member (through its cursor).
    const broadcast = async (n: number): Promise<void> => {
      const { offset, epoch } = await store.publish(room, { type: "t", json: String(n) }, retention);
      if (cursor) received.push(...cursor.offer(offset, epoch, offset));
    };
    for (let n = 1; n <= 10; n++) await broadcast(n);
    const { epoch } = await store.position(room, retention);
    const traffic: Promise<void>[] = [];
    for (let n = 11; n <= 40; n++) traffic.push(broadcast(n));
    // The join: subscribed (the cursor is in place), then the read, while publications go on.
    cursor = new RoomCursor<number>();
    const reading = store.history(room, retention, { since: { epoch, offset: 7 } });
    for (let n = 41; n <= 70; n++) traffic.push(broadcast(n));
    const result = await reading;
    assert.equal(result.recovered, true);
    received.push(...result.publications.map((p) => p.offset), ...cursor.settle(result));
    for (let n = 71; n <= 80; n++) traffic.push(broadcast(n));
    await Promise.all(traffic);
    assert.deepEqual(
      received,
      Array.from({ length: 73 }, (_, i) => i + 8),
    );
  });
});

describe("the copy of a positioned publication", () => {
  it("is {type, data, room, offset}, without data when there is none, with the room escaped", () => {
    assert.equal(
      copyJson("news:1", { type: "headline", json: '{"t":"hi"}' }, 17),
      '{"type":"headline","data":{"t":"hi"},"room":"news:1","offset":17}',
    );
    assert.deepEqual(JSON.parse(copyJson('a"b\\', { type: "t" }, 1)), { type: "t", room: 'a"b\\', offset: 1 });
  });

  it("a relay fills the adapter's header slots and then the copy's offset", () => {
    const relay = copyRelay("ch", "r", { type: "t", json: "5" }, { segments: ["[", ',"', '"]\n'], slots: ["offset", "epoch"] });
    assert.deepEqual(relay, {
      channel: "ch",
      segments: ["[", ',"', '"]\n{"type":"t","data":5,"room":"r","offset":', "}"],
      slots: ["offset", "epoch", "offset"],
    });
    assert.deepEqual(copyRelay("ch", "r", { type: "t" }).segments, ['{"type":"t","room":"r","offset":', "}"]);
  });
});
