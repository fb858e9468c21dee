import assert from "node:assert/strict";
import {
  canonicalJson,
  formatSpecError,
  levenshtein,
  loadSpec,
  parseSpec,
  SpecError,
} from "../pipeline/spec/mod.ts";
import type { SpecContext } from "../pipeline/spec/mod.ts";
import type { Task } from "../tasks/task.ts";
import { armSpec, DEFAULT_MIX, problemsOf } from "./spec_fixtures.ts";

function fakeTask(name: string, defaultParams: Record<string, unknown>): Task {
  return {
    name,
    version: "1",
    vocabulary: [],
    defaultParams,
    checkParams: ({ params }) => {
      const grid = params.grid;
      return typeof grid === "number" && grid >= 2
        ? []
        : [{ key: "grid", expected: "an integer >= 2", found: grid }];
    },
    generate: () => [],
    score: () => false,
  };
}

const ctx: SpecContext = {
  tasks: {
    "grid-patch": fakeTask("grid-patch", { grid: 4 }),
    "line-trace": fakeTask("line-trace", { grid: 4, curves: 2 }),
  },
};

const FILE = "experiments/x.yaml";

const MINIMAL = `name: quick
task:
  name: grid-patch
arms:
  ntp: {}
`;

/** Parses and expects failure; returns the error's message lines. */
function problemLines(text: string, overrides: string[] = []): string[] {
  return problemsOf(() => parseSpec(text, FILE, overrides, ctx));
}

Deno.test("a minimal spec gets every default", () => {
  const spec = parseSpec(MINIMAL, FILE, [], ctx);
  assert.deepEqual(spec, {
    name: "quick",
    description: "",
    seeds: [0],
    backend: "auto",
    task: {
      name: "grid-patch",
      image_size: 32,
      train: 4000,
      test: 500,
      test_seed: 1000,
      subset_seed: 0,
      params: { grid: 4 },
    },
    model: {
      name: "tiny-vlm",
      patch_size: 8,
      d_model: 64,
      layers: 2,
      heads: 4,
      mlp_ratio: 4,
      position_std: 0.3,
    },
    base: {
      steps: 300,
      batch_size: 32,
      lr: 1e-3,
      train: 4000,
      seed: 0,
      lambda: 0,
      mix: DEFAULT_MIX,
    },
    train: {
      steps: 500,
      batch_size: 32,
      lr: 1e-3,
      lr_grid: [],
      optimizer: "adamw",
      weight_decay: 0.01,
      warmup: 50,
      log_every: 10,
      eval_every: 0,
      eval_samples: 200,
      checkpoint_every: 100,
    },
    eval: { batch_size: 128 },
    arms: { ntp: armSpec() },
  });
});

Deno.test("a full spec keeps its values", () => {
  const spec = parseSpec(
    `name: grid-patch
description: paper run
seeds: [0, 1, 2]
backend: wasm
task: { name: grid-patch, image_size: 112, train: 20000, test: 1000, params: { grid: 8 } }
model: { name: tiny-vlm, patch_size: 14, d_model: 128, layers: 4, heads: 4 }
base: { steps: 10 }
train: { steps: 3000, batch_size: 32, lr: 3.0e-4, optimizer: adam }
arms:
  base: { finetune: false }
  ntp:  { lambda: 0 }
  klal: { lambda: 1.0, layers: [0, 3] }
`,
    FILE,
    [],
    ctx,
  );
  assert.equal(spec.backend, "wasm");
  assert.deepEqual(spec.seeds, [0, 1, 2]);
  assert.equal(spec.task.params.grid, 8);
  assert.equal(spec.train.lr, 3e-4);
  assert.equal(spec.train.optimizer, "adam");
  assert.equal(spec.base.steps, 10);
  assert.deepEqual(Object.keys(spec.arms), ["base", "ntp", "klal"]);
  assert.deepEqual(spec.arms.base, armSpec({ finetune: false }));
  assert.deepEqual(spec.arms.klal, armSpec({ lambda: 1, layers: [0, 3] }));
});

Deno.test("a wrong type names line:column, path, expected and found", () => {
  const lines = problemLines(`name: quick
task:
  name: grid-patch
arms:
  klal:
    lambda: high
`);
  assert.deepEqual(lines, [
    `${FILE}:6:13 arms.klal.lambda: expected a number >= 0, found "high"`,
  ]);
});

