import assert from "node:assert/strict";
import { gpuEnvironment } from "../pipeline/kernels/gpu_env.ts";

async function fakeMachine(files: string[]): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "klal-gpu-env-" });
  for (const f of files) {
    await Deno.mkdir(`${root}/${f.slice(0, f.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${root}/${f}`, "");
  }
  return root;
}

Deno.test("gpuEnvironment: driver + loader -> ICD file and library path for workers", async () => {
  const root = await fakeMachine(["nvidia/libEGL_nvidia.so.0", "vulkan/libvulkan.so.1"]);
  const gpu = gpuEnvironment(`${root}/state`, {
    nvidiaDirs: [`${root}/none`, `${root}/nvidia`],
    vulkanDirs: [`${root}/vulkan`],
    env: { LD_LIBRARY_PATH: "/opt/x" },
  });
  assert.ok(gpu.ready);
  assert.equal(gpu.env.LD_LIBRARY_PATH, `${root}/vulkan:${root}/nvidia:/opt/x`);
  assert.equal(gpu.env.VK_ICD_FILENAMES, `${root}/state/nvidia_icd_egl.json`);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(gpu.icdFile)), {
    file_format_version: "1.0.1",
    ICD: { library_path: "libEGL_nvidia.so.0", api_version: "1.4.312" },
  });
});

Deno.test("gpuEnvironment: names what is missing", async () => {
  const none = await fakeMachine([]);
  const noDriver = gpuEnvironment(`${none}/state`, { nvidiaDirs: [`${none}/a`], env: {} });
  assert.equal(noDriver.ready, false);
  assert.match(!noDriver.ready ? noDriver.reason : "", /no NVIDIA driver: libEGL_nvidia\.so\.0/);
  const driverOnly = await fakeMachine(["nvidia/libEGL_nvidia.so.0"]);
  const noLoader = gpuEnvironment(`${driverOnly}/state`, {
    nvidiaDirs: [`${driverOnly}/nvidia`],
    vulkanDirs: [`${driverOnly}/vulkan`],
    env: {},
  });
  assert.equal(noLoader.ready, false);
  assert.match(
    !noLoader.ready ? noLoader.reason : "",
    /no Vulkan loader: libvulkan\.so\.1 .*install Debian's libvulkan1, or set KLAL_VULKAN_DIR/,
  );
  // KLAL_VULKAN_DIR is searched first.
  const withEnv = gpuEnvironment(`${driverOnly}/state`, {
    nvidiaDirs: [`${driverOnly}/nvidia`],
    vulkanDirs: [],
    env: { KLAL_VULKAN_DIR: `${driverOnly}/nvidia` },
  });
  assert.equal(withEnv.ready, false); // that folder has no libvulkan.so.1 either
});
