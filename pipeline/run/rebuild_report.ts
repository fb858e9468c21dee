/**
 * Rebuilding a report from the cache, without training: each stage of the experiment's plan
 * is found in the cache (under the key the plan resolves to now, else the key its last run
 * recorded), its results gathered by the stages and written as the report.
 */

import type { Cache } from "../cache/store.ts";
import { buildPlan, type ResolvedStage, resolvePlan } from "./plan.ts";
import type { Spec } from "../spec/types.ts";
import type { ReportParams } from "../stages/types.ts";
import { reportInput } from "../stages/report.ts";
import { writeFileAtomic } from "../lib/atomic.ts";
import { REPORT_SOURCE, writeReport, writeReportsIndex } from "../report/write.ts";
import { lmmsSamplesJsonl, samplesPath } from "../report/samples.ts";

/** NAME is not an experiment the cache knows (exit 2). */
export class UnknownExperiment extends Error {}

/** A stage the report needs has no result in the cache (exit 1). */
export class MissingStage extends Error {}

/** Experiments the cache has refs for, sorted. */
export async function knownExperiments(cache: Cache): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${cache.root}/refs`)) {
      if (entry.isDirectory) names.push(entry.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/**
 * Each non-report stage of `spec`'s plan with a key whose entry is in the cache: the key the
 * plan resolves to now, else the key the last run recorded (code or params changed since:
 * the report shows what was run, and `notes` says so). Throws MissingStage otherwise.
 */
export async function cachedStages(
  cache: Cache,
  name: string,
  spec: Spec,
): Promise<{ stages: ResolvedStage[]; notes: string[] }> {
  const plan = await resolvePlan(buildPlan(spec), { digests: cache.fileDigests() });
  const stages: ResolvedStage[] = [];
  const fromLastRun: string[] = [];
  const missing: string[] = [];
  const damaged: string[] = [];
  for (const stage of plan) {
    if (stage.kind === "report") {
      stages.push(stage);
      continue;
    }
    let key = stage.key;
    if (!(await cache.has(key))) {
      const ref = await cache.readRef(name, stage.id);
      if (!ref || !(await cache.has(ref.key))) {
        missing.push(`${stage.id} (${stage.key.slice(0, 12)})`);
        continue;
      }
      key = ref.key;
      fromLastRun.push(stage.id);
      stages.push({ ...stage, key, inputKeys: ref.inputs, codeVersion: ref.codeVersion });
    } else stages.push(stage);
    // Every entry is checked whole against its manifest before the report reads any of it.
    const problems = await cache.verify(key);
    if (problems.length > 0) {
      damaged.push(`${stage.id} (${key.slice(0, 12)}: ${problems.join("; ")})`);
    }
  }
  if (missing.length > 0) {
    throw new MissingStage(
      `experiment ${name}: the cache has no result for ${missing.join(", ")}; run ` +
        "`deno task experiment` with its spec to compute it",
    );
  }
  if (damaged.length > 0) {
    throw new MissingStage(
      `experiment ${name}: damaged cache entries, not used: ${damaged.join(", ")}; run ` +
        "`deno task experiment` with its spec to recompute them",
    );
  }
  const notes = fromLastRun.length === 0 ? [] : [
    `code or params changed since the last run of ${name} for ${fromLastRun.length} of ` +
    `${plan.length - 1} stages (${fromLastRun.slice(0, 3).join(", ")}${
      fromLastRun.length > 3 ? ", ..." : ""
    }); the report shows that run's cached results. Run \`deno task experiment\` to ` +
    "recompute them with the current code.",
  ];
  return { stages, notes };
}

/**
 * Rebuild `<reportsDir>/<name>/` from the cache; returns the folder and any notes. With
 * `samples`, every evaluation's per-item predictions also go to `samples/` in the shape
 * lmms-eval logs them (../report/samples.ts).
 */
export async function rebuildReport(
  name: string,
  options: { cache: Cache; reportsDir: string; samples?: boolean },
): Promise<{ dir: string; notes: string[] }> {
  const { cache } = options;
  const known = await knownExperiments(cache);
  if (!known.includes(name)) {
    throw new UnknownExperiment(
      `unknown experiment ${JSON.stringify(name)} in ${cache.root}; known: ${
        known.length > 0 ? known.join(", ") : "none (run `deno task experiment` first)"
      }`,
    );
  }
  const ref = await cache.readRef(name, "report");
  const spec = (ref?.params as Partial<ReportParams> | undefined)?.spec;
  if (!spec) {
    throw new MissingStage(
      `experiment ${name} never reached its report stage, so the cache does not hold its ` +
        "resolved spec; run `deno task experiment` with its spec",
    );
  }
  const { stages, notes } = await cachedStages(cache, name, spec);
  const input = await reportInput(spec, stages, cache, new Map());
  const dir = `${options.reportsDir}/${name}`;
  const source = await Deno.readTextFile(`${dir}/${REPORT_SOURCE}`).catch(() => undefined);
  await writeReport(dir, input);
  if (options.samples) notes.push(await writeSamples(cache, stages, dir));
  // The spec file the last run was started from stays recorded beside the rebuilt report.
  if (source !== undefined) await writeFileAtomic(`${dir}/${REPORT_SOURCE}`, source);
  await writeReportsIndex(options.reportsDir);
  return { dir, notes };
}

/** Each eval stage's predictions as lmms-eval samples under `<dir>/samples/`; says how many. */
async function writeSamples(cache: Cache, stages: ResolvedStage[], dir: string): Promise<string> {
  let files = 0;
  let items = 0;
  for (const stage of stages) {
    if (stage.kind !== "eval" || stage.arm === undefined) continue;
    const manifest = await cache.manifest(stage.key);
    if (!manifest.files["predictions.jsonl"]) continue;
    const text = new TextDecoder().decode(await cache.readBytes(stage.key, "predictions.jsonl"));
    const source = { task: stage.params.task, arm: stage.arm, seed: stage.seed ?? 0 };
    const path = `${dir}/${samplesPath(source, stage.testSet)}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const jsonl = await lmmsSamplesJsonl(text, source);
    await writeFileAtomic(path, jsonl);
    files++;
    items += jsonl.split("\n").length - 1;
  }
  return `samples: ${items} items in ${files} files under ${dir}/samples/ (lmms-eval's --log_samples shape)`;
}
