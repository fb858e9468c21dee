/**
 * Turns a spec into the stage graph and resolves every stage's cache key.
 *
 *   data(task, split, seed) -> pretrain(base) -> finetune(arm, seed) -> eval(arm, seed) -> report
 *
 * With train.lr_grid, each fine-tuned arm first has a trial per learning rate on the first
 * seed (lr-finetune, evaluated on the validation set by lr-eval) and a choose-lr stage whose
 * choice every fine-tune of the arm takes as an input; with base.seed: run or a list of Base
 * seeds, one pretrain stage per Base (pretrain:s<base seed>) that its seeds' stages start from
 * (../spec/bases.ts).
 *
 * A key is the SHA-256 of canonical JSON of the stage's own params, its inputs' keys and
 * the code version of the stage: a hash of the import closure of the module that runs its
 * kind (../cache/code_version.ts), plus, for a stage that names a task, the task's own module and
 * its `version`. So an edit to a task's generator invalidates that task's data and what
 * follows it, nothing else, and an edit to report code leaves data and checkpoints alone.
 */
import { PRETRAIN_TASK, TASKS, vocabularyOf } from "../../tasks/registry.ts";
import { mixVocabulary } from "../../tasks/pretrain_mix.ts";
import { seedFrom } from "../lib/rng.ts";
import { type Cache, stageKey } from "../cache/store.ts";
import { FileDigests } from "../lib/file_digest.ts";
import { codeVersion } from "../cache/code_version.ts";
import type { ArmSpec, Spec } from "../spec/types.ts";
import { baseOfSeed, baseSeeds } from "../spec/bases.ts";
import {
  type DataParams,
  type EvalParams,
  finetuneLayers,
  type FinetuneParams,
  type PretrainParams,
  type ReportParams,
  type ResolvedStage,
  type Stage,
  type StageKind,
  type TrainParams,
} from "../stages/types.ts";
import { taskModulePath } from "../stages/_common.ts";
import { projectUrl } from "../lib/paths.ts";
import { UsageError } from "../lib/cli.ts";
import { dataVocabulary } from "./vocabulary.ts";

export type { ResolvedStage, Stage, StageKind } from "../stages/types.ts";

/** The module that runs each kind of stage: its import closure is the kind's code. */
export const STAGE_MODULES: Readonly<Record<StageKind, string>> = {
  data: "pipeline/stages/data.ts",
  pretrain: "pipeline/stages/pretrain.ts",
  "lr-finetune": "pipeline/stages/finetune.ts",
  "lr-eval": "pipeline/stages/eval.ts",
  "choose-lr": "pipeline/stages/choose_lr.ts",
  finetune: "pipeline/stages/finetune.ts",
  eval: "pipeline/stages/eval.ts",
  report: "pipeline/stages/report.ts",
};

const taskModules = new Map<string, Promise<string>>();

/**
 * Root-relative path of the module that defines task `name` (the one the stages load it from,
 * ../stages/_common.ts), checked to export the task the registry holds under that name.
 */
function taskModule(name: string): Promise<string> {
  let path = taskModules.get(name);
  if (!path) {
    path = (async () => {
      const task = name === PRETRAIN_TASK.name ? PRETRAIN_TASK : TASKS[name];
      if (!task) throw new Error(`unknown task ${name}`);
      const file = taskModulePath(name);
      const module = await import(projectUrl(file).href);
      if (!Object.values(module).includes(task)) {
        throw new Error(`task ${name}: ${file} does not export the task the registry holds`);
      }
      return file;
    })();
    taskModules.set(name, path);
  }
  return path;
}

/**
 * What a stage's code version covers: the module that runs its kind and, for a stage whose
 * params name a task (data, finetune, eval), the task's own module, which the stage loads by
 * name and so is outside the first module's closure, and the task's declared `version`.
 */
export async function stageCode(stage: Stage): Promise<{ modules: string[]; extra: string[] }> {
  const modules = [STAGE_MODULES[stage.kind]];
  const extra: string[] = [];
  const name = "task" in stage.params ? stage.params.task : undefined;
  if (typeof name === "string") {
    modules.push(await taskModule(name));
    const task = name === PRETRAIN_TASK.name ? PRETRAIN_TASK : TASKS[name];
    extra.push(`task ${name} version ${task.version}`);
  }
  return { modules, extra };
}

