/**
 * The fused kernels (pipeline/kernels/native_fused.ts) against the unfused native kernels and
 * stock wasm: every value and every gradient to 1e-4, for each block on its own, for a small
 * model's loss and gradients, and for AdamW over several steps; the tensor count flat across
 * training steps; `KLAL_FUSED=off` leaving them out.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  disableNativeMatmul,
  enableNativeMatmul,
  fusedKernelsEnabled,
  nativeMatmulEnabled,
  setFusedKernels,
} from "../pipeline/kernels/native_matmul.ts";
import * as ops from "../pipeline/model/ops.ts";
import { LAYER_NORM_GRAD } from "../pipeline/kernels/native_fused.ts";
import { AdamW } from "../pipeline/train/adamw.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { klalLoss, klalLossOverRows, type KlalQueries, ntpLoss } from "../pipeline/model/losses.ts";
import { tinyGridData, tinyModel } from "./fixtures.ts";
import { wasmWithNativeKernels } from "./native_setup.ts";

const ignore = !(await wasmWithNativeKernels("fused kernel tests skipped"));

type Path = "fused" | "native" | "stock";
const PATHS: Path[] = ["fused", "native", "stock"];

/** Switch to one wasm path: fused kernels, native kernels without them, stock wasm. */
function use(path: Path): void {
  enableNativeMatmul();
  if (path === "stock") disableNativeMatmul();
  else setFusedKernels(path === "fused");
  assert.equal(fusedKernelsEnabled(), path === "fused");
  assert.equal(nativeMatmulEnabled(), path !== "stock");
}

/** `fn` on every path (leaves the fused kernels on); outputs kept, caller disposes. */
function onEveryPath(fn: () => tf.Tensor[]): Record<Path, tf.Tensor[]> {
  const out = {} as Record<Path, tf.Tensor[]>;
  try {
    for (const path of PATHS) {
      use(path);
      out[path] = tf.tidy(fn);
    }
  } finally {
    use("fused");
  }
  return out;
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Every output of the fused path within 1e-4 of the native and stock ones. */
function assertSame(out: Record<Path, tf.Tensor[]>, what: string): void {
  assert.ok(out.fused.length > 0);
  for (const other of ["native", "stock"] as const) {
    out.fused.forEach((t, i) => {
      const diff = maxDiff(t, out[other][i]);
      assert.ok(diff < 1e-4, `${what}: output ${i} differs from ${other} by ${diff}`);
    });
  }
  tf.dispose(Object.values(out).flat());
}

/** A function's value and its gradients with respect to every input (tf.grads). */
function valueAndGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
): tf.Tensor[] {
  const { value, grads } = tf.valueAndGrads(f)(inputs);
  return [value, ...grads];
}

const random = (shape: number[], seed: number, mean = 0, std = 1) =>
  tf.randomNormal(shape, mean, std, "float32", seed);

Deno.test({
  name: "fused linear: with and without bias, 2-D and 3-D, int32 input; values and gradients",
  ignore,
  fn() {
    const x3 = random([3, 5, 7], 1);
    const x2 = random([6, 7], 2);
    const w = random([7, 4], 3);
    const b = random([4], 4);
    const weights = random([3, 5, 4], 5);
    const ids = tf.tensor2d([[0, 3, 6], [2, 2, 1]], [2, 3], "int32");
    const table = random([7, 4], 6);
    assertSame(
      onEveryPath(() => [
        ...valueAndGrads((x, v, c) => tf.sum(tf.mul(ops.linear(x, v, c), weights)), [x3, w, b]),
        ...valueAndGrads((x, v) => tf.sum(tf.square(ops.linear(x, v))), [x2, w]),
        ...valueAndGrads(
          (v) => tf.sum(tf.square(ops.linear(tf.oneHot(ids, 7), v))),
          [table],
        ),
      ]),
      "linear",
    );
    tf.dispose([x3, x2, w, b, weights, ids, table]);
  },
});

