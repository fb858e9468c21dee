/**
 * --keep-going: after a stage fails, the stages that do not need it still run (and are
 * cached); without it, the first failure stops new launches. Either way the run fails and
 * names the failure.
 */
import assert from "node:assert/strict";
import { runScript, tempRun } from "./cli.ts";

/** Its held-out data stage fails (no valid row); training needs only the training data. */
const SPEC = `
name: keep-going
seeds: [0, 1]
backend: wasm
task: { name: pixmo-points, image_size: 16, train: 16, test: 8,
        source: { test: { path: bad.jsonl } } }
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
base: { steps: 1, batch_size: 4, train: 8 }
train: { steps: 1, batch_size: 4, warmup: 0 }
arms:
  ntp: { lambda: 0 }
`;

Deno.test("--keep-going runs what does not need the failed stage; without it nothing more", async () => {
  const { dir, spec, env } = await tempRun("keep-going", SPEC);
  try {
    await Deno.writeTextFile(`${dir}/bad.jsonl`, `{"bad": 1}\n`);
    const going = await runScript(
      "pipeline/commands/experiment.ts",
      [spec, "--keep-going", "--jobs", "1"],
      env,
    );
    assert.equal(going.code, 1, going.stdout + going.stderr);
    assert.match(going.stderr, /stage data:pixmo-points:test:s0 failed: .*bad\.jsonl row 1/);
    // Both fine-tunes ran although the test set failed; their evaluations could not.
    assert.match(going.stdout, /done finetune:ntp:s0 in/);
    assert.match(going.stdout, /done finetune:ntp:s1 in/);
    assert.match(
      going.stderr,
      /not run, 2 stage\(s\) that need a failed one: eval:ntp:s0, eval:ntp:s1/,
    );
    assert.match(going.stderr, /their results are cached, the report was not made/);

    // The same spec in a fresh cache, without --keep-going: the failure stops new launches.
    const stop = await runScript("pipeline/commands/experiment.ts", [spec, "--jobs", "1"], {
      ...env,
      KLAL_CACHE_DIR: `${dir}/cache-stop`,
    });
    assert.equal(stop.code, 1, stop.stdout + stop.stderr);
    assert.match(stop.stderr, /stage data:pixmo-points:test:s0 failed/);
    assert.doesNotMatch(stop.stdout, /done finetune/);
    assert.doesNotMatch(stop.stderr, /not run, /);

    // What --keep-going cached stays: a rerun after fixing nothing has only the failures left.
    const dry = await runScript("pipeline/commands/experiment.ts", [spec, "--dry-run"], env);
    assert.match(dry.stdout, /finetune:ntp:s0\s+[0-9a-f]{12}\s+cached/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
