/**
 * Our model, losses and AdamW step against an independent PyTorch reference
 * (tests/reference/reference.py, float64): L_NTP, L_KLAL, every weight's gradient and the
 * weights after one AdamW step, on each CPU backend (wasm, cpu, wasm+openblas when
 * OpenBLAS is installed, wasm+simd (the SIMD BLAS), webgpu on a real GPU adapter or with
 * KLAL_ALLOW_SOFTWARE_GPU=1). Cases: KLAL over all layers; KLAL over one layer with rows of
 * zero ground truth and masked (padding) query positions.
 *
 * Needs python3 with torch (Debian: apt-get install python3-torch), or KLAL_PYTHON naming
 * such an interpreter; without it the test is ignored, saying so. KLAL_REFERENCE_VERBOSE=1
 * prints every tensor's max difference.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { backendLabel, gpuAdapter, initBackend } from "../pipeline/kernels/backend.ts";
import { disableNativeMatmul, enableNativeMatmul } from "../pipeline/kernels/native_matmul.ts";
import { TinyVlm, type WeightMap } from "../pipeline/model/tiny_vlm.ts";
import { Rng } from "../pipeline/lib/rng.ts";
import { AdamW } from "../pipeline/train/adamw.ts";
import { type BatchTensors, batchTensors } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { findTorchPython } from "../pipeline/lib/torch_python.ts";
import { tinyGridData, tinyModelConfig } from "./fixtures.ts";
import { fileURLToPath } from "node:url";

/** KLAL_REFERENCE_SCRIPT: where reference.py is when this test runs from a bundle (gpu.sh). */
const REFERENCE = Deno.env.get("KLAL_REFERENCE_SCRIPT") ??
  fileURLToPath(new URL("./reference/reference.py", import.meta.url));
/** KLAL_REFERENCE_DEVICE=cuda: PyTorch computes on the GPU (still float64). */
const DEVICE = Deno.env.get("KLAL_REFERENCE_DEVICE") ?? "cpu";
/** Max |ours - torch| over each tensor (absolute; our float32 vs torch's float64). */
const TOLERANCE = 1e-4;
/**
 * The AdamW step compared. Adam's first step is about lr * sign(g): a gradient that is 0 in
 * exact arithmetic (the key bias: softmax ignores a shift shared by all keys) but ~1e-9 of
 * float32 noise here would step by ~0.1 lr, so epsilon is 1e-6 instead of the default 1e-8.
 */
const ADAMW = { lr: 1e-3, weightDecay: 0.1, clipNorm: 1, epsilon: 1e-6 };
const VERBOSE = Deno.env.get("KLAL_REFERENCE_VERBOSE") === "1";

/** The interpreter to use, or why there is none ("" when there is one). */
async function findPython(): Promise<{ python: string; reason: "" } | { reason: string }> {
  const found = await findTorchPython();
  if ("python" in found) return { python: found.python, reason: "" };
  return {
    reason: `${found.problems.join("; ")}; install it with: apt-get install python3-torch ` +
      `(or set KLAL_PYTHON to a python3 that has torch)`,
  };
}

const found = await findPython();
const SKIP_REASON = found.reason;
if (SKIP_REASON) console.warn(`reference_test: skipping the PyTorch comparison: ${SKIP_REASON}`);

await initBackend("wasm");
const fixture = tinyGridData(3, 12);
const { data, layout } = fixture;
const config = tinyModelConfig(fixture, { positionStd: 0.3 });

/** The tiny model's weights, each moved by N(0, 0.2) so gains and biases matter too. */
async function perturbedWeights(): Promise<WeightMap> {
  const model = new TinyVlm(config, 7);
  const weights = await model.getWeights();
  model.dispose();
  const rng = new Rng(11);
  for (const w of Object.values(weights)) {
    w.data = w.data.map((x) => x + 0.2 * rng.normal());
  }
  return weights;
}

/** One comparison case: a batch (as plain arrays), lambda and the supervised layers. */
interface Case {
  name: string;
  lambda: number;
  layers: number[];
  batch: Record<keyof BatchTensors, { data: Float32Array | Int32Array; shape: number[] }>;
}

async function batchArrays(
  indices: number[],
  edit: (b: Case["batch"]) => void = () => {},
): Promise<Case["batch"]> {
  const tensors = batchTensors(data, indices);
  const out = {} as Case["batch"];
  for (const [key, t] of Object.entries(tensors) as [keyof BatchTensors, tf.Tensor][]) {
    out[key] = { data: await t.data() as Float32Array | Int32Array, shape: [...t.shape] };
    t.dispose();
  }
  edit(out);
  return out;
}