Deno.test({
  name: "fused linear + GELU: values and gradients of input, weight and bias, SIMD and not",
  ignore,
  fn() {
    // 12 outputs: the SIMD pass, then the stock-op fallback; 10: not a multiple of 4.
    for (const [n, simd] of [[12, "on"], [12, "off"], [10, "on"]] as const) {
      const x = random([4, 6, 8], 7);
      const w = random([8, n], 8, 0, 0.5);
      const b = random([n], 9, 0, 0.5);
      const weights = random([4, 6, n], 10);
      if (simd === "off") Deno.env.set("KLAL_SIMD", "off");
      try {
        assertSame(
          onEveryPath(() =>
            valueAndGrads(
              (p, q, r) => tf.sum(tf.mul(ops.linearGelu(p, q, r), weights)),
              [x, w, b],
            )
          ),
          `linear + GELU, ${n} outputs, SIMD ${simd}`,
        );
      } finally {
        Deno.env.delete("KLAL_SIMD");
      }
      tf.dispose([x, w, b, weights]);
    }
  },
});

Deno.test({
  name: "fused layer norm and residual + layer norm: values and every gradient",
  ignore,
  fn() {
    // A large mean next to a small spread: the variance is taken about the mean (two-pass).
    const x = random([3, 5, 16], 11, 3, 2);
    const r = random([3, 5, 16], 12);
    const g = random([16], 13, 1, 0.5);
    const b = random([16], 14, 0, 0.5);
    const wy = random([3, 5, 16], 15);
    const ws = random([3, 5, 16], 16);
    assertSame(
      onEveryPath(() => [
        ...valueAndGrads((p, q, c) => tf.sum(tf.mul(ops.layerNorm(p, q, c), wy)), [x, g, b]),
        // Both outputs used downstream (the residual stream and the normed input).
        ...valueAndGrads((p, s, q, c) => {
          const { sum, normed } = ops.residualLayerNorm(p, s, q, c);
          return tf.add(tf.sum(tf.mul(normed, wy)), tf.sum(tf.mul(tf.square(sum!), ws)));
        }, [x, r, g, b]),
        // The final norm: no sum output.
        ...valueAndGrads((p, s, q, c) => {
          const { sum, normed } = ops.residualLayerNorm(p, s, q, c, false);
          assert.equal(sum, null);
          return tf.sum(tf.mul(normed, wy));
        }, [x, r, g, b]),
      ]),
      "layer norm",
    );
    tf.dispose([x, r, g, b, wy, ws]);
  },
});

// Sample 2: padding at the end. With a fully masked row (sample 3, key 0 masked: query 0 sees
// no key at all) the fused kernel takes the stock Softmax; without one, the SIMD causal
// softmax (simd_kernels.wat), here with padding inside and at the end of sample 3.
for (
  const [label, lastRow, simd] of [
    ["a fully masked row", [0, 1, 0, 1, 1, 1, 1], "on"],
    ["padding inside a row (SIMD softmax)", [1, 0, 1, 0, 1, 1, 0], "on"],
    ["padding inside a row, KLAL_SIMD=off", [1, 0, 1, 0, 1, 1, 0], "off"],
    ["a fully masked row, KLAL_SIMD=off", [0, 1, 0, 1, 1, 1, 1], "off"],
  ] as [string, number[], string][]
) {
  Deno.test({
    name: `fused attention: causal and padding masks, ${label}, probs with and without a ` +
      "gradient of their own",
    ignore,
    fn() {
      const [batch, t, heads, dh] = [4, 7, 3, 4];
      const d = heads * dh;
      const qkv = random([batch, t, 3 * d], 17) as tf.Tensor3D;
      const keys = tf.tensor2d([
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0, 0],
        lastRow,
      ]);
      const wProbs = random([batch, heads, t, t], 18);
      const wMixed = random([batch, t, d], 19);
      if (simd === "off") Deno.env.set("KLAL_SIMD", "off");
      const out = onEveryPath(() => {
        const { probs, mixed } = ops.attention(qkv, heads, ops.attentionMask(keys));
        return [
          probs,
          mixed,
          tf.grad((x) => {
            const a = ops.attention(x as tf.Tensor3D, heads, ops.attentionMask(keys));
            return tf.add(tf.sum(tf.mul(a.probs, wProbs)), tf.sum(tf.mul(a.mixed, wMixed)));
          })(qkv),
          // The probabilities unused by the loss (a layer KLAL does not supervise).
          tf.grad((x) =>
            tf.sum(
              tf.mul(ops.attention(x as tf.Tensor3D, heads, ops.attentionMask(keys)).mixed, wMixed),
            )
          )(qkv),
        ];
      });
      Deno.env.delete("KLAL_SIMD");
      // Rows sum to 1; a fully masked row is uniform, as with the stock additive mask;
      // padded keys get 0.
      const probs = out.fused[0].arraySync() as number[][][][];
      probs.forEach((sample) =>
        sample.forEach((head) =>
          head.forEach((row) => assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5))
        )
      );
      if (lastRow[0] === 0) {
        probs[3].forEach((head) => head[0].forEach((p) => assert.ok(Math.abs(p - 1 / t) < 1e-6)));
      } else {
        probs[3].forEach((head) =>
          head.forEach((row) => assert.equal(row[1] + row[3] + row[6], 0))
        );
      }
      assertSame(out, "attention");
      tf.dispose([qkv, keys, wProbs, wMixed]);
    },
  });
}

