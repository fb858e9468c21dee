/** Real-format data selected by path in a spec: validation errors and the data stage. */
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache.ts";
import { buildPlan, resolvePlan } from "../pipeline/plan.ts";
import { parseSpec, SpecError } from "../pipeline/spec.ts";
import { loadSamples, runStage } from "../pipeline/stages.ts";
import { TASKS } from "../tasks/registry.ts";

const spec = (task: string, source: string) => `
name: source-test
task:
  name: ${task}
  image_size: 32
  train: 6
  test: 4
  source:
${source}
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
arms: { ntp: { lambda: 0 } }
`;

function problems(text: string, file: string): string[] {
  try {
    parseSpec(text, file, [], { tasks: TASKS });
  } catch (e) {
    if (e instanceof SpecError) return e.message.split("\n");
    throw e;
  }
  return [];
}

Deno.test("task.source: a synthetic task refuses it; missing files are located errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const file = `${dir}/x.yaml`;
  const synthetic = problems(spec("grid-patch", "    train: { path: a.jsonl }"), file);
  assert.equal(synthetic.length, 1);
  assert.match(synthetic[0], /x\.yaml:8:3 task\.source: expected no source: this task generates/);
  const missing = problems(
    spec("pixmo-points", "    train: { path: nope.jsonl, images: imgs }"),
    file,
  );
  assert.equal(missing.length, 2);
  assert.match(
    missing[0],
    /x\.yaml:9:20 task\.source\.train\.path: expected an existing file .*found "nope\.jsonl"/,
  );
  assert.match(missing[1], /task\.source\.train\.images: expected an existing folder/);
  const typo = problems(spec("pixmo-points", "    trian: { path: a.jsonl }"), file);
  assert.match(typo[0], /task\.source\.trian: expected a known key.*did you mean "train"\?/);
});

Deno.test("task.source: the data stage reads real-format files through the task's loader", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const config = {
    imageSize: 32,
    patchSize: 8,
    params: { ...TASKS["pixmo-points"].defaultParams },
  };
  const written = await TASKS["pixmo-points"].writeStandIn!(`${dir}/data`, 7, 10, config);
  const rel = (p: string) => p.replace(`${dir}/`, "");
  const text = spec(
    "pixmo-points",
    `    train: { path: ${rel(written.path)}, images: ${rel(written.images!)} }`,
  );
  const parsed = parseSpec(text, `${dir}/x.yaml`, [], { tasks: TASKS });
  assert.equal(parsed.task.source?.train?.path, written.path);
  const stages = await resolvePlan(buildPlan(parsed));
  const train = stages.find((s) => s.id === "data:pixmo-points:train:s0")!;
  assert.equal(train.params.source_sha256 !== undefined, true);
  const test = stages.find((s) => s.id.startsWith("data:pixmo-points:test"))!;
  assert.equal(test.params.source, undefined); // no test source: the offline stand-in
  const cache = new Cache(`${dir}/cache`);
  await runStage(train, { cache, experiment: "source-test" });
  const samples = await loadSamples(cache, train.key);
  const direct = await TASKS["pixmo-points"].load!(written, config);
  assert.equal(samples.length, 6);
  for (const s of samples) {
    assert.ok(direct.some((d) => d.prompt === s.prompt && d.answer === s.answer));
    assert.ok(Math.abs(s.target.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  }
});
