/**
 * The public API report: one text file per entry point of package.json `exports`, written by API Extractor
 * from the built `.d.ts` files in dist/ and committed under etc/api/, so that a change to the public API
 * shows up as a diff in review and fails `test/public-api.test.ts` until the reports are updated.
 *
 * - `npm run api:update` builds and rewrites etc/api/ (run it when an API change is intended, and commit).
 * - `npm run api:check` builds and compares, printing a diff; the test does the same comparison.
 *
 * What counts as API: each report is API Extractor's "public" variant, so declarations and class members
 * tagged `@internal` (also `@alpha`/`@beta`) are left out; `#private` members never appear, and TypeScript
 * `private` members appear without their type (as in the `.d.ts`). Documentation-only details are kept
 * out of the reports so that writing TSDoc never needs an update: TSDoc warnings, missing-doc warnings and
 * API Extractor's `(undocumented)` markers are dropped. Kept: a warning where a public declaration refers
 * to a type that the entry point does not export (`ae-forgotten-export`) or to an `@internal` one
 * (`ae-incompatible-release-tags`), since both are API-shape problems.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CompilerState,
  Extractor,
  ExtractorConfig,
  ExtractorLogLevel,
  type ExtractorMessage,
  ExtractorMessageCategory,
  type IConfigFile,
} from "@microsoft/api-extractor";

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** Where the committed reports live. */
export const REPORT_DIR = join(ROOT, "etc", "api");
/** What to tell someone whose change altered the API. */
export const UPDATE_HINT = "If this API change is intended, run `npm run api:update` and commit the changed files in etc/api/.";

/** One typed entry point of the package, as package.json `exports` declares it. */
export interface ApiEntryPoint {
  /** The report's file name without `.api.md`: `index`, `redis`, `client`, `client.node`. */
  name: string;
  /** The import specifier, e.g. `@conduit/websocket/client`. */
  specifier: string;
  /** The export conditions that select this declaration file (empty for the default one). */
  conditions: string[];
  /** The declaration file, relative to the root, e.g. `dist/client/node.d.ts`. */
  dts: string;
}

type ExportsValue = string | null | ExportsValue[] | { [key: string]: ExportsValue };

/** A `.js` target's declaration file, for conditions such as `browser` that name only the script. */
function declarationFor(target: string): string | undefined {
  if (target.endsWith(".d.ts")) return target;
  if (target.endsWith(".js")) return `${target.slice(0, -3)}.d.ts`;
  return undefined;
}

/**
 * Every distinct declaration file reachable through package.json `exports`, one per entry point and
 * condition. A subpath whose conditions lead to different `.d.ts` files (the client's `node` variant)
 * yields one entry point per file; the file that the unconditioned `types`/`default` leads to keeps the
 * plain name.
 */
export function entryPoints(packageJson: { name: string; exports?: unknown } = readPackageJson()): ApiEntryPoint[] {
  const exportsField = packageJson.exports as ExportsValue | undefined;
  if (exportsField === undefined || exportsField === null || typeof exportsField !== "object" || Array.isArray(exportsField)) {
    throw new Error("package.json has no `exports` map of subpaths");
  }
  const found = new Map<string, { subpath: string; stacks: string[][] }>();
  const visit = (subpath: string, value: ExportsValue, stack: string[]): void => {
    if (typeof value === "string") {
      const dts = declarationFor(value);
      if (dts === undefined) return;
      const key = `${subpath}\0${dts}`;
      const entry = found.get(key) ?? { subpath, stacks: [] };
      entry.stacks.push(stack.filter((condition) => condition !== "types" && condition !== "default"));
      found.set(key, entry);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(subpath, item, stack);
    } else if (value !== null) {
      // A script target (`default`, `browser`) stands for the `.d.ts` beside it, which is usually the file
      // that the sibling `types` names already: the same file found twice is one entry point.
      for (const [condition, target] of Object.entries(value)) visit(subpath, target, [...stack, condition]);
    }
  };
  for (const [subpath, value] of Object.entries(exportsField)) {
    if (subpath === "./package.json" || subpath.includes("*")) continue;
    visit(subpath, value, []);
  }
  const result: ApiEntryPoint[] = [];
  for (const [key, { subpath, stacks }] of found) {
    const dts = key.slice(key.indexOf("\0") + 1);
    const base = subpath === "." ? "index" : subpath.slice(2).replaceAll("/", "-");
    const conditions = stacks.some((stack) => stack.length === 0) ? [] : stacks.reduce((a, b) => (b.length < a.length ? b : a));
    result.push({
      name: [base, ...conditions].join("."),
      specifier: subpath === "." ? packageJson.name : `${packageJson.name}/${subpath.slice(2)}`,
      conditions,
      dts: relative(ROOT, resolve(ROOT, dts)),
    });
  }
  const names = new Set(result.map((entry) => entry.name));
  if (names.size !== result.length) throw new Error(`two entry points share a report name: ${[...names].join(", ")}`);
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function readPackageJson(): { name: string; exports?: unknown } {
  return JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; exports?: unknown };
}