Deno.test({
  name: "fused next-token loss: value and gradient, masked rows, targets outside the vocabulary, " +
    "with and without SIMD",
  ignore,
  fn() {
    // 7 values a row: one SIMD chunk and a scalar tail. Target -1 and 7 lie outside [0, 7).
    const logits = random([2, 5, 7], 30) as tf.Tensor3D;
    const targets = tf.tensor2d([[0, 6, -1, 3, 2], [7, 1, 1, 5, 4]], [2, 5], "int32");
    const mask = tf.tensor2d([[1, 1, 1, 0, 1], [1, 0, 1, 1, 1]]);
    const loss = (x: tf.Tensor) => ntpLoss(x as tf.Tensor3D, targets, mask);
    const both = () => [loss(logits), tf.grad(loss)(logits)];
    for (const simd of ["on", "off"]) {
      if (simd === "off") Deno.env.set("KLAL_SIMD", "off");
      try {
        assertSame(onEveryPath(both), `next-token loss, SIMD ${simd}`);
      } finally {
        Deno.env.delete("KLAL_SIMD");
      }
    }
    // By hand for one row: target 0 at position (0, 0), weight 1/8 (8 masked positions).
    const x = (logits.arraySync() as number[][][])[0][0];
    const m = Math.max(...x);
    const lse = m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
    const g = tf.tidy(() => tf.grad(loss)(logits));
    const rows = g.arraySync() as number[][][];
    g.dispose();
    const grad = rows[0][0];
    x.forEach((v, j) => {
      const want = (Math.exp(v - lse) - (j === 0 ? 1 : 0)) / 8;
      assert.ok(Math.abs(grad[j] - want) < 1e-6, `grad[${j}] ${grad[j]} vs ${want}`);
    });
    assert.ok(rows[0][2].every((v) => v === 0), "target outside the vocabulary: no gradient");
    assert.ok(rows[0][3].every((v) => v === 0), "masked position: no gradient");
    tf.dispose([logits, targets, mask]);
  },
});

Deno.test({
  name: "fused KLAL: value and gradients over the query rows' visual keys, masked and empty " +
    "query rows, zeros in P, a Q under eps, two layers",
  ignore,
  fn() {
    // 2 layers of [3, 2, 7, 7] attention: query rows 3..5 (Tq 3), visual keys 0..3 (Tv 4).
    const softmaxed = (seed: number) => tf.softmax(random([3, 2, 7, 7], seed, 0, 2)) as tf.Tensor4D;
    const [a0, a1] = [softmaxed(40), softmaxed(41)];
    // Sample 2's query rows put (almost) nothing on key 3 of either layer: its Q there falls
    // under eps = 1e-8 while P there is nonzero (the clamp and its zero gradient).
    const far = tf.tensor4d(
      Array.from({ length: 3 * 2 * 7 * 7 }, (_, k) => (k % 7 === 3 && k >= 2 * 98 ? 0 : 1)),
      [3, 2, 7, 7],
    );
    const [p0, p1] = [tf.mul(a0, far) as tf.Tensor4D, tf.mul(a1, far) as tf.Tensor4D];
    const target = tf.tensor2d([[0.5, 0.5, 0, 0], [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 1]]);
    // Sample 1 has no query row (count clamped to 1: Q = 0, all clamped).
    const mask = tf.tensor2d([[1, 1, 0], [0, 0, 0], [1, 0, 1]]);
    const loss = (x: tf.Tensor, y: tf.Tensor) =>
      klalLossOverRows([x as tf.Tensor4D, y as tf.Tensor4D], target, mask, 3);
    assertSame(onEveryPath(() => valueAndGrads(loss, [p0, p1])), "KLAL");
    // The reference formula itself on slices agrees with what the paths share.
    const slices = (x: tf.Tensor4D) => tf.slice(x, [0, 0, 3, 0], [-1, -1, 3, 4]) as tf.Tensor4D;
    const [fused, reference] = [
      tf.tidy(() => loss(p0, p1)),
      tf.tidy(() => klalLoss([slices(p0), slices(p1)], target, { queryMask: mask })),
    ];
    assert.ok(Math.abs(fused.dataSync()[0] - reference.dataSync()[0]) < 1e-5);
    // Outside the query rows and the visual keys the gradient is 0.
    const g = tf.tidy(() => tf.grads(loss)([p0, p1])[0]);
    const values = g.arraySync() as number[][][][];
    assert.ok(values[0][1][2].every((v) => v === 0), "row 2 is not a query row");
    assert.ok(values[0][1].every((row) => row.slice(4).every((v) => v === 0)), "keys 4..6");
    assert.ok(values[1].every((head) => head.every((row) => row.every((v) => v === 0))));
    assert.ok(values[0][0][3].some((v) => v !== 0), "a query row with weight gets a gradient");
    // Rows whose visual mass is ~1e-6 (all attention on text): ROW_FLOOR halves their share.
    const faint = tf.tidy(() => tf.mul(p0, tf.scalar(2e-6)) as tf.Tensor4D);
    assertSame(onEveryPath(() => [loss(faint, p1)]), "KLAL, faint rows");
    tf.dispose([a0, a1, far, p0, p1, target, mask, fused, reference, g, faint]);
  },
});

