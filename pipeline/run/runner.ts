/**
 * The runner: plan a spec, skip what the cache has, run the rest (independent stages in
 * parallel worker processes), then publish the report to `reports/<name>/`.
 */
import { type Provenance, provenance } from "../lib/provenance.ts";
import { liveMetricsPath } from "../train/live_metrics.ts";
import { dirname } from "node:path";
import { vocabularyLines } from "./vocabulary.ts";
import type { ReportParams } from "../stages/types.ts";
import { isNotWritable, SetupError, UsageError } from "../lib/cli.ts";
import { replaceFolderAtomic, writeJsonAtomic } from "../lib/atomic.ts";
import type { Cache } from "../cache/store.ts";
import { holdExperimentLock } from "../cache/lock.ts";
import { gpuEnvironment } from "../kernels/gpu_env.ts";
import {
  AUTO_BACKEND_ENV,
  BACKEND_REASON_ENV,
  calibrationModel,
  childDeps,
  type ChoiceDeps,
  chooseAutoBackend,
} from "./backend_choice.ts";
import { buildPlan, type ResolvedStage, resolvePlan, stageStatus } from "./plan.ts";
import type { Spec } from "../spec/types.ts";
import { REPORT_SOURCE, reportSource, RUNS_SUFFIX, writeReportsIndex } from "../report/mod.ts";
import { runStage } from "../stages/mod.ts";
import { launches, stackingEnabled, stackKey } from "./stacking.ts";
import type { WorkerDescriptor } from "./worker.ts";
import type { Executor } from "./executors/executor.ts";
import { LocalExecutor } from "./executors/local.ts";

/** How to run an experiment. */
export interface RunOptions {
  cache: Cache;
  /** Folder that receives `<name>/` with the report. */
  reportsDir: string;
  dryRun?: boolean;
  /** Stage ids or id prefixes to recompute even if cached ("finetune:klal", "eval"). */
  force?: string[];
  /** Parallel worker processes (default: number of cores). */
  jobs?: number;
  /** Where progress lines go (default: stdout). */
  log?: (line: string) => void;
  /** How stages run (default: local worker processes). */
  executor?: Executor;
  /**
   * The spec file the run was started from (absolute), recorded as `source.json` in the
   * published report so that a later run of another file with the same `name:` says so.
   */
  specFile?: string;
  /** Adapter probe and timing for `backend: auto` (default: child processes; tests inject). */
  backendChoice?: ChoiceDeps;
  /**
   * After a stage fails, go on running every stage that does not need it (`--keep-going`);
   * the run still fails, naming every failure and what could not run.
   */
  keepGoing?: boolean;
  /** The command line, recorded with the run's provenance in the published results.json. */
  argv?: string[];
}

/** One stage of a dry run's plan (`--dry-run --json` prints these). */
export interface DryRunStage {
  id: string;
  kind: string;
  key: string;
  cached: boolean;
  /** "cached", or why it would run ("run (params changed: train.lr)", "run (forced)"). */
  reason: string;
  inputs: Record<string, string>;
}

/** What a run did. */
export interface RunSummary {
  stages: { id: string; key: string; status: "cached" | "ran"; seconds: number }[];
  reportDir?: string;
  /** Cache key of the report entry (its table.md is what was published). */
  reportKey?: string;
  /** The resolved plan and what each stage did (for sweep reports). */
  plan: ResolvedStage[];
  statuses: Map<string, { status: "cached" | "ran"; seconds: number }>;
  /** A dry run: each stage's key, whether it is cached, and why it would run. */
  dryRun?: DryRunStage[];
}

/** A stage failed; the message names it. */
export class StageFailure extends Error {}

/** True when `id` is selected by a --force pattern (exact id or a `:`-separated prefix). */
export function matchesForce(id: string, patterns: string[]): boolean {
  return patterns.some((p) => id === p || id.startsWith(`${p}:`) || p === "all");
}

/**
 * The stages `--force` recomputes, each with why: those the patterns name, and every stage
 * that reads one of them, directly or not (their keys stay the same, so without this they
 * would be served results built on the old output). `plan` lists inputs before consumers.
 */
