/**
 * The public API, as built into dist/, must match the committed reports in etc/api/ (one per entry point
 * of package.json `exports`), so that no export, signature or member changes by accident. An intended
 * change is recorded with `npm run api:update`. Needs a build (`npm test` builds first).
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import {
  committedReport,
  entryPoints,
  generateReports,
  staleReports,
  unifiedDiff,
  UPDATE_HINT,
  type GeneratedReport,
} from "../scripts/api-report.js";

describe("public API", () => {
  const entries = entryPoints();
  let reports: GeneratedReport[] = [];
  before(() => {
    reports = generateReports(entries);
  });

  for (const entry of entries) {
    const where = entry.conditions.length > 0 ? ` (${entry.conditions.join(", ")})` : "";
    test(`"${entry.specifier}"${where} matches etc/api/${entry.name}.api.md`, () => {
      const report = reports.find((candidate) => candidate.entry.name === entry.name);
      assert.ok(report, `no report was generated for ${entry.dts}`);
      const committed = committedReport(report.file);
      if (committed === undefined) {
        assert.fail(`etc/api/${report.file} does not exist yet.\n${UPDATE_HINT}`);
      }
      if (committed !== report.text) {
        const diff = unifiedDiff(committed, report.text, `etc/api/${report.file} (committed)`, `${entry.dts} (built)`);
        assert.fail(`The public API of "${entry.specifier}"${where} changed:\n\n${diff}\n\n${UPDATE_HINT}`);
      }
    });
  }

  test("etc/api/ has no report for an entry point that no longer exists", () => {
    const stale = staleReports(reports);
    assert.deepEqual(stale, [], `stale reports: ${stale.join(", ")}. ${UPDATE_HINT}`);
  });
});