/** The report file name for an entry point. */
export function reportFile(entry: ApiEntryPoint): string {
  return `${entry.name}.api.md`;
}

/** API Extractor's configuration for one entry point, writing into `outDir`. */
function configFor(entry: ApiEntryPoint, outDir: string): IConfigFile {
  return {
    projectFolder: ROOT,
    mainEntryPointFilePath: join(ROOT, entry.dts),
    compiler: {
      // The input is declaration files only: no need for the project's tsconfig (which includes tests).
      overrideTsconfig: {
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2022", "DOM"],
          types: ["node"],
          strict: true,
          skipLibCheck: true,
        },
      },
    },
    apiReport: {
      enabled: true,
      reportFileName: entry.name,
      reportFolder: outDir,
      reportTempFolder: join(outDir, "temp"),
      reportVariants: ["public"],
      includeForgottenExports: false,
    },
    docModel: { enabled: false },
    dtsRollup: { enabled: false },
    tsdocMetadata: { enabled: false },
    messages: {
      compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
      extractorMessageReporting: {
        default: { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
        "ae-forgotten-export": { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
        "ae-incompatible-release-tags": { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
      },
      tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None, addToApiReportFile: false } },
    },
  };
}

/**
 * Removes what only reflects documentation (the `(undocumented)` markers, the note on a missing
 * `@packageDocumentation`) and the closing list of warnings about left-out declarations, and names the entry point in
 * the title, which API Extractor writes with the package name alone.
 */
function normalize(text: string, entry: ApiEntryPoint): string {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  const out: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    // The closing list of warnings holds only those of left-out (`@internal`) declarations, with line
    // numbers in dist/ that move whenever a comment does.
    if (line === "// Warnings were encountered during analysis:") {
      while ((lines[index + 1] ?? "").startsWith("//")) index++;
      if (lines[index + 1] === "") index++;
      continue;
    }
    if (line === "// (No @packageDocumentation comment for this package)") {
      if (lines[index + 1] === "") index++;
      continue;
    }
    const marker = /^(\s*)\/\/ (.*?) ?\(undocumented\)$/.exec(line);
    if (marker) {
      const [, indent = "", rest = ""] = marker;
      if (rest !== "") out.push(`${indent}// ${rest}`);
      // API Extractor puts a bare `//` between warnings and the marker line: drop it with the marker.
      else if (/^\s*\/\/$/.test(out.at(-1) ?? "")) out.pop();
      continue;
    }
    out.push(line);
  }
  const where = entry.conditions.length > 0 ? ` (conditions: ${entry.conditions.join(", ")})` : "";
  out[0] = `## Public API report for "${entry.specifier}"${where}, from ${entry.dts}`;
  return out.join("\n");
}

/** One entry point's freshly generated report. */
export interface GeneratedReport {
  entry: ApiEntryPoint;
  file: string;
  text: string;
}

