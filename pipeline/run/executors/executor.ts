/**
 * What runs a stage: the interface every executor implements (./local.ts, ./slurm.ts) and the
 * worker entry point they start.
 */
import type { ResolvedStage } from "../plan.ts";
import { projectPath } from "../../lib/paths.ts";

/**
 * Runs one stage to completion somewhere (a local process, a cluster job). The stage is
 * described by the JSON file at `descriptorPath` (a WorkerDescriptor); whatever runs it
 * calls `pipeline/run/worker.ts` on that file. Rejects with a message naming what failed.
 */
export interface Executor {
  readonly name: string;
  run(
    stage: ResolvedStage,
    descriptorPath: string,
    options: { plainProgress: boolean },
  ): Promise<void>;
  /** Stop everything still running (Ctrl-C). */
  cancel(): Promise<void>;
}

/**
 * The permissions a stage runs with: files (the cache, data, the project's modules), the
 * environment, the system's description (cores, memory, host), and foreign functions (the
 * OpenBLAS and WebGPU paths). No network and no subprocesses: a stage that reaches for either
 * fails with Deno's permission error, and `--no-prompt` keeps it from asking.
 */
export const STAGE_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-ffi",
  "--no-prompt",
];

/** The worker entry point an executor runs: `deno run <STAGE_PERMISSIONS> <WORKER_PATH> <descriptor.json>`. */
export const WORKER_PATH = projectPath("pipeline/run/worker.ts");

/** The arguments of `deno` that run the worker on one stage's descriptor. */
export function workerArgs(descriptorPath: string): string[] {
  return ["run", ...STAGE_PERMISSIONS, "--quiet", WORKER_PATH, descriptorPath];
}