Deno.test("the name paper is reserved for the committed paper record", () => {
  const lines = problemLines(`name: paper
task: { name: grid-patch }
arms: { klal: { lambda: 1 } }
`);
  assert.deepEqual(lines, [
    `${FILE}:1:7 name: expected a name other than "paper" (reports/paper/ is the committed ` +
    `paper record), found "paper"`,
  ]);
});

Deno.test("a non-integer reports the number as found", () => {
  const lines = problemLines(MINIMAL + "train:\n  batch_size: 2.5\n");
  assert.deepEqual(lines, [
    `${FILE}:7:15 train.batch_size: expected an integer >= 1, found 2.5`,
  ]);
});

Deno.test("an unknown key suggests the nearest valid key", () => {
  const lines = problemLines(`name: quick
task: { name: grid-patch }
arms:
  klal:
    lamda: 1
`);
  assert.deepEqual(lines, [
    `${FILE}:5:5 arms.klal.lamda: expected a known key, found "lamda"; ` +
    `valid keys: finetune, lambda, layers, target, supervision, queries, seeds; did you mean "lambda"?`,
  ]);
});

Deno.test("an unknown key far from every valid key gets no suggestion", () => {
  const lines = problemLines(MINIMAL + "colour: red\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^experiments\/x\.yaml:6:1 colour: expected a known key, found "colour"/);
  assert.doesNotMatch(lines[0], /did you mean/);
});

Deno.test("an unknown task name lists the registered tasks and the nearest", () => {
  const lines = problemLines(MINIMAL.replace("name: grid-patch", "name: grid-patc"));
  assert.deepEqual(lines, [
    `${FILE}:3:9 task.name: expected a registered task name, found "grid-patc"; ` +
    `valid tasks: grid-patch, line-trace; did you mean "grid-patch"?`,
  ]);
});

Deno.test("task params: unknown keys list the task's params, checkParams problems are located", () => {
  const lines = problemLines(`name: quick
task:
  name: grid-patch
  params:
    gird: 3
    grid: 1
arms: { ntp: {} }
`);
  assert.deepEqual(lines, [
    `${FILE}:5:5 task.params.gird: expected a parameter of task "grid-patch", found "gird"; ` +
    `valid params: grid; did you mean "grid"?`,
    `${FILE}:6:11 task.params.grid: expected an integer >= 2, found 1`,
  ]);
});

Deno.test("a layer index past the model depth names the depth", () => {
  const lines = problemLines(`name: quick
task: { name: grid-patch }
model: { layers: 2 }
arms:
  klal: { lambda: 1, layers: [0, 2] }
`);
  assert.deepEqual(lines, [
    `${FILE}:5:34 arms.klal.layers[1]: expected a layer index in [0, 2) (model.layers is 2), found 2`,
  ]);
});

Deno.test("negative lambda, zero steps and an empty seed list are each rejected", () => {
  const lines = problemLines(`name: quick
seeds: []
task: { name: grid-patch }
train: { steps: 0 }
arms:
  klal: { lambda: -1 }
`);
  assert.deepEqual(lines, [
    `${FILE}:2:8 seeds: expected a non-empty list of distinct integers >= 0, found []`,
    `${FILE}:4:17 train.steps: expected an integer >= 1, found 0`,
    `${FILE}:6:19 arms.klal.lambda: expected a number >= 0, found -1`,
  ]);
});

Deno.test("a duplicate key points at the second one and the first", () => {
  const lines = problemLines(MINIMAL + "train:\n  steps: 10\n  steps: 20\n");
  assert.deepEqual(lines, [
    `${FILE}:8:3 train.steps: expected each key once, found a duplicate of the key at 7:3`,
  ]);
});

Deno.test("broken YAML is a located problem", () => {
  const lines = problemLines(`name: quick
task: { name: grid-patch
arms:
  ntp: {}
`);
  assert.ok(lines.length >= 1);
  for (const line of lines) {
    assert.match(line, /^experiments\/x\.yaml:\d+:\d+: expected valid YAML, found /);
  }
});

Deno.test("bad indentation is a located problem", () => {
  const lines = problemLines("name: quick\n  task: x\n");
  assert.equal(
    lines[0],
    `${FILE}:1:7: expected valid YAML, found Nested mappings are not allowed in compact mappings (BLOCK_AS_IMPLICIT_KEY)`,
  );
});

Deno.test("an alias bomb is rejected", () => {
  const rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 8; i++) {
    const prev = String.fromCharCode(96 + i);
    const next = String.fromCharCode(97 + i);
    rows.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(", ")}]`);
  }
  const lines = problemLines(rows.join("\n") + "\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /expected valid YAML, found .*alias/i);
});

Deno.test("test_seed must not be one of the seeds", () => {
  const lines = problemLines(`name: quick
seeds: [0, 7]
task: { name: grid-patch, test_seed: 7 }
arms: { ntp: {} }
`);
  assert.deepEqual(lines, [
    `${FILE}:3:38 task.test_seed: expected a seed that, like seed + 1 (validation), is not in seeds ([0,7]), so the test set stays held out, found 7`,
  ]);
});

Deno.test("a missing required key is reported at the parent mapping", () => {
  const lines = problemLines("name: quick\ntask:\n  image_size: 32\n");
  assert.deepEqual(lines, [
    `${FILE}:1:1 arms: expected a non-empty mapping of arm names to arm settings, ` +
    `found nothing (the key is missing)`,
    `${FILE}:3:3 task.name: expected a registered task name (one of: grid-patch, line-trace), ` +
    `found nothing (the key is missing)`,
  ]);
});

Deno.test("many problems are reported at once, in file order", () => {
  const lines = problemLines(`name: Bad Name
backend: gpu
task: { name: grid-patch, image_size: 30 }
model: { d_model: 64, heads: 5 }
arms:
  Klal: { lambda: 1 }
  base: { finetune: false, lambda: 2 }
`);
  assert.deepEqual(lines, [
    `${FILE}:1:7 name: expected a string matching /^[A-Za-z0-9][A-Za-z0-9._-]*$/ (it names the report folder), found "Bad Name"`,
    `${FILE}:2:10 backend: expected one of "auto", "webgpu", "wasm", "cpu", found "gpu"`,
    `${FILE}:4:8 model.patch_size: expected a divisor of task.image_size (30), found 8`,
    `${FILE}:4:30 model.heads: expected a divisor of model.d_model (64), found 5`,
    `${FILE}:6:3 arms.Klal: expected an arm name matching /^[a-z][a-z0-9_-]*$/, found "Klal"`,
    `${FILE}:7:28 arms.base.lambda: expected no lambda when finetune is false (it would be ignored), found 2`,
  ]);
});

Deno.test("an explicit warmup must not exceed steps; the default shrinks to fit", () => {
  assert.equal(parseSpec(MINIMAL, FILE, ["train.steps=20"], ctx).train.warmup, 20);
  const lines = problemLines(MINIMAL + "train: { steps: 20, warmup: 30 }\n");
  assert.deepEqual(lines, [
    `${FILE}:6:29 train.warmup: expected an integer <= train.steps (20), found 30`,
  ]);
});

Deno.test("overrides change values and create arms", () => {
  const spec = parseSpec(MINIMAL, FILE, [
    "train.steps=200",
    "train.lr=1e-3",
    "arms.klal.lambda=2",
    "arms.klal.layers=[0,1]",
    "task.params.grid=6",
    "seeds=[3, 4]",
  ], ctx);
  assert.equal(spec.train.steps, 200);
  assert.equal(spec.train.lr, 0.001);
  assert.deepEqual(spec.arms.klal, armSpec({ lambda: 2, layers: [0, 1] }));
  assert.deepEqual(spec.seeds, [3, 4]);
  assert.equal(spec.task.params.grid, 6);
});

Deno.test("a bad override path lists the valid keys and the nearest", () => {
  const lines = problemLines(MINIMAL, [
    "trian.steps=3",
    "train.step=3",
    "train.lr.x=1",
    "nonsense",
  ]);
  assert.deepEqual(lines, [
    `<override 1: trian.steps=3> trian: expected a known key, found "trian"; valid keys: name, ` +
    `description, seeds, backend, task, model, base, train, eval, arms, sweep, executor; did you mean "train"?`,
    `<override 2: train.step=3> train.step: expected a known key, found "step"; valid keys: ` +
    `steps, batch_size, lr, lr_grid, optimizer, weight_decay, warmup, log_every, eval_every, eval_samples, checkpoint_every; did you mean "steps"?`,
    `<override 3: train.lr.x=1> train.lr.x: expected no key below train.lr (it holds a value), found "x"`,
    `<override 4: nonsense>: expected an override of the form a.b.c=value, found "nonsense"`,
  ]);
});

Deno.test("a bad override value is validated like the file and located at the override", () => {
  const lines = problemLines(MINIMAL, [
    "train.steps=200",
    "train.steps=abc",
    "arms.klal.lambda=0.5,1",
    "task.params.grdi=2",
  ]);
  assert.deepEqual(lines, [
    `<override 2: train.steps=abc> train.steps: expected an integer >= 1, found "abc"`,
    `<override 3: arms.klal.lambda=0.5,1> arms.klal.lambda: expected a number >= 0, found "0.5,1"`,
    `<override 4: task.params.grdi=2> task.params.grdi: expected a parameter of task ` +
    `"grid-patch", found "grdi"; valid params: grid; did you mean "grid"?`,
  ]);
});

Deno.test("base may be a path to a YAML file beside the spec", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/base.yaml`, "steps: 77\nlr: 0.01\n");
    await Deno.writeTextFile(`${dir}/spec.yaml`, MINIMAL + "base: base.yaml\n");
    const spec = await loadSpec(`${dir}/spec.yaml`, ["base.seed=5"], ctx);
    assert.deepEqual(spec.base, {
      steps: 77,
      batch_size: 32,
      lr: 0.01,
      train: 4000,
      seed: 5,
      lambda: 0,
      mix: DEFAULT_MIX,
    });

    await Deno.writeTextFile(`${dir}/base.yaml`, "steps: -1\n");
    await assert.rejects(loadSpec(`${dir}/spec.yaml`, [], ctx), (error: SpecError) => {
      assert.equal(
        error.message,
        `${dir}/base.yaml:1:8 base.steps: expected an integer >= 0, found -1`,
      );
      return true;
    });

    await Deno.writeTextFile(`${dir}/spec.yaml`, MINIMAL + "base: missing.yaml\n");
    await assert.rejects(loadSpec(`${dir}/spec.yaml`, [], ctx), (error: SpecError) => {
      assert.match(
        error.message,
        /spec\.yaml:6:7 base: expected a mapping or the path of a readable YAML file .*found "missing\.yaml" \(.*missing\.yaml: NotFound\)/,
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing spec file is a SpecError naming it", async () => {
  await assert.rejects(loadSpec("/nonexistent/spec.yaml", [], ctx), (error: SpecError) => {
    assert.ok(error instanceof SpecError);
    assert.match(
      error.message,
      /^\/nonexistent\/spec\.yaml: expected a readable YAML spec file, found NotFound/,
    );
    return true;
  });
});

Deno.test("formatSpecError puts a count above one problem per line", () => {
  try {
    parseSpec("name: quick\n", FILE, [], ctx);
    assert.fail("expected a SpecError");
  } catch (error) {
    const text = formatSpecError(error as SpecError);
    const lines = text.split("\n");
    assert.equal(lines[0], "error: invalid spec (2 problems):");
    assert.equal(lines.length, 3);
    assert.ok(lines.slice(1).every((line) => line.startsWith(`  ${FILE}:1:1 `)));
  }
});

Deno.test("canonicalJson sorts keys at every level and levenshtein counts edits", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: "s" } }),
    '{"a":{"c":"s","d":[1,{"x":1,"y":2}]},"b":1}',
  );
  assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
  assert.equal(levenshtein("lamda", "lambda"), 1);
  assert.equal(levenshtein("kitten", "sitting"), 3);
  assert.equal(levenshtein("", "abc"), 3);
});