/**
 * Every word the model's vocabulary holds: all registered tasks plus the pretraining mix's
 * kinds in use (`base.mix.kinds`; every kind when not given).
 */
export function modelVocabulary(mixKinds?: readonly string[]): string[] {
  const mix = mixKinds === undefined ? PRETRAIN_TASK.vocabulary : mixVocabulary(mixKinds);
  return [...new Set([...vocabularyOf(Object.values(TASKS)), ...mix])].sort();
}

/** Held-out mix samples per kind the Base is scored on (`skills.json` of its stage). */
export const HELD_OUT_PER_KIND = 100;

/** Id of the Base checkpoint that seed `seed`'s fine-tunes start from (one of several: by seed). */
export function pretrainId(spec: Spec, seed: number): string {
  return typeof spec.base.seed === "number" ? "pretrain" : `pretrain:s${baseOfSeed(spec, seed)}`;
}

/** A learning rate as it appears in stage ids: `lr0.001`, `lr1e-7`. */
export function lrLabel(lr: number): string {
  return `lr${lr}`;
}

/** The stage graph of a spec (keys not yet resolved). */
export function buildPlan(spec: Spec): Stage[] {
  const stages: Stage[] = [];
  const task = spec.task;
  const imageSize = task.image_size;
  const patchSize = spec.model.patch_size;
  const mixKinds = (spec.base.mix as { kinds?: string[] }).kinds;
  const modelParams = { ...spec.model, vocabulary: modelVocabulary(mixKinds ?? []) };

  // One Base for every seed, or one per Base seed (base.seed: run, or a list of Base seeds).
  for (const seed of baseSeeds(spec)) {
    const pretrainData: Stage<"data"> = {
      id: `data:${PRETRAIN_TASK.name}:train:s${seed}`,
      kind: "data",
      params: {
        task: PRETRAIN_TASK.name,
        split: "train",
        seed,
        n: spec.base.train,
        image_size: imageSize,
        patch_size: patchSize,
        task_params: { ...PRETRAIN_TASK.defaultParams, ...spec.base.mix },
      } satisfies DataParams,
      inputs: {},
    };
    stages.push(pretrainData);
    // Held-out mix samples (a seed of their own, never trained on): what the Base learned of
    // each kind, beside the kind's floor.
    const kinds = mixKinds ?? PRETRAIN_TASK.defaultParams.kinds as string[];
    const heldout: Stage<"data"> = {
      ...pretrainData,
      id: `data:${PRETRAIN_TASK.name}:val:s${seed}`,
      params: {
        ...pretrainData.params,
        split: "val",
        seed: seedFrom(PRETRAIN_TASK.name, "held-out", seed),
        n: HELD_OUT_PER_KIND * kinds.length,
      },
    };
    stages.push(heldout);
    stages.push({
      id: typeof spec.base.seed === "number" ? "pretrain" : `pretrain:s${seed}`,
      kind: "pretrain",
      // The mix is in the data's key (an input); keep it out of this stage's own params.
      params: {
        model: modelParams,
        // lambda only when set, so the keys of NTP-pretrained Bases stay what they were.
        base: { ...spec.base, mix: undefined, lambda: spec.base.lambda || undefined, seed },
        backend: spec.backend,
      },
      inputs: { data: pretrainData.id, heldout: heldout.id },
    });
  }

  // Learning curves and the choice of learning rate are measured on a validation set, never
  // on the test set: from test_seed + 1 for generated data; for real data, rows of the
  // training file held out of training (`holdout`: the same rows whatever the seed).
  const lrGrid = spec.train.lr_grid;
  const finetuned = Object.values(spec.arms).some((arm) => arm.finetune);
  const needsVal = spec.train.eval_every > 0 || (lrGrid.length > 0 && finetuned);
  // Validation from its own file when the spec names one, else rows held out of training.
  const sourceOf = (split: "train" | "val" | "test") =>
    split === "test"
      ? task.source?.test
      : split === "val"
      ? task.source?.val ?? task.source?.train
      : task.source?.train;
  const holdout = needsVal && task.source?.train && !task.source.val
    ? spec.train.eval_samples
    : undefined;
  const dataStage = (
    split: DataParams["split"],
    seed: number,
    n: number | "all",
    testSet?: string,
  ): Stage<"data"> => {
    const source = testSet ? task.source?.tests?.[testSet] : sourceOf(split);
    return {
      id: `data:${task.name}:${split}${testSet ? `:${testSet}` : ""}:s${seed}`,
      kind: "data",
      params: {
        task: task.name,
        split,
        seed,
        n,
        image_size: imageSize,
        patch_size: patchSize,
        task_params: task.params,
        ...(source ? { source } : {}),
        ...(split !== "test" && holdout !== undefined ? { holdout } : {}),
      } satisfies DataParams,
      inputs: {},
    };
  };
  // Real data: subsets are drawn with the spec's subset seed, the same for every fine-tune.
  const testData = dataStage(
    "test",
    task.source?.test ? task.subset_seed : task.test_seed,
    task.test,
  );
  stages.push(testData);
  // Further test sets (task.source.tests): the same trainings, evaluated on each.
  const moreTests = Object.keys(task.source?.tests ?? {}).map((name) => {
    const data = dataStage("test", task.subset_seed, task.test, name);
    stages.push(data);
    return { name, data: data.id };
  });
  const valData = needsVal
    ? dataStage(
      "val",
      task.source?.val || task.source?.train ? task.subset_seed : task.test_seed + 1,
      spec.train.eval_samples,
    )
    : undefined;
  if (valData) stages.push(valData);
  // The curves: only when asked for (the validation set's key stays out of the others').
  const curveInput: Record<string, string> = spec.train.eval_every > 0 && valData
    ? { val: valData.id }
    : {};

  const evalParams: EvalParams = {
    task: task.name,
    batch_size: spec.eval.batch_size,
    backend: spec.backend,
  };
  const evalStage = (id: string, model: string, arm: string, seed?: number): Stage<"eval"> => ({
    id,
    kind: "eval",
    params: evalParams,
    inputs: { model, data: testData.id },
    arm,
    seed,
  });
  // An evaluation on the main test set, then one on each further test set.
  const pushEvals = (id: string, model: string, arm: string, seed?: number) => {
    const main = evalStage(id, model, arm, seed);
    stages.push(main);
    evals.push(main.id);
    for (const t of moreTests) {
      const e: Stage<"eval"> = {
        ...main,
        id: `${id}:${t.name}`,
        inputs: { model, data: t.data },
        testSet: t.name,
      };
      stages.push(e);
      evals.push(e.id);
    }
  };

  const evals: string[] = [];
  const finetunes: string[] = [];
  const choices: string[] = [];
  // Ids of the training data stages planned so far: a set, so planning stays linear in seeds.
  const trainData = new Set<string>();
  const trainDataId = (fineTuneSeed: number) => {
    const seed = task.source?.train ? task.subset_seed : fineTuneSeed;
    const id = `data:${task.name}:train:s${seed}`;
    if (!trainData.has(id)) {
      trainData.add(id);
      stages.push(dataStage("train", seed, task.train));
    }
    return id;
  };
  // How often to checkpoint does not change the result: keep it out of the key; nor does the
  // grid of learning rates when there is none (the keys of runs without one stay as they were).
  const trainParams = (lr?: number): TrainParams => ({
    ...spec.train,
    checkpoint_every: undefined,
    lr_grid: undefined,
    ...(lr === undefined ? {} : { lr }),
  });
  const finetuneParams = (armSpec: ArmSpec, seed: number, train: TrainParams): FinetuneParams => ({
    task: task.name,
    train,
    lambda: armSpec.lambda,
    layers: finetuneLayers(armSpec, spec.model.layers),
    // Neither do the maps, the supervision kind or the supervised positions when lambda is 0.
    ...(armSpec.lambda > 0
      ? {
        target: armSpec.target,
        supervision: armSpec.supervision,
        queries: armSpec.queries,
      }
      : {}),
    seed,
    backend: spec.backend,
  });
  const runtime = { checkpoint_every: spec.train.checkpoint_every };

  for (const [arm, armSpec] of Object.entries(spec.arms)) {
    if (!armSpec.finetune) {
      if (spec.base.seed === "run") {
        // One Base per seed: each is evaluated, reported with n = seeds.
        for (const seed of spec.seeds) {
          pushEvals(`eval:${arm}:s${seed}`, pretrainId(spec, seed), arm, seed);
        }
      } else if (Array.isArray(spec.base.seed)) {
        // Several Bases: each is evaluated once, reported with n = Bases, under its own seed.
        for (const base of spec.base.seed) {
          pushEvals(`eval:${arm}:b${base}`, `pretrain:s${base}`, arm, base);
        }
      } else {
        // The Base checkpoint is shared by every seed: one evaluation, reported with n = 1.
        pushEvals(`eval:${arm}`, "pretrain", arm, spec.base.seed);
      }
      continue;
    }
    // train.lr_grid: a fine-tune per rate on the first seed, each evaluated on the validation
    // set; choose-lr picks the rate this arm's fine-tunes take (an input, so in their keys).
    // (A spec stored before arms had seeds holds none: every seed.)
    const armSeeds = Array.isArray(armSpec.seeds) ? armSpec.seeds : spec.seeds;
    let choice: string | undefined;
    if (lrGrid.length > 0 && valData) {
      const seed = armSeeds[0];
      const data = trainDataId(seed);
      const trials: Record<string, string> = {};
      lrGrid.forEach((lr, i) => {
        const trial: Stage<"lr-finetune"> = {
          id: `lr-finetune:${arm}:${lrLabel(lr)}:s${seed}`,
          kind: "lr-finetune",
          params: finetuneParams(armSpec, seed, trainParams(lr)),
          runtime,
          inputs: { base: pretrainId(spec, seed), data, ...curveInput },
          arm,
          seed,
        };
        const validation: Stage<"lr-eval"> = {
          id: `lr-eval:${arm}:${lrLabel(lr)}:s${seed}`,
          kind: "lr-eval",
          params: evalParams,
          inputs: { model: trial.id, data: valData.id },
          arm,
          seed,
        };
        stages.push(trial, validation);
        trials[`trial${i}`] = validation.id;
      });
      choice = `choose-lr:${arm}`;
      stages.push({
        id: choice,
        kind: "choose-lr",
        params: { grid: lrGrid, seed, samples: spec.train.eval_samples },
        inputs: trials,
        arm,
      });
      choices.push(choice);
    }
    for (const seed of armSeeds) {
      const data = trainDataId(seed);
      const finetune: Stage<"finetune"> = {
        id: `finetune:${arm}:s${seed}`,
        kind: "finetune",
        // With a grid the rate comes from the choice (its key is in the inputs').
        params: finetuneParams(
          armSpec,
          seed,
          choice ? { ...trainParams(), lr: undefined } : trainParams(),
        ),
        runtime,
        inputs: {
          base: pretrainId(spec, seed),
          data,
          ...curveInput,
          ...(choice ? { lr: choice } : {}),
        },
        arm,
        seed,
      };
      stages.push(finetune);
      finetunes.push(finetune.id);
      pushEvals(`eval:${arm}:s${seed}`, finetune.id, arm, seed);
    }
  }

  stages.push({
    id: "report",
    kind: "report",
    params: { spec: { ...spec, executor: undefined } }, // where stages ran is not a param
    inputs: Object.fromEntries([...evals, ...finetunes, ...choices].map((id) => [id, id])),
  });
  return stages;
}