const tq = layout.answer - 1;
const tv = layout.visual;
const CASES: Case[] = [
  { name: "all layers", lambda: 1, layers: [0, 1], batch: await batchArrays([0, 1, 2, 3, 4, 5]) },
  {
    name: "layer 1, zero targets, masked queries",
    lambda: 0.5,
    layers: [1],
    batch: await batchArrays([6, 7, 8, 9, 10, 11], (b) => {
      b.target.data.fill(0, 1 * tv, 2 * tv); // rows 1 and 3: no ground truth
      b.target.data.fill(0, 3 * tv, 4 * tv);
      b.queryMask.data[2 * tq + 1] = 0; // row 2: one query position is padding
      b.queryMask.data.fill(0, 4 * tq, 5 * tq); // row 4: every query is padding (Q = eps)
    }),
  },
];

function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  // Typed arrays are little-endian on every platform Deno ships for (x86-64, arm64).
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Write a case for reference.py into `dir`. */
async function dumpCase(dir: string, c: Case, weights: WeightMap): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const entry = async (name: string, a: Float32Array | Int32Array, shape: number[]) => {
    const file = `${name}.bin`;
    await Deno.writeFile(`${dir}/${file}`, bytesOf(a));
    return { file, dtype: a instanceof Int32Array ? "int32" : "float32", shape };
  };
  const manifest = {
    config,
    layout,
    lambda: c.lambda,
    layers: c.layers,
    adamw: ADAMW,
    weights: {} as Record<string, unknown>,
    batch: {} as Record<string, unknown>,
  };
  for (const [name, w] of Object.entries(weights)) {
    manifest.weights[name] = await entry(`weight.${name}`, w.data, w.shape);
  }
  for (const [name, b] of Object.entries(c.batch)) {
    manifest.batch[name] = await entry(`batch.${name}`, b.data, b.shape);
  }
  await Deno.writeTextFile(`${dir}/case.json`, JSON.stringify(manifest, null, 1));
}

interface Outcome {
  ntp: number;
  klal: number;
  total: number;
  grads: Record<string, Float32Array | Float64Array>;
  step: Record<string, Float32Array | Float64Array>;
}