export function forcedStages(
  plan: readonly { id: string; inputs: Record<string, string> }[],
  patterns: string[],
): Map<string, string> {
  const forced = new Map<string, string>();
  if (patterns.length === 0) return forced;
  for (const stage of plan) {
    if (matchesForce(stage.id, patterns)) forced.set(stage.id, "forced");
    else {
      const input = Object.values(stage.inputs).find((id) => forced.has(id));
      if (input) forced.set(stage.id, `forced: reads ${input}`);
    }
  }
  return forced;
}

/** Plan, run and report one experiment. Throws StageFailure when a stage fails. */
export async function runExperiment(spec: Spec, options: RunOptions): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const { cache } = options;
  const started = provenance(options.argv ?? []);
  const digests = cache.fileDigests();
  const plan = await resolvePlan(buildPlan(spec), { digests });
  const force = options.force ?? [];
  const unknownForce = force.filter((p) => !plan.some((s) => matchesForce(s.id, [p])));
  if (unknownForce.length > 0) {
    throw new UsageError(
      `--force ${unknownForce.join(", ")} matches no stage; stages: ${
        plan.map((s) => s.id).join(", ")
      }`,
    );
  }
  const forced = forcedStages(plan, force);

  const inCache = (what: string) => ({ what, folder: `cache folder ${cache.root}` });
  await mainStep(inCache("preparing the cache"), async () => {
    // A dry run checks the root the same way but writes nothing (not even the marker).
    const found = await cache.prepare({ write: !options.dryRun });
    if (found === "adopted" && !options.dryRun) log(`marked ${cache.root} as a cache`);
    // What planning hashed, remembered for the next plan (never written by a dry run).
    if (!options.dryRun) await digests.save();
  });

  if (options.dryRun) {
    log(`plan for ${spec.name} (${plan.length} stages):`);
    const dryRun: DryRunStage[] = [];
    for (const stage of plan) {
      const entry = await cache.lookup(stage.key);
      const { reason } = entry.state === "corrupted"
        ? { reason: `run (corrupted entry: ${entry.problem})` }
        : await stageStatus(cache, spec.name, stage);
      const why = forced.get(stage.id);
      const shown = why ? `run (${why})` : reason;
      log(`  ${stage.id.padEnd(34)} ${stage.key.slice(0, 12)}  ${shown}`);
      dryRun.push({
        id: stage.id,
        kind: stage.kind,
        key: stage.key,
        cached: shown === "cached",
        reason: shown,
        inputs: stage.inputs,
      });
    }
    return { stages: [], plan, statuses: new Map(), dryRun };
  }

  // Shared with other experiments, exclusive to `cache gc --apply`: gc never deletes the
  // temp folders, job descriptors or not-yet-referenced entries of this run.
  await using _lock = await mainStep(
    inCache("locking the cache"),
    () =>
      holdExperimentLock(
        cache,
        spec.name,
        () => log(`  waiting: cache gc is deleting in ${cache.root}`),
      ),
  );

  const statuses = new Map<string, { status: "cached" | "ran"; seconds: number }>();
  const done = new Set<string>();
  await mainStep(inCache("checking the cached entries"), async () => {
    for (const stage of plan) {
      if (forced.has(stage.id)) await cache.evict(stage.key);
    }
    for (const stage of plan) {
      if ((await cache.lookup(stage.key)).state === "missing") continue;
      // Never serve a damaged entry: its manifest, then every file against its hash.
      const problems = await cache.verify(stage.key);
      if (problems.length > 0) {
        log(
          `  corrupt cache entry of ${stage.id} (${problems.join("; ")}): moved aside, recomputing`,
        );
        await cache.evict(stage.key);
        continue;
      }
      done.add(stage.id);
      statuses.set(stage.id, { status: "cached", seconds: 0 });
    }
  });
  const toRun = plan.filter((s) => !done.has(s.id));
  const workerEnv = gpuWorkerEnv(spec, cache, log);
  // A spec that names webgpu on a machine without an adapter is a bad setup: say so before
  // any stage starts, not at the first one that trains.
  if (spec.backend === "webgpu" && toRun.some((s) => s.kind !== "report")) {
    const adapter = await (options.backendChoice ?? childDeps(workerEnv)).probe();
    if (adapter.available === false) {
      throw new SetupError(
        `backend webgpu is not available on this machine (${adapter.description}); ` +
          'use "auto", "wasm" or "cpu"',
      );
    }
  }
  // `auto` is decided once here, so every stage runs on the same backend; the choice travels
  // in the environment and never enters stage params or cache keys.
  if (spec.backend === "auto" && toRun.some((s) => s.kind !== "report")) {
    const choice = await chooseAutoBackend(
      cache.root,
      calibrationModel(spec),
      options.backendChoice ?? childDeps(workerEnv),
    );
    if (choice) {
      Object.assign(workerEnv, {
        [AUTO_BACKEND_ENV]: choice.backend,
        [BACKEND_REASON_ENV]: choice.reason,
      });
      if (choice.source !== "no-gpu") log(`  backend ${choice.backend} (${choice.reason})`);
    }
  }
  const executor = options.executor ?? new LocalExecutor(workerEnv);
  log(
    `${spec.name}: ${plan.length} stages, ${plan.length - toRun.length} cached, ` +
      `${toRun.length} to run`,
  );
  const words = plan.find((s) => s.kind === "report")?.params as ReportParams | undefined;
  if (words?.vocabulary) { for (const line of vocabularyLines(words.vocabulary)) log(line); }
  if (toRun.some((s) => s.kind === "pretrain" || s.kind.endsWith("finetune"))) {
    log(
      `  live metrics: ${dirname(liveMetricsPath(cache.root, spec.name, "x"))}/ ` +
        "(one .jsonl per training stage while it runs; follow one with tail -f)",
    );
  }

  const jobs = Math.max(1, options.jobs ?? navigator.hardwareConcurrency ?? 1);
  const running = new Map<string, Promise<void>>();
  /** The workers running (a stack is one worker for several stages). */
  const workers = new Set<Promise<void>>();
  const failures: string[] = [];
  const workerStages = toRun.filter((s) => s.kind !== "report");
  const parallel = jobs > 1 && workerStages.length > 1;

  // On WebGPU, fine-tunes that share shapes train together in one worker (./stacking.ts).
  const workerBackend = spec.backend === "auto"
    ? workerEnv[AUTO_BACKEND_ENV] ?? "auto"
    : spec.backend;
  const stacking = stackingEnabled(workerBackend);
  const keyOf = (stage: ResolvedStage) => stacking ? stackKey(stage) : undefined;

  /** Start one worker on `group` (one stage, or a stack of fine-tunes). */
  const launch = (group: ResolvedStage[]) => {
    const stacked = group.length > 1;
    for (const stage of group) {
      log(`  run  ${stage.id} (${stage.key.slice(0, 12)})${stacked ? " (stacked)" : ""}`);
    }
    if (stacked) log(`  stack of ${group.length} fine-tunes on one WebGPU trainer`);
    const started = performance.now();
    const promise = runInWorker(executor, group, cache, spec.name, parallel).then(
      (reused) => {
        const seconds = (performance.now() - started) / 1000;
        for (const stage of group) {
          const cached = reused.has(stage.id);
          statuses.set(stage.id, { status: cached ? "cached" : "ran", seconds });
          done.add(stage.id);
          log(
            cached
              ? `  done ${stage.id}: another process computed it (waited ${seconds.toFixed(1)} s)`
              : `  done ${stage.id} in ${seconds.toFixed(1)} s`,
          );
        }
      },
      (e) => {
        for (const stage of group) {
          failures.push(`stage ${stage.id} failed: ${(e as Error).message}`);
          failed.add(stage.id);
          if (options.keepGoing) {
            log(`  FAIL ${stage.id} (going on with the stages that do not need it)`);
          }
        }
      },
    ).finally(() => {
      for (const stage of group) running.delete(stage.id);
      workers.delete(promise);
    });
    for (const stage of group) running.set(stage.id, promise);
    workers.add(promise);
  };

  // Without keepGoing the first failure stops new launches; with it, every stage that does
  // not need a failed one still runs, and those that do are listed as not run.
  const failed = new Set<string>();
  const blocked = new Map<string, string>(); // stage id -> the failed stage it needs
  while (options.keepGoing || failures.length === 0) {
    const pending = workerStages.filter((s) =>
      !done.has(s.id) && !running.has(s.id) && !failed.has(s.id) && !blocked.has(s.id)
    );
    for (const s of pending) {
      const needs = Object.values(s.inputs).find((id) => failed.has(id) || blocked.has(id));
      if (needs) blocked.set(s.id, failed.has(needs) ? needs : blocked.get(needs)!);
    }
    const open = pending.filter((s) => !blocked.has(s.id));
    if (open.length === 0 && running.size === 0) break;
    const ready = open.filter((s) => Object.values(s.inputs).every((id) => done.has(id)));
    for (const group of launches(ready, open, jobs - workers.size, workers.size > 0, keyOf)) {
      launch(group);
    }
    // (The plan is in dependency order, so one pass above marked every stage downstream of a
    // failure: what is open has inputs that are done, running or open.)
    if (workers.size === 0) throw new Error("stage graph has a cycle or a missing input");
    await Promise.race(workers);
  }
  await Promise.allSettled(workers);
  if (failures.length > 0) {
    if (blocked.size > 0) {
      const ids = [...blocked.keys()];
      failures.push(
        `not run, ${ids.length} stage(s) that need a failed one: ${ids.slice(0, 8).join(", ")}${
          ids.length > 8 ? ", ..." : ""
        }`,
      );
    }
    if (options.keepGoing) {
      const ran = [...statuses.values()].filter((s) => s.status === "ran").length;
      failures.push(`finished ${ran} stage(s); their results are cached, the report was not made`);
    }
    throw new StageFailure(failures.join("\n"));
  }

  const report = plan.find((s) => s.kind === "report")!;
  if (!done.has(report.id)) {
    const started = performance.now();
    await mainStep(
      inCache(`stage ${report.id}`),
      () => runStage(report, { cache, experiment: spec.name }, { stages: plan, statuses }),
    );
    statuses.set(report.id, { status: "ran", seconds: (performance.now() - started) / 1000 });
    log(`  done report`);
  }
  await mainStep(inCache("recording the run in refs/"), async () => {
    for (const stage of plan) {
      await cache.writeRef(spec.name, stage.id, {
        key: stage.key,
        params: stage.params,
        inputs: stage.inputKeys,
        codeVersion: stage.codeVersion,
      });
    }
  });
  const reportDir = `${options.reportsDir}/${spec.name}`;
  // Two runs of one spec may finish together: publish one at a time.
  await mainStep(
    {
      what: `publishing the report to ${reportDir}`,
      folder: `reports folder ${options.reportsDir}`,
    },
    () =>
      cache.withLock(`publish-${spec.name}`, async () => {
        const previous = await reportSource(reportDir);
        if (previous && options.specFile && previous !== options.specFile) {
          log(
            `  note: ${reportDir} was made from ${previous}; it now holds the report of ` +
              `${options.specFile} (both specs are named ${spec.name})`,
          );
        }
        await publishReport(cache, report.key, reportDir, options.specFile, await started);
        await writeReportsIndex(options.reportsDir);
      }),
  );
  return {
    stages: plan.map((s) => ({ id: s.id, key: s.key, ...statuses.get(s.id)! })),
    reportDir,
    reportKey: report.key,
    plan,
    statuses,
  };
}

