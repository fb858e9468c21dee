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

Deno.test("own data: task.source.tests evaluates the same trainings on more test sets, each reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-own-tests-" });
  const root = Deno.cwd();
  const text = (await Deno.readTextFile("experiments/examples/coco.yaml"))
    .replaceAll("../../tests/fixtures", `${root}/tests/fixtures`)
    .replace(
      "    test: {",
      "    tests:\n" +
        `      again: { path: ${root}/${FIXTURES}/instances_test.json, images: ${root}/${FIXTURES}/images }\n` +
        `      later: { path: ${root}/${FIXTURES}/instances_val.json, images: ${root}/${FIXTURES}/images }\n` +
        "    test: {",
    );
  await Deno.writeTextFile(`${dir}/spec.yaml`, text);
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  const dry = await runScript(
    "pipeline/commands/experiment.ts",
    [`${dir}/spec.yaml`, ...TINY, "--dry-run"],
    env,
  );
  assert.equal(dry.code, 0, dry.stderr);
  // One training per arm and seed; an evaluation of each on every test set.
  assert.equal((dry.stdout.match(/^\s+finetune:/gm) ?? []).length, 2);
  for (const id of ["eval:klal:s0:again", "eval:ntp:s0:later", "eval:base:again"]) {
    assert.match(dry.stdout, new RegExp(`^\\s+${id}\\s`, "m"), id);
  }
  assert.match(dry.stdout, /^\s+data:grounding:test:again:s0\s/m);
  const run = await runScript(
    "pipeline/commands/experiment.ts",
    [`${dir}/spec.yaml`, ...TINY, "--jobs", "1"],
    env,
  );
  assert.equal(run.code, 0, run.stderr);
  const report = `${dir}/reports/example-coco`;
  const results = JSON.parse(await Deno.readTextFile(`${report}/results.json`));
  assert.deepEqual(results.testSets.map((t: { name: string }) => t.name), ["again", "later"]);
  // "again" is the main test file: the same trainings score it exactly as the main test set.
  const main = results.tasks[0].arms;
  const again = results.testSets[0].arms;
  for (const arm of ["base", "ntp", "klal"]) {
    const pick = (arms: { arm: string; accuracy: { mean: number } }[]) =>
      arms.find((a) => a.arm === arm)!.accuracy.mean;
    assert.equal(pick(again), pick(main), arm);
  }
  assert.deepEqual(results.testSets[0].floor, results.tasks[0].floor);
  assert.ok(Array.isArray(results.testSets[1].comparisons));
  const table = await Deno.readTextFile(`${report}/table.md`);
  assert.match(table, /^## test set again \(grounding\)$/m);
  assert.match(table, /^## test set later \(grounding\)$/m);
  assert.match(table, /its comparisons are a Holm family of their own/);
  // A test set named badly is a located spec error (exit 2) before anything runs.
  await Deno.writeTextFile(`${dir}/bad.yaml`, text.replace("      again:", "      Again!:"));
  const bad = await runScript("pipeline/commands/experiment.ts", [`${dir}/bad.yaml`], env);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /bad\.yaml:\d+:\d+ task\.source\.tests\.Again!: expected a test set name matching/,
  );
  await Deno.remove(dir, { recursive: true });
});
