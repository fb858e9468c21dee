/**
 * Finding a python3 with PyTorch, and running the PyTorch reference's training bench
 * (tests/reference/reference.py bench) with it.
 */
import { projectPath } from "./paths.ts";

/**
 * The interpreter to run the reference with, or what is wrong with each candidate:
 * KLAL_PYTHON when set, else the first of python3 on PATH and Debian's /usr/bin/python3
 * (where python3-torch installs) that imports torch and numpy.
 */
export async function findTorchPython(): Promise<{ python: string } | { problems: string[] }> {
  const chosen = Deno.env.get("KLAL_PYTHON");
  const problems: string[] = [];
  for (const python of chosen ? [chosen] : ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import torch, numpy"],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.success) return { python };
      const error = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
      problems.push(`${python} cannot import torch (${error})`);
    } catch {
      problems.push(`${python} not found`);
    }
  }
  return { problems };
}

/** The PyTorch reference's paper-model training throughput (reference.py bench). */
export interface TorchBench {
  samplesPerSecond: number;
  gflopsPerSecond: number;
  msPerStep: number;
  threads: number;
  torch: string;
  steps: number;
  device: "cpu" | "cuda";
  batch: number;
}

/**
 * reference.py bench on `device` at `batch` for `steps` steps (after `warmup`), float32 with
 * TF32 off; `threads` limits the CPU threads (OMP_NUM_THREADS). The script is
 * KLAL_REFERENCE_SCRIPT or the project's; the reason when it cannot run.
 */
export async function torchBench(options: {
  device: "cpu" | "cuda";
  batch: number;
  steps: number;
  warmup?: number;
  threads?: number;
}): Promise<TorchBench | { skipped: string }> {
  const script = Deno.env.get("KLAL_REFERENCE_SCRIPT") ??
    projectPath("tests/reference/reference.py");
  try {
    Deno.statSync(script);
  } catch {
    return { skipped: `no ${script}` };
  }
  const found = await findTorchPython();
  if (!("python" in found)) return { skipped: found.problems.join("; ") };
  const { device, batch, steps } = options;
  const args = [script, "bench", "--device", device, "--batch", String(batch)];
  args.push("--steps", String(steps), "--json");
  if (options.warmup !== undefined) args.push("--warmup", String(options.warmup));
  const threads: Record<string, string> = options.threads === undefined ? {} : {
    OMP_NUM_THREADS: String(options.threads),
    MKL_NUM_THREADS: String(options.threads),
  };
  const out = await new Deno.Command(found.python, {
    args,
    env: threads,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    return { skipped: `reference.py bench failed: ${new TextDecoder().decode(out.stderr)}` };
  }
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  return {
    samplesPerSecond: result.samplesPerSecond as number,
    gflopsPerSecond: result.gflopsPerSecond as number,
    msPerStep: result.msPerStep as number,
    threads: result.threads as number,
    torch: result.torch as string,
    steps,
    device,
    batch,
  };
}
