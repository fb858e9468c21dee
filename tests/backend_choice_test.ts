/**
 * The `backend: auto` decision (pipeline/run/backend_choice.ts) with the adapter probe and the
 * timing injected, so it runs without a GPU; and a tiny run whose report says why.
 */
import assert from "node:assert/strict";
import {
  type AdapterProbe,
  type AutoBackend,
  calibrationPath,
  type ChoiceDeps,
  chooseAutoBackend,
  decide,
  type Timed,
} from "../pipeline/run/backend_choice.ts";
import { BENCH_MODELS } from "../pipeline/train/throughput.ts";
import { runScript, smallestSpec, tempRun } from "./cli.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { SetupError } from "../pipeline/lib/cli.ts";
import { runExperiment } from "../pipeline/run/runner.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { TASKS } from "../tasks/registry.ts";

const MODEL = BENCH_MODELS.paper;
const H100: AdapterProbe = { real: true, description: "NVIDIA H100 80GB HBM3" };

/** Deps that record every timing asked for. */
function fake(
  probe: AdapterProbe,
  speeds: Record<AutoBackend, Timed>,
  env: Record<string, string> = {},
) {
  const timed: AutoBackend[] = [];
  const deps: ChoiceDeps = {
    probe: () => Promise.resolve(probe),
    time: (backend) => {
      timed.push(backend);
      return Promise.resolve(speeds[backend]);
    },
    cpuModel: "Test CPU x2",
    codeVersion: "v1",
    now: () => new Date("2026-11-27T10:00:00Z"),
    env,
  };
  return { deps, timed };
}

const SLOW_GPU = {
  webgpu: { label: "webgpu", samplesPerSecond: 35 },
  wasm: { label: "wasm+openblas", samplesPerSecond: 141 },
};
const FAST_GPU = {
  webgpu: { label: "webgpu", samplesPerSecond: 900 },
  wasm: { label: "wasm+openblas", samplesPerSecond: 141 },
};

Deno.test("decide: WebGPU only when strictly faster than the CPU path", () => {
  const t = (n: number): Timed => ({ label: "x", samplesPerSecond: n });
  assert.equal(decide(t(35), t(141)), "wasm");
  assert.equal(decide(t(900), t(141)), "webgpu");
  assert.equal(decide(t(141), t(141)), "wasm");
  assert.equal(decide(t(0), t(141)), "wasm");
});

