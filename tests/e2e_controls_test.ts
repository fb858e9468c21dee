/**
 * End to end with control arms: a tiny spec with NTP, KLAL+NTP, a shuffled-map control and a
 * pointer-head control, run as a user runs it (`deno task experiment SPEC`, empty cache). The
 * report lists the controls as controls, beside the test set's fixed-answer floor.
 */
import assert from "node:assert/strict";
import { runScript, tempRun, tinySpec } from "./cli.ts";

const CONTROLS_SPEC = tinySpec("e2e-controls", {
  ntp: "{ lambda: 0 }",
  klal: "{ lambda: 1, layers: all }",
  shuffled: "{ lambda: 1, target: shuffled }",
  pointer: "{ lambda: 1, supervision: pointer }",
});

Deno.test("e2e: shuffled-map and pointer-head arms are reported as controls, with the floor", async () => {
  const { dir, spec, env } = await tempRun("e2e-controls", CONTROLS_SPEC, "controls.yaml");
  try {
    const run = await runScript("pipeline/commands/experiment.ts", [spec, "--jobs", "2"], env);
    assert.equal(run.code, 0, run.stderr);

    const report = `${dir}/reports/e2e-controls`;
    const results = JSON.parse(await Deno.readTextFile(`${report}/results.json`));
    const table = await Deno.readTextFile(`${report}/table.md`);

    // The floor: recorded by the eval stage, in results.json, Table 1 and the task's table.
    const floor = results.floors["grid-patch"];
    assert.equal(floor.kind, "majority");
    // 16 test items: the floor is a whole number of them.
    assert.ok(Math.abs(floor.accuracy / 6.25 - Math.round(floor.accuracy / 6.25)) < 1e-9);
    assert.ok(floor.accuracy >= 25, `a majority of four answers is at least a quarter`);
    const grid = results.table1.find((r: { task: string }) => r.task === "grid-patch");
    assert.equal(grid.cells[1], `${floor.accuracy.toFixed(1)} (always "${floor.answer}")`);
    assert.ok(
      table.includes(
        `| Fixed-answer floor (always "${floor.answer}") | ${floor.accuracy.toFixed(1)} |`,
      ),
      "the task's table has a floor row",
    );
    // The floor agrees with the test answers the evaluation saw (confusion rows are truths).
    const ntpConfusion = results.statistics.confusion.find((c: { arm: string }) => c.arm === "ntp");
    const perTruth = ntpConfusion.matrix.map((row: number[]) => row.reduce((a, b) => a + b, 0));
    assert.equal(perTruth.reduce((a: number, b: number) => a + b, 0), 16);
    assert.equal(floor.accuracy, 100 * Math.max(...perTruth) / 16);

    // The controls: their own column and labels, never KLAL+NTP.
    const arms = results.tasks[0].arms.map((a: { arm: string; column: string; label: string }) =>
      `${a.arm}:${a.column}:${a.label}`
    );
    assert.deepEqual(arms, [
      "ntp:NTP:NTP (ntp)",
      "klal:KLAL+NTP:KLAL+NTP (klal)",
      "shuffled:Control:Control: shuffled maps (shuffled)",
      "pointer:Control:Control: pointer head (pointer)",
    ]);
    assert.equal(grid.klal.arm, "klal");
    assert.deepEqual(grid.controls.map((c: { arm: string }) => c.arm), ["shuffled", "pointer"]);
    assert.match(table, /\| Control: shuffled maps \(shuffled\) \|/);
    assert.match(table, /\| Control: pointer head \(pointer\) \|/);
    assert.match(table, /KLAL\+NTP vs shuffled-map control \(shuffled\): /);
    assert.match(table, /KLAL\+NTP vs pointer-head control \(pointer\): /);

    // Item-level statistics from each evaluation's predictions.jsonl.
    const mcnemar = results.statistics.mcnemar.map((m: { arms: string[]; n: number }) =>
      `${m.arms.join(" vs ")}:${m.n}`
    );
    assert.deepEqual(mcnemar, ["klal vs ntp:16", "klal vs shuffled:16", "klal vs pointer:16"]);
    for (const c of results.statistics.comparisons) {
      assert.equal(c.bootstrap.resamples, 2000, `${c.arms}: a paired bootstrap`);
    }
    // The attention measures of the evaluation reach the report.
    for (const metric of ["target_attention_ratio_first", "visual_share", "visual_share_first"]) {
      assert.ok(
        results.rows.some((r: { metric: string }) => r.metric === metric),
        `rows have ${metric}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
