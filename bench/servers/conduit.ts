/**
 * conduit-ws under test: the compiled library (`dist/`, what a user installs), configured as a
 * production server would be for one large room: no per-client rate limit (the load generator sends
 * faster than a person would), no member_joined/left events (they are per-join broadcasts that the
 * baselines do not send), a connection limit above the benchmark's, and every other option at its
 * default (heartbeat every 30 s included).
 *
 * With a Redis URL as its argument (the cluster scenario), it is one node of a cluster: the same
 * server with the library's Redis adapter (`dist/adapter/redis/index.js`) at its defaults.
 *
 * With `--default-limits` (the noisy neighbour scenario), every option is at its default, the rate
 * limit, work budget, depth limit and presence events included: that scenario measures what those
 * defaults leave a bystander while one client attacks.
 *
 * With `--namespaces`, the `namespaces` option is the table of bench/shared/namespaces.ts, which lists
 * the namespace of the scenarios' room: every join and broadcast then looks its rules up. The ready
 * line names the namespaces the server was created with, and the harness checks them.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BENCH_NAMESPACES } from "../shared/namespaces.js";
import { announceReady, HOST } from "./child.js";

// Typed from the sources, loaded from dist/: the typecheck does not need a build, the benchmark does.
type Library = typeof import("../../src/index.js");

const distEntry = fileURLToPath(new URL("../../dist/index.js", import.meta.url));
if (!existsSync(distEntry)) {
  process.stderr.write(`conduit bench server: ${distEntry} is missing; run "npm run build" first\n`);
  process.exit(1);
}
const { createServer } = (await import(pathToFileURL(distEntry).href)) as Library;

const args = process.argv.slice(2);
const defaultLimits = args.includes("--default-limits");
const namespaces = args.includes("--namespaces") ? BENCH_NAMESPACES : undefined;
const redisUrl = args.find((arg) => !arg.startsWith("--"));
let adapter: import("../../src/adapter/adapter.js").Adapter | undefined;
if (redisUrl !== undefined) {
  // Loaded only for the cluster scenario, so that the other scenarios never load ioredis.
  const redisEntry = new URL("../../dist/adapter/redis/index.js", import.meta.url);
  const { RedisAdapter } = (await import(redisEntry.href)) as typeof import("../../src/adapter/redis/index.js");
  adapter = new RedisAdapter({ url: redisUrl });
}

const server = createServer(
  defaultLimits
    ? { adapter, namespaces }
    : {
        rateLimit: false,
        presenceEventsMaxMembers: 0,
        maxConnections: 100_000,
        adapter,
        namespaces,
      },
);
const { port } = await server.listen(0, HOST);
// What the server resolved, not what was passed: the harness compares it with the table.
const loaded = server.options.namespaces;
announceReady(port, loaded === undefined ? {} : { namespaces: Object.keys(loaded) });
