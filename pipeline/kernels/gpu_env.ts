/**
 * Makes Deno's WebGPU see an NVIDIA GPU on machines whose Vulkan set-up is incomplete
 * (checked on an NVIDIA H100 machine; docs/ARCHITECTURE.md, "Backends"): the driver is present
 * but there is no Vulkan loader on the library path and the stock ICD file (pointing at
 * libGLX_nvidia) fails headless. Two things fix it, and both must be in a process's
 * environment before it starts, so the runner passes them to its worker processes:
 *
 *   1. `libvulkan.so.1` (Debian's libvulkan1) on LD_LIBRARY_PATH;
 *   2. an ICD file naming `libEGL_nvidia.so.0`, given by VK_ICD_FILENAMES, with the
 *      driver's folder on LD_LIBRARY_PATH.
 */

/** Folders searched for the NVIDIA driver's libEGL_nvidia.so.0. */
export const NVIDIA_DIRS = [
  "/usr/local/nvidia/lib64",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/lib/aarch64-linux-gnu",
];

/** Folders searched for the Vulkan loader libvulkan.so.1 (KLAL_VULKAN_DIR first). */
export const VULKAN_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/local/lib",
];

/** What was found, and the environment to give GPU worker processes. */
export type GpuEnvironment =
  | { ready: true; env: Record<string, string>; icdFile: string; driverDir: string }
  | { ready: false; reason: string };

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Find the NVIDIA driver and a Vulkan loader; write the ICD file under `stateDir`; return
 * the environment for worker processes, or a reason naming what is missing.
 */
export function gpuEnvironment(
  stateDir: string,
  options: { nvidiaDirs?: string[]; vulkanDirs?: string[]; env?: Record<string, string> } = {},
): GpuEnvironment {
  const env = options.env ?? Deno.env.toObject();
  const nvidiaDirs = options.nvidiaDirs ?? NVIDIA_DIRS;
  const driverDir = nvidiaDirs.find((d) => exists(`${d}/libEGL_nvidia.so.0`));
  if (!driverDir) {
    return {
      ready: false,
      reason: `no NVIDIA driver: libEGL_nvidia.so.0 is in none of ${nvidiaDirs.join(", ")}`,
    };
  }
  const vulkanDirs = [
    ...(env.KLAL_VULKAN_DIR ? [env.KLAL_VULKAN_DIR] : []),
    ...(options.vulkanDirs ?? VULKAN_DIRS),
  ];
  const loaderDir = vulkanDirs.find((d) => exists(`${d}/libvulkan.so.1`));
  if (!loaderDir) {
    return {
      ready: false,
      reason: `NVIDIA driver found in ${driverDir}, but no Vulkan loader: libvulkan.so.1 is in ` +
        `none of ${vulkanDirs.join(", ")} (install Debian's libvulkan1, or set ` +
        `KLAL_VULKAN_DIR to a folder holding it)`,
    };
  }
  Deno.mkdirSync(stateDir, { recursive: true });
  const icdFile = `${stateDir}/nvidia_icd_egl.json`;
  const icd = {
    file_format_version: "1.0.1",
    ICD: { library_path: "libEGL_nvidia.so.0", api_version: "1.4.312" },
  };
  Deno.writeTextFileSync(icdFile, JSON.stringify(icd));
  const libraryPath = [loaderDir, driverDir, ...(env.LD_LIBRARY_PATH?.split(":") ?? [])]
    .filter((d, i, all) => d && all.indexOf(d) === i).join(":");
  return {
    ready: true,
    env: { VK_ICD_FILENAMES: icdFile, LD_LIBRARY_PATH: libraryPath },
    icdFile,
    driverDir,
  };
}
