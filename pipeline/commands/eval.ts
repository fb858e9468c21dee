/**
 * `deno task eval SPEC --arm ARM [--seed S] --images DIR (--labels FILE | --regex RE)
 *                  [--prompt TEXT] [--name LABEL] [key.path=value ...]`
 *
 * Evaluates a trained arm of an experiment on images no one here drew, e.g. a published
 * BlindTest-style line-intersection benchmark. Labels come from a CSV or JSON file
 * (`file,answer`) or from the file names (`--regex`: the first capture group, or the group
 * named `answer`). Images are resized to the model's input. Prints accuracy with its 95%
 * (Wilson) interval and records it under `reports/<name>/external/<label>.json`.
 *
 * Scoring is the task's own: an exact match of the answer text, a point within the task's
 * radius, a box at its IoU (points and boxes in percent, from the answer or the label's
 * `points` / `box`). Where the label gives the target, the attention on it is reported too. A
 * label may carry its image's prompt (a CSV prompt column, or JSON rows with `prompt`).
 *
 * Exit status: 0 done, 1 the arm is not trained yet, 2 bad input.
 */
import {
  helpRequested,
  parseCommand,
  printHelp,
  runCommand,
  UsageError,
  valueOptions,
} from "../lib/cli.ts";
import { writeJsonAtomic } from "../lib/atomic.ts";
import { answerFromName, type Label, LabelsError, readLabels } from "../eval/labels.ts";
import { decodeImage } from "../../tasks/image_io.ts";
import { TASKS } from "../../tasks/registry.ts";
import type { Sample } from "../../tasks/task.ts";
import { initBackend } from "../kernels/backend.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../model/batch.ts";
import { Cache, defaultCacheDir } from "../cache/store.ts";
import { evaluate } from "../eval/evaluate.ts";
import { buildPlan, pretrainId, resolvePlan } from "../run/plan.ts";
import { formatSpecError, loadSpec, SpecError } from "../spec/mod.ts";
import { loadCheckpoint } from "../stages/_checkpoint.ts";
import { wilsonInterval } from "../report/stats.ts";
import { PROJECT_ROOT } from "../lib/paths.ts";
import { MAX_UNKNOWN_RATE, unknownWords } from "../run/vocabulary.ts";
import { nameProblem, pathInside } from "../spec/names.ts";

const ROOT = PROJECT_ROOT;
const USAGE =
  `usage: deno task eval SPEC --arm ARM [--seed S] --images DIR (--labels FILE | --regex RE)
                 [--prompt TEXT] [--name LABEL] [key.path=value ...]

  SPEC               the experiment spec whose trained arm is evaluated (run it first)
  --arm ARM          the arm (a fine-tuned one, or the Base arm)
  --seed S           which fine-tune seed (default: the spec's first)
  --images DIR       a folder of .png/.jpg images (links to files count; other entries are named)
  --labels FILE      file,answer[,prompt] CSV, or JSON rows {file, answer, prompt?, points?, box?}
                     (points and boxes in percent of the image)
  --regex RE         the answer from each file name: group "answer", else the first group
  --prompt TEXT      the question for images whose label has none (default: the task's own)
  --name LABEL       the record's name: reports/<spec name>/external/LABEL.json (default: DIR's)
  --max-unknown R    refuse when more than this share of the prompts' words is unknown to the
                     checkpoint's vocabulary (default 0.05; each unknown word reads as <unk>)
  -h, --help         this text

Scored by the task's own scorer; accuracy with its 95% (Wilson) interval; exit 0 done, 1 the
arm is not trained (or its cache entry is damaged), 2 bad input.`;

/** Bad input: exit 2. */
export class InputError extends Error {}

/** Parsed command line. */
export interface ExternalEvalOptions {
  spec: string;
  arm: string;
  seed?: number;
  images: string;
  labels?: string;
  regex?: RegExp;
  prompt?: string;
  name?: string;
  /** Largest share of unknown prompt words accepted (MAX_UNKNOWN_RATE by default). */
  maxUnknown?: number;
  overrides: string[];
}

