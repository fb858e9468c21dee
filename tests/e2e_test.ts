/**
 * End to end, as a user runs it: `deno task experiment SPEC` in a subprocess with an empty
 * cache, then the report files, the cache's reuse, and a lambda change.
 */
import assert from "node:assert/strict";
import { type CommandResult, runScript, tempRun, tinySpec } from "./cli.ts";

const TINY_SPEC = tinySpec(
  "e2e-tiny",
  { base: "{ finetune: false }", ntp: "{ lambda: 0 }", klal: "{ lambda: 1.0, layers: all }" },
  { description: '"tiny end-to-end run <b>escaped</b>"' },
);

function experiment(args: string[], env: Record<string, string>): Promise<CommandResult> {
  return runScript("pipeline/commands/experiment.ts", args, env);
}

function setup() {
  return tempRun("e2e", TINY_SPEC, "tiny.yaml");
}

Deno.test("e2e: tiny spec runs, reports, reuses the cache, reruns only KLAL on a lambda change", async () => {
  const { dir, spec, env } = await setup();

  const first = await experiment([spec, "--jobs", "2"], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /11 stages, 0 cached, 11 to run/);

  const report = `${dir}/reports/e2e-tiny`;
  const results = JSON.parse(await Deno.readTextFile(`${report}/results.json`));
  const accuracy = results.rows.filter((r: { metric: string }) => r.metric === "accuracy");
  assert.deepEqual(
    accuracy.map((r: { arm: string; seed: number }) => `${r.arm}:${r.seed}`).sort(),
    ["base:0", "klal:0", "ntp:0"],
  );
  for (const row of accuracy) {
    assert.equal(row.task, "grid-patch");
    assert.ok(row.value >= 0 && row.value <= 100);
    // 16 test samples: accuracy is a multiple of 100/16.
    assert.ok(Math.abs(row.value / 6.25 - Math.round(row.value / 6.25)) < 1e-9, String(row.value));
  }
  // The accuracy agrees with the per-sample predictions the eval stage stored.
  const table = await Deno.readTextFile(`${report}/table.md`);
  assert.match(table, /Grid Patch/);
  assert.match(table, /6\.1/); // poster Base
  assert.match(table, /28\.6/); // poster NTP
  assert.match(table, /44\.9/); // poster KLAL+NTP
  // Beside the arms: what attention blind to the question scores, what the Base saw of the
  // task's questions (Grid Patch's "patch" is no word of the default mix).
  assert.match(
    table,
    /\| Question-blind: uniform over patches with ink \| – \| – \| \d+\.\d{3} \|/,
  );
  assert.match(table, /What the Base saw of the questions: 0 of \d+ distinct test prompts/);
  const tasks = results.tasks as { promptOverlap: { seen: number; distinct: number } }[];
  assert.equal(tasks[0].promptOverlap.seen, 0);
  // What the Base answers of its own mix on held-out samples: every kind of the default mix,
  // 100 items per kind in all, each kind beside its best constant answer.
  const skills = results.baseSkills as {
    stage: string;
    skills: { kind: string; n: number; accuracy: number; floor: number }[];
  }[];
  assert.deepEqual(skills.map((b) => b.stage), ["pretrain"]);
  assert.deepEqual(skills[0].skills.map((k) => k.kind), ["color", "count", "exists", "where"]);
  assert.equal(skills[0].skills.reduce((sum, k) => sum + k.n, 0), 400);
  for (const k of skills[0].skills) {
    assert.ok(k.n > 0 && k.floor > 0 && k.floor <= 100, JSON.stringify(k));
    assert.ok(Math.abs(k.accuracy * k.n / 100 - Math.round(k.accuracy * k.n / 100)) < 1e-9);
  }
  assert.match(table, /## The Base: what it answers of its pretraining mix/);
  assert.match(table, /\| exists \| \d+ \| \d+\.\d \| \d+\.\d \("(yes|no)"\) \|/);
  const html = await Deno.readTextFile(`${report}/index.html`);
  assert.match(html, /<svg/);
  assert.ok(html.includes("The Base: what it answers of its pretraining mix"));
  assert.ok(html.includes("&lt;b&gt;escaped&lt;/b&gt;"));
  assert.ok(!html.includes("<b>escaped</b>"));
  assert.ok(!/<script[^>]+src=["']https?:/.test(html), "report loads a script from the network");

  const second = await experiment([spec], env);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /11 stages, 11 cached, 0 to run/);

  const dry = await experiment([spec, "arms.klal.lambda=2", "--dry-run"], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /finetune:klal:s0\s+\w+\s+run \(params changed: lambda\)/);
  assert.match(dry.stdout, /finetune:ntp:s0\s+\w+\s+cached/);

  const third = await experiment([spec, "arms.klal.lambda=2"], env);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stdout, /11 stages, 8 cached, 3 to run/);
  const ran = [...third.stdout.matchAll(/^\s+run\s+(\S+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(ran, ["eval:klal:s0", "finetune:klal:s0"]);

  const forced = await experiment([spec, "--force", "eval:ntp"], env);
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(
    [...forced.stdout.matchAll(/^\s+run\s+(\S+)/gm)].map((m) => m[1]),
    ["eval:ntp:s0"],
  );
  // A forced stage's readers rerun too: their keys are the same, their input is not.
  const forcedPlan = await experiment([spec, "--force", "finetune:ntp", "--dry-run"], env);
  assert.match(forcedPlan.stdout, /finetune:ntp:s0 +[0-9a-f]{12} +run \(forced\)/);
  assert.match(
    forcedPlan.stdout,
    /eval:ntp:s0 +[0-9a-f]{12} +run \(forced: reads finetune:ntp:s0\)/,
  );
  assert.match(forcedPlan.stdout, /eval:klal:s0 +[0-9a-f]{12} +cached/);
  // The same plan as one JSON document on stdout (the progress lines on stderr).
  const json = await experiment([spec, "--force", "finetune:ntp", "--dry-run", "--json"], env);
  assert.equal(json.code, 0, json.stderr);
  const plan = JSON.parse(json.stdout);
  assert.equal(plan.experiment, "e2e-tiny");
  const byId = new Map(plan.stages.map((s: { id: string }) => [s.id, s]));
  assert.deepEqual(
    { ...byId.get("finetune:ntp:s0") as object, key: undefined, inputs: undefined },
    {
      id: "finetune:ntp:s0",
      kind: "finetune",
      key: undefined,
      cached: false,
      reason: "run (forced)",
      inputs: undefined,
    },
  );
  assert.equal((byId.get("eval:klal:s0") as { cached: boolean }).cached, true);
  assert.match((byId.get("eval:ntp:s0") as { key: string }).key, /^[0-9a-f]{64}$/);
  assert.match(json.stderr, /plan for e2e-tiny/);
  const alone = await experiment([spec, "--json"], env);
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /--json goes with --dry-run/);
  const refit = await experiment([spec, "--force", "finetune:ntp"], env);
  assert.equal(refit.code, 0, refit.stderr);
  assert.deepEqual(
    [...refit.stdout.matchAll(/^\s+run\s+(\S+)/gm)].map((m) => m[1]).sort(),
    ["eval:ntp:s0", "finetune:ntp:s0"],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("e2e: a bad spec exits 2 with file:line:col and writes nothing", async () => {
  const { dir, spec, env } = await setup();
  await Deno.writeTextFile(spec, TINY_SPEC.replace("lambda: 1.0", "lamda: 1.0"));
  const run = await experiment([spec], env);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /tiny\.yaml:\d+:\d+ arms\.klal\.lamda: .*did you mean "lambda"\?/);
  const bad = await experiment([spec.replace("tiny", "missing")], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /missing\.yaml/);
  const override = await experiment([spec, "train.steps=0"], env);
  assert.equal(override.code, 2);
  const usage = await experiment([spec, "--frobnicate"], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown option --frobnicate/);
  for (const path of [`${dir}/cache`, `${dir}/reports`]) {
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound, `${path} was written`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("e2e: a task sweep writes per-task reports and a combined one that keeps tasks apart", async () => {
  const { dir, env } = await setup();
  const spec = `${dir}/sweep.yaml`;
  await Deno.writeTextFile(
    spec,
    TINY_SPEC.replace("name: e2e-tiny", "name: e2e-sweep") + `sweep:
  task:
    - { name: grid-patch, image_size: 16, train: 64, test: 16, params: { grid: 2, blobs: 1 } }
    - { name: line-intersection, image_size: 16, train: 64, test: 16, params: { max_count: 1 } }
`,
  );
  const r = await experiment([spec, "--jobs", "2", "train.eval_every=2"], env);
  assert.equal(r.code, 0, r.stderr);
  const read = async (name: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/reports/${name}/results.json`));
  const combined = await read("e2e-sweep");
  const tasks = new Set(combined.rows.map((row: { task: string }) => row.task));
  assert.deepEqual([...tasks].sort(), ["grid-patch", "line-intersection"]);
  // Validation curves carry no task, so they stay in the per-task reports only.
  assert.deepEqual(combined.validation, []);
  assert.equal(combined.learning, null);
  for (const name of ["e2e-sweep--grid-patch", "e2e-sweep--line-intersection"]) {
    const one = await read(name);
    assert.ok(one.validation.length > 0, `${name} has no validation curve`);
    assert.deepEqual(
      [...new Set(one.validation.map((p: { step: number }) => p.step))].sort(),
      [2, 4],
    );
  }
  await Deno.remove(dir, { recursive: true });
});