/**
 * Run one step of the main process (`what`), its failures reported as a stage's are: a
 * StageFailure "<what> failed: <message>" (exit 1), or a SetupError "<folder> is read-only"
 * when the OS refused a write there (exit 2). The runner's own errors pass through.
 */
async function mainStep<T>(
  step: { what: string; folder: string },
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StageFailure || e instanceof UsageError || e instanceof SetupError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    if (isNotWritable(e)) {
      throw new SetupError(`${step.folder} is read-only (${step.what}: ${message})`, {
        cause: e,
      });
    }
    throw new StageFailure(`${step.what} failed: ${message}`, { cause: e });
  }
}

/**
 * Environment that lets worker processes see an NVIDIA GPU through WebGPU, when the spec
 * may use it (backend auto or webgpu) and the machine has one; otherwise nothing, with the
 * reason passed on so a `webgpu` backend can say what is missing.
 */
function gpuWorkerEnv(
  spec: Spec,
  cache: Cache,
  log: (line: string) => void,
): Record<string, string> {
  if (spec.backend !== "auto" && spec.backend !== "webgpu") return {};
  if (Deno.env.get("VK_ICD_FILENAMES")) return {}; // the user configured Vulkan already
  const gpu = gpuEnvironment(`${cache.root}/gpu`);
  if (!gpu.ready) return { KLAL_GPU_SETUP: gpu.reason };
  log(`  GPU: NVIDIA driver in ${gpu.driverDir}; workers get VK_ICD_FILENAMES=${gpu.icdFile}`);
  return gpu.env;
}