/** Parse argv (throws InputError, or UsageError for an unknown option or a missing value). */
export function parseEvalArgs(args: string[]): ExternalEvalOptions {
  const parsed = parseCommand(args, {
    options: valueOptions(
      "arm",
      "seed",
      "images",
      "labels",
      "regex",
      "prompt",
      "name",
      "max-unknown",
    ),
    positionals: { max: Infinity },
  });
  const v = parsed.values as Record<string, string | undefined>;
  const o: Partial<ExternalEvalOptions> & { overrides: string[] } = {
    overrides: [],
    arm: v.arm,
    images: v.images,
    labels: v.labels,
    prompt: v.prompt,
    name: v.name,
  };
  if (v.seed !== undefined) {
    if (!/^\d+$/.test(v.seed)) throw new InputError(`--seed expects an integer, found ${v.seed}`);
    o.seed = Number(v.seed);
  }
  if (v["max-unknown"] !== undefined) {
    const rate = Number(v["max-unknown"]);
    if (!/^\d*\.?\d+$/.test(v["max-unknown"]) || !(rate >= 0 && rate <= 1)) {
      throw new InputError(`--max-unknown expects a share from 0 to 1, found ${v["max-unknown"]}`);
    }
    o.maxUnknown = rate;
  }
  if (v.regex !== undefined) {
    try {
      o.regex = new RegExp(v.regex);
    } catch (e) {
      throw new InputError(`--regex: ${(e as Error).message}`);
    }
  }
  for (const a of parsed.positionals) {
    if (a.includes("=")) o.overrides.push(a);
    else if (!o.spec) o.spec = a;
    else throw new InputError(`expected one spec file, found a second one: ${a}`);
  }
  if (!o.spec) throw new InputError("expected a spec file");
  if (!o.arm) throw new InputError("expected --arm ARM");
  if (!o.images) throw new InputError("expected --images DIR");
  if (!o.labels === !o.regex) throw new InputError("expected exactly one of --labels or --regex");
  recordLabel(o as ExternalEvalOptions); // a bad label is refused before anything is read
  return o as ExternalEvalOptions;
}

/**
 * The label the record is filed under, reports/<name>/external/<label>.json: `--name`, or
 * the images' folder name. Either must be a valid name (pipeline/spec/names.ts); throws InputError.
 */
export function recordLabel(o: Pick<ExternalEvalOptions, "name" | "images">): string {
  const role = "it names the record, reports/<name>/external/<label>.json";
  if (o.name !== undefined) {
    const problem = nameProblem(o.name, role);
    if (problem) {
      throw new InputError(`--name: expected ${problem.expected}, found ${problem.found}`);
    }
    return o.name;
  }
  const folder = o.images.replace(/[\\/]+$/, "").split(/[\\/]/).pop() ?? "";
  const problem = nameProblem(folder, role);
  if (problem) {
    throw new InputError(
      `--images ${o.images}: its folder name cannot label the record (expected ${problem.expected}, ` +
        `found ${problem.found}); give --name LABEL`,
    );
  }
  return folder;
}

/**
 * The images of folder `dir` (sorted names): regular .png/.jpg/.jpeg files and links to them.
 * Every other entry is in `skipped` with the reason, so a caller can name what it leaves out.
 */
export async function imageFiles(dir: string): Promise<{ files: string[]; skipped: string[] }> {
  const files: string[] = [];
  const skipped: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    throw new InputError(`--images ${dir}: ${(e as Error).message}`);
  }
  for (const entry of entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) {
    const name = entry.name;
    let why: string | undefined;
    if (!/\.(png|jpe?g)$/i.test(name)) why = "not .png/.jpg";
    else if (entry.isDirectory) why = "a folder";
    else if (entry.isSymlink) {
      // A link counts as what it points to.
      const target = await Deno.stat(`${dir}/${name}`).catch(() => undefined);
      why = target === undefined
        ? "a broken link"
        : target.isFile
        ? undefined
        : target.isDirectory
        ? "a link to a folder"
        : "a link to something other than a file";
    } else if (!entry.isFile) why = "not a regular file";
    if (why === undefined) files.push(name);
    else skipped.push(`${name} (${why})`);
  }
  return { files, skipped };
}

