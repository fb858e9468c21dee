/** The default executor: each stage in a local worker process. */
import type { ResolvedStage } from "../plan.ts";
import { type Executor, workerArgs } from "./executor.ts";

/** Stages as local worker processes (the default). */
export class LocalExecutor implements Executor {
  readonly name = "local";
  private readonly children = new Set<Deno.ChildProcess>();

  /** Extra environment for every worker (e.g. the Vulkan set-up of pipeline/kernels/gpu_env.ts). */
  constructor(private readonly extraEnv: Record<string, string> = {}) {}

  async run(_stage: ResolvedStage, path: string, options: { plainProgress: boolean }) {
    const env: Record<string, string> = {
      ...this.extraEnv,
      ...(options.plainProgress ? { KLAL_PLAIN_PROGRESS: "1" } : {}),
    };
    const child = new Deno.Command(Deno.execPath(), {
      args: workerArgs(path),
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    this.children.add(child);
    try {
      const status = await child.status;
      if (!status.success) {
        const message = await Deno.readTextFile(`${path}.error`).catch(() =>
          `worker exited with code ${status.code}${status.signal ? ` (${status.signal})` : ""}`
        );
        throw new Error(message);
      }
    } finally {
      this.children.delete(child);
    }
  }

  cancel(): Promise<void> {
    for (const child of this.children) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    return Promise.resolve();
  }
}
