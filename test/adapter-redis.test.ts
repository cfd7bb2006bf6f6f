import { after, before } from "node:test";
import { RedisAdapter } from "../src/adapter/redis/index.js";
import { runAdapterContract } from "./adapter-contract.js";
import { redisSkipReason, startRedis, type TestRedis } from "./helpers/redis.js";

const skip = redisSkipReason();
let redis: TestRedis | undefined;

if (!skip) {
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());
  runAdapterContract("redis (three nodes)", () => ({
    nodes: 3,
    makeAdapter: () => new RedisAdapter({ url: redis!.url }),
  }));
}
