/**
 * The experiment's one-line notice when OpenBLAS is missing (pipeline/kernels/backend.ts
 * `openBlasNotice`, printed by pipeline/commands/experiment.ts): exactly once per run, sweeps included,
 * naming the SIMD BLAS that trains instead, and never when OpenBLAS loads, when KLAL_BLAS=off or
 * simd, or when wasm cannot run.
 */
import assert from "node:assert/strict";
import { openBlasNotice, QUICKSTART_SECONDS } from "../pipeline/kernels/backend.ts";
import { simdBlasAvailable } from "../pipeline/kernels/simd_blas.ts";
import { findOpenBlas } from "../pipeline/kernels/native_matmul.ts";
import { pathOf } from "../pipeline/lib/paths.ts";

const MAIN = pathOf(new URL("../pipeline/commands/experiment.ts", import.meta.url));
const NOTICE = /OpenBLAS not found/;
const MISSING = "/nonexistent/openblas/libopenblas.so.0";

/** `deno task experiment --dry-run ARGS` (nothing trains) with KLAL_BLAS; stdout + stderr. */
async function dryRun(klalBlas: string, args: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "klal-notice-" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "--dry-run", ...args],
      env: { KLAL_BLAS: klalBlas, KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/r` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, text);
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("OpenBLAS missing: the experiment prints the notice exactly once, sweeps included", async () => {
  for (const args of [[], ["train.lr=0.001,0.002"]]) {
    const out = await dryRun(MISSING, args);
    const lines = out.split("\n").filter((line) => NOTICE.test(line));
    assert.equal(lines.length, 1, out);
    assert.equal(out.split("OpenBLAS not found").length, 2, out);
    // Without OpenBLAS the SIMD BLAS trains (tfjs's own kernels where it cannot run).
    const { openblas, simd, plain } = QUICKSTART_SECONDS;
    const seconds = simdBlasAvailable().available ? simd : plain;
    assert.ok(lines[0].includes(`${(seconds / openblas).toFixed(1)}x slower`), lines[0]);
    assert.ok(lines[0].includes(`${seconds} s instead of ${openblas} s`), lines[0]);
    if (simdBlasAvailable().available) assert.match(lines[0], /on the SIMD BLAS .*\(wasm\+simd\)/);
    assert.match(lines[0], /apt-get install libopenblas0-serial/);
    if (args.length > 0) assert.match(out, /sweep: 2 experiments/);
  }
});

Deno.test("OpenBLAS off by choice, or a cpu backend: no notice", async () => {
  assert.doesNotMatch(await dryRun("off", []), NOTICE);
  assert.doesNotMatch(await dryRun("simd", []), NOTICE);
  assert.doesNotMatch(await dryRun(MISSING, ["backend=cpu"]), NOTICE);
});

const blas = findOpenBlas();
Deno.test({
  name: "OpenBLAS present: no notice",
  ignore: !blas.found,
  async fn() {
    assert.ok(blas.found);
    assert.doesNotMatch(await dryRun(blas.library, []), NOTICE);
  },
});

Deno.test("notice: none for backends that cannot be wasm; beside an NVIDIA driver only when auto may pick wasm", async () => {
  const missing = { found: false as const, disabled: false, reason: "not installed" };
  assert.equal(openBlasNotice(["cpu"], [], missing), null);
  assert.equal(openBlasNotice(["webgpu", "cpu"], [], missing), null);
  const driver = await Deno.makeTempDir({ prefix: "klal-nvidia-" });
  const before = Deno.env.get("KLAL_BACKEND_CALIBRATION");
  try {
    await Deno.writeFile(`${driver}/libEGL_nvidia.so.0`, new Uint8Array());
    // The calibration may choose wasm over WebGPU: the missing OpenBLAS still matters.
    Deno.env.delete("KLAL_BACKEND_CALIBRATION");
    assert.match(openBlasNotice(["auto"], [driver], missing) ?? "", /OpenBLAS not found/);
    // Without it, auto takes WebGPU on the GPU: no wasm, no notice.
    Deno.env.set("KLAL_BACKEND_CALIBRATION", "off");
    assert.equal(openBlasNotice(["auto"], [driver], missing), null);
    assert.match(openBlasNotice(["wasm"], [driver], missing) ?? "", /OpenBLAS not found/);
  } finally {
    if (before === undefined) Deno.env.delete("KLAL_BACKEND_CALIBRATION");
    else Deno.env.set("KLAL_BACKEND_CALIBRATION", before);
    await Deno.remove(driver, { recursive: true });
  }
});