/** The message of the SpecError that loading `path` as a spec gives. */
async function loadError(path: string, overrides: string[] = []): Promise<string> {
  try {
    await loadSpec(path, overrides, ctx);
  } catch (error) {
    assert.ok(error instanceof SpecError, `not a SpecError: ${error}`);
    return error.message;
  }
  assert.fail(`${path} loaded as a spec`);
}

Deno.test("a file that is not a spec is named with its problem, never its content", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-notspec-" });
  try {
    const secret =
      "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
    await Deno.writeTextFile(`${dir}/passwd`, secret);
    assert.equal(
      await loadError(`${dir}/passwd`),
      `${dir}/passwd:1:1 (top level): expected a mapping of spec keys, found text of ${
        secret.trim().replace("\n", " ").length
      } characters`,
    );
    await Deno.writeTextFile(`${dir}/list.yaml`, "- secret-one\n- secret-two\n");
    assert.equal(
      await loadError(`${dir}/list.yaml`),
      `${dir}/list.yaml:1:1 (top level): expected a mapping of spec keys, found a list of 2 items`,
    );
    // Some other YAML file: none of its keys is echoed.
    await Deno.writeTextFile(`${dir}/compose.yaml`, "services:\n  db: { password: hunter2 }\n");
    assert.equal(
      await loadError(`${dir}/compose.yaml`),
      `${dir}/compose.yaml:1:1 (top level): expected a spec: a mapping with keys such as name, ` +
        "task and arms, found a mapping of 1 key, none of them a spec key",
    );
    // Binary data: a NUL byte, or bytes that are not UTF-8.
    await Deno.writeFile(`${dir}/bin`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]));
    assert.equal(
      await loadError(`${dir}/bin`),
      `${dir}/bin: expected a YAML text file, found binary data (a NUL byte at byte 4)`,
    );
    // "n: caf\xe9" in Latin-1.
    await Deno.writeFile(
      `${dir}/latin1`,
      new Uint8Array([0x6e, 0x3a, 0x20, 0x63, 0x61, 0x66, 0xe9]),
    );
    assert.equal(
      await loadError(`${dir}/latin1`),
      `${dir}/latin1: expected a YAML text file in UTF-8, found bytes that are not UTF-8 text`,
    );
    assert.equal(await loadError(dir), `${dir}: expected a YAML spec file, found a directory`);
    // A program: a few YAML errors, then a count; no line longer than the cut.
    const program = Array.from({ length: 40 }, (_, i) => `  let v${i}: number = f(${i}, "x");`);
    await Deno.writeTextFile(`${dir}/main.ts`, `function f() {\n${program.join("\n")}\n}\n`);
    const lines = (await loadError(`${dir}/main.ts`)).split("\n");
    assert.ok(lines.length <= 6, lines.join("\n"));
    assert.match(lines.at(-1)!, /expected valid YAML, found \d+ more YAML errors$/);
    // A base file that is not a base block: where it is, what it is, not what it says.
    await Deno.writeTextFile(`${dir}/spec.yaml`, MINIMAL + "base: passwd\n");
    assert.equal(
      await loadError(`${dir}/spec.yaml`),
      `${dir}/passwd:1:1 base: expected a mapping of base settings, found text of ${
        secret.trim().replace("\n", " ").length
      } characters`,
    );
    await Deno.writeTextFile(`${dir}/spec.yaml`, MINIMAL + "base: bin\n");
    assert.equal(
      await loadError(`${dir}/spec.yaml`),
      `${dir}/spec.yaml:6:7 base: expected the path of a YAML text file (relative to the spec), ` +
        `found "bin" (${dir}/bin: binary data (a NUL byte at byte 4))`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control characters in keys, values and file names are shown as escapes", async () => {
  const lines = problemLines(`name: "quick\\e[31m"
task: { name: grid-patch }
arms: { ntp: {} }
"\\e[2J\\rgone": 1
description: [1]
`);
  assert.deepEqual(lines, [
    `${FILE}:1:7 name: expected a string matching /^[A-Za-z0-9][A-Za-z0-9._-]*$/ (it names the ` +
    `report folder), found "quick\\u001b[31m"`,
    `${FILE}:4:1 \\x1b[2J\\rgone: expected a known key, found "\\u001b[2J\\rgone"; valid keys: ` +
    "name, description, seeds, backend, task, model, base, train, eval, arms, sweep, executor",
    `${FILE}:5:14 description: expected a string, found [1]`,
  ]);
  for (const line of lines) assert.ok(![...line].some((c) => c < " "), JSON.stringify(line));
  // A file name and an override given on the command line are escaped too.
  const message = await loadError("/nonexistent/\x1b[2Jspec.yaml", ["train.steps=\x9b1"]);
  assert.ok(message.startsWith("/nonexistent/\\x1b[2Jspec.yaml: expected a readable"), message);
  assert.ok(![...message].some((c) => c < " " || (c >= "\x7f" && c <= "\x9f")), message);
  // A long key is cut.
  const long = problemLines(MINIMAL + `${"k".repeat(500)}: 1\n`);
  assert.ok(long[0].length < 500, long[0]);
});

Deno.test("control arms: target, supervision and queries, with defaults and errors", () => {
  const spec = parseSpec(MINIMAL, FILE, [
    "arms.shuffled.lambda=1",
    "arms.shuffled.target=shuffled",
    "arms.pointer.lambda=1",
    "arms.pointer.supervision=pointer",
    "arms.klal.queries=first",
  ], ctx);
  assert.equal(spec.arms.shuffled.target, "shuffled");
  assert.equal(spec.arms.shuffled.supervision, "attention");
  assert.equal(spec.arms.pointer.supervision, "pointer");
  assert.equal(spec.arms.klal.queries, "first");
  assert.equal(spec.arms.klal.target, "task");
  const lines = problemLines(MINIMAL, ["arms.klal.target=shufled"]);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /arms\.klal\.target: expected "task" or "shuffled" or "uniform", found/);
});