async function run(o: ExternalEvalOptions): Promise<number> {
  const spec = await loadSpec(o.spec, o.overrides, { tasks: TASKS });
  const task = TASKS[spec.task.name];
  const armSpec = spec.arms[o.arm];
  if (!armSpec) {
    throw new InputError(
      `arm "${o.arm}" is not in ${o.spec}; arms: ${Object.keys(spec.arms).join(", ")}`,
    );
  }
  const seed = o.seed ?? spec.seeds[0];
  const stageId = armSpec.finetune ? `finetune:${o.arm}:s${seed}` : pretrainId(spec, seed);
  const cache = new Cache(defaultCacheDir());
  const plan = await resolvePlan(buildPlan(spec), { digests: cache.fileDigests() });
  const stage = plan.find((s) => s.id === stageId);
  if (!stage) throw new InputError(`no stage ${stageId} (seeds: ${spec.seeds.join(", ")})`);
  if (!(await cache.has(stage.key))) {
    console.error(
      `error: ${stageId} of ${spec.name} is not in the cache: run \`deno task experiment ${o.spec}\` first`,
    );
    return 1;
  }
  // The checkpoint is checked whole against its manifest before a prediction is made.
  const problems = await cache.verify(stage.key);
  if (problems.length > 0) {
    console.error(
      `error: ${stageId} of ${spec.name}: its cache entry ${stage.key.slice(0, 12)} is damaged ` +
        `(${problems.join("; ")}); run \`deno task experiment ${o.spec}\` to recompute it`,
    );
    return 1;
  }

  // Images and their answers.
  const { files, skipped } = await imageFiles(o.images);
  if (skipped.length > 0) {
    console.error(
      `note: ${skipped.length} entr${skipped.length === 1 ? "y" : "ies"} of ${o.images} ` +
        `not scored: ${skipped.join(", ")}`,
    );
  }
  if (files.length === 0) throw new InputError(`--images ${o.images}: no .png/.jpg files`);
  let labels: Map<string, Label> | undefined;
  try {
    labels = o.labels ? await readLabels(o.labels) : undefined;
  } catch (e) {
    if (e instanceof LabelsError) throw new InputError(e.message);
    throw e;
  }
  const missing: string[] = [];
  const rows: Label[] = files.map((f) => {
    const found = labels ? labels.get(f) : answerFromName(f, o.regex!);
    if (found === undefined) missing.push(f);
    return typeof found === "string" ? { answer: found } : found ?? { answer: "" };
  });
  if (missing.length > 0) {
    const how = labels ? `in ${o.labels}` : `matching --regex ${o.regex}`;
    throw new InputError(
      `${missing.length} image(s) have no answer ${how}: ${missing.slice(0, 5).join(", ")}`,
    );
  }
  if (labels) {
    const unused = [...labels.keys()].filter((f) => !files.includes(f));
    if (unused.length > 0) {
      throw new InputError(
        `${o.labels} names ${unused.length} file(s) not in ${o.images}: ${
          unused.slice(0, 5).join(", ")
        }`,
      );
    }
  }

  // The prompt: each label's own, else the one given, else the task's when all its prompts
  // are the same.
  const size = spec.task.image_size;
  const patch = spec.model.patch_size;
  const config = { imageSize: size, patchSize: patch, params: spec.task.params };
  let prompt = o.prompt;
  if (!prompt && rows.some((r) => r.prompt === undefined)) {
    const prompts = new Set(
      task.generate?.(0, 32, { imageSize: size, patchSize: patch, params: spec.task.params })
        .map((s) => s.prompt) ?? [],
    );
    if (prompts.size !== 1) {
      throw new InputError(
        `task ${task.name} asks several questions: give --prompt TEXT, or a prompt per image ` +
          "in the labels (a prompt column, or JSON rows with a prompt)",
      );
    }
    prompt = [...prompts][0];
  }

  await initBackend(spec.backend);
  const { model, tokenizer, layout: trained } = await loadCheckpoint(cache, stage.key);
  // Words the checkpoint cannot read: counted, named, and refused above the rate, before any
  // image is decoded or answered.
  const prompts = rows.map((r) => r.prompt ?? prompt!);
  const unknown = unknownWords(prompts, new Set(tokenizer.words));
  const maxUnknown = o.maxUnknown ?? MAX_UNKNOWN_RATE;
  const rate = unknown.words === 0 ? 0 : unknown.unknown / unknown.words;
  const named = unknown.distinct.slice(0, 10).map((d) => `${d.word} (${d.count})`).join(", ") +
    (unknown.distinct.length > 10 ? ", ..." : "");
  if (rate > maxUnknown) {
    model.dispose();
    throw new InputError(
      `${o.labels ?? "--prompt"}: ${unknown.unknown} of the prompts' ${unknown.words} words ` +
        `(${(100 * rate).toFixed(1)}%) are not in the vocabulary of ${stageId}, expected at most ` +
        `${(100 * maxUnknown).toFixed(1)}% (--max-unknown): ${named}. Train on data whose ` +
        "prompts hold these words (the run's vocabulary is built from its data), or reword them",
    );
  }
  if (unknown.unknown > 0) {
    console.error(
      `note: ${unknown.unknown} of the prompts' ${unknown.words} words are unknown to ` +
        `${stageId} and read as <unk>: ${named}`,
    );
  }
  const tv = (size / patch) ** 2;
  const samples: Sample[] = [];
  for (const [i, f] of files.entries()) {
    let image;
    try {
      image = (await decodeImage(await Deno.readFile(`${o.images}/${f}`), size)).image;
    } catch (e) {
      throw new InputError(`${o.images}/${f}: ${(e as Error).message}`);
    }
    // The task's own meta and map where it can make them from the label (points, boxes),
    // else a uniform map: no attention measure then.
    const own = task.fromLabel?.(rows[i], config);
    if (typeof own === "string") throw new InputError(`${o.labels ?? "--regex"}: ${f}: ${own}`);
    samples.push({
      image,
      prompt: rows[i].prompt ?? prompt!,
      answer: rows[i].answer,
      target: own?.target ?? new Float32Array(tv).fill(1 / tv),
      meta: { difficulty: rows[i].answer, ...own?.meta, file: f },
    });
  }
  const mapped = task.fromLabel !== undefined;
  const own = layoutFor(samples, tokenizer, patch);
  const layout = mergeLayouts(own, trained);
  const data = encodeSamples(samples, tokenizer, layout, patch);
  // The task's own scorer: exact match, a point within its radius, a box at its IoU.
  const result = await evaluate(model, data, samples, task, tokenizer, spec.eval.batch_size, 0);
  model.dispose();
  const correct = result.predictions.filter((p) => p.correct).length;
  const ci = wilsonInterval(correct, samples.length);
  const label = recordLabel(o);
  console.log(
    `${spec.name} ${stageId} on ${label}: accuracy ${result.accuracy.toFixed(1)}% ` +
      `(${correct}/${samples.length}; 95% CI ${(100 * ci.low).toFixed(1)}-${
        (100 * ci.high).toFixed(1)
      }%)`,
  );
  // Where the labels give the target (points, boxes), where the answer positions look.
  const attention = mapped
    ? {
      targetAttentionRatio: result.targetAttentionRatio,
      targetAttentionRatioFirst: result.targetAttentionRatioFirst,
      ...result.extra,
    }
    : undefined;
  if (attention) {
    console.log(
      `attention on the target: ratio ${attention.targetAttentionRatioFirst.toFixed(3)} at the ` +
        `first answer position, ${attention.targetAttentionRatio.toFixed(3)} over all (1 = chance)`,
    );
  }
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  const out = pathInside(reportsDir, spec.name, "external");
  const recordPath = pathInside(out, `${label}.json`);
  await Deno.mkdir(out, { recursive: true });
  const record = {
    experiment: spec.name,
    stage: stageId,
    key: stage.key,
    images: o.images,
    prompt: prompt ?? null,
    n: samples.length,
    correct,
    accuracy: result.accuracy,
    ci95: [100 * ci.low, 100 * ci.high],
    ...(attention ? { attention } : {}),
    unknownWords: { words: unknown.words, unknown: unknown.unknown, distinct: unknown.distinct },
    predictions: result.predictions.map((p, i) => ({
      file: files[i],
      prompt: p.prompt,
      answer: p.answer,
      prediction: p.prediction,
      correct: p.correct,
    })),
  };
  await writeJsonAtomic(recordPath, record);
  console.log(`recorded: ${recordPath}`);
  return 0;
}

/** The command; returns the exit status (2: bad usage, spec or input). */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    if (helpRequested(args)) return printHelp(USAGE);
    try {
      return await run(parseEvalArgs(args));
    } catch (e) {
      if (e instanceof SpecError) {
        console.error(formatSpecError(e));
        return 2;
      }
      if (e instanceof InputError) throw new UsageError(e.message);
      throw e;
    }
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
