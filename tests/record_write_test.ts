/**
 * The record's write-up (docs/record/): counts spelled out by code, steps to a threshold, the
 * prose refused for a number or a count word of its own, and the committed files equal to what
 * the committed results give.
 */
import assert from "node:assert/strict";
import { strayCountWords, strayNumbers } from "../pipeline/report/paper/template.ts";
import {
  collectRecord,
  renderRecordFiles,
  staleRecordFiles,
} from "../pipeline/report/record_files.ts";
import {
  countPhrase,
  numberWord,
  stepsToThreshold,
  taskKey,
  timesWord,
} from "../pipeline/report/record_write.ts";
import { main as recordMain } from "../pipeline/commands/record.ts";

const DIR = "docs/record";

Deno.test("counts are spelled out by code: numberWord, countPhrase, timesWord", () => {
  assert.equal(numberWord(0), "zero");
  assert.equal(numberWord(15), "fifteen");
  assert.equal(numberWord(21), "21");
  assert.equal(countPhrase(3, 3, "Base"), "every Base");
  assert.equal(countPhrase(2, 2, "Base"), "both Bases");
  assert.equal(countPhrase(0, 2, "Base"), "neither Base");
  assert.equal(countPhrase(0, 5, "task"), "no task");
  assert.equal(countPhrase(2, 3, "Base"), "two of three Bases");
  assert.equal(countPhrase(9, 15, "seed"), "nine of fifteen seeds");
  assert.equal(timesWord(1), "once");
  assert.equal(timesWord(3), "three times");
  assert.equal(taskKey("line-intersection"), "lineIntersection");
});

Deno.test("stepsToThreshold: the first logged step at or above the threshold, per seed", () => {
  const rows = [
    { arm: "ntp", seed: 0, step: 250, accuracy: 40 },
    { arm: "ntp", seed: 0, step: 500, accuracy: 60 },
    { arm: "ntp", seed: 0, step: 750, accuracy: 55 },
    { arm: "ntp", seed: 1, step: 500, accuracy: 59.9 },
    { arm: "ntp", seed: 1, step: 250, accuracy: 30 },
    { arm: "klal", seed: 0, step: 250, accuracy: 61 },
  ];
  assert.deepEqual(stepsToThreshold(rows, "ntp", 60), [{ seed: 0, step: 500 }, {
    seed: 1,
    step: null,
  }]);
  assert.deepEqual(stepsToThreshold(rows, "klal", 60), [{ seed: 0, step: 250 }]);
});

Deno.test("the prose check: digits and count words outside placeholders and code are found", () => {
  const clean = "NTP {{tasks/x/ntp/mean:1}}% on {{tasks/x/positiveBases}}; the 95% half-width, " +
    "zero-shot models, `--jobs 2`, Table 1.";
  assert.deepEqual(strayNumbers(clean), []);
  assert.deepEqual(strayCountWords(clean), []);
  assert.deepEqual(strayCountWords("a gain on every seed, in three of five tasks, twice"), [
    "every",
    "three",
    "five",
    "twice",
  ]);
  assert.deepEqual(strayCountWords("Both Bases; All of them"), ["Both", "All"]);
  assert.deepEqual(strayNumbers("twelve comparisons, 12 of them, p = 0.05"), ["12", "0.05"]);
});

Deno.test("the committed record: record.json, table.md, README.md and the figures' specs are what the results give", async () => {
  const record = await collectRecord(DIR);
  const files = await renderRecordFiles(DIR, record, "README.md");
  const compared = new Map([...files].filter(([name]) => !name.endsWith(".svg")));
  assert.deepEqual(await staleRecordFiles(compared), [], "run deno task record");
  for (const [name, svg] of files) {
    if (name.endsWith(".svg")) assert.match(svg, /Line Intersection/, name);
  }
  assert.match(files.get("README.md")!, /\| RefCOCO stand-in \(synthetic scenes\) +\|/);
  const readme = files.get(`${DIR}/README.md`)!;
  assert.doesNotMatch(readme, /\{\{/, "a placeholder left unfilled");
  assert.match(readme, /\*\*Line Intersection\*\*: consistent, not confirmed/);
  assert.match(readme, /\*\*Line Tracing\*\*: not a test of the claim/);
  assert.match(readme, /PixMo-Points stand-in \(synthetic scenes\)/);
});

Deno.test("the committed record: its numbers recomputed by hand from a task report's rows", async () => {
  const record = await collectRecord(DIR);
  const report = JSON.parse(
    await Deno.readTextFile(`${DIR}/results/line-intersection/results.json`),
  ) as {
    rows: { arm: string; seed: number; metric: string; value: number }[];
    bases: { seed: number; seeds: number[] }[];
  };
  const acc = (arm: string, seed: number) =>
    report.rows.find((r) => r.arm === arm && r.seed === seed && r.metric === "accuracy")!.value;
  const li = record.tasks.lineIntersection;
  let sum = 0;
  let n = 0;
  for (const b of report.bases) {
    let gain = 0;
    for (const s of b.seeds) gain += acc("klal", s) - acc("ntp", s);
    const baseGain = gain / b.seeds.length;
    assert.ok(Math.abs(li.baseGains[n] - baseGain) < 1e-9, `Base ${b.seed}`);
    sum += baseGain;
    n += 1;
  }
  assert.ok(Math.abs(li.gain.diff - sum / n) < 1e-9);
  assert.equal(li.bases, report.bases.length);
  const positive = li.baseGains.filter((g) => g > 0).length;
  assert.equal(li.positiveBases, countPhrase(positive, li.bases, "Base"));
});

Deno.test("deno task record refuses prose with a count word of its own, and --check names a stale file", async () => {
  const temp = await Deno.makeTempDir();
  try {
    for (const sub of ["results", "validation"]) {
      await Deno.mkdir(`${temp}/${sub}`, { recursive: true });
      for await (const e of Deno.readDir(`${DIR}/${sub}`)) {
        await Deno.mkdir(`${temp}/${sub}/${e.name}`);
        await Deno.copyFile(
          `${DIR}/${sub}/${e.name}/results.json`,
          `${temp}/${sub}/${e.name}/results.json`,
        );
      }
    }
    await Deno.copyFile(`${DIR}/wall.json`, `${temp}/wall.json`);
    const source = await Deno.readTextFile(`${DIR}/README.src.md`);
    await Deno.writeTextFile(`${temp}/README.src.md`, source + "\nKLAL+NTP wins on every seed.\n");
    const record = await collectRecord(temp);
    await assert.rejects(
      () => renderRecordFiles(temp, record),
      /README\.src\.md: the count word "every" outside placeholders/,
    );
    await Deno.writeTextFile(`${temp}/README.src.md`, source);
    const top = `${temp}/TOP.md`;
    await Deno.writeTextFile(
      top,
      "# Top\n\n<!-- record-table:begin -->\nstale\n<!-- record-table:end -->\n",
    );
    assert.equal(await recordMain(["--dir", temp, "--readme", top]), 0);
    const rendered = await Deno.readTextFile(top);
    assert.match(rendered, /^# Top\n\n<!-- record-table:begin -->\n\n\| task +\|/);
    assert.doesNotMatch(rendered, /stale/);
    assert.equal(await recordMain(["--dir", temp, "--readme", top, "--check"]), 0);
    await Deno.writeTextFile(`${temp}/table.md`, "edited by hand\n");
    assert.equal(await recordMain(["--dir", temp, "--readme", top, "--check"]), 1);
    await Deno.writeTextFile(top, "# Top, no markers\n");
    assert.equal(await recordMain(["--dir", temp, "--readme", top]), 1);
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
});
