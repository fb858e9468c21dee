/**
 * Child process of tests/native_repeat_test.ts and tests/heap_growth_test.ts: the native
 * kernels (OpenBLAS when present, and the copy kernels) under a growing wasm heap, compared
 * with plain wasm; prints one line and ends normally, so that anything that corrupts the
 * native heap shows at exit.
 *
 *   deno run -A tests/native_stress_child.ts [--group N] [--kernels-only]
 *
 * `--group N`: which group of kernel cases grows the heap at every allocation (N modulo the
 * number of groups, see GROWTHS_PER_PROCESS); `--kernels-only`: no training run.
 */
import { initBackend } from "../pipeline/kernels/backend.ts";
import { enableNativeMatmul } from "../pipeline/kernels/native_matmul.ts";
import { growthGroupCheck, heapBytes, maxAbsDiff, trainTrace } from "./heap_growth.ts";

await initBackend("wasm");
const status = enableNativeMatmul();
const groupAt = Deno.args.indexOf("--group");
const group = groupAt >= 0 ? Number(Deno.args[groupAt + 1]) : 0;

if (!Deno.args.includes("--kernels-only")) {
  const plain = await trainTrace({ native: false, grow: false, steps: 2 });
  const native = await trainTrace({ native: true, grow: true, steps: 2 });
  const lossDiff = maxAbsDiff(native.losses, plain.losses);
  const weightDiff = Math.max(...native.weights.map((w, i) => maxAbsDiff(w, plain.weights[i])));
  if (!(lossDiff < 1e-4 && weightDiff < 1e-4)) {
    throw new Error(
      `native training differs from plain wasm: loss ${lossDiff}, weights ${weightDiff}`,
    );
  }
}

const { growths, names, groups } = growthGroupCheck(group, status.enabled);

console.log(
  `native stress: ok (${status.enabled ? status.library : "copy kernels only"}; ` +
    `group ${group % groups} of ${groups}: ${names.join(", ")}; ` +
    `${growths} growths inside kernels, heap ${Math.round(heapBytes() / 2 ** 20)} MiB)`,
);