/** How resolvePlan hashes files (a memo on path, size and mtime; none: hash every file). */
export interface ResolveOptions {
  digests?: FileDigests;
}

/** Resolve every stage's key, in order (inputs always precede their consumers). */
export async function resolvePlan(
  stages: Stage[],
  options: ResolveOptions = {},
): Promise<ResolvedStage[]> {
  const digests = options.digests ?? new FileDigests();
  const byId = new Map<string, ResolvedStage>();
  // Real data: its prompts' words join every Base's vocabulary (stored in its checkpoint and
  // shared by what starts from it); the report records what each split brought.
  const pretrain = stages.find((s) => s.kind === "pretrain");
  const base = pretrain ? (pretrain.params as PretrainParams).model.vocabulary : [];
  const data = await dataVocabulary(stages, TASKS, base);
  if (data) {
    for (const stage of stages) {
      if (stage.kind === "pretrain") {
        const model = (stage.params as PretrainParams).model;
        model.vocabulary = [...new Set([...model.vocabulary, ...data.words])].sort();
      } else if (stage.kind === "report") {
        (stage.params as ReportParams).vocabulary = data.report;
      }
    }
  }
  for (const stage of stages) {
    const inputKeys: Record<string, string> = {};
    for (const [name, id] of Object.entries(stage.inputs)) {
      const input = byId.get(id);
      if (!input) throw new Error(`stage ${stage.id} needs ${id}, which is not planned before it`);
      inputKeys[name] = input.key;
    }
    const code = await stageCode(stage);
    const version = await codeVersion(code.modules, code.extra);
    if (stage.kind === "data" && stage.params.source) {
      await keySourceFiles(stage.params, digests);
    }
    const key = await stageKey(stage.kind, stage.params, inputKeys, version);
    byId.set(stage.id, { ...stage, key, inputKeys, codeVersion: version });
  }
  return [...byId.values()];
}