/** A usage problem found after parsing (exit status 2). */
export { UsageError };
export type { Executor } from "./executors/executor.ts";
export { WORKER_PATH } from "./executors/executor.ts";
export { LocalExecutor };

/** Run `group` (a stage, or a stack of fine-tunes) in one worker; the ids found cached. */
async function runInWorker(
  executor: Executor,
  group: ResolvedStage[],
  cache: Cache,
  experiment: string,
  plainProgress: boolean,
): Promise<Set<string>> {
  // Descriptors live in the cache (a shared path on a cluster), so any node can read them.
  await Deno.mkdir(`${cache.root}/jobs`, { recursive: true });
  const path = `${cache.root}/jobs/stage-${crypto.randomUUID()}.json`;
  const stage = group[0];
  const descriptor: WorkerDescriptor = {
    stage,
    ...(group.length > 1 ? { stack: group as ResolvedStage<"finetune" | "lr-finetune">[] } : {}),
    cacheRoot: cache.root,
    experiment,
  };
  await writeJsonAtomic(path, descriptor, 0);
  try {
    await executor.run(stage, path, { plainProgress });
    const reused = await Deno.readTextFile(`${path}.reused`).catch(() => "");
    return new Set(reused.split("\n").filter((id) => id !== ""));
  } finally {
    await Deno.remove(path).catch(() => {});
    await Deno.remove(`${path}.error`).catch(() => {});
    await Deno.remove(`${path}.reused`).catch(() => {});
  }
}

