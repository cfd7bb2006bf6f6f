/**
 * The benchmark's child scripts (the servers under test and the load processes) compiled to plain
 * JavaScript before a run, so that node runs them without `--import tsx`.
 *
 * Why: tsx's loader hooks run on a thread of their own with a V8 heap of its own, and that heap's
 * idle-time collections ("Mark-Compact (reduce)" under `--trace-gc`) can run in the middle of a
 * measured window. The thread is pinned to the same CPU as the process's main thread, so each takes
 * the CPU from the server for as long as it runs, and every reply or broadcast in flight waits.
 * Compiled, a child has no such thread.
 *
 * Each script is bundled with its local imports (esbuild); packages stay imports, resolved from the
 * repository's node_modules. The output sits two directories below the root, as the sources do, so
 * that `new URL("../../dist/…", import.meta.url)` in a server still reaches the built library.
 *
 * @module
 */
import { buildSync } from "esbuild";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Where the compiled scripts go (git-ignored). */
const OUT_DIR = "bench/.build";

/** Every script the harness runs as a child, by the name of its compiled file. */
const ENTRIES: Record<string, string> = {
  conduit: "bench/servers/conduit.ts",
  "ws-hub": "bench/servers/ws-hub.ts",
  socketio: "bench/servers/socketio.ts",
  floor: "bench/servers/floor.ts",
  worker: "bench/load/worker.ts",
};

/** Whether {@link compileChildScripts} has run in this process. */
let compiled = false;

/** Compiles every child script; afterwards {@link compiledScript} finds them. */
export function compileChildScripts(): void {
  const entryPoints = Object.fromEntries(Object.entries(ENTRIES).map(([name, source]) => [name, join(ROOT, source)]));
  buildSync({
    entryPoints,
    outdir: join(ROOT, OUT_DIR),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
  });
  compiled = true;
}

/**
 * The compiled file of `script` (a path relative to the root, as in {@link ENTRIES}), once
 * {@link compileChildScripts} has run; undefined otherwise (the script then runs through tsx).
 */
export function compiledScript(script: string): string | undefined {
  if (!compiled) return undefined;
  const name = Object.keys(ENTRIES).find((key) => ENTRIES[key] === script);
  return name === undefined ? undefined : `${OUT_DIR}/${name}.mjs`;
}
