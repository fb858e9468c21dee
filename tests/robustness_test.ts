/**
 * The pipeline never serves a wrong result: corrupted cache entries are recomputed, two
 * processes on one spec compute each stage once, NaN stops a stage, results are
 * deterministic. Real subprocesses, as a user runs them.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../pipeline/kernels/backend.ts";
import { train } from "../pipeline/train/loop.ts";
import { cacheEntryOf, runScript, tempRun, tinySpec } from "./cli.ts";
import { tinyGridData, tinyModel } from "./fixtures.ts";

/** The tiny spec of ./cli.ts on the wasm backend, with two seeds and 30 training steps. */
const SPEC = tinySpec(
  "robust-tiny",
  { base: "{ finetune: false }", ntp: "{ lambda: 0 }", klal: "{ lambda: 1.0 }" },
  {
    seeds: "[0, 1]",
    backend: "wasm",
    train: "{ steps: 30, batch_size: 8, warmup: 1, log_every: 5 }",
    eval: "{ batch_size: 16 }",
  },
);

async function setup(name: string) {
  const { dir, spec, env } = await tempRun(name, SPEC);
  const run = (...extra: string[]) =>
    runScript("pipeline/commands/experiment.ts", [spec, ...extra], env);
  const rows = async () =>
    JSON.parse(await Deno.readTextFile(`${dir}/reports/robust-tiny/results.json`)).rows;
  return { dir, run, rows };
}

Deno.test("a corrupted or truncated cache entry is reported, moved aside and recomputed", async () => {
  const t = await setup("corrupt");
  const first = await t.run();
  assert.equal(first.code, 0, first.stderr);
  const original = await t.rows();
  const evalDir = await cacheEntryOf(`${t.dir}/cache`, "eval:ntp:s0");
  const metrics = JSON.parse(await Deno.readTextFile(`${evalDir}/metrics.json`));
  metrics.accuracy = 99.9; // a wrong number that must never be served
  await Deno.writeTextFile(`${evalDir}/metrics.json`, JSON.stringify(metrics));
  const dataDir = await cacheEntryOf(`${t.dir}/cache`, "data:grid-patch:train:s1");
  const images = await Deno.readFile(`${dataDir}/images.u8`);
  await Deno.writeFile(`${dataDir}/images.u8`, images.subarray(0, 100)); // truncated

  const second = await t.run();
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stdout,
    /corrupt cache entry of eval:ntp:s0 \(metrics\.json: (content|\d+ bytes)/,
  );
  assert.match(
    second.stdout,
    /corrupt cache entry of data:grid-patch:train:s1 \(images\.u8: 100 bytes/,
  );
  assert.match(second.stdout, /run\s+eval:ntp:s0/);
  assert.match(second.stdout, /run\s+data:grid-patch:train:s1/);
  // Recomputed, not served: the same numbers as the first run (deterministic).
  assert.deepEqual(await t.rows(), original);
  await Deno.remove(t.dir, { recursive: true });
});

Deno.test("two processes on one spec: each stage is computed once, both finish", async () => {
  const t = await setup("concurrent");
  const [a, b] = await Promise.all([t.run("--jobs", "1"), t.run("--jobs", "1")]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const computed = [...(a.stdout + b.stdout).matchAll(/^\s+done (\S+) in /gm)].map((m) => m[1]);
  const stages = computed.filter((id) => id !== "report");
  assert.equal(new Set(stages).size, stages.length, `computed twice: ${stages.sort().join(" ")}`);
  assert.equal(stages.length, 15, stages.join(" "));
  // The waiting process says so, and no temp files are left behind.
  assert.match(a.stdout + b.stdout, /another process computed it/);
  assert.deepEqual([...Deno.readDirSync(`${t.dir}/cache/tmp`)], []);
  await Deno.remove(t.dir, { recursive: true });
});

Deno.test("NaN in the loss stops training with the step and the loss part", async () => {
  await initBackend("wasm");
  const fixture = tinyGridData(1, 8);
  const { data } = fixture;
  const model = tinyModel(fixture, 0, { dModel: 8, layers: 1 });
  const head = model.params.get("head.w")!;
  tf.tidy(() => head.assign(tf.fill(head.shape, NaN)));
  const before = tf.memory().numTensors;
  await assert.rejects(
    () =>
      train(model, data, {
        steps: 3,
        batchSize: 4,
        lr: 1e-3,
        optimizer: "adamw",
        weightDecay: 0,
        warmup: 1,
        logEvery: 1,
        lambda: 1,
        layers: [0],
        seed: 0,
        label: "finetune:nan",
      }),
    /finetune:nan: ntp loss is NaN at step 0/,
  );
  assert.equal(tf.memory().numTensors, before, "a failed step leaked tensors");
  model.dispose();
});

Deno.test("determinism: the same spec and seeds in two empty caches give identical metrics", async () => {
  const [a, b] = [await setup("determinism-a"), await setup("determinism-b")];
  const [ra, rb] = await Promise.all([a.run("--jobs", "1"), b.run("--jobs", "1")]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const rows = await a.rows();
  assert.ok(rows.length > 20);
  assert.deepEqual(await b.rows(), rows);
  await Deno.remove(a.dir, { recursive: true });
  await Deno.remove(b.dir, { recursive: true });
});
