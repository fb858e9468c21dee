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

/** The worker entry point an executor runs: `deno run -A <WORKER_PATH> <descriptor.json>`. */
export const WORKER_PATH = projectPath("pipeline/run/worker.ts");
