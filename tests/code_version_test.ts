/**
 * Code versions: the import scanner, and stage keys computed from copies of the repository in
 * which one source file was edited.
 */
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { codeVersion, importClosure, scanImports } from "../pipeline/cache/code_version.ts";
import type { ResolvedStage, Stage } from "../pipeline/run/plan.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import type { Spec } from "../pipeline/spec/types.ts";
import { TASKS } from "../tasks/registry.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("scanImports: static, re-exported and literal dynamic imports; type-only marked", () => {
  const source = `#!/usr/bin/env -S deno run
// import { no } from "./line_comment.ts";
/* import { no } from "./block_comment.ts"; */
import x from "./default.ts";
import {
  a,
  type B,
} from "../multi_line.ts";
import * as ns from "@scope/pkg";
import "./side_effect.ts";
import type { T } from "./type_only.ts";
import { type U, type V } from "./all_typed.ts";
import type from "./default_named_type.ts";
export * from "./star.ts";
export { c as d } from "./named.ts";
export type { W } from "./export_type.ts";
export { e };
const s = "import { no } from './string.ts'";
const t = \`import("./template_text.ts") \${await import("./in_substitution.ts")} done\`;
const r = /["'\`]import("\\.\\/regex.ts")/g;
const half = 1 / 2; const other = "/"; // import("./after_division.ts")
const later = await import("./dynamic.ts");
const computed = await import(\`./\${name}.ts\`);
const obj = { import: 1 }; obj.import;
type Q = typeof import("./typeof_import.ts");
`;
  assert.deepEqual(scanImports(source), [
    { specifier: "./default.ts", dynamic: false, typeOnly: false },
    { specifier: "../multi_line.ts", dynamic: false, typeOnly: false },
    { specifier: "@scope/pkg", dynamic: false, typeOnly: false },
    { specifier: "./side_effect.ts", dynamic: false, typeOnly: false },
    { specifier: "./type_only.ts", dynamic: false, typeOnly: true },
    { specifier: "./all_typed.ts", dynamic: false, typeOnly: true },
    { specifier: "./default_named_type.ts", dynamic: false, typeOnly: false },
    { specifier: "./star.ts", dynamic: false, typeOnly: false },
    { specifier: "./named.ts", dynamic: false, typeOnly: false },
    { specifier: "./export_type.ts", dynamic: false, typeOnly: true },
    { specifier: "./in_substitution.ts", dynamic: true, typeOnly: false },
    { specifier: "./dynamic.ts", dynamic: true, typeOnly: false },
    { specifier: "./typeof_import.ts", dynamic: true, typeOnly: true },
  ]);
});

Deno.test("importClosure: the native kernels are in the training and eval modules' closures", async () => {
  const kernels = ["pipeline/kernels/native_matmul.ts", "pipeline/kernels/native_attention.ts"];
  for (const entry of ["pretrain", "finetune", "eval"]) {
    const { files, packages } = await importClosure([`pipeline/stages/${entry}.ts`]);
    for (const k of kernels) assert.ok(files.includes(k), `${entry}: ${k}`);
    assert.ok(packages.includes("@tensorflow/tfjs"), entry);
    assert.ok(!packages.includes("vega"), entry);
  }
  const data = await importClosure(["pipeline/stages/data.ts"]);
  assert.deepEqual(data.packages, []);
  assert.ok(!data.files.some((f) => f.startsWith("tasks/")), data.files.join(", "));
});

Deno.test("codeVersion: stable, and the order of entries does not matter", async () => {
  const a = await codeVersion(["pipeline/stages/data.ts", "tasks/grid_patch.ts"], ["x"]);
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.equal(await codeVersion(["tasks/grid_patch.ts", "pipeline/stages/data.ts"], ["x"]), a);
  assert.notEqual(await codeVersion(["pipeline/stages/data.ts", "tasks/grid_patch.ts"], ["y"]), a);
});

// ---------------------------------------------------------------- keys of edited copies

const SPEC = `
name: code-version-test
seeds: [0]
task: { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
train: { eval_every: 5, eval_samples: 4 }
arms:
  base: { finetune: false }
  klal: { lambda: 1, layers: all }
`;

