/**
 * Runs a stage: `(inputs from the cache, params, ctx) => files in a new cache entry`. A stage
 * reads its inputs only through the cache, by key.
 *
 * Each kind of stage lives in its own module, whose import closure is the kind's code
 * version (../run/plan.ts, `STAGE_MODULES`):
 *
 *   data.ts      a task's samples (the task's module is loaded by name, ./_common.ts)
 *   pretrain.ts  the Base checkpoint
 *   finetune.ts  one arm and seed, resumable (also the lr-finetune trials of train.lr_grid);
 *                several at once on one stacked WebGPU trainer (`runStageGroup`)
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

/** What a stage's manifest records beside its files. */
function entryMeta(stage: ResolvedStage) {
  return {
    stage: stage.id,
    kind: stage.kind,
    params: stage.params,
    inputs: stage.inputKeys,
    codeVersion: stage.codeVersion,
  };
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
      entryMeta(stage),
      (out) => produce(stage, out, ctx, extra),
    );
  });
}

/**
 * Run several fine-tune stages together (../stages/finetune.ts `runFinetuneGroup`: one
 * stacked WebGPU trainer for those that share shapes), each stored under its own key as
 * `runStage` stores it. Each key's lock is held while the group trains (taken in key order,
 * so two groups never wait on each other in a circle); a key already cached when its lock is
 * taken is left out. Returns the ids of the stages found cached.
 */
export async function runStageGroup(
  stages: ResolvedStage<"finetune" | "lr-finetune">[],
  ctx: StageContext,
): Promise<string[]> {
  const sorted = [...stages].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const reused: string[] = [];
  const outs = new Map<string, EntryWriter>();
  let info = new Map<string, Record<string, unknown>>();
  const nest = async (i: number): Promise<void> => {
    if (i === sorted.length) {
      const todo = sorted.filter((s) => outs.has(s.key));
      if (todo.length === 0) return;
      const { runFinetuneGroup } = await import("./finetune.ts");
      info = await runFinetuneGroup(todo, outs, ctx);
      return;
    }
    const stage = sorted[i];
    await ctx.cache.withLock(stage.key, async () => {
      if (await ctx.cache.has(stage.key)) {
        reused.push(stage.id);
        return await nest(i + 1);
      }
      await ctx.cache.write(stage.key, entryMeta(stage), async (out) => {
        outs.set(stage.key, out);
        await nest(i + 1);
        return info.get(stage.key)!;
      });
    });
  };
  await nest(0);
  return reused;
}
