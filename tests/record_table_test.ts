/**
 * The record read as pre-registered: the committed Line Intersection report, checked against
 * numbers computed from its rows by hand, and a second, made-up task to check the family's
 * Holm correction and the verdicts at their boundaries.
 */
import assert from "node:assert/strict";
import { readRecord, type RecordResults, recordTables } from "../pipeline/report/record.ts";
import { runScript } from "./cli.ts";

const LI = "docs/record/results/line-intersection/results.json";
const li = (): RecordResults =>
  JSON.parse(Deno.readTextFileSync(new URL(`../${LI}`, import.meta.url)));

Deno.test("record: Line Intersection read as pre-registered, per Base by hand", () => {
  const [t] = readRecord([li()]);
  // The parity rule (61.7) is the larger floor; NTP 68.3 is 5 or more above it and below 90.
  assert.equal(t.largerFloor, 61.7);
  assert.ok(t.inRegime);
  // Each Base's five seeds, KLAL+NTP − NTP averaged (from the rows: +4.0, +4.12, +7.9).
  assert.deepEqual(t.baseGains.map((b) => b.base), [0, 1, 2]);
  const gains = t.baseGains.map((b) => Math.round(b.gain * 100) / 100);
  assert.deepEqual(gains, [4, 4.12, 7.9]);
  // Alone in the family, Holm leaves p as it is; p > 0.05 with the interval above 0 and every
  // Base's gain positive: consistent, not confirmed.
  assert.equal(t.pHolm, t.p);
  assert.ok(t.p! > 0.05 && t.bootstrap!.low > 0);
  assert.equal(t.verdict, "consistent, not confirmed");
  assert.ok(t.attentionReproduced);
  assert.deepEqual(t.controls.map((c) => [c.arm, c.rulesOut]), [
    ["shuffled", true],
    ["uniform", true],
    ["pointer", false],
  ]);
});

Deno.test("record: Holm over the tasks read; out of the regime is not a test", () => {
  const strong = li();
  strong.experiment = "made-up";
  const c = strong.statistics.comparisons.find((x) => x.kind === "ntp")!;
  c.p = 0.01;
  const weak = li();
  weak.table1.find((r) => r.run)!.ntp!.mean = 64; // 2.3 above the parity rule: out
  const [a, b] = readRecord([strong, weak]);
  // Holm over two: the smaller p doubled (0.02), the larger max(0.053 * 1, 0.02).
  assert.ok(Math.abs(a.pHolm! - 0.02) < 1e-12);
  assert.equal(a.verdict, "reproduced");
  assert.equal(b.verdict, "not a test of the claim");
  const text = recordTables([a, b]).join("\n");
  assert.match(text, /^Primary family: 2 of 5 tasks read; Holm over those\./);
  assert.match(text, /\| \*\*reproduced\*\* \|/);
  assert.match(text, /\| pointer \| −0\.3 \| 0\.738 \| \[−2\.9, \+2\.4\] \| no: cannot tell \|/);
});

Deno.test("record: the interval above 0 with a Base's gain not positive fits no pre-registered criterion", () => {
  const r = li();
  const base0 = r.bases!.find((b) => b.seed === 0)!.seeds;
  const ntp = new Map(
    r.rows.filter((x) => x.arm === "ntp" && x.metric === "accuracy").map((x) => [x.seed, x.value]),
  );
  for (const row of r.rows) {
    if (row.arm === "klal" && row.metric === "accuracy" && base0.includes(row.seed)) {
      row.value = ntp.get(row.seed)! - 1; // Base 0: KLAL+NTP one point behind on each seed
    }
  }
  const [t] = readRecord([r]);
  assert.ok(Math.abs(t.baseGains[0].gain - -1) < 1e-9);
  assert.ok(t.bootstrap!.low > 0 && t.pHolm! > 0.05);
  assert.equal(t.verdict, "not confirmed: the interval above 0, a Base's gain not");
});

Deno.test("deno task record-table prints the reading; a file that is not a report is refused", async () => {
  const ok = await runScript("pipeline/commands/record_table.ts", [LI]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\| Line Intersection \| 61\.7 \| 68\.3 \| 73\.6 \| yes \| \+5\.3 \|/);
  const bad = await runScript("pipeline/commands/record_table.ts", ["deno.json"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /deno\.json: not a report's results\.json/);
});
