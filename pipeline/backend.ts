/** Picks and initialises the tfjs backend (side effects live here, not in the model). */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { enableNativeMatmul, nativeMatmulEnabled } from "./model/native_matmul.ts";
import type { BackendName } from "./spec_types.ts";

/** Order `auto` tries, fastest first. WebGPU and tensorflow are taken only when really usable. */
const AUTO_ORDER = ["wasm", "cpu"] as const;

let wasmPathsSet = false;

function wasmDistUrl(): string {
  // deno.json sets nodeModulesDir: "auto", so the package lives under node_modules.
  return new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url).href;
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
 * OpenBLAS (pipeline/model/native_matmul.ts), otherwise tfjs's own name.
 */
export function backendLabel(): string {
  const name = tf.getBackend();
  return name === "wasm" && nativeMatmulEnabled() ? "wasm+openblas" : name;
}

/** On wasm, route matmuls through OpenBLAS when it is installed (and KLAL_BLAS is not off). */
function withNativeMatmul(): string {
  if (tf.getBackend() === "wasm") enableNativeMatmul();
  return backendLabel();
}

/**
 * Initialise `requested` ("auto" picks the fastest working one) and return the name of
 * the backend that is now active ("wasm+openblas" when wasm's matmuls use OpenBLAS).
 * Throws with a clear message when a named backend is not available on this machine.
 */
export async function initBackend(requested: BackendName): Promise<string> {
  if (requested === "auto") {
    for (const name of AUTO_ORDER) {
      if (await trySetBackend(name)) return withNativeMatmul();
    }
    throw new Error("no tfjs backend could be initialised (tried wasm, cpu)");
  }
  if (requested === "webgpu") {
    // tfjs-webgpu runs here (on llvmpipe, a software adapter) but reads tensors back
    // synchronously through an OffscreenCanvas, which Deno lacks; the training loop's
    // synchronous reads would fail. Not offered until the loop reads asynchronously.
    throw new Error(
      `backend "webgpu" is not supported yet (tfjs-webgpu's synchronous reads need ` +
        `OffscreenCanvas, which Deno lacks); use "auto", "wasm" or "cpu"`,
    );
  }
  if (requested === "tensorflow" || requested === "tensorflow-gpu") {
    // tfjs-node(-gpu) downloads libtensorflow at install time from outside the registries.
    throw new Error(
      `backend "${requested}" needs @tensorflow/tfjs-node, which cannot be installed here; ` +
        `use "auto", "wasm" or "cpu"`,
    );
  }
  if (!(await trySetBackend(requested))) {
    throw new Error(`backend "${requested}" failed to initialise`);
  }
  return withNativeMatmul();
}

export { tf };