Deno.test("auto: no real GPU adapter means the CPU path, with no timing", async () => {
  const root = await Deno.makeTempDir();
  const { deps, timed } = fake({ real: false, description: "llvmpipe" }, SLOW_GPU);
  const choice = await chooseAutoBackend(root, MODEL, deps);
  assert.deepEqual(choice, { backend: "wasm", source: "no-gpu", reason: "auto: no GPU adapter" });
  assert.deepEqual(timed, []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("auto: a slow GPU loses the calibration; the decision is cached and reused", async () => {
  const root = await Deno.makeTempDir();
  const first = fake(H100, SLOW_GPU);
  const choice = await chooseAutoBackend(root, MODEL, first.deps);
  assert.equal(choice?.backend, "wasm");
  assert.equal(choice?.source, "calibrated");
  assert.equal(
    choice?.reason,
    "auto: webgpu 35 samples/s vs wasm+openblas 141 samples/s in a calibration on this " +
      "machine, cached 2026-11-27",
  );
  assert.deepEqual(first.timed, ["webgpu", "wasm"]);
  // Written where the key says, and read back without timing again.
  const path = await calibrationPath(root, {
    adapter: H100.description,
    cpuModel: "Test CPU x2",
    model: MODEL,
    codeVersion: "v1",
  });
  assert.ok(path.startsWith(`${root}/machine/backend-`));
  assert.equal(JSON.parse(await Deno.readTextFile(path)).webgpu.samplesPerSecond, 35);
  const again = fake(H100, FAST_GPU);
  const reused = await chooseAutoBackend(root, MODEL, again.deps);
  assert.deepEqual(again.timed, []);
  assert.equal(reused?.source, "cached");
  assert.equal(reused?.backend, "wasm");
  assert.equal(reused?.reason, choice?.reason);
  // Another model size (or adapter) is another calibration.
  const other = fake(H100, FAST_GPU);
  const bigger = await chooseAutoBackend(root, { ...MODEL, batch: 128 }, other.deps);
  assert.deepEqual(other.timed, ["webgpu", "wasm"]);
  assert.equal(bigger?.backend, "webgpu");
  await Deno.remove(root, { recursive: true });
});

Deno.test("auto: a failed timing decides for now but is not cached", async () => {
  const root = await Deno.makeTempDir();
  const failing = { ...FAST_GPU, webgpu: { label: "webgpu", samplesPerSecond: 0, error: "x" } };
  const first = fake(H100, failing);
  assert.equal((await chooseAutoBackend(root, MODEL, first.deps))?.backend, "wasm");
  const second = fake(H100, FAST_GPU);
  assert.equal((await chooseAutoBackend(root, MODEL, second.deps))?.backend, "webgpu");
  assert.deepEqual(second.timed, ["webgpu", "wasm"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("auto: KLAL_BACKEND_CALIBRATION=off skips the probe and the timing", async () => {
  const root = await Deno.makeTempDir();
  let probed = false;
  const { deps, timed } = fake(H100, FAST_GPU, { KLAL_BACKEND_CALIBRATION: "off" });
  deps.probe = () => {
    probed = true;
    return Promise.resolve(H100);
  };
  assert.equal(await chooseAutoBackend(root, MODEL, deps), null);
  assert.equal(probed, false);
  assert.deepEqual(timed, []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("auto: a recorded measurement decides without probing or timing", async () => {
  const root = await Deno.makeTempDir();
  const file = `${root}/measured.json`;
  await Deno.writeTextFile(file, JSON.stringify({ webgpu: 35, "wasm+openblas": 141 }));
  const { deps, timed } = fake(H100, FAST_GPU, { KLAL_BACKEND_MEASUREMENT: file });
  const choice = await chooseAutoBackend(root, MODEL, deps);
  assert.equal(choice?.backend, "wasm");
  assert.equal(
    choice?.reason,
    `auto: webgpu 35 samples/s vs wasm+openblas 141 samples/s recorded in ${file}`,
  );
  assert.deepEqual(timed, []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("e2e: a tiny auto run's report says which backend ran and why", async () => {
  const spec = smallestSpec("backend-reason").replace("backend: wasm", "backend: auto");
  const { dir, spec: path, env } = await tempRun("backend-reason", spec);
  const run = await runScript("pipeline/commands/experiment.ts", [path], env);
  assert.equal(run.code, 0, run.stderr);
  const report = `${dir}/reports/backend-reason`;
  const results = JSON.parse(await Deno.readTextFile(`${report}/results.json`));
  assert.equal(results.backendReason, "auto: no GPU adapter");
  assert.match(results.backend, /^wasm/);
  const table = await Deno.readTextFile(`${report}/table.md`);
  assert.match(table, /backend wasm(\+openblas)? \(auto: no GPU adapter\)/);
  // Named in the spec: the report says so, and no machine folder was needed.
  const named = await tempRun("backend-named", smallestSpec("backend-named"));
  const second = await runScript("pipeline/commands/experiment.ts", [named.spec], named.env);
  assert.equal(second.code, 0, second.stderr);
  const namedResults = JSON.parse(
    await Deno.readTextFile(`${named.dir}/reports/backend-named/results.json`),
  );
  assert.equal(namedResults.backendReason, "set in the spec");
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(named.dir, { recursive: true });
});

Deno.test("backend webgpu without an adapter: a setup error before any stage runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-no-webgpu-" });
  const text = smallestSpec("no-webgpu").replace("backend: wasm", "backend: webgpu");
  const spec = parseSpec(text, `${dir}/spec.yaml`, [], { tasks: TASKS });
  const cache = new Cache(`${dir}/cache`);
  const deps = fake(
    { real: false, available: false, description: "navigator.gpu found no adapter" },
    {
      webgpu: { label: "webgpu", samplesPerSecond: 0 },
      wasm: { label: "wasm", samplesPerSecond: 1 },
    },
  ).deps;
  await assert.rejects(
    runExperiment(spec, {
      cache,
      reportsDir: `${dir}/reports`,
      backendChoice: deps,
      log: () => {},
    }),
    (e: Error) => {
      assert.ok(e instanceof SetupError);
      assert.equal(
        e.message,
        "backend webgpu is not available on this machine (navigator.gpu found no adapter); " +
          'use "auto", "wasm" or "cpu"',
      );
      return true;
    },
  );
  const entries = await Array.fromAsync(Deno.readDir(`${cache.root}/objects`)).catch(() => []);
  assert.deepEqual(entries, [], "no stage ran");
  await Deno.remove(dir, { recursive: true });
});
