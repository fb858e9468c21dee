/** Picks and initialises the tfjs backend (side effects live here, not in the model). */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { blasProvider, enableNativeMatmul, findOpenBlas } from "./native_matmul.ts";
import { enableSplitKMatmul } from "./webgpu_kernels.ts";
import type { BackendName } from "../spec/types.ts";
import { NVIDIA_DIRS } from "./gpu_env.ts";
import { simdBlasAvailable } from "./simd_blas.ts";
import { projectUrl } from "../lib/paths.ts";

/**
 * Order `auto` tries after WebGPU on a real GPU: wasm (with OpenBLAS when present, else the
 * SIMD BLAS), cpu.
 */
const AUTO_ORDER = ["wasm", "cpu"] as const;

/**
 * Deno's WebGPU (wgpu) looks for adapters through Vulkan and through OpenGL. Its OpenGL path
 * loads Mesa's EGL driver, which on CPU-only machines (llvmpipe) aborted the process at exit
 * in about one test run in 25 ("corrupted size vs. prev_size in fastbins", freed by a Mesa
 * thread still exiting while the process unloaded libraries); the GPUs we run on are reached
 * through Vulkan (./gpu_env.ts). So on Linux, Vulkan only, unless DENO_WEBGPU_BACKEND says
 * otherwise; wgpu reads the variable once, when the first adapter is requested.
 */
export const DEFAULT_WEBGPU_BACKEND = "vulkan";

/** Set wgpu's backend (above) and quiet Mesa's device-select layer before the first adapter. */
function prepareWebgpuEnvironment(): void {
  // Linux only: elsewhere wgpu's default is the platform's own API (Metal, Direct3D 12).
  if (Deno.build.os === "linux" && !Deno.env.get("DENO_WEBGPU_BACKEND")) {
    Deno.env.set("DENO_WEBGPU_BACKEND", DEFAULT_WEBGPU_BACKEND);
  }
  // Mesa's implicit Vulkan layer that picks a default GPU for displays connects to Wayland
  // first, and without a login session prints "error: XDG_RUNTIME_DIR is invalid" from every
  // process; we choose adapters ourselves and draw nothing, so the layer is switched off.
  if (!Deno.env.get("XDG_RUNTIME_DIR") && !Deno.env.get("NODEVICE_SELECT")) {
    Deno.env.set("NODEVICE_SELECT", "1");
  }
}

/** What `navigator.gpu` offers here: a real GPU, a software adapter (llvmpipe), or nothing. */
export async function gpuAdapter(): Promise<
  { available: false; reason: string } | { available: true; fallback: boolean; description: string }
> {
  prepareWebgpuEnvironment();
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return { available: false, reason: "this Deno exposes no navigator.gpu" };
  let adapter:
    | { isFallbackAdapter?: boolean; info?: { isFallbackAdapter?: boolean; description?: string } }
    | null;
  try {
    adapter = await gpu.requestAdapter() as typeof adapter;
  } catch (e) {
    return { available: false, reason: `navigator.gpu.requestAdapter failed: ${e}` };
  }
  if (!adapter) {
    return {
      available: false,
      reason: "navigator.gpu found no adapter" +
        (Deno.env.get("DENO_WEBGPU_BACKEND")
          ? ` through ${Deno.env.get("DENO_WEBGPU_BACKEND")}`
          : "") +
        (Deno.env.get("KLAL_GPU_SETUP") ? ` (${Deno.env.get("KLAL_GPU_SETUP")})` : ""),
    };
  }
  const fallback = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  return { available: true, fallback, description: adapter.info?.description ?? "unknown" };
}

/**
 * Load tfjs's WebGPU backend (only when asked for) and select it, with the split-K matmul
 * for small-output, long-K products (./webgpu_kernels.ts).
 */
async function setWebgpu(): Promise<boolean> {
  await import("@tensorflow/tfjs-backend-webgpu");
  enableSplitKMatmul();
  return await trySetBackend("webgpu");
}

let wasmPathsSet = false;

function wasmDistUrl(): string {
  // deno.json sets nodeModulesDir: "auto", so the package lives under node_modules.
  return projectUrl("node_modules/@tensorflow/tfjs-backend-wasm/dist/").href;
}

