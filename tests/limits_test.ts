/** Upper bounds on spec values: located errors at validation, never a crash after training. */
import assert from "node:assert/strict";
import { formatBytes, LIMITS } from "../pipeline/spec/limits.ts";
import { buildPlan } from "../pipeline/run/plan.ts";
import { loadSpec, parseSpec, SpecError } from "../pipeline/spec/mod.ts";
import { runScript } from "./cli.ts";
import { SPEC_CONTEXT, SPEC_FILE, sweepProblems as problems } from "./spec_fixtures.ts";

const SPEC = `name: limits
task: { name: grid-patch, image_size: 32, train: 100, test: 10, params: { grid: 4, blobs: 1 } }
model: { patch_size: 8, d_model: 64, layers: 2, heads: 4 }
base: { steps: 10 }
train: { steps: 10, batch_size: 8 }
arms:
  ntp: { lambda: 0 }
  klal: { lambda: 1 }
`;

Deno.test("every bound has a reason, and the README's sizes are within them", () => {
  for (const [name, limit] of Object.entries(LIMITS)) {
    assert.ok(Number.isSafeInteger(limit.max) && limit.max > 0, name);
    assert.ok(limit.reason.length > 10, name);
  }
  assert.equal(formatBytes(LIMITS.specBytes.max), "1 MiB");
  // The paper-size model and data (README, experiments/paper/all.yaml) pass.
  parseSpec(SPEC, SPEC_FILE, [
    "task.image_size=64",
    "task.train=20000",
    "task.test=1000",
    "model.d_model=128",
    "model.layers=4",
    "base.steps=1000",
    "train.steps=3000",
    "train.batch_size=64",
    "seeds=[0, 1, 2]",
  ], SPEC_CONTEXT);
  // So do the largest values allowed.
  parseSpec(SPEC, SPEC_FILE, [
    "task.image_size=1024",
    "model.patch_size=16",
    "model.d_model=4096",
    "model.heads=64",
    "model.layers=64",
    "train.steps=10000000",
    "train.batch_size=65536",
    "task.train=10000000",
  ], SPEC_CONTEXT);
});

Deno.test("absurd sizes in the file are located errors naming the bound", () => {
  const text = SPEC
    .replace("image_size: 32", "image_size: 1000000")
    .replace("d_model: 64", "d_model: 1000000")
    .replace("steps: 10, batch_size: 8", "steps: 1e12, batch_size: 1000000000");
  assert.deepEqual(problems(text), [
    `${SPEC_FILE}:2:39 task.image_size: expected an integer <= 1024 (${LIMITS.imageSize.reason}), ` +
    "found 1000000",
    `${SPEC_FILE}:3:34 model.d_model: expected an integer <= 4096 (${LIMITS.dModel.reason}), ` +
    "found 1000000",
    `${SPEC_FILE}:5:17 train.steps: expected an integer <= 10000000 (${LIMITS.steps.reason}), ` +
    "found 1000000000000",
    `${SPEC_FILE}:5:35 train.batch_size: expected an integer <= 65536 (${LIMITS.batchSize.reason}), ` +
    "found 1000000000",
  ]);
});

Deno.test("command-line overrides are bounded the same way", () => {
  const lines = problems(SPEC, [
    "model.layers=65",
    "model.heads=128",
    "model.patch_size=256",
    "model.mlp_ratio=100",
    "base.steps=1e12",
    "base.batch_size=100000",
    "base.train=1e9",
    "task.test=20000000",
    "train.eval_samples=1e8",
    "eval.batch_size=1e6",
  ]);
  const expected: [string, string, number, number][] = [
    ["model.layers=65", "model.layers", LIMITS.layers.max, 65],
    ["model.heads=128", "model.heads", LIMITS.heads.max, 128],
    ["model.patch_size=256", "model.patch_size", LIMITS.patchSize.max, 256],
    ["model.mlp_ratio=100", "model.mlp_ratio", LIMITS.mlpRatio.max, 100],
    ["base.steps=1e12", "base.steps", LIMITS.steps.max, 1e12],
    ["base.batch_size=100000", "base.batch_size", LIMITS.batchSize.max, 100000],
    ["base.train=1e9", "base.train", LIMITS.samples.max, 1e9],
    ["task.test=20000000", "task.test", LIMITS.samples.max, 20000000],
    ["train.eval_samples=1e8", "train.eval_samples", LIMITS.samples.max, 1e8],
    ["eval.batch_size=1e6", "eval.batch_size", LIMITS.batchSize.max, 1e6],
  ];
  assert.equal(lines.length, expected.length, lines.join("\n"));
  expected.forEach(([raw, path, max, found], i) => {
    assert.ok(
      lines[i].startsWith(
        `<override ${i + 1}: ${raw}> ${path}: expected an integer <= ${max} (`,
      ) && lines[i].endsWith(`), found ${found}`),
      lines[i],
    );
  });
});

