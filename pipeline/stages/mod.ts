/**
 * Runs a stage: `(inputs from the cache, params, ctx) => files in a new cache entry`. A stage
 * reads its inputs only through the cache, by key.
 *
 * Each kind of stage lives in its own module, whose import closure is the kind's code
 * version (../run/plan.ts, `STAGE_MODULES`):
 *
 *   data.ts      a task's samples (the task's module is loaded by name, ./_common.ts)
 *   pretrain.ts  the Base checkpoint
 *   finetune.ts  one arm and seed, resumable (also the lr-finetune trials of train.lr_grid)
 *   eval.ts      test-set metrics and figure samples (also the trials' lr-eval, on validation)
 *   choose_lr.ts an arm's learning rate, chosen from its trials' validation accuracy
 *   report.ts    the report of a whole plan (main process only)
 *
 * Shared by several: ./_common.ts (context, tasks, data entries) and ./_checkpoint.ts. A
 * stage's module is imported when a stage of its kind first runs, so a process that only
 * generates data never loads the model.
 */
import type { EntryWriter, Manifest } from "../cache/store.ts";
import type { ResolvedStage, StageKind } from "./types.ts";
import type { StageContext } from "./_common.ts";
import type { ReportExtra } from "./report.ts";

export type { StageContext } from "./_common.ts";
export type { ReportExtra } from "./report.ts";

/** What computes a stage of kind K: its typed stage in, the entry's files out. */
type Produce<K extends StageKind> = (
  stage: ResolvedStage<K>,
  out: EntryWriter,
  ctx: StageContext,
  extra?: ReportExtra,
) => Promise<Record<string, unknown>>;

/** The function that computes each kind of stage, imported on first use. */
const PRODUCERS: { [K in StageKind]: () => Promise<Produce<K>> } = {
  data: async () => (await import("./data.ts")).runData,
  pretrain: async () => (await import("./pretrain.ts")).runPretrain,
  "lr-finetune": async () => (await import("./finetune.ts")).runFinetune,
  "lr-eval": async () => (await import("./eval.ts")).runEval,
  "choose-lr": async () => (await import("./choose_lr.ts")).runChooseLr,
  finetune: async () => (await import("./finetune.ts")).runFinetune,
  eval: async () => (await import("./eval.ts")).runEval,
  report: async () => {
    const { runReport } = await import("./report.ts");
    return (stage, out, ctx, extra) => {
      if (!extra) throw new Error("the report stage runs in the main process");
      return runReport(stage, out, ctx, extra);
    };
  },
};

/** The producer of `stage`'s kind (the one place a stage's kind and its function meet). */
async function producerOf<K extends StageKind>(stage: ResolvedStage<K>): Promise<Produce<K>> {
  return await (PRODUCERS[stage.kind as K] as () => Promise<Produce<K>>)();
}

/** Run one stage and store its outputs under its key. */
export async function runStage(
  stage: ResolvedStage,
  ctx: StageContext,
  extra?: ReportExtra,
): Promise<Manifest> {
  // One process computes a key; others wait on the lock and then find it cached.
  return await ctx.cache.withLock(stage.key, async () => {
    if (await ctx.cache.has(stage.key)) {
      ctx.onReuse?.();
      return await ctx.cache.manifest(stage.key);
    }
    const produce = await producerOf(stage);
    return await ctx.cache.write(
      stage.key,
      {
        stage: stage.id,
        kind: stage.kind,
        params: stage.params,
        inputs: stage.inputKeys,
        codeVersion: stage.codeVersion,
      },
      (out) => produce(stage, out, ctx, extra),
    );
  });
}