/** A small model's loss parts and the gradient of the total for every weight. */
function lossAndGrads(
  overrides: Record<string, number>,
  lambda: number,
  layers: number[],
  queries: KlalQueries = "all",
): tf.Tensor[] {
  const fixture = tinyGridData(6, 8);
  const model = tinyModel(fixture, 9, overrides);
  const batch = batchTensors(fixture.data, [0, 1, 2, 3, 4, 5]);
  const variables = model.variables();
  const parts: tf.Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const p = lossParts(model, batch, fixture.data, lambda, layers, { queries });
    parts.push(tf.keep(p.ntp), tf.keep(p.klal));
    return p.total;
  }, variables);
  const out = [value, ...parts, ...variables.map((v) => grads[v.name])];
  disposeBatch(batch);
  model.dispose();
  return out;
}

for (
  const [overrides, lambda, layers, queries] of [
    [{}, 1, [0, 1], "all"],
    [{ dModel: 32, heads: 4, layers: 3 }, 0.5, [1], "all"],
    [{ dModel: 24, heads: 3 }, 0, [0], "all"],
    [{}, 1, [1], "first"],
  ] as [Record<string, number>, number, number[], KlalQueries][]
) {
  Deno.test({
    name: `fused kernels: a small model's losses and every gradient equal the unfused and ` +
      `stock ones (1e-4) ${JSON.stringify(overrides)} lambda ${lambda} layers ${layers} ` +
      `queries ${queries}`,
    ignore,
    fn() {
      assertSame(onEveryPath(() => lossAndGrads(overrides, lambda, layers, queries)), "model");
    },
  });
}

Deno.test({
  name:
    "fused AdamW (SIMD and scalar): weights, moments, gradient norms over 4 steps equal stock wasm's",
  ignore,
  async fn() {
    const run = async (path: Path) => {
      use(path);
      const fixture = tinyGridData(7, 16);
      const model = tinyModel(fixture, 4, { dModel: 32, heads: 4 });
      const variables = model.variables();
      const optimizer = new AdamW(variables, 0.1, 0.9, 0.999, 1e-6);
      const norms: number[] = [];
      for (let step = 0; step < 4; step++) {
        const batch = batchTensors(fixture.data, [0, 1, 2, 3].map((i) => (i + 4 * step) % 16));
        const { value, grads } = tf.variableGrads(
          () => lossParts(model, batch, fixture.data, 1, [0, 1]).total,
          variables,
        );
        // Clipping on in the first two steps (norm above 0.5), decay throughout.
        norms.push(await optimizer.apply(variables.map((v) => grads[v.name]), 3e-3, 0.5));
        tf.dispose([value, ...Object.values(grads)]);
        disposeBatch(batch);
      }
      const state = await optimizer.snapshot();
      const weights = variables.map((v) => v.dataSync().slice());
      optimizer.dispose();
      model.dispose();
      return { norms, state, weights };
    };
    try {
      const fused = await run("fused");
      const stock = await run("stock");
      Deno.env.set("KLAL_SIMD", "off"); // the fused kernel's scalar loop
      const scalar = await run("fused").finally(() => Deno.env.delete("KLAL_SIMD"));
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
        assert.equal(a.length, b.length);
        for (let i = 0; i < a.length; i++) {
          assert.ok(Math.abs(a[i] - b[i]) < 1e-4, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
        }
      };
      assert.ok(fused.norms[0] > 0.5, `the first step clips (norm ${fused.norms[0]})`);
      close(fused.norms, stock.norms, "gradient norm");
      close(fused.state.m, stock.state.m, "m");
      close(fused.state.v, stock.state.v, "v");
      fused.weights.forEach((w, i) => close(w, stock.weights[i], `weight ${i}`));
      close(scalar.state.m, stock.state.m, "m (scalar)");
      close(scalar.state.v, stock.state.v, "v (scalar)");
      scalar.weights.forEach((w, i) => close(w, stock.weights[i], `weight ${i} (scalar)`));
    } finally {
      use("fused");
    }
  },
});

