/** The spec schema (pipeline/spec/schema.ts) and task params declared with defineParams. */
import assert from "node:assert/strict";
import {
  checkFields,
  defaultsOf,
  defineParams,
  expectedOf,
  type Field,
  type Fields,
  problemOf,
} from "../pipeline/lib/schema.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import {
  ARM_FIELDS,
  BASE_FIELDS,
  EVAL_FIELDS,
  EXECUTOR_FIELDS,
  fieldAt,
  isValueField,
  keysOf,
  MODEL_FIELDS,
  ROOT_FIELDS,
  SPEC_SCHEMA,
  TASK_FIELDS,
  TRAIN_FIELDS,
} from "../pipeline/spec/schema.ts";
import { PRETRAIN_TASK, TASKS } from "../tasks/registry.ts";
import { parseProblems as problems, SPEC_CONTEXT, SPEC_FILE } from "./spec_fixtures.ts";

const SPEC = `name: schema
task: { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 2, heads: 2 }
arms:
  ntp: { lambda: 0 }
executor: { name: slurm, partition: p, time: 5, cpus: 1, gres: "gpu:1" }
`;

const sorted = (keys: Iterable<string>) => [...keys].sort();

Deno.test("schema: each section's keys are exactly the validated spec's keys", () => {
  const spec = parseSpec(SPEC, SPEC_FILE, [], SPEC_CONTEXT);
  // Keys the spec leaves out when not given: sweep (no sweep block), task.source (no data).
  assert.deepEqual(
    sorted(Object.keys(spec)),
    sorted(keysOf(ROOT_FIELDS).filter((k) => k !== "sweep")),
  );
  assert.deepEqual(
    sorted(Object.keys(spec.task)),
    sorted(keysOf(TASK_FIELDS).filter((k) => k !== "source")),
  );
  const sections: [object, Fields][] = [
    [spec.model, MODEL_FIELDS],
    [spec.base, BASE_FIELDS],
    [spec.train, TRAIN_FIELDS],
    [spec.eval, EVAL_FIELDS],
    [spec.arms.ntp, ARM_FIELDS],
    [spec.executor!, EXECUTOR_FIELDS],
  ];
  for (const [values, fields] of sections) {
    assert.deepEqual(sorted(Object.keys(values)), sorted(keysOf(fields)));
  }
});

/** Every field of the schema, with its dotted path. */
function allFields(fields: Fields, prefix = ""): [string, Field][] {
  return Object.entries(fields).flatMap(([key, field]): [string, Field][] => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (field.type === "section") return [[path, field], ...allFields(field.fields, path)];
    if (field.type === "map" && field.values.type === "section") {
      return [[path, field], ...allFields(field.values.fields, `${path}.${field.key}`)];
    }
    return [[path, field]];
  });
}

Deno.test("schema: every key has a doc, and every default passes its own check", () => {
  const fields = [
    ...allFields(ROOT_FIELDS),
    ...[...Object.values(TASKS), PRETRAIN_TASK].flatMap((task) =>
      allFields(task.paramSchema ?? {}, `task.params(${task.name})`)
    ),
  ];
  assert.ok(fields.length > 60, String(fields.length));
  for (const [path, field] of fields) {
    assert.ok((field.doc ?? "").length > 3, `${path} has no doc`);
    if (isValueField(field) && field.default !== undefined) {
      assert.equal(problemOf(field, field.default), undefined, path);
    }
  }
  assert.equal(fieldAt("arms.klal.lambda"), ARM_FIELDS.lambda);
  assert.equal(fieldAt("task.source.train.path"), TASK_FIELDS.source.fields.train.fields.path);
  assert.equal(fieldAt("train.nope"), undefined);
  assert.equal(SPEC_SCHEMA.fields, ROOT_FIELDS);
});

Deno.test("schema: the messages derived from a field's type and range", () => {
  assert.equal(expectedOf(TRAIN_FIELDS.lr), "a number > 0");
  assert.equal(expectedOf(TRAIN_FIELDS.lr_grid), "a list of distinct numbers > 0");
  assert.equal(
    expectedOf(BASE_FIELDS.seed),
    'an integer >= 0 or "run" or a list of at least 2 distinct integers >= 0',
  );
  assert.equal(expectedOf(ROOT_FIELDS.seeds), "a non-empty list of distinct integers >= 0");
  assert.equal(expectedOf(ROOT_FIELDS.backend).startsWith('one of "auto", "webgpu"'), true);
  assert.deepEqual(problemOf(TASK_FIELDS.image_size, 2048), {
    expected: `an integer <= 1024 (${TASK_FIELDS.image_size.limit.reason})`,
  });
  assert.equal(problemOf(TASK_FIELDS.image_size, 64), undefined);
  assert.deepEqual(problemOf(TASK_FIELDS.image_size, 4), { expected: "an integer >= 8" });
});