async function trySetBackend(name: string): Promise<boolean> {
  if (name === "wasm" && !wasmPathsSet) {
    setWasmPaths(wasmDistUrl());
    wasmPathsSet = true;
  }
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

/**
 * The active backend's name for reports: "wasm+openblas" when wasm's matmuls run through
 * OpenBLAS (pipeline/kernels/native_matmul.ts), "wasm+simd" through the SIMD BLAS shipped with
 * the project (./simd_blas.ts), otherwise tfjs's own name.
 */
export function backendLabel(): string {
  const name = tf.getBackend();
  const blas = name === "wasm" ? blasProvider() : null;
  return blas ? `wasm+${blas}` : name;
}

/**
 * The quickstart from a cold cache on 2 idle CPU cores (README), in s: with OpenBLAS and with
 * the SIMD BLAS, measured back to back on a fresh clone (docs/measurements/cpu-simd-blas.md),
 * and on tfjs's own kernels (measured earlier).
 */
export const QUICKSTART_SECONDS = { openblas: 49, simd: 79, plain: 236 } as const;

/**
 * One line for an experiment's main process (printed once per run, not per worker) when its
 * workers would train on wasm without OpenBLAS, as on a fresh machine (on the SIMD BLAS, or on
 * tfjs's own kernels where that cannot run): what that costs and the Debian package that brings
 * it. Null when OpenBLAS loads, when `KLAL_BLAS=off` asks
 * for plain wasm, when no backend in `backends` can be wasm, or when every one is `auto`,
 * an NVIDIA driver is present and the calibration is off (`KLAL_BACKEND_CALIBRATION=off`:
 * WebGPU then runs; with the calibration on, `auto` may still choose wasm there).
 * `nvidiaDirs` as in ./gpu_env.ts; `blas` is what OpenBLAS's lookup found (for tests).
 */
export function openBlasNotice(
  backends: BackendName[],
  nvidiaDirs: string[] = NVIDIA_DIRS,
  blas?: ReturnType<typeof findOpenBlas>,
): string | null {
  if (!backends.some((b) => b === "auto" || b === "wasm")) return null;
  const hasDriver = (dir: string) => {
    try {
      return Deno.statSync(`${dir}/libEGL_nvidia.so.0`).isFile;
    } catch {
      return false;
    }
  };
  const calibrationOff = Deno.env.get("KLAL_BACKEND_CALIBRATION") === "off";
  if (backends.every((b) => b === "auto") && calibrationOff && nvidiaDirs.some(hasDriver)) {
    return null;
  }
  // Looked up only now: a run that cannot use wasm never opens the library.
  const lookup = blas ?? findOpenBlas();
  if (lookup.found || lookup.disabled) return null;
  const { openblas, simd, plain } = QUICKSTART_SECONDS;
  const [how, seconds] = simdBlasAvailable().available
    ? ["on the SIMD BLAS shipped with the project (wasm+simd)", simd]
    : ["with tfjs's own kernels", plain];
  return `note: OpenBLAS not found, so wasm trains ${how}, about ` +
    `${(seconds / openblas).toFixed(1)}x slower (the quickstart: ${seconds} s instead of ` +
    `${openblas} s on 2 cores); Debian's libopenblas0-serial brings it: ` +
    `apt-get install libopenblas0-serial`;
}

let reason = "";

/**
 * Why the last initBackend chose its backend, for reports: "set in the spec", "auto: no GPU
 * adapter", or the calibration's numbers (../run/backend_choice.ts).
 */
export function backendReason(): string {
  return reason;
}

/**
 * On wasm, route matmuls through OpenBLAS when it is installed, else through the SIMD BLAS
 * (KLAL_BLAS: `simd` for the SIMD BLAS regardless, `off` for neither).
 */
function withNativeMatmul(): string {
  if (tf.getBackend() === "wasm") enableNativeMatmul();
  return backendLabel();
}

/**
 * Initialise `requested` ("auto" picks the fastest working one) and return the name of
 * the backend that is now active ("wasm+openblas" or "wasm+simd" when wasm's matmuls use a
 * BLAS).
 * Throws with a clear message when a named backend is not available on this machine.
 */
export async function initBackend(requested: BackendName): Promise<string> {
  reason = "set in the spec";
  if (requested === "auto") {
    // The runner's main process decided (../run/backend_choice.ts) and passed the choice on.
    const decided = Deno.env.get("KLAL_AUTO_BACKEND");
    if (decided === "webgpu" || decided === "wasm") {
      reason = Deno.env.get("KLAL_BACKEND_REASON") ?? `auto: ${decided} chosen by the runner`;
      if (decided === "webgpu") {
        if (await setWebgpu()) return backendLabel();
        reason = `${reason}; webgpu failed to initialise here, so the CPU path`;
      }
    } else {
      // WebGPU only on a real GPU: on a software adapter (llvmpipe) it is slower than wasm.
      const gpu = await gpuAdapter();
      if (gpu.available && !gpu.fallback) {
        reason = `auto: WebGPU on a real GPU adapter (${gpu.description}), not calibrated`;
        if (await setWebgpu()) return backendLabel();
      }
      reason = "auto: no GPU adapter";
    }
    for (const name of AUTO_ORDER) {
      if (await trySetBackend(name)) return withNativeMatmul();
    }
    throw new Error("no tfjs backend could be initialised (tried webgpu, wasm, cpu)");
  }
  if (requested === "webgpu") {
    // The training loop and evaluation read tensors asynchronously: tfjs-webgpu's
    // synchronous reads need an OffscreenCanvas, which Deno lacks.
    const gpu = await gpuAdapter();
    if (!gpu.available) throw new Error(`backend "webgpu" is not available: ${gpu.reason}`);
    if (!(await setWebgpu())) {
      throw new Error(`backend "webgpu" failed to initialise on ${gpu.description}`);
    }
    return backendLabel();
  }
  if (!(await trySetBackend(requested))) {
    throw new Error(`backend "${requested}" failed to initialise`);
  }
  return withNativeMatmul();
}

export { tf };
