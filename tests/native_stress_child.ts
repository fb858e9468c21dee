/**
 * Child process of tests/native_repeat_test.ts: the native kernels (OpenBLAS when present,
 * and the copy kernels) under a growing wasm heap, compared with plain wasm; prints one line
 * and ends normally, so that anything that corrupts the native heap shows at exit.
 *
 *   deno run -A tests/native_stress_child.ts
 */
import { initBackend } from "../pipeline/backend.ts";
import { enableNativeMatmul } from "../pipeline/model/native_matmul.ts";
import * as tf from "@tensorflow/tfjs";
import {
  heapBytes,
  kernelCases,
  maxAbsDiff,
  trainTrace,
  withGrowingOutputs,
} from "./heap_growth.ts";

await initBackend("wasm");
const status = enableNativeMatmul();

const plain = await trainTrace({ native: false, grow: false, steps: 2 });
const native = await trainTrace({ native: true, grow: true, steps: 2 });
const lossDiff = maxAbsDiff(native.losses, plain.losses);
const weightDiff = Math.max(...native.weights.map((w, i) => maxAbsDiff(w, plain.weights[i])));
if (!(lossDiff < 1e-4 && weightDiff < 1e-4)) {
  throw new Error(
    `native training differs from plain wasm: loss ${lossDiff}, weights ${weightDiff}`,
  );
}

const { cases, inputs } = kernelCases();
let growths = 0;
for (const kernel of cases.filter((k) => status.enabled || !k.blas)) {
  const before = kernel.run();
  const after = withGrowingOutputs(kernel.run);
  growths += after.growths;
  after.result.forEach((t, i) => {
    if (maxAbsDiff(t.dataSync(), before[i].dataSync()) !== 0) {
      throw new Error(`${kernel.name} output ${i} changed when the heap grew`);
    }
  });
  tf.dispose([...before, ...after.result]);
}
tf.dispose(inputs);

console.log(
  `native stress: ok (${status.enabled ? status.library : "copy kernels only"}; ` +
    `${growths} growths inside kernels, heap ${heapBytes() >> 20} MiB)`,
);