/**
 * A real-data stage's files by content, into its params (so into its key): the annotation
 * file, every other file its loader reads (Task.sourceFiles) and every image the annotation
 * file names (Task.images: their count and one digest over their paths and contents). New
 * data, new stage; a missing file is a usage error before anything runs.
 */
async function keySourceFiles(params: DataParams, digests: FileDigests): Promise<void> {
  const source = params.source!;
  params.source_sha256 = await readDigest(digests, source.path, source.path);
  const task = TASKS[params.task];
  const files = task?.sourceFiles?.(source) ?? [];
  if (files.length > 0) {
    params.files_sha256 = Object.fromEntries(
      await Promise.all(
        files.map(async (f) => [f, await readDigest(digests, f, source.path)] as const),
      ),
    );
  }
  if (task?.images) {
    const config = {
      imageSize: params.image_size,
      patchSize: params.patch_size,
      params: params.task_params,
    };
    const paths = await task.images(source, config);
    for (const path of paths) await readDigest(digests, path, source.path);
    params.images = { count: new Set(paths).size, sha256: await digests.digestAll(paths) };
  }
}

/** A file's digest; a missing one is a usage error (exit 2) naming the file that names it. */
async function readDigest(digests: FileDigests, path: string, named: string): Promise<string> {
  try {
    return await digests.digest(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new UsageError(
      path === named ? `${path}: no such file` : `${path}: no such file (named by ${named})`,
    );
  }
}

/** Why a stage will run, DVC-style: "cached", or "run (params changed: train.lr)". */
export async function stageStatus(
  cache: Cache,
  experiment: string,
  stage: ResolvedStage,
): Promise<{ cached: boolean; reason: string }> {
  if (await cache.has(stage.key)) return { cached: true, reason: "cached" };
  const ref = await cache.readRef(experiment, stage.id);
  if (!ref) return { cached: false, reason: "run (new stage)" };
  if (ref.key === stage.key) return { cached: false, reason: "run (missing from cache)" };
  const reasons: string[] = [];
  const changed = diffPaths(ref.params, stage.params);
  if (changed.length > 0) {
    const shown = changed.slice(0, 4).join(", ") + (changed.length > 4 ? ", ..." : "");
    reasons.push(`params changed: ${shown}`);
  }
  const inputs = Object.keys(stage.inputKeys).filter((k) => ref.inputs[k] !== stage.inputKeys[k]);
  if (inputs.length > 0) reasons.push(`input changed: ${inputs.join(", ")}`);
  if (ref.codeVersion !== stage.codeVersion) reasons.push("code changed");
  return { cached: false, reason: `run (${reasons.join("; ") || "key changed"})` };
}

/** Dotted paths whose values differ between two JSON values. */
export function diffPaths(a: unknown, b: unknown, prefix = ""): string[] {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diffPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || "(value)"];
}
