/**
 * Runs one stage in its own process: `deno run <STAGE_PERMISSIONS> pipeline/run/worker.ts <descriptor.json>` (executors/executor.ts).
 * Independent stages run in parallel this way (tfjs-wasm threads do not start under Deno).
 * On failure the message goes to `<descriptor>.error` for the runner to report.
 */
import { Cache } from "../cache/store.ts";
import { DEBUG_ENV } from "../lib/cli.ts";
import type { ResolvedStage } from "./plan.ts";
import { runStage } from "../stages/mod.ts";

/** What the runner hands a worker. */
export interface WorkerDescriptor {
  stage: ResolvedStage;
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
    await runStage(descriptor.stage, {
      cache: new Cache(descriptor.cacheRoot),
      experiment: descriptor.experiment,
      onReuse: () => Deno.writeTextFileSync(`${path}.reused`, ""),
    });
  } catch (e) {
    // The message is what the runner prints; the stack trace only when asked for.
    const debug = Deno.env.get(DEBUG_ENV) === "1";
    const message = e instanceof Error ? ((debug ? e.stack : undefined) ?? e.message) : String(e);
    await Deno.writeTextFile(`${path}.error`, message);
    Deno.exit(1);
  }
  Deno.exit(0);
}