/** Runs of one experiment kept in its history folder (the oldest beyond it are removed). */
export const RUNS_KEPT = 20;

/**
 * A run's id: its start time (UTC, to the second) and the first 8 hex digits of its report's
 * key, e.g. `20261207-110235-3fa2b1c9`; ids sort by time.
 */
export function runId(startedAt: string, reportKey: string): string {
  const stamp = startedAt.replace(/\.\d+Z$/, "").replace(/[-:]/g, "").replace("T", "-");
  return `${stamp}-${reportKey.slice(0, 8)}`;
}

/**
 * Copy a report entry to `dir` atomically (a temporary folder swapped in for the old one),
 * with `source.json` naming the spec file when it is known; with the run's provenance, the same copy also goes to the experiment's history,
 * `<dir>.runs/<run id>/` (RUNS_KEPT newest kept).
 */
async function publishReport(
  cache: Cache,
  key: string,
  dir: string,
  specFile?: string,
  run?: Provenance,
): Promise<void> {
  const names = Object.keys((await cache.manifest(key)).files);
  const fill = async (temp: string) => {
    for (const name of names) {
      if (name.includes("/")) {
        await Deno.mkdir(`${temp}/${name.slice(0, name.lastIndexOf("/"))}`, { recursive: true });
      }
      const bytes = await cache.readBytes(key, name);
      if (name === "results.json" && run) {
        // The run that published it (commit, dirty tree, argv, host, versions): not part of
        // the cached entry, whose key covers only what the numbers depend on.
        const results = JSON.parse(new TextDecoder().decode(bytes));
        await Deno.writeTextFile(
          `${temp}/${name}`,
          JSON.stringify({ ...results, run }, null, 2) + "\n",
        );
        continue;
      }
      await Deno.writeFile(`${temp}/${name}`, bytes);
    }
    if (specFile) {
      await Deno.writeTextFile(
        `${temp}/${REPORT_SOURCE}`,
        JSON.stringify({ spec: specFile }) + "\n",
      );
    }
  };
  await replaceFolderAtomic(dir, fill);
  if (!run) return;
  const history = `${dir}${RUNS_SUFFIX}`;
  await replaceFolderAtomic(`${history}/${runId(run.startedAt, key)}`, fill);
  const ids = [];
  for await (const e of Deno.readDir(history)) {
    if (e.isDirectory && !/\.(tmp|old)-/.test(e.name)) ids.push(e.name);
  }
  for (const old of ids.sort().reverse().slice(RUNS_KEPT)) {
    await Deno.remove(`${history}/${old}`, { recursive: true });
  }
}