Deno.test({
  name: "fused AdamW: a non-finite gradient norm is returned and nothing is updated",
  ignore,
  async fn() {
    use("fused");
    const w = tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
    const optimizer = new AdamW([w], 0.1);
    const grad = tf.tensor2d([[NaN, 0], [0, 1]]);
    const norm = await optimizer.apply([grad], 0.1, 1);
    assert.ok(!Number.isFinite(norm));
    assert.deepEqual([...w.dataSync()], [1, 2, 3, 4]);
    assert.equal((await optimizer.snapshot()).t, 0);
    tf.dispose([w, grad]);
    optimizer.dispose();
  },
});

Deno.test({
  name: "fused kernels: the tensor count is flat across training steps (optimizer included)",
  ignore,
  async fn() {
    use("fused");
    const fixture = tinyGridData(2, 8);
    const model = tinyModel(fixture, 3, { dModel: 32, heads: 4 });
    const variables = model.variables();
    const optimizer = new AdamW(variables, 0.01);
    const step = async () => {
      const batch = batchTensors(fixture.data, [0, 1, 2, 3]);
      const { value, grads } = tf.variableGrads(
        () => lossParts(model, batch, fixture.data, 1, [1]).total,
        variables,
      );
      await optimizer.apply(variables.map((v) => grads[v.name]), 1e-3, 1);
      tf.dispose([value, ...Object.values(grads)]);
      disposeBatch(batch);
    };
    await step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await step();
    assert.equal(tf.memory().numTensors, before);
    optimizer.dispose();
    model.dispose();
  },
});

Deno.test({
  name: "KLAL_FUSED=off: OpenBLAS and the unfused native kernels, no fused ones",
  ignore,
  async fn() {
    const module = new URL("../pipeline/kernels/native_matmul.ts", import.meta.url).href;
    const backend = new URL("../pipeline/kernels/backend.ts", import.meta.url).href;
    const code = `
      import { initBackend } from "${backend}";
      import { fusedKernelsEnabled, nativeMatmulEnabled } from "${module}";
      await initBackend("wasm");
      console.log(JSON.stringify({ fused: fusedKernelsEnabled(), native: nativeMatmulEnabled() }));
    `;
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", code],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return JSON.parse(text);
    };
    assert.deepEqual(await run({ KLAL_FUSED: "off" }), { fused: false, native: true });
    assert.deepEqual(await run({ KLAL_FUSED: "" }), { fused: true, native: true });
  },
});

Deno.test({
  name: "fused kernels: a call that throws midway frees what it made",
  ignore,
  fn() {
    use("fused");
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = random([2, 4], 20);
    const gain = random([3], 21); // does not broadcast against [2, 4]: the gain product throws
    const before = backend.numDataIds();
    // The stock-op path (the SIMD one checks shapes before it allocates: below).
    Deno.env.set("KLAL_SIMD", "off");
    try {
      assert.throws(() => tf.engine().runKernel(LAYER_NORM_GRAD, { dy: x, x, gain }));
    } finally {
      Deno.env.delete("KLAL_SIMD");
    }
    assert.equal(backend.numDataIds(), before);
    assert.throws(
      () => tf.engine().runKernel(LAYER_NORM_GRAD, { dy: x, x, gain }),
      /KlalLayerNormGrad: expected shape \[4\], got \[3\]/,
    );
    assert.equal(backend.numDataIds(), before);
    tf.dispose([x, gain]);
  },
});
