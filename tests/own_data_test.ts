/**
 * Your own data, as a new user brings it: the fixtures under tests/fixtures/own-data are what
 * their generator writes, and each example spec under experiments/examples runs end to end on
 * them (tiny sizes from the command line), with its vocabulary report.
 */
import assert from "node:assert/strict";
import { runScript } from "./cli.ts";
import { writeOwnData } from "./fixtures/make_own_data.ts";
import { sha256Hex } from "../pipeline/lib/hash.ts";
import { grounding } from "../tasks/grounding.ts";

const FIXTURES = "tests/fixtures/own-data";

async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const sub of ["", "images/"]) {
    for await (const e of Deno.readDir(`${dir}/${sub}`)) {
      if (e.isFile) {
        out[sub + e.name] = await sha256Hex(await Deno.readFile(`${dir}/${sub}${e.name}`));
      }
    }
  }
  return out;
}

Deno.test("own data: the committed fixtures are what their generator writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-own-data-" });
  await writeOwnData(dir);
  assert.deepEqual(await digests(dir), await digests(FIXTURES));
  await Deno.remove(dir, { recursive: true });
});

const TINY = [
  "seeds=[0]",
  "task.image_size=32",
  "model.d_model=16",
  "model.heads=2",
  "base.steps=4",
  "base.train=64",
  "train.steps=4",
  "train.warmup=2",
];

for (const example of ["coco", "points-jsonl", "boxes-csv"]) {
  Deno.test(`own data: experiments/examples/${example}.yaml runs end to end`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "klal-own-data-" });
    const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
    const run = await runScript(
      "pipeline/commands/experiment.ts",
      [`experiments/examples/${example}.yaml`, ...TINY, "--jobs", "1"],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /vocabulary: \d+ word\(s\) added from the data's prompts/);
    const results = JSON.parse(
      await Deno.readTextFile(`${dir}/reports/example-${example}/results.json`),
    );
    const accuracy = results.rows.filter((r: { metric: string }) => r.metric === "accuracy");
    assert.ok(accuracy.some((r: { arm: string }) => r.arm === "klal"));
    for (const r of accuracy) assert.ok(r.value >= 0 && r.value <= 100);
    // Every item of the fixtures' test file was read (COCO: one per image and category),
    // counted from the file as the task reads it.
    const spec = results.spec.task;
    const prompts = await grounding.prompts!(spec.source.test, {
      imageSize: spec.image_size,
      patchSize: 8,
      params: spec.params,
    });
    assert.equal(results.vocabulary.splits.test.prompts, prompts.length);
    if (example !== "coco") {
      const lines = (await Deno.readTextFile(spec.source.test.path)).trim().split("\n").length;
      assert.equal(prompts.length, lines - (example === "boxes-csv" ? 1 : 0));
    }
    assert.ok(results.vocabulary.splits.train.prompts > prompts.length);
    if (example === "boxes-csv") {
      assert.ok(
        accuracy.length > 0 && results.rows.some((r: { metric: string }) => r.metric === "iou"),
      );
    }
    await Deno.remove(dir, { recursive: true });
  });
}
