/** Setup shared by the tests of the native (OpenBLAS) kernels on the wasm backend. */
import { initBackend } from "../pipeline/kernels/backend.ts";
import { enableNativeMatmul } from "../pipeline/kernels/native_matmul.ts";

/**
 * Switch to the wasm backend and turn the native kernels on; whether they are on. When they
 * are not (no OpenBLAS here), warns `unavailable`, then why.
 */
export async function wasmWithNativeKernels(unavailable: string): Promise<boolean> {
  await initBackend("wasm");
  const status = enableNativeMatmul();
  if (!status.enabled) console.warn(`${unavailable}: ${status.reason}`);
  return status.enabled;
}