/**
 * Generates every entry point's report from the declaration files in dist/ (build first). One TypeScript
 * program is shared by all entry points, so the whole run takes a few seconds.
 */
export function generateReports(entries: ApiEntryPoint[] = entryPoints()): GeneratedReport[] {
  for (const entry of entries) {
    if (!existsSync(join(ROOT, entry.dts))) {
      throw new Error(`${entry.dts} (for "${entry.specifier}") does not exist: run \`npm run build\` first`);
    }
  }
  const outDir = mkdtempSync(join(tmpdir(), "conduit-api-"));
  const problems: string[] = [];
  try {
    let compilerState: CompilerState | undefined;
    const reports: GeneratedReport[] = [];
    for (const entry of entries) {
      const config = ExtractorConfig.prepare({
        configObject: configFor(entry, outDir),
        configObjectFullPath: join(ROOT, "scripts", "api-extractor.json"),
        packageJsonFullPath: join(ROOT, "package.json"),
      });
      compilerState ??= CompilerState.create(config, {
        additionalEntryPoints: entries.map((other) => join(ROOT, other.dts)),
      });
      const result = Extractor.invoke(config, {
        localBuild: true,
        compilerState,
        messageCallback: (message: ExtractorMessage) => {
          // Progress lines ("Generating API report ...") and anything configured as none stay quiet.
          const level = message.logLevel;
          if (message.category !== ExtractorMessageCategory.Console && (level === "error" || level === "warning")) {
            problems.push(`${entry.dts}: ${message.formatMessageWithLocation(ROOT)}`);
          }
          message.handled = true;
        },
      });
      if (!result.succeeded) problems.push(`${entry.dts}: API Extractor failed (${result.errorCount} errors)`);
      const file = reportFile(entry);
      const text = readFileSync(join(outDir, `${entry.name}.public.api.md`), "utf8");
      reports.push({ entry, file, text: normalize(text, entry) });
    }
    if (problems.length > 0) throw new Error(`API Extractor reported problems:\n${problems.join("\n")}`);
    return reports;
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** Writes the reports to etc/api/ and removes reports of entry points that no longer exist. */
export function writeReports(reports: GeneratedReport[]): string[] {
  mkdirSync(REPORT_DIR, { recursive: true });
  const changed: string[] = [];
  const keep = new Set(reports.map((report) => report.file));
  for (const file of readdirSync(REPORT_DIR)) {
    if (file.endsWith(".api.md") && !keep.has(file)) {
      rmSync(join(REPORT_DIR, file));
      changed.push(`removed ${file}`);
    }
  }
  for (const report of reports) {
    const path = join(REPORT_DIR, report.file);
    const before = existsSync(path) ? readFileSync(path, "utf8") : undefined;
    if (before !== report.text) {
      writeFileSync(path, report.text);
      changed.push(`${before === undefined ? "created" : "updated"} ${report.file}`);
    }
  }
  return changed;
}

/** The committed report for a file name, or undefined when there is none. */
export function committedReport(file: string): string | undefined {
  const path = join(REPORT_DIR, file);
  return existsSync(path) ? readFileSync(path, "utf8").replace(/\r\n/g, "\n") : undefined;
}

/** Committed reports with no entry point behind them any more. */
export function staleReports(reports: GeneratedReport[]): string[] {
  if (!existsSync(REPORT_DIR)) return [];
  const keep = new Set(reports.map((report) => report.file));
  return readdirSync(REPORT_DIR)
    .filter((file) => file.endsWith(".api.md") && !keep.has(file))
    .sort();
}

/**
 * A unified diff (3 lines of context) from `expected` to `actual`, or "" when they are equal. Lines in
 * `-` were in the committed report, lines in `+` are in the built API.
 */
export function unifiedDiff(expected: string, actual: string, expectedName: string, actualName: string): string {
  if (expected === actual) return "";
  const a = expected.split("\n");
  const b = actual.split("\n");
  // Trim the common head and tail so the quadratic table below only covers the changed middle.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
  const width = bm.length + 1;
  const lcs = new Uint32Array((am.length + 1) * width);
  for (let i = am.length - 1; i >= 0; i--) {
    for (let j = bm.length - 1; j >= 0; j--) {
      lcs[i * width + j] =
        am[i] === bm[j] ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  type Op = { kind: " " | "-" | "+"; line: string; aIndex: number; bIndex: number };
  const ops: Op[] = [];
  for (let k = 0; k < head; k++) ops.push({ kind: " ", line: a[k] ?? "", aIndex: k, bIndex: k });
  let i = 0;
  let j = 0;
  while (i < am.length || j < bm.length) {
    if (i < am.length && j < bm.length && am[i] === bm[j]) {
      ops.push({ kind: " ", line: am[i] ?? "", aIndex: head + i, bIndex: head + j });
      i++;
      j++;
    } else if (i < am.length && (j === bm.length || (lcs[(i + 1) * width + j] ?? 0) >= (lcs[i * width + j + 1] ?? 0))) {
      ops.push({ kind: "-", line: am[i] ?? "", aIndex: head + i, bIndex: head + j });
      i++;
    } else {
      ops.push({ kind: "+", line: bm[j] ?? "", aIndex: head + i, bIndex: head + j });
      j++;
    }
  }
  for (let k = 0; k < tail; k++) {
    ops.push({ kind: " ", line: a[a.length - tail + k] ?? "", aIndex: a.length - tail + k, bIndex: b.length - tail + k });
  }
  // Group the changes into hunks with up to 3 lines of context on each side.
  const context = 3;
  const out = [`--- ${expectedName}`, `+++ ${actualName}`];
  let k = 0;
  while (k < ops.length) {
    while (k < ops.length && ops[k]?.kind === " ") k++;
    if (k === ops.length) break;
    const start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within 2 * context lines of unchanged text.
    for (;;) {
      while (end < ops.length && ops[end]?.kind !== " ") end++;
      let next = end;
      while (next < ops.length && ops[next]?.kind === " ") next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    const stop = Math.min(ops.length, end + context);
    const hunk = ops.slice(start, stop);
    const first = hunk[0] as Op;
    const aCount = hunk.filter((op) => op.kind !== "+").length;
    const bCount = hunk.filter((op) => op.kind !== "-").length;
    out.push(`@@ -${first.aIndex + 1},${aCount} +${first.bIndex + 1},${bCount} @@`);
    for (const op of hunk) out.push(`${op.kind}${op.line}`);
    k = stop;
  }
  return out.join("\n");
}

/** Compares fresh reports with the committed ones: one message per difference, empty when all match. */
export function compareReports(reports: GeneratedReport[]): string[] {
  const differences: string[] = [];
  for (const report of reports) {
    const committed = committedReport(report.file);
    if (committed === undefined) {
      differences.push(`etc/api/${report.file} is missing: "${report.entry.specifier}" (${report.entry.dts}) has no committed report.`);
    } else if (committed !== report.text) {
      differences.push(
        `The public API of "${report.entry.specifier}" differs from etc/api/${report.file}:\n` +
          unifiedDiff(committed, report.text, `etc/api/${report.file} (committed)`, `${report.entry.dts} (built)`),
      );
    }
  }
  for (const file of staleReports(reports)) {
    differences.push(`etc/api/${file} has no entry point in package.json \`exports\` any more.`);
  }
  return differences;
}

function main(args: string[]): number {
  const reports = generateReports();
  if (args.includes("--update")) {
    const changed = writeReports(reports);
    console.log(changed.length > 0 ? changed.join("\n") : "etc/api/ is up to date");
    return 0;
  }
  const differences = compareReports(reports);
  if (differences.length === 0) {
    console.log(`The public API matches etc/api/ (${reports.map((report) => report.file).join(", ")}).`);
    return 0;
  }
  console.error(`${differences.join("\n\n")}\n\n${UPDATE_HINT}`);
  return 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