/** PyTorch's numbers for every case (one python run for all of them). */
async function referenceOutcomes(weights: WeightMap): Promise<Outcome[]> {
  const root = await Deno.makeTempDir({ prefix: "klal-reference-" });
  try {
    const dirs = CASES.map((_, i) => `${root}/case${i}`);
    for (const [i, c] of CASES.entries()) await dumpCase(dirs[i], c, weights);
    const out = await new Deno.Command((found as { python: string }).python, {
      args: [REFERENCE, "check", "--device", DEVICE, ...dirs],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.ok(out.success, `reference.py check failed:\n${text(out.stdout)}${text(out.stderr)}`);
    const outcomes: Outcome[] = [];
    for (const dir of dirs) {
      const result = JSON.parse(await Deno.readTextFile(`${dir}/torch.json`));
      const read = async (entries: Record<string, { file: string }>) => {
        const arrays: Record<string, Float64Array> = {};
        for (const [name, e] of Object.entries(entries)) {
          const bytes = await Deno.readFile(`${dir}/${e.file}`);
          arrays[name] = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
        }
        return arrays;
      };
      outcomes.push({ ...result, grads: await read(result.grads), step: await read(result.step) });
    }
    return outcomes;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Our numbers for one case on the active backend. */
async function ourOutcome(c: Case, weights: WeightMap): Promise<Outcome> {
  const model = new TinyVlm(config, 0);
  model.setWeights(weights);
  const batch = Object.fromEntries(
    Object.entries(c.batch).map(([k, b]) => [
      k,
      b.data instanceof Int32Array
        ? tf.tensor(b.data, b.shape, "int32")
        : tf.tensor(b.data, b.shape),
    ]),
  ) as unknown as BatchTensors;
  const variables = model.variables();
  let ntp: tf.Scalar | undefined;
  let klal: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const parts = lossParts(model, batch, { layout }, c.lambda, c.layers);
    ntp = tf.keep(parts.ntp);
    klal = tf.keep(parts.klal);
    return parts.total;
  }, variables);
  const names = [...model.params.keys()];
  const out: Outcome = {
    ntp: (await ntp!.data())[0],
    klal: (await klal!.data())[0],
    total: (await value.data())[0],
    grads: {},
    step: {},
  };
  for (const [i, v] of variables.entries()) {
    out.grads[names[i]] = await grads[v.name].data() as Float32Array;
  }
  const optimizer = new AdamW(variables, ADAMW.weightDecay, 0.9, 0.999, ADAMW.epsilon);
  await optimizer.apply(variables.map((v) => grads[v.name]), ADAMW.lr, ADAMW.clipNorm);
  for (const [name, w] of Object.entries(await model.getWeights())) out.step[name] = w.data;
  optimizer.dispose();
  tf.dispose([ntp!, klal!, value, ...Object.values(grads), ...Object.values(batch)]);
  model.dispose();
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Every mismatch beyond TOLERANCE, as readable lines ("" when all match). */
function compare(ours: Outcome, torch: Outcome, label: string): string[] {
  const problems: string[] = [];
  const diffs: string[] = [];
  const check = (what: string, diff: number, scale: number) => {
    diffs.push(`${what} ${diff.toExponential(1)}`);
    if (!(diff <= TOLERANCE)) {
      problems.push(
        `${label}: ${what}: max |ours - torch| = ${diff.toExponential(3)} > ${TOLERANCE} ` +
          `(torch's max |value| ${scale.toExponential(3)})`,
      );
    }
  };
  for (const part of ["ntp", "klal", "total"] as const) {
    check(`loss ${part}`, Math.abs(ours[part] - torch[part]), Math.abs(torch[part]));
  }
  for (const kind of ["grads", "step"] as const) {
    for (const [name, ref] of Object.entries(torch[kind])) {
      const mine = ours[kind][name];
      assert.ok(mine, `${label}: our model has no weight ${name}`);
      const scale = maxAbsDiff(ref, new Float64Array(ref.length));
      check(
        `${kind === "grads" ? "gradient" : "AdamW step"} ${name}`,
        maxAbsDiff(mine, ref),
        scale,
      );
    }
  }
  const worst = Math.max(...diffs.map((d) => Number(d.split(" ").at(-1))));
  console.log(`${label}: worst max-abs-diff ${worst.toExponential(2)} over ${diffs.length} checks`);
  if (VERBOSE) console.log(`  ${diffs.join("\n  ")}`);
  return problems;
}

const gpu = await gpuAdapter();
/** WebGPU on a real GPU; on a software adapter (llvmpipe: slow) only when asked for. */
const WEBGPU = gpu.available &&
  (!gpu.fallback || Deno.env.get("KLAL_ALLOW_SOFTWARE_GPU") === "1");

/**
 * Switch to a backend row ("wasm", "cpu", "wasm+openblas", "wasm+simd", "webgpu"); false when
 * not here.
 */
async function useBackend(label: string): Promise<boolean> {
  if (label === "webgpu") return WEBGPU && await initBackend("webgpu") === "webgpu";
  await initBackend(label === "cpu" ? "cpu" : "wasm");
  if (label === "wasm") disableNativeMatmul();
  if (label === "wasm+openblas") return enableNativeMatmul("openblas").enabled;
  if (label === "wasm+simd") return enableNativeMatmul("simd").enabled;
  return true;
}

const weights = await perturbedWeights();
let torchOutcomes: Promise<Outcome[]> | undefined;

for (
  const backend of ["wasm", "cpu", "wasm+openblas", "wasm+simd", ...(WEBGPU ? ["webgpu"] : [])]
) {
  Deno.test({
    name: `reference: ${backend} losses, gradients and AdamW step equal PyTorch's${
      SKIP_REASON ? ` (skipped: ${SKIP_REASON})` : ""
    }`,
    ignore: SKIP_REASON !== "",
    async fn(t) {
      if (!(await useBackend(backend))) {
        const why = backend === "webgpu"
          ? "no GPU adapter"
          : enableNativeMatmul(backend === "wasm+simd" ? "simd" : "openblas").reason;
        console.warn(`reference_test: ${backend} not available here (${why})`);
        return;
      }
      assert.equal(backendLabel(), backend);
      torchOutcomes ??= referenceOutcomes(weights);
      const torch = await torchOutcomes;
      for (const [i, c] of CASES.entries()) {
        await t.step(c.name, async () => {
          const problems = compare(await ourOutcome(c, weights), torch[i], `${backend}, ${c.name}`);
          assert.deepEqual(problems, [], problems.join("\n"));
        });
      }
    },
  });
}
