/**
 * The history store contract: one suite, run against every store (test/history-memory.test.ts,
 * test/history-redis.test.ts), so the implementations cannot drift apart. It checks what SPEC §9
 * asks of the storage; how the hub uses it is tested with the hub.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { HistoryStore, Retention } from "../src/history/index.js";

/** How the contract builds stores of one kind. */
export interface HistoryContractSetup {
  /** A new, unstarted store; stores of a shared kind see one history. */
  newStore(): HistoryStore;
  /** Whether two stores from `newStore` share one history (Redis: yes; memory: each its own). */
  shared: boolean;
  /**
   * Loses every stored history the way it happens in production (memory: the process restarts;
   * Redis: its data is gone), and returns the store to use from then on.
   */
  lose(store: HistoryStore): Promise<HistoryStore>;
}

const KEEP: Retention = { size: 100, ttlSeconds: 60 };
let roomSeq = 0;
/** A room of its own for each test, so tests sharing one Redis never see each other's history. */
function freshRoom(label: string): string {
  return `contract:${label}:${process.pid}:${roomSeq++}`;
}

/** Polls until `condition` holds (expiry settles on the store's own clock). */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Registers the contract's tests for one kind of store. */
export function runHistoryContract(name: string, setup: () => HistoryContractSetup | Promise<HistoryContractSetup>): void {
  describe(`history store contract: ${name}`, () => {
    const opened: HistoryStore[] = [];
    let contract: HistoryContractSetup;

    async function open(): Promise<HistoryStore> {
      contract ??= await setup();
      const store = contract.newStore();
      await store.start();
      opened.push(store);
      return store;
    }

    after(async () => {
      await Promise.all(opened.map((store) => store.close()));
    });

    it("a room starts at offset 0, and each publication gets exactly 1 more, under the epoch told before", async () => {
      const store = await open();
      const room = freshRoom("offsets");
      const start = await store.position(room, KEEP);
      assert.equal(start.offset, 0);
      assert.equal(typeof start.epoch, "string");
      assert.ok(start.epoch.length > 0);
      for (let i = 1; i <= 5; i++) {
        assert.deepEqual(await store.publish(room, { type: "t", json: String(i) }, KEEP), { offset: i, epoch: start.epoch });
      }
      assert.deepEqual(await store.position(room, KEEP), { offset: 5, epoch: start.epoch });
      const other = freshRoom("offsets-other");
      assert.equal((await store.publish(other, { type: "t" }, KEEP)).offset, 1, "rooms count apart");
    });

    it("concurrent publications (2 × 500, interleaved) never share or skip an offset", async () => {
      const a = await open();
      const b = contract.shared ? await open() : a;
      const room = freshRoom("concurrent");
      const retention = { size: 1000, ttlSeconds: 60 };
      const pending: Promise<{ offset: number }>[] = [];
      for (let i = 0; i < 500; i++) {
        pending.push(a.publish(room, { type: "a", json: String(i) }, retention));
        pending.push(b.publish(room, { type: "b", json: String(i) }, retention));
      }
      const offsets = (await Promise.all(pending)).map((p) => p.offset).sort((x, y) => x - y);
      assert.deepEqual(
        offsets,
        Array.from({ length: 1000 }, (_, i) => i + 1),
      );
      const { publications } = await b.history(room, retention);
      assert.deepEqual(
        publications.map((p) => p.offset),
        offsets,
      );
      // Each store's own publications keep their order among themselves.
      const fromA = publications.filter((p) => p.type === "a").map((p) => Number(p.json));
      assert.deepEqual(
        fromA,
        Array.from({ length: 500 }, (_, i) => i),
      );
    });

    it("publications made at once through one store get offsets in the order they were made", async () => {
      const store = await open();
      const room = freshRoom("order");
      const positions = await Promise.all(Array.from({ length: 50 }, (_, i) => store.publish(room, { type: "t", json: String(i) }, KEEP)));
      assert.deepEqual(
        positions.map((p) => p.offset),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const { publications } = await store.history(room, KEEP, { limit: 50 });
      assert.deepEqual(
        publications.map((p) => [p.offset, p.json]),
        Array.from({ length: 50 }, (_, i) => [i + 1, String(i)]),
      );
    });

    it("keeps the latest `size` publications, oldest first, data exactly as given; `limit` takes the latest", async () => {
      const store = await open();
      const room = freshRoom("size");
      const retention = { size: 3, ttlSeconds: 60 };
      for (let i = 1; i <= 5; i++) await store.publish(room, i === 4 ? { type: "bare" } : { type: "t", json: `{"n":${i}}` }, retention);
      const all = await store.history(room, retention);
      assert.equal(all.offset, 5);
      assert.deepEqual(all.publications, [
        { offset: 3, type: "t", json: '{"n":3}' },
        { offset: 4, type: "bare" },
        { offset: 5, type: "t", json: '{"n":5}' },
      ]);
      assert.equal(all.recovered, undefined, "recovered is only said for a recovery");
      const latest = await store.history(room, retention, { limit: 2 });
      assert.deepEqual(
        latest.publications.map((p) => p.offset),
        [4, 5],
      );
      const more = await store.history(room, retention, { limit: 50 });
      assert.deepEqual(
        more.publications.map((p) => p.offset),
        [3, 4, 5],
      );
    });

    it("recovery from a kept position replays everything after it, in order", async () => {
      const store = await open();
      const room = freshRoom("recover");
      const { epoch } = await store.position(room, KEEP);
      for (let i = 1; i <= 6; i++) await store.publish(room, { type: "t", json: String(i) }, KEEP);
      const result = await store.history(room, KEEP, { since: { epoch, offset: 2 } });
      assert.equal(result.recovered, true);
      assert.deepEqual(
        result.publications.map((p) => p.json),
        ["3", "4", "5", "6"],
      );
      assert.deepEqual({ offset: result.offset, epoch: result.epoch }, { offset: 6, epoch });
      const upToDate = await store.history(room, KEEP, { since: { epoch, offset: 6 } });
      assert.deepEqual([upToDate.recovered, upToDate.publications], [true, []]);
      const fromStart = await store.history(room, KEEP, { since: { epoch, offset: 0 } });
      assert.deepEqual([fromStart.recovered, fromStart.publications.length], [true, 6]);
    });

    it("recovery is refused, with nothing replayed, past what is kept, under another epoch, or from the future", async () => {
      const store = await open();
      const room = freshRoom("refuse");
      const retention = { size: 3, ttlSeconds: 60 };
      const { epoch } = await store.position(room, retention);
      for (let i = 1; i <= 5; i++) await store.publish(room, { type: "t" }, retention);
      // 3, 4, 5 are kept: from 2 on is complete, from 1 on is not (2 was trimmed).
      assert.equal((await store.history(room, retention, { since: { epoch, offset: 2 } })).recovered, true);
      for (const since of [
        { epoch, offset: 1 },
        { epoch, offset: 0 },
        { epoch: `${epoch}x`, offset: 4 },
        { epoch: "", offset: 5 },
        { epoch, offset: 6 },
        { epoch, offset: Number.MAX_SAFE_INTEGER },
      ]) {
        const result = await store.history(room, retention, { since });
        assert.deepEqual(
          [result.recovered, result.publications, result.offset, result.epoch],
          [false, [], 5, epoch],
          JSON.stringify(since),
        );
      }
    });

    it("publications expire after ttl; the room's epoch lives ttl past its last read or publication", async () => {
      const store = await open();
      const room = freshRoom("ttl");
      const retention = { size: 10, ttlSeconds: 1 };
      const { epoch } = await store.publish(room, { type: "t" }, retention);
      await store.publish(room, { type: "t" }, retention);
      // Reading keeps the room (and its epoch) alive, while the publications age out on their own.
      await waitFor(async () => (await store.history(room, retention)).publications.length === 0);
      const refused = await store.history(room, retention, { since: { epoch, offset: 0 } });
      assert.deepEqual([refused.recovered, refused.offset, refused.epoch], [false, 2, epoch]);
      // Untouched for longer than ttl, the room is forgotten: a new epoch, offsets from 1 again.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const after = await store.position(room, retention);
      assert.equal(after.offset, 0);
      assert.notEqual(after.epoch, epoch);
      assert.deepEqual(await store.publish(room, { type: "t" }, retention), { offset: 1, epoch: after.epoch });
    });

    it("losing the stored history changes the epoch and restarts the offsets", async () => {
      const store = await open();
      const room = freshRoom("lost");
      await store.publish(room, { type: "t" }, KEEP);
      const before = await store.publish(room, { type: "t" }, KEEP);
      const fresh = await contract.lose(store);
      if (fresh !== store) opened.push(fresh);
      const now = await fresh.position(room, KEEP);
      assert.equal(now.offset, 0);
      assert.notEqual(now.epoch, before.epoch);
      const result = await fresh.history(room, KEEP, { since: before });
      assert.deepEqual([result.recovered, result.publications], [false, []]);
      assert.deepEqual(await fresh.publish(room, { type: "t" }, KEEP), { offset: 1, epoch: now.epoch });
    });

    it("a query no checked input can produce is refused with a RangeError, and the store goes on", async () => {
      const store = await open();
      const room = freshRoom("bad-query");
      const { epoch } = await store.publish(room, { type: "t" }, KEEP);
      const bad: unknown[] = [
        { since: { epoch, offset: -1 } },
        { since: { epoch, offset: 1.5 } },
        { since: { epoch, offset: Number.NaN } },
        { since: { epoch: 5, offset: 1 } },
        { limit: 0 },
        { limit: -3 },
        { limit: 2.5 },
        { since: { epoch, offset: 0 }, limit: 5 },
      ];
      for (const query of bad) await assert.rejects(store.history(room, KEEP, query as never), RangeError, JSON.stringify(query));
      const huge = await store.history(room, KEEP, { limit: Number.MAX_SAFE_INTEGER });
      assert.deepEqual(
        huge.publications.map((p) => p.offset),
        [1],
      );
      assert.equal((await store.publish(room, { type: "t" }, KEEP)).offset, 2);
    });

    it("room names with braces, percent signs and non-ASCII text keep separate histories", async () => {
      const store = await open();
      const base = freshRoom("names");
      const names = [`${base}}x`, `${base}{x}`, `{}${base}`, `${base}%7d`, `${base}☃ 😀`];
      for (const [i, room] of names.entries()) {
        for (let n = 0; n <= i; n++) await store.publish(room, { type: "t", json: JSON.stringify(room) }, KEEP);
      }
      for (const [i, room] of names.entries()) {
        const { offset, publications } = await store.history(room, KEEP);
        assert.equal(offset, i + 1, room);
        assert.ok(publications.every((p) => p.json === JSON.stringify(room)));
      }
    });
  });
}
