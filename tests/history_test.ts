/**
 * Run history: every run's report is kept under its own id beside the latest, with the spec
 * it ran fully resolved, and reports/index.html lists the runs newest first.
 */
import assert from "node:assert/strict";
import { runScript, smallestSpec, tempRun } from "./cli.ts";
import { runId, RUNS_KEPT } from "../pipeline/run/runner.ts";

Deno.test("runId: the start time to the second, then the report key's first 8 digits", () => {
  assert.equal(runId("2026-12-07T11:02:35.123Z", "3fa2b1c9deadbeef"), "20261207-110235-3fa2b1c9");
  assert.ok(runId("2026-12-07T11:02:35.123Z", "b") > runId("2026-12-07T11:02:34.999Z", "c"));
  assert.equal(RUNS_KEPT, 20);
});

Deno.test("history: two runs, two reports under their ids, the index lists them newest first", async () => {
  const { dir, spec, env } = await tempRun("history", smallestSpec("history-tiny"));
  try {
    const run = () => runScript("pipeline/commands/experiment.ts", [spec], env);
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    await new Promise((r) => setTimeout(r, 1100)); // a new second: a new id
    const second = await run(); // every stage cached: a run all the same
    assert.equal(second.code, 0, second.stderr);
    const history = `${dir}/reports/history-tiny.runs`;
    const ids = [...Deno.readDirSync(history)].map((e) => e.name).sort();
    assert.equal(ids.length, 2, ids.join(" "));
    for (const id of ids) assert.match(id, /^\d{8}-\d{6}-[0-9a-f]{8}$/);
    for (const id of ids) {
      const results = JSON.parse(await Deno.readTextFile(`${history}/${id}/results.json`));
      assert.equal(results.experiment, "history-tiny");
      assert.equal(typeof results.run.argv[0], "string");
      // The spec it ran, resolved: the keys the file left out hold their defaults.
      const resolved = JSON.parse(await Deno.readTextFile(`${history}/${id}/spec.json`));
      assert.equal(resolved.name, "history-tiny");
      assert.equal(resolved.train.optimizer, "adamw");
      assert.deepEqual(resolved.seeds, [0]);
    }
    // The latest is the second run's, also with its resolved spec.
    const latest = JSON.parse(await Deno.readTextFile(`${dir}/reports/history-tiny/results.json`));
    const newest = JSON.parse(await Deno.readTextFile(`${history}/${ids[1]}/results.json`));
    assert.equal(latest.run.startedAt, newest.run.startedAt);
    assert.ok((await Deno.stat(`${dir}/reports/history-tiny/spec.json`)).isFile);
    // The index: the experiment listed once (not its runs), its runs newest first.
    const index = await Deno.readTextFile(`${dir}/reports/index.html`);
    const experiments = index.slice(index.indexOf('id="experiments"'), index.indexOf("</table>"));
    assert.equal(experiments.match(/<tr><td><a href="[^"]*\/index\.html">/g)?.length, 1);
    const at = ids.map((id) => index.indexOf(`history-tiny.runs/${id}/index.html`));
    assert.ok(at[1] > 0 && at[0] > at[1], `newest first: ${at}`);
    assert.ok(index.includes(`history-tiny.runs/${ids[0]}/spec.json`));
    assert.match(index, /1 experiment report,/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