/** Copy what planning reads (pipeline/, tasks/, deno.json, deno.lock) into a new folder. */
async function copyRepository(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "klal-code-version-" });
  const copy = async (from: URL, to: string): Promise<void> => {
    const info = await Deno.stat(from);
    if (info.isFile) return await Deno.copyFile(from, to);
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      const child = new URL(entry.name + (entry.isDirectory ? "/" : ""), from);
      await copy(child, `${to}/${entry.name}`);
    }
  };
  for (const name of ["pipeline/", "tasks/", "deno.json", "deno.lock"]) {
    await copy(new URL(name, ROOT), `${dir}/${name.replace(/\/$/, "")}`);
  }
  return dir;
}

/** Stage id -> key, planned by the copy of the repository at `dir`. */
async function keysOf(dir: string, spec: Spec): Promise<Map<string, string>> {
  const plan = await import(pathToFileURL(`${dir}/pipeline/run/plan.ts`).href) as {
    buildPlan(spec: Spec): Stage[];
    resolvePlan(stages: Stage[]): Promise<ResolvedStage[]>;
  };
  const stages = await plan.resolvePlan(plan.buildPlan(structuredClone(spec)));
  return new Map(stages.map((s) => [s.id, s.key]));
}

/**
 * Keys planned by a fresh copy of the repository, after a comment was appended to each file
 * that `edit` lists (paths relative to the copy; no edit when absent).
 */
async function keysAfter(spec: Spec, edit?: (dir: string) => Promise<string[]>) {
  const dir = await copyRepository();
  try {
    const edited = edit ? await edit(dir) : [];
    assert.ok(!edit || edited.length > 0, "the edit names files");
    for (const file of edited) {
      await Deno.writeTextFile(`${dir}/${file}`, "\n// edited\n", { append: true });
    }
    return await keysOf(dir, spec);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const appendTo = (...files: string[]) => () => Promise.resolve(files);

/** The .ts files under `dir`/pipeline/ whose text contains one of `needles` (relative paths). */
async function pipelineFilesWith(
  dir: string,
  needles: string[],
  sub = "pipeline",
): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${sub}`)) {
    const rel = `${sub}/${entry.name}`;
    if (entry.isDirectory) found.push(...await pipelineFilesWith(dir, needles, rel));
    else if (entry.name.endsWith(".ts")) {
      const text = await Deno.readTextFile(`${dir}/${rel}`);
      if (needles.some((n) => text.includes(n))) found.push(rel);
    }
  }
  return found;
}

/** Ids whose key differs between two plans (same ids). */
function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  return [...a.keys()].filter((id) => a.get(id) !== b.get(id)).sort();
}

Deno.test("stage keys follow the code each stage runs (edited copies of the repository)", async () => {
  const spec = parseSpec(SPEC, "code-version.yaml", [], { tasks: TASKS });
  const base = await keysAfter(spec);
  assert.deepEqual(await keysAfter(spec), base, "the same in another copy");
  const data = [
    "data:grid-patch:test:s1000",
    "data:grid-patch:train:s0",
    "data:grid-patch:val:s1001",
  ];
  const pretrainData = ["data:pretrain-mix:train:s0", "data:pretrain-mix:val:s0"];
  const trained = ["eval:base", "eval:klal:s0", "finetune:klal:s0", "pretrain", "report"];

  // A native kernel: every trained or evaluated stage, no data.
  assert.deepEqual(
    changed(base, await keysAfter(spec, appendTo("pipeline/kernels/native_matmul.ts"))),
    trained,
  );
  assert.deepEqual(
    changed(base, await keysAfter(spec, appendTo("pipeline/kernels/native_attention.ts"))),
    trained,
  );

  // tasks/common.ts (every sample's seed stream): all data, and so everything after it.
  assert.deepEqual(
    changed(base, await keysAfter(spec, appendTo("tasks/common.ts"))),
    [...data, ...pretrainData, ...trained].sort(),
  );

  // The task's own generator: its data and what follows; not the Base checkpoint's data.
  const own = changed(base, await keysAfter(spec, appendTo("tasks/grid_patch.ts")));
  assert.deepEqual(own, [...data, "eval:base", "eval:klal:s0", "finetune:klal:s0", "report"]);

  // Another task's module: nothing of this task's plan.
  assert.deepEqual(changed(base, await keysAfter(spec, appendTo("tasks/refcoco.ts"))), []);
  assert.deepEqual(changed(base, await keysAfter(spec, appendTo("tasks/line_tracing.ts"))), []);

  // Report code, wherever it lives: the modules that gather a report's input and write it.
  const reportCode = ["function reportInput(", "function writeReport("];
  const report = await keysAfter(spec, (dir) => pipelineFilesWith(dir, reportCode));
  assert.deepEqual(changed(base, report), ["report"]);
});
