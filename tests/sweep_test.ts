import assert from "node:assert/strict";
import { SpecError } from "../pipeline/spec/mod.ts";
import {
  axisLabel,
  expandSweep,
  splitSweepOverrides,
  splitValues,
} from "../pipeline/spec/sweep.ts";
import { TASKS } from "../tasks/registry.ts";
import { fileURLToPath } from "node:url";

const SPEC = `
name: sweep-test
task: { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 2, heads: 2 }
arms:
  base: { finetune: false }
  ntp: { lambda: 0 }
  klal: { lambda: 1, layers: all }
`;
const ctx = { tasks: TASKS };

Deno.test("splitValues: commas outside brackets and quotes", () => {
  assert.deepEqual(splitValues("0.5,1,2"), ["0.5", "1", "2"]);
  assert.deepEqual(splitValues("[0,1],[1]"), ["[0,1]", "[1]"]);
  assert.deepEqual(splitValues('"a,b",c'), ['"a,b"', "c"]);
  assert.deepEqual(splitValues("[0,1]"), ["[0,1]"]);
  const { plain, axes } = splitSweepOverrides(["train.steps=5", "arms.klal.lambda=0.5,1"]);
  assert.deepEqual(plain, ["train.steps=5"]);
  assert.deepEqual(axes, [{ path: "arms.klal.lambda", values: ["0.5", "1"] }]);
  assert.equal(axisLabel("arms.klal.lambda", "0.5"), "lambda0p5");
  assert.equal(axisLabel("arms.klal.layers", "[0,1]"), "layers0-1");
});

Deno.test("expandSweep: an arm axis becomes arms of one experiment", () => {
  const specs = expandSweep(SPEC, "s.yaml", ["arms.klal.lambda=0.5,1,2"], ctx);
  assert.equal(specs.length, 1);
  assert.deepEqual(Object.keys(specs[0].arms), [
    "base",
    "ntp",
    "klal-lambda0p5",
    "klal-lambda1",
    "klal-lambda2",
  ]);
  assert.equal(specs[0].arms["klal-lambda0p5"].lambda, 0.5);
  assert.equal(specs[0].arms["klal-lambda2"].layers, "all");
});

Deno.test("expandSweep: other axes give the cartesian product of experiments", () => {
  const specs = expandSweep(SPEC, "s.yaml", ["train.lr=0.001,0.002", "train.steps=3,4"], ctx);
  assert.deepEqual(specs.map((s) => s.name), [
    "sweep-test--lr0p001-steps3",
    "sweep-test--lr0p001-steps4",
    "sweep-test--lr0p002-steps3",
    "sweep-test--lr0p002-steps4",
  ]);
  assert.deepEqual(specs.map((s) => [s.train.lr, s.train.steps]), [
    [0.001, 3],
    [0.001, 4],
    [0.002, 3],
    [0.002, 4],
  ]);
});

Deno.test("expandSweep: a path inside a swept task block overrides the block, in any order", () => {
  const block =
    "task: [{ name: grid-patch, image_size: 32, train: 8, test: 4, params: { grid: 4 } }]";
  const inner = "task.params.blobs: [1, 2]";
  for (const axes of [[inner, block], [block, inner]]) {
    const specs = expandSweep(SPEC + `sweep:\n  ${axes.join("\n  ")}\n`, "s.yaml", [], ctx);
    assert.deepEqual(
      specs.map((s) => [s.task.image_size, s.task.params.grid, s.task.params.blobs]),
      [
        [32, 4, 1],
        [32, 4, 2],
      ],
    );
  }
});

Deno.test("expandSweep: a sweep block in the spec; layers ablation", () => {
  const text = SPEC + "sweep:\n  arms.klal.layers: [[0], [1], all]\n";
  const [spec] = expandSweep(text, "s.yaml", [], ctx);
  assert.deepEqual(Object.keys(spec.arms).slice(2), [
    "klal-layers0",
    "klal-layers1",
    "klal-layersall",
  ]);
  assert.deepEqual(spec.arms["klal-layers1"].layers, [1]);
  assert.equal(spec.sweep, undefined);
});

Deno.test("expandSweep: every point is validated like a plain spec", () => {
  assert.throws(
    () => expandSweep(SPEC, "s.yaml", ["arms.klal.lambda=1,-2"], ctx),
    (e: unknown) =>
      e instanceof SpecError &&
      /<override 1: arms\.klal\.lambda=-2> arms\.klal\.lambda: expected a number >= 0/.test(
        e.message,
      ),
  );
  assert.throws(
    () => expandSweep(SPEC + "sweep:\n  train.lr: 3\n", "s.yaml", [], ctx),
    /sweep\.train\.lr: expected a non-empty list of values/,
  );
});

Deno.test("expandSweep: whole task blocks give one experiment per task (Table 1 in one spec)", () => {
  const text = SPEC + `sweep:
  task:
    - { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
    - { name: line-intersection, image_size: 32, train: 10, test: 5 }
`;
  const specs = expandSweep(text, "s.yaml", [], ctx);
  assert.deepEqual(specs.map((s) => s.name), [
    "sweep-test--grid-patch",
    "sweep-test--line-intersection",
  ]);
  assert.equal(specs[1].task.image_size, 32);
  assert.equal(specs[1].task.params.max_count, 2); // the task's own defaults
});

Deno.test("the paper specs plan: all.yaml, lambda-sweep.yaml, layer-ablation.yaml", async () => {
  const dir = fileURLToPath(new URL("../experiments/paper/", import.meta.url));
  const all = expandSweep(await Deno.readTextFile(`${dir}all.yaml`), "all.yaml", [], ctx);
  assert.deepEqual(all.map((s) => s.task.name).sort(), [
    "grid-patch",
    "line-intersection",
    "line-tracing",
    "pixmo-points",
    "refcoco",
  ]);
  const lambda = expandSweep(await Deno.readTextFile(`${dir}lambda-sweep.yaml`), "l.yaml", [], ctx);
  assert.deepEqual(lambda.map((s) => s.task.name), ["grid-patch", "line-intersection"]);
  assert.deepEqual(Object.values(lambda[0].arms).map((a) => a.lambda), [0, 0, 0.25, 0.5, 1, 2, 4]);
  const layers = expandSweep(
    await Deno.readTextFile(`${dir}layer-ablation.yaml`),
    "a.yaml",
    [],
    ctx,
  );
  assert.deepEqual(Object.keys(layers[0].arms), [
    "base",
    "ntp",
    "klal-layers0-1",
    "klal-layers2-3",
    "klal-layersall",
  ]);
});
