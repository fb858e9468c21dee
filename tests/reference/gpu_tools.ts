/**
 * What tests/reference/gpu.sh needs from the pipeline on the GPU machine, in one bundle:
 *
 *   gpu_tools.ts env STATE_DIR      the Vulkan set-up of pipeline/gpu_env.ts as shell `export`
 *                                   lines (exit 3, with the reason on stderr, when not ready)
 *   gpu_tools.ts webgpu BATCH STEPS paper-model training throughput on WebGPU, one JSON object
 *                                   (bench.ts's measureTraining: 2 warm-up steps excluded;
 *                                   KLAL_ALLOW_SOFTWARE_GPU=1 accepts llvmpipe)
 *
 * The Vulkan variables must be in a process's environment before it starts, hence two calls.
 */
import { gpuAdapter, initBackend } from "../../pipeline/backend.ts";
import { BENCH_MODELS, measureTraining } from "../../pipeline/bench.ts";
import { gpuEnvironment } from "../../pipeline/gpu_env.ts";

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const [mode, ...rest] = Deno.args;
if (mode === "env" && rest.length === 1) {
  const found = gpuEnvironment(rest[0]);
  if (!found.ready) {
    console.error(found.reason);
    Deno.exit(3);
  }
  for (const [key, value] of Object.entries(found.env)) {
    console.log(`export ${key}=${shellQuote(value)}`);
  }
} else if (mode === "webgpu" && rest.length === 2) {
  const gpu = await gpuAdapter();
  // KLAL_ALLOW_SOFTWARE_GPU=1 runs on a software adapter too (to try the path on a CPU machine).
  const software = Deno.env.get("KLAL_ALLOW_SOFTWARE_GPU") === "1";
  if (!gpu.available || (gpu.fallback && !software)) {
    const why = gpu.available ? `only a software adapter (${gpu.description})` : gpu.reason;
    console.error(`webgpu: no real GPU adapter: ${why}`);
    Deno.exit(3);
  }
  await initBackend("webgpu");
  // bench.ts types its models' batch sizes as literals; any batch size works.
  const paper = { ...BENCH_MODELS.paper, batch: Number(rest[0]) as 64 };
  const result = await measureTraining("paper", paper, Number(rest[1]));
  console.log(JSON.stringify({ ...result, adapter: gpu.description }));
} else {
  console.error("usage: gpu_tools.ts env STATE_DIR | gpu_tools.ts webgpu BATCH STEPS");
  Deno.exit(2);
}