Deno.test("base.seed: an integer, run, or a list of Bases that divides the seeds", () => {
  assert.equal(parseSpec(SPEC, SPEC_FILE, ["base.seed=run"], SPEC_CONTEXT).base.seed, "run");
  assert.equal(parseSpec(SPEC, SPEC_FILE, ["base.seed=7"], SPEC_CONTEXT).base.seed, 7);
  assert.equal(parseSpec(SPEC, SPEC_FILE, [], SPEC_CONTEXT).base.seed, 0);
  const listed = parseSpec(SPEC, SPEC_FILE, ["seeds=[0,1,2,3]", "base.seed=[5,6]"], SPEC_CONTEXT);
  assert.deepEqual(listed.base.seed, [5, 6]);
  const expected = 'an integer >= 0 or "run" or a list of at least 2 distinct integers >= 0';
  assert.deepEqual(problems(SPEC + "base: { seed: runs }\n"), [
    `${SPEC_FILE}:7:15 base.seed: expected ${expected}, found "runs"`,
  ]);
  assert.deepEqual(problems(SPEC + "base: { seed: [5] }\n"), [
    `${SPEC_FILE}:7:15 base.seed: expected ${expected}, found [5]`,
  ]);
  // Two seeds cannot be split into three equal blocks.
  assert.deepEqual(problems(SPEC + "seeds: [0, 1]\nbase: { seed: [5, 6, 7] }\n"), [
    `${SPEC_FILE}:8:15 base.seed: expected as many Bases as divide the 2 seeds evenly (each ` +
    "Base takes an equal block of seeds, in order), found 3 Bases",
  ]);
});

Deno.test("arms.<arm>.seeds: all by default, or some of the spec's seeds", () => {
  assert.equal(parseSpec(SPEC, SPEC_FILE, [], SPEC_CONTEXT).arms.ntp.seeds, "all");
  const some = parseSpec(
    SPEC,
    SPEC_FILE,
    ["seeds=[0, 1, 2]", "arms.ntp.seeds=[2, 0]"],
    SPEC_CONTEXT,
  );
  assert.deepEqual(some.arms.ntp.seeds, [2, 0]);
  assert.deepEqual(problems(SPEC, ["seeds=[0, 1]", "arms.ntp.seeds=[1, 5]"]), [
    "<override 2: arms.ntp.seeds=[1, 5]> arms.ntp.seeds[1]: expected one of the spec's seeds " +
    "(0, 1), found 5",
  ]);
  assert.deepEqual(problems(SPEC, ["arms.base.finetune=false", "arms.base.seeds=[0]"]), [
    "<override 2: arms.base.seeds=[0]> arms.base.seeds: expected no seeds when finetune is " +
    "false (it would be ignored), found [0]",
  ]);
});

Deno.test("executor.stages: resources per known stage kind, a misspelt kind named", () => {
  const base = SPEC.replace(/executor: .*\n/, "");
  const spec = parseSpec(
    base +
      'executor: { name: slurm, gres: "gpu:1", stages: { data: { cpus: 2 }, finetune: { time: 90, gres: "gpu:2" } } }\n',
    SPEC_FILE,
    [],
    SPEC_CONTEXT,
  );
  assert.deepEqual(spec.executor!.stages, {
    data: { cpus: 2 },
    finetune: { time: "90", gres: "gpu:2" },
  });
  // "" asks a kind for no gres at all (the common gres is not its).
  const none = parseSpec(
    base + 'executor: { name: slurm, gres: "gpu:1", stages: { eval: { gres: "" } } }\n',
    SPEC_FILE,
    [],
    SPEC_CONTEXT,
  );
  assert.deepEqual(none.executor!.stages, { eval: { gres: "" } });
  const [problem] = problems(
    base + "executor: { name: slurm, stages: { finetun: { cpus: 2 } } }\n",
  );
  assert.match(
    problem,
    /executor\.stages\.finetun: expected a stage kind: data, pretrain, lr-finetune, lr-eval, choose-lr, finetune, eval, report, found "finetun"; did you mean "finetune"\?/,
  );
  const [key] = problems(base + "executor: { name: slurm, stages: { data: { cpu: 2 } } }\n");
  assert.match(key, /executor\.stages\.data\.cpu/);
});

