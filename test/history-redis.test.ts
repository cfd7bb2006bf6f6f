import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { copyJson, copyRelay, HistoryUnavailableError, type RelayMessage, RoomCursor, roomHashTag } from "../src/history/index.js";
import { RedisHistoryStore } from "../src/history/redis/index.js";
import { runHistoryContract } from "./history-contract.js";
import { freePort, redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";

const skip = redisSkipReason();
let redis: TestRedis | undefined;
/** A plain connection for what the stores do not do: flushing, reading keys, subscribing. */
let admin: Redis | undefined;

const KEEP = { size: 1000, ttlSeconds: 60 };

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

if (!skip) {
  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  runHistoryContract("redis (two stores on one Redis)", () => ({
    newStore: () => new RedisHistoryStore({ url: redis!.url }),
    shared: true,
    // Redis lost its data (a restart without persistence, a flush): the same store goes on.
    lose: async (store) => {
      await admin!.flushall();
      return store;
    },
  }));

  describe("redis history store", () => {
    const stores: RedisHistoryStore[] = [];
    async function open(options: { commandTimeout?: number } = {}): Promise<RedisHistoryStore> {
      const store = new RedisHistoryStore({ url: redis!.url, keyPrefix: "t", ...options });
      await store.start();
      stores.push(store);
      return store;
    }
    after(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });

    it("every key of a room carries the room's hash tag and the room's ttl", async () => {
      const store = await open();
      const room = "}odd{room}";
      await store.publish(room, { type: "t" }, { size: 5, ttlSeconds: 30 });
      const keys = await admin!.keys("t:history:*");
      assert.deepEqual(keys.sort(), [`t:history:${roomHashTag(room)}:meta`, `t:history:${roomHashTag(room)}:stream`]);
      assert.equal(roomHashTag(room), "{%7dodd%7broom%7d}");
      for (const key of keys) {
        const ttl = await admin!.pttl(key);
        assert.ok(ttl > 29_000 && ttl <= 30_000, `${key} ttl ${ttl}`);
      }
    });

    it("the relay message goes out in offset order, with the offset and epoch filled in, from two stores at once", async () => {
      const [a, b] = [await open(), await open()];
      const room = "relay:1";
      const channel = `t#room#${roomHashTag(room)}`;
      const listener = new Redis(redis!.url);
      const heard: { offset: number; epoch: string; from: string }[] = [];
      listener.on("smessage", (_channel: string, message: string) => heard.push(JSON.parse(message)));
      await listener.ssubscribe(channel);
      const relay = (from: string): RelayMessage => ({
        channel,
        segments: ['{"offset":', ',"epoch":"', `","from":"${from}"}`],
        slots: ["offset", "epoch"],
      });
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) {
        pending.push(a.publish(room, { type: "t" }, KEEP, relay("a")));
        pending.push(b.publish(room, { type: "t" }, KEEP, relay("b")));
      }
      await Promise.all(pending);
      await waitFor(() => heard.length === 600);
      listener.disconnect();
      const { epoch } = await a.position(room, KEEP);
      assert.deepEqual(
        heard.map((h) => h.offset),
        Array.from({ length: 600 }, (_, i) => i + 1),
      );
      assert.ok(heard.every((h) => h.epoch === epoch));
      assert.equal(heard.filter((h) => h.from === "a").length, 300);
    });

    it("concurrent publications from one store leave in few script calls, with offsets in the order they were made", async () => {
      const store = await open();
      await admin!.config("RESETSTAT");
      const positions = await Promise.all(
        Array.from({ length: 400 }, (_, i) => store.publish("batch:1", { type: "t", json: String(i) }, KEEP)),
      );
      assert.deepEqual(
        positions.map((p) => p.offset),
        Array.from({ length: 400 }, (_, i) => i + 1),
      );
      const stats = await admin!.info("commandstats");
      const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      assert.ok(calls >= 2 && calls <= 10, `${calls} script calls for 400 publications`);
      const { publications } = await store.history("batch:1", KEEP);
      assert.deepEqual(
        publications.map((p) => p.json),
        Array.from({ length: 400 }, (_, i) => String(i)),
      );
    });

    it("large publications are batched by size too, and still get offsets in the order they were made", async () => {
      const store = await open();
      await admin!.config("RESETSTAT");
      const big = JSON.stringify("x".repeat(100_000));
      const positions = await Promise.all(Array.from({ length: 40 }, () => store.publish("batch:big", { type: "t", json: big }, KEEP)));
      assert.deepEqual(
        positions.map((p) => p.offset),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      const stats = await admin!.info("commandstats");
      const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      assert.ok(calls >= 4 && calls <= 40, `${calls} script calls for 40 publications of 100 KB`);
    });

    it("offsets near 2^53 are written and read as whole numbers", async () => {
      const store = await open();
      const { epoch } = await store.position("big:1", KEEP);
      await admin!.hset(`t:history:${roomHashTag("big:1")}:meta`, "o", String(2 ** 53 - 10));
      const position = await store.publish("big:1", { type: "t" }, KEEP);
      assert.deepEqual(position, { offset: 2 ** 53 - 9, epoch });
      const result = await store.history("big:1", KEEP, { since: { epoch, offset: 2 ** 53 - 10 } });
      assert.deepEqual([result.recovered, result.publications.map((p) => p.offset)], [true, [2 ** 53 - 9]]);
    });

    it("a member recovering on a third node while two nodes publish gets every publication after K once, in order", async () => {
      const [a, b, c] = [await open(), await open(), await open()];
      const room = "recover:live";
      const channel = `t#room#${roomHashTag(room)}`;
      const relay: RelayMessage = { channel, segments: ['{"offset":', ',"epoch":"', '"}'], slots: ["offset", "epoch"] };
      let published = 0;
      const publishFrom = (store: RedisHistoryStore, count: number): Promise<unknown> =>
        Promise.all(Array.from({ length: count }, () => store.publish(room, { type: "t" }, KEEP, relay).then(() => published++)));
      await publishFrom(a, 20);
      const { epoch } = await c.position(room, KEEP);
      // The joining member's node: subscribed first, every live copy through the cursor.
      const cursor = new RoomCursor<number>();
      const received: number[] = [];
      const listener = new Redis(redis!.url);
      listener.on("smessage", (_channel: string, message: string) => {
        const copy = JSON.parse(message) as { offset: number; epoch: string };
        received.push(...cursor.offer(copy.offset, copy.epoch, copy.offset));
      });
      const traffic = [publishFrom(a, 150), publishFrom(b, 150)];
      await listener.ssubscribe(channel);
      const result = await c.history(room, KEEP, { since: { epoch, offset: 12 } });
      assert.equal(result.recovered, true);
      received.push(...result.publications.map((p) => p.offset), ...cursor.settle(result));
      traffic.push(publishFrom(b, 50));
      await Promise.all(traffic);
      await waitFor(() => received.at(-1) === 370);
      listener.disconnect();
      assert.equal(published, 370);
      assert.deepEqual(
        received,
        Array.from({ length: 358 }, (_, i) => i + 13),
      );
    });

    it("a relayed copy is byte for byte the copy a replay builds, behind the adapter's header", async () => {
      const store = await open();
      const room = 'copy:"1"';
      const channel = `t#room#${roomHashTag(room)}`;
      const listener = new Redis(redis!.url);
      const heard: string[] = [];
      listener.on("smessage", (_channel: string, message: string) => heard.push(message));
      await listener.ssubscribe(channel);
      const publication = { type: "t", json: '{"text":"h\\u00e9"}' };
      const header = { segments: ['[2,"node-a",', ',"', '"]\n'], slots: ["offset", "epoch"] as const };
      const { offset, epoch } = await store.publish(
        room,
        publication,
        KEEP,
        copyRelay(channel, room, publication, { segments: header.segments, slots: [...header.slots] }),
      );
      await waitFor(() => heard.length === 1);
      listener.disconnect();
      const replayed = (await store.history(room, KEEP)).publications[0]!;
      assert.equal(heard[0], `[2,"node-a",${offset},"${epoch}"]\n${copyJson(room, replayed, replayed.offset)}`);
    });

    it("a relay whose segments do not fit its slots is refused before Redis is asked", async () => {
      const store = await open();
      await assert.rejects(
        store.publish("relay:bad", { type: "t" }, KEEP, { channel: "c", segments: ["x"], slots: ["offset"] }),
        TypeError,
      );
      assert.equal((await store.position("relay:bad", KEEP)).offset, 0);
    });

    it("a Redis that does not answer fails the publication after commandTimeout, not later", async () => {
      const store = await open({ commandTimeout: 300 });
      await store.publish("paused", { type: "t" }, KEEP);
      await admin!.client("PAUSE", 2000, "WRITE");
      const started = Date.now();
      await assert.rejects(store.publish("paused", { type: "t" }, KEEP), HistoryUnavailableError);
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      await admin!.client("UNPAUSE");
    });

    it("Redis unreachable: publish rejects with HistoryUnavailableError within 1 s; after a restart it works again", async () => {
      const store = await open();
      const before = await store.publish("outage", { type: "t" }, KEEP);
      await redis!.stop();
      for (const attempt of [
        () => store.publish("outage", { type: "t" }, KEEP),
        () => store.history("outage", KEEP),
        () => store.position("outage", KEEP),
      ]) {
        const started = Date.now();
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(error instanceof HistoryUnavailableError, String(error));
        assert.equal(error.code, "unavailable");
        assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      }
      await redis!.restart();
      let after: { offset: number; epoch: string } | undefined;
      await waitFor(async () => {
        after = await store.publish("outage", { type: "t" }, KEEP).catch(() => undefined);
        return after !== undefined;
      });
      // The restarted Redis kept nothing: a new epoch, offsets from 1.
      assert.deepEqual(after, { offset: 1, epoch: after!.epoch });
      assert.notEqual(after!.epoch, before.epoch);
    });

    it("start() rejects with a clear message when Redis is not there", async () => {
      const port = await freePort();
      const store = new RedisHistoryStore({ url: `redis://:secret@127.0.0.1:${port}`, connectTimeout: 500 });
      await assert.rejects(store.start(), (error: Error) => {
        assert.match(error.message, /history cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1/);
        assert.doesNotMatch(error.message, /secret/);
        return true;
      });
      await store.close();
    });

    it("rejects a url that is not redis:// and a key prefix with braces", () => {
      assert.throws(() => new RedisHistoryStore({ url: "http://x" }), TypeError);
      assert.throws(() => new RedisHistoryStore({ url: "redis://x", keyPrefix: "a{b}" }), TypeError);
    });
  });
}
