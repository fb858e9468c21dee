/** Live metrics: each logged training step as a JSON line, readable while the stage runs. */
import assert from "node:assert/strict";
import { initBackend } from "../pipeline/kernels/backend.ts";
import { train } from "../pipeline/train/loop.ts";
import type { MetricPoint } from "../pipeline/train/options.ts";
import { LiveMetrics, liveMetricsPath } from "../pipeline/train/live_metrics.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { tinyGridData, tinyModel, tinyTrainOptions } from "./fixtures.ts";
import { runScript } from "./cli.ts";

Deno.test("live metrics: a line is visible to another reader as soon as it is appended; a resume keeps earlier steps", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-live-" });
  const path = liveMetricsPath(dir, "exp", "finetune:klal:s0");
  assert.equal(path, `${dir}/live/exp/finetune_klal_s0.jsonl`);
  const live = new LiveMetrics(path);
  live.append({ step: 0, total: 2.5 });
  live.append({ step: 10, total: 2.0 });
  // Another reader (tail -f in another terminal) sees both lines before the file is closed.
  assert.deepEqual(Deno.readTextFileSync(path).trim().split("\n").map((l) => JSON.parse(l)), [
    { step: 0, total: 2.5 },
    { step: 10, total: 2.0 },
  ]);
  live.close(false);
  // A kill mid-line leaves half a record: a resumed run drops it and every line past its step.
  Deno.writeTextFileSync(path, '{"step": 20, "total": 1.5}\n{"step": 3', { append: true });
  const resumed = new LiveMetrics(path, 10);
  resumed.append({ step: 11, total: 1.9 });
  assert.deepEqual(resumed.text().trim().split("\n").map((l) => JSON.parse(l).step), [0, 10, 11]);
  assert.equal(Deno.readTextFileSync(path), resumed.text());
  resumed.close(true);
  assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
  // A new run starts empty.
  Deno.writeTextFileSync(path, '{"step": 5}\n');
  const fresh = new LiveMetrics(path);
  assert.equal(fresh.text(), "");
  assert.equal(Deno.readTextFileSync(path), "");
  fresh.close(true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("live metrics: the training loop reports each logged step's losses, learning rate (by hand), gradient norm and speed", async () => {
  await initBackend("wasm");
  const fixture = tinyGridData(2, 24);
  const model = tinyModel(fixture, 1);
  const points: MetricPoint[] = [];
  const options = {
    ...tinyTrainOptions({ steps: 7, batchSize: 4, lr: 2e-3, seed: 1, label: "live" }),
    warmup: 2,
    logEvery: 3,
    onMetrics: (p: MetricPoint) => points.push(p),
  };
  const result = await train(model, fixture.data, options);
  model.dispose();
  // Logged steps: every 3rd and the last; the same losses as the loss log.
  assert.deepEqual(points.map((p) => p.step), [0, 3, 6]);
  assert.deepEqual(
    points.map(({ step, ntp, klal, total }) => ({ step, ntp, klal, total })),
    result.log,
  );
  // lr: warm-up 2e-3 * (step + 1) / 2 at step 0; then cosine from step 2 over 5 steps to 0.1 lr.
  const cosine = (step: number) => 2e-3 * (0.1 + 0.45 * (1 + Math.cos(Math.PI * (step - 2) / 5)));
  assert.ok(Math.abs(points[0].lr - 1e-3) < 1e-12);
  assert.ok(Math.abs(points[1].lr - cosine(3)) < 1e-12);
  assert.ok(Math.abs(points[2].lr - cosine(6)) < 1e-12);
  for (const p of points) {
    assert.ok(p.grad_norm > 0 && Number.isFinite(p.grad_norm), `${p.grad_norm}`);
    assert.ok(p.samples_per_second > 0 && Number.isFinite(p.samples_per_second));
  }
});

Deno.test("live metrics: a run's training stages keep them in their cache entries (metrics.jsonl) and leave no live file; the published results.json records the run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-live-run-" });
  await Deno.writeTextFile(
    `${dir}/spec.yaml`,
    `name: live-tiny
seeds: [0]
backend: wasm
task: { name: grid-patch, image_size: 32, train: 32, test: 8 }
model: { patch_size: 8, d_model: 16, layers: 1, heads: 2 }
base: { steps: 3, batch_size: 8, train: 16 }
train: { steps: 4, batch_size: 8, warmup: 1, log_every: 2, eval_every: 2, eval_samples: 8 }
arms:
  klal: { lambda: 1 }
`,
  );
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  const run = await runScript("pipeline/commands/experiment.ts", [`${dir}/spec.yaml`], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`live metrics: ${dir}/cache/live/live-tiny/ `));
  const cache = new Cache(`${dir}/cache`);
  const refs = `${dir}/cache/refs/live-tiny`;
  const keyOf = async (stage: string) =>
    (JSON.parse(await Deno.readTextFile(`${refs}/${stage}.json`)) as { key: string }).key;
  const lines = async (stage: string) =>
    new TextDecoder().decode(await cache.readBytes(await keyOf(stage), "metrics.jsonl"))
      .trim().split("\n").map((l) => JSON.parse(l));
  const finetune = await lines("finetune_klal_s0");
  const losses = finetune.filter((l) => "total" in l);
  assert.deepEqual(losses.map((l) => l.step), [0, 2, 3]);
  for (const l of losses) {
    for (const k of ["ntp", "klal", "total", "lr", "grad_norm", "samples_per_second"]) {
      assert.equal(typeof l[k], "number", k);
    }
  }
  // Validation every 2 steps and after the last, beside the losses.
  const val = finetune.filter((l) => "val_accuracy" in l);
  assert.deepEqual(val.map((l) => l.step), [2, 4]);
  assert.ok((await lines("pretrain")).length >= 1);
  assert.deepEqual([...Deno.readDirSync(`${dir}/cache/live/live-tiny`)], []);
  // The published results.json records the run that made it (not the cache entry's copy).
  const published = JSON.parse(await Deno.readTextFile(`${dir}/reports/live-tiny/results.json`));
  const r = published.run;
  assert.deepEqual(r.argv, ["deno", "task", "experiment", `${dir}/spec.yaml`]);
  assert.equal(r.deno, Deno.version.deno);
  assert.equal(r.host, Deno.hostname());
  assert.match(r.tfjs, /^\d+\.\d+\.\d+$/);
  assert.ok(r.commit === null || /^[0-9a-f]{40}$/.test(r.commit), r.commit);
  assert.equal(typeof r.dirty, r.commit === null ? "object" : "boolean");
  const entry = JSON.parse(
    new TextDecoder().decode(await cache.readBytes(await keyOf("report"), "results.json")),
  );
  assert.equal(entry.run, undefined);
  await Deno.remove(dir, { recursive: true });
});