Deno.test("train.lr_grid: distinct positive rates, each located; empty by default", () => {
  assert.deepEqual(parseSpec(SPEC, SPEC_FILE, [], SPEC_CONTEXT).train.lr_grid, []);
  const spec = parseSpec(SPEC, SPEC_FILE, ["train.lr_grid=[1e-3, 3e-3]"], SPEC_CONTEXT);
  assert.deepEqual(spec.train.lr_grid, [0.001, 0.003]);
  assert.deepEqual(problems(SPEC + "train: { lr_grid: [0.001, -1, 0.001] }\n"), [
    `${SPEC_FILE}:7:27 train.lr_grid[1]: expected a number > 0, found -1`,
    `${SPEC_FILE}:7:31 train.lr_grid[2]: expected distinct learning rates, found 0.001 again ` +
    "(train.lr_grid[0])",
  ]);
  assert.deepEqual(problems(SPEC, ["train.lr_grid=0.01"]), [
    "<override 1: train.lr_grid=0.01> train.lr_grid: expected a list of distinct numbers > 0, " +
    "found 0.01",
  ]);
  const many = Array.from({ length: 101 }, (_, i) => (i + 1) / 1e4).join(",");
  assert.match(
    problems(SPEC, [`train.lr_grid=[${many}]`])[0],
    /train\.lr_grid: expected at most 100 learning rates \(.*\), found a list of 101 learning rates$/,
  );
});

Deno.test("task params: declared fields give the defaults and the range checks", () => {
  const lines = problems(
    SPEC.replace("name: grid-patch, image_size: 16", "name: pixmo-points, image_size: 16")
      .replace("params: { grid: 2, blobs: 1 }", "params: { radius: 200, limit: 1.5 }"),
  );
  assert.deepEqual(lines, [
    `${SPEC_FILE}:2:83 task.params.radius: expected a number of percent-units in (0, 100], found 200`,
    `${SPEC_FILE}:2:95 task.params.limit: expected an integer >= 0, found 1.5`,
  ]);
  const pretrain = PRETRAIN_TASK.paramSchema!;
  assert.deepEqual(PRETRAIN_TASK.defaultParams, defaultsOf(pretrain));
  // A field's own check, and a rule between fields that runs only on valid fields.
  const config = (params: Record<string, unknown>) => ({ imageSize: 32, patchSize: 8, params });
  assert.deepEqual(
    PRETRAIN_TASK.checkParams(config({ colors: ["red", "blue"] })).map((p) => p.key),
    [
      "colors",
    ],
  );
  assert.deepEqual(PRETRAIN_TASK.checkParams(config({ max_shapes: 9 })).map((p) => p.key), [
    "max_shapes",
  ]);
  const mix = { kinds: ["color"], max_shapes: 2, colors: ["red", "red"], point_prompt: "locate" };
  assert.deepEqual(checkFields(pretrain, mix), [{
    key: "colors",
    expected: pretrain.colors.type === "list" ? expectedOf(pretrain.colors) : "",
    found: ["red", "red"],
  }]);
});

Deno.test("defineParams: defaults merged before checks; cross rules see which fields failed", () => {
  const seen: string[][] = [];
  const declared = defineParams({
    n: { type: "int", min: 1, max: 4, default: 2, doc: "how many" },
    mode: {
      type: "union",
      options: [{ type: "enum", values: ["auto"] }, { type: "int", min: 0 }],
      default: "auto",
      doc: "a mode",
    },
  }, (config, invalid) => {
    seen.push([...invalid]);
    return config.params.n === 3 ? [{ key: "n", expected: "not 3", found: 3 }] : [];
  });
  assert.deepEqual(declared.defaultParams, { n: 2, mode: "auto" });
  const check = (params: Record<string, unknown>) =>
    declared.checkParams({ imageSize: 32, patchSize: 8, params });
  assert.deepEqual(check({}), []);
  assert.deepEqual(check({ n: 9, mode: "x" }), [
    { key: "n", expected: "an integer from 1 to 4", found: 9 },
    { key: "mode", expected: '"auto" or an integer >= 0', found: "x" },
  ]);
  assert.deepEqual(check({ n: 3 }), [{ key: "n", expected: "not 3", found: 3 }]);
  assert.deepEqual(seen, [[], ["n", "mode"], []]);
});
