/**
 * Which fine-tunes the runner hands to one worker to train together on a stacked WebGPU
 * trainer (../train/webgpu/trainer.ts `createStacked`), and when it launches them.
 *
 * On the WebGPU backend (named in the spec or chosen by `auto`), fine-tune stages (an arm and
 * seed, or a learning-rate trial) of the same task with the same batch size, queries and
 * optimizer are one stack (each seed its own training draw and Base): they share every shape, so one
 * trainer steps them all at the cost of one. Each keeps its own cache entry (a resumed or
 * partly cached run trains only what is missing), and each entry's numbers are those of
 * training it alone. The worker checks the shapes again (the model, the data's layout, the
 * supervised layers) and splits a stack whose arms differ there or that does not fit the GPU (../stages/finetune.ts `runFinetuneGroup`). The pointer-head control trains on
 * tfjs and never stacks. `KLAL_STACK=off` (or `KLAL_WEBGPU_TRAINER=off`) trains every stage
 * on its own.
 */
import type { ResolvedStage } from "./plan.ts";
import { webgpuTrainerEnabled } from "../train/webgpu/loop.ts";

/** The environment switch that turns stacking off. */
export const STACK_ENV = "KLAL_STACK";

/** Whether fine-tunes stack when the workers train on `backend` (the resolved one). */
export function stackingEnabled(backend: string): boolean {
  return webgpuTrainerEnabled(backend) && Deno.env.get(STACK_ENV) !== "off";
}

/** The stack a stage belongs to (stages with the same value train together), if any. */
export function stackKey(stage: ResolvedStage): string | undefined {
  if (stage.kind !== "finetune" && stage.kind !== "lr-finetune") return undefined;
  const p = stage.params;
  if ((p.supervision ?? "attention") !== "attention") return undefined;
  const t = p.train;
  // The supervised layers are left to the worker, which knows the model's depth: λ = 0
  // measures KLAL over every layer (../stages/types.ts `klalLayers`), as `layers: all` does.
  return JSON.stringify({
    kind: stage.kind,
    task: p.task,
    batch: t.batch_size,
    queries: p.queries ?? "all",
    optimizer: t.optimizer,
    weightDecay: t.optimizer === "adamw" ? t.weight_decay : 0,
  });
}

/**
 * What to launch now, in plan order: single stages, and stacks (several stages, one worker).
 * `ready` are the open stages whose inputs are done, `open` every stage not yet run or
 * running, `slots` how many workers may start, `busy` whether any worker runs. A stack waits
 * while others of its kind are still on their way (open, not ready) and a worker runs that may
 * be making their inputs; stages without a stack launch as before.
 */
export function launches(
  ready: ResolvedStage[],
  open: ResolvedStage[],
  slots: number,
  busy: boolean,
  keyOf: (stage: ResolvedStage) => string | undefined,
): ResolvedStage[][] {
  const out: ResolvedStage[][] = [];
  const stacks = new Map<string, ResolvedStage[]>();
  for (const stage of ready) {
    const key = keyOf(stage);
    if (key === undefined) {
      if (out.length < slots) out.push([stage]);
      continue;
    }
    stacks.set(key, [...(stacks.get(key) ?? []), stage]);
  }
  const started = busy || out.length > 0;
  for (const [key, members] of stacks) {
    if (out.length >= slots) break;
    const coming = open.some((s) => !members.includes(s) && keyOf(s) === key);
    if (coming && started) continue;
    out.push(members);
  }
  return out;
}