Deno.test("patch size: at most 4096 visual tokens", () => {
  assert.deepEqual(problems(SPEC, ["task.image_size=1024", "model.patch_size=1"]), [
    `<override 2: model.patch_size=1> model.patch_size: expected a patch size with ` +
    `(task.image_size / patch_size)^2 <= 4096 visual tokens (${LIMITS.visualTokens.reason}), ` +
    "found 1 ((1024 / 1)^2 = 1048576 tokens)",
  ]);
});

Deno.test("100,000 seeds are refused at once, naming the bound; 1000 plan", () => {
  const many = Array.from({ length: 100_000 }, (_, i) => i).join(", ");
  const text = SPEC.replace("arms:", `seeds: [${many}]\narms:`);
  assert.deepEqual(problems(text), [
    `${SPEC_FILE}:6:8 seeds: expected at most 1000 seeds (${LIMITS.seeds.reason}), ` +
    "found a list of 100000 seeds",
  ]);
  const seeds = Array.from({ length: 1000 }, (_, i) => i);
  const spec = parseSpec(SPEC, SPEC_FILE, [`seeds=[${seeds.join(",")}]`], SPEC_CONTEXT);
  assert.equal(buildPlan(spec).filter((s) => s.kind === "finetune").length, 2000);
  assert.match(
    problems(SPEC, [`seeds=[${[...seeds, 1000].join(",")}]`])[0],
    /^<override 1: seeds=\[0,1,2,.*\.\.\.> seeds: expected at most 1000 seeds .*found a list of 1001 seeds$/,
  );
});

Deno.test("a sweep of 2.6e9 points is refused before it is expanded", () => {
  const axis = (values: number) => `[${Array.from({ length: values }, (_, i) => i + 1)}]`;
  const paths = ["train.steps", "train.warmup", "train.log_every", "train.eval_every"];
  const block = paths.map((p) => `  ${p}: ${axis(226)}`).join("\n");
  // 226^4 = 2,608,757,776 points: validation alone says so, without building one of them.
  assert.deepEqual(problems(SPEC + `sweep:\n${block}\n`), [
    `${SPEC_FILE}:9:1 sweep: expected a sweep of at most 10000 points, the product of its axes' ` +
    `lengths (${LIMITS.sweepPoints.reason}), found 2608757776 points (226 x 226 x 226 x 226)`,
  ]);
  // The same from the command line, and a command-line axis on top of the spec's own.
  const cli = paths.map((p) => `${p}=${axis(226).slice(1, -1)}`);
  assert.match(
    problems(SPEC, cli)[0],
    /^<override 1: train\.steps=1,2,3,.*\.\.\.> train\.steps: expected a sweep of at most 10000 points.* found 2608757776 points \(226 x 226 x 226 x 226\)$/,
  );
  assert.match(
    problems(SPEC + "sweep:\n  train.lr: [0.001, 0.002, 0.003]\n", [
      `train.steps=${axis(5000).slice(1, -1)}`,
    ])[0],
    /^<override 1: train\.steps=1,2,.*> train\.steps: expected a sweep of at most 10000 points.* found 15000 points \(5000 x 3\)$/,
  );
});

Deno.test("a spec file over 1 MiB is refused by its size, before it is parsed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  try {
    const path = `${dir}/big.yaml`;
    // Valid YAML: a description of 2 MiB.
    await Deno.writeTextFile(path, SPEC + `description: "${"x".repeat(2 * 1024 * 1024)}"\n`);
    const size = (await Deno.stat(path)).size;
    await assert.rejects(loadSpec(path, [], SPEC_CONTEXT), (error: SpecError) => {
      assert.equal(
        error.message,
        `${path}: expected a YAML file of at most 1 MiB (${LIMITS.specBytes.reason}), ` +
          `found a file of ${size} bytes`,
      );
      return true;
    });
    const run = await runScript("pipeline/commands/experiment.ts", [path, "--dry-run"], {
      KLAL_CACHE_DIR: `${dir}/cache`,
      KLAL_REPORTS_DIR: `${dir}/reports`,
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /big\.yaml: expected a YAML file of at most 1 MiB/);
    assert.doesNotMatch(run.stderr, /xxxxxxxx/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
