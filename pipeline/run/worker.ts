/**
 * Runs one stage in its own process: `deno run <STAGE_PERMISSIONS> pipeline/run/worker.ts <descriptor.json>` (executors/executor.ts).
 * Independent stages run in parallel this way (tfjs-wasm threads do not start under Deno).
 * On failure the message goes to `<descriptor>.error` for the runner to report; the ids of
 * stages another process had computed go to `<descriptor>.reused`, one a line.
 */
import { Cache } from "../cache/store.ts";
import { DEBUG_ENV } from "../lib/cli.ts";
import type { ResolvedStage } from "./plan.ts";
import { runStage, runStageGroup } from "../stages/mod.ts";

/** What the runner hands a worker. */
export interface WorkerDescriptor {
  /** The stage (a stack's first). */
  stage: ResolvedStage;
  /** Fine-tunes to train together on one stacked trainer (./stacking.ts), `stage` among them. */
  stack?: ResolvedStage<"finetune" | "lr-finetune">[];
  cacheRoot: string;
  experiment: string;
}

if (import.meta.main) {
  const path = Deno.args[0];
  if (!path) {
    console.error(
      "usage: deno run --allow-read --allow-write --allow-env --allow-sys --allow-ffi pipeline/run/worker.ts <descriptor.json>",
    );
    Deno.exit(2);
  }
  const descriptor: WorkerDescriptor = JSON.parse(await Deno.readTextFile(path));
  try {
    const ctx = { cache: new Cache(descriptor.cacheRoot), experiment: descriptor.experiment };
    if (descriptor.stack) {
      const reused = await runStageGroup(descriptor.stack, ctx);
      if (reused.length > 0) await Deno.writeTextFile(`${path}.reused`, reused.join("\n"));
    } else {
      await runStage(descriptor.stage, {
        ...ctx,
        onReuse: () => Deno.writeTextFileSync(`${path}.reused`, descriptor.stage.id),
      });
    }
  } catch (e) {
    // The message is what the runner prints; the stack trace only when asked for.
    const debug = Deno.env.get(DEBUG_ENV) === "1";
    const message = e instanceof Error ? ((debug ? e.stack : undefined) ?? e.message) : String(e);
    await Deno.writeTextFile(`${path}.error`, message);
    Deno.exit(1);
  }
  Deno.exit(0);
}
