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
 * Scoring is an exact match of the normalised answer text (external labels carry no task
 * metadata). Exit status: 0 done, 1 the arm is not trained yet, 2 bad input.
 */
import { parseCommand, printHelp, runCommand, UsageError, valueOptions } from "../lib/cli.ts";
import { writeJsonAtomic } from "../lib/atomic.ts";
import { CsvError, parseCsv } from "../lib/csv.ts";
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
import { nameProblem, pathInside } from "../spec/names.ts";

const ROOT = PROJECT_ROOT;
const USAGE = "usage: deno task eval SPEC --arm ARM [--seed S] --images DIR " +
  "(--labels FILE | --regex RE) [--prompt TEXT] [--name LABEL] [key.path=value ...]";

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
  overrides: string[];
}

/** Parse argv (throws InputError, or UsageError for an unknown option or a missing value). */
export function parseEvalArgs(args: string[]): ExternalEvalOptions {
  const parsed = parseCommand(args, {
    options: valueOptions("arm", "seed", "images", "labels", "regex", "prompt", "name"),
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

/** What a labels row is, without its content (the labels file is not echoed). */
function describeRow(row: unknown): string {
  if (row === null || typeof row !== "object") return row === null ? "null" : `a ${typeof row}`;
  if (Array.isArray(row)) return `a list of ${row.length} items`;
  const r = row as Record<string, unknown>;
  const kind = (v: unknown) => v === undefined ? "none" : Array.isArray(v) ? "a list" : typeof v;
  return `an object with file: ${kind(r.file)}, answer: ${kind(r.answer)}`;
}

/**
 * file name -> answer, from a CSV (`file,answer`, header optional; ../lib/csv.ts: an answer that
 * holds a comma is quoted, `"2 , 2"`) or a JSON labels file (a list of {file, answer} or an
 * object file -> answer). A row with more columns, or a second row for a file with another
 * answer, is refused naming file:line.
 */
export async function readLabels(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read labels (${(e as Error).message})`);
  }
  const labels = new Map<string, string>();
  const firstAt = new Map<string, string>();
  if (/\.json$/i.test(path)) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      // The parser's message quotes the file's text: keep only where it stopped.
      const at = /at position \d+( \(line \d+ column \d+\))?/.exec((e as Error).message)?.[0];
      throw new InputError(`${path}: not valid JSON${at ? ` (${at})` : ""}`);
    }
    const rows = Array.isArray(data) ? data : Object.entries(data as Record<string, unknown>)
      .map(([file, answer]) => ({ file, answer }));
    rows.forEach((row, i) => {
      const r = row as { file?: unknown; answer?: unknown };
      if (
        typeof r.file !== "string" || (typeof r.answer !== "string" && typeof r.answer !== "number")
      ) {
        throw new InputError(
          `${path} row ${i + 1}: expected {file, answer} with a string file and a string or ` +
            `number answer, found ${describeRow(row)}`,
        );
      }
      const place = `row ${i + 1}`;
      addLabel(labels, firstAt, {
        file: r.file,
        answer: String(r.answer),
        where: `${path} ${place}`,
        place,
      });
    });
    return labels;
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) throw new InputError(`${path}:${e.message}`);
    throw e;
  }
  records.forEach(({ line, fields }, i) => {
    if (i === 0 && fields[0].toLowerCase() === "file") return; // header
    if (fields.length !== 2 || fields[0] === "") {
      const what = fields.length < 2
        ? "a line with no comma"
        : fields.length > 2
        ? `${fields.length} columns (quote an answer that holds a comma: "2 , 2")`
        : "an empty file name";
      throw new InputError(`${path}:${line}: expected "file,answer", found ${what}`);
    }
    const [file, answer] = fields;
    addLabel(labels, firstAt, { file, answer, where: `${path}:${line}`, place: `line ${line}` });
  });
  return labels;
}

/**
 * Record `file`'s answer, read at `where` (`place` is the same spot in short, for a later
 * message). The same file again with another answer is refused; with the same one it is kept.
 */
function addLabel(
  labels: Map<string, string>,
  firstAt: Map<string, string>,
  row: { file: string; answer: string; where: string; place: string },
): void {
  const known = labels.get(row.file);
  if (known !== undefined && known !== row.answer) {
    throw new InputError(
      `${row.where}: a second, different answer for ${row.file} (first given at ${
        firstAt.get(row.file)
      })`,
    );
  }
  labels.set(row.file, row.answer);
  if (!firstAt.has(row.file)) firstAt.set(row.file, row.place);
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

/** The answer a file name carries, by `regex` (group `answer`, else the first group). */
export function answerFromName(name: string, regex: RegExp): string | undefined {
  const m = name.match(regex);
  if (!m) return undefined;
  return m.groups?.answer ?? m[1] ?? m[0];
}

const normalise = (text: string) => text.trim().toLowerCase().split(/\s+/).join(" ");

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
  const stage = (await resolvePlan(buildPlan(spec))).find((s) => s.id === stageId);
  if (!stage) throw new InputError(`no stage ${stageId} (seeds: ${spec.seeds.join(", ")})`);
  const cache = new Cache(defaultCacheDir());
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
  const labels = o.labels ? await readLabels(o.labels) : undefined;
  const missing: string[] = [];
  const answers = files.map((f) => {
    const a = labels ? labels.get(f) : answerFromName(f, o.regex!);
    if (a === undefined) missing.push(f);
    return a ?? "";
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

  // The prompt: given, or the task's own when all its prompts are the same.
  const size = spec.task.image_size;
  const patch = spec.model.patch_size;
  let prompt = o.prompt;
  if (!prompt) {
    const prompts = new Set(
      task.generate?.(0, 32, { imageSize: size, patchSize: patch, params: spec.task.params })
        .map((s) => s.prompt) ?? [],
    );
    if (prompts.size !== 1) {
      throw new InputError(`task ${task.name} asks several questions: give --prompt TEXT`);
    }
    prompt = [...prompts][0];
  }

  await initBackend(spec.backend);
  const tv = (size / patch) ** 2;
  const samples: Sample[] = [];
  for (const [i, f] of files.entries()) {
    let image;
    try {
      image = (await decodeImage(await Deno.readFile(`${o.images}/${f}`), size)).image;
    } catch (e) {
      throw new InputError(`${o.images}/${f}: ${(e as Error).message}`);
    }
    samples.push({
      image,
      prompt,
      answer: answers[i],
      target: new Float32Array(tv).fill(1 / tv), // no ground-truth map for outside images
      meta: { difficulty: answers[i], file: f },
    });
  }
  const { model, tokenizer, layout: trained } = await loadCheckpoint(cache, stage.key);
  const own = layoutFor(samples, tokenizer, patch);
  const layout = mergeLayouts(own, trained);
  const data = encodeSamples(samples, tokenizer, layout, patch);
  const exact = { ...task, score: (p: string, s: Sample) => normalise(p) === normalise(s.answer) };
  const result = await evaluate(model, data, samples, exact, tokenizer, spec.eval.batch_size, 0);
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
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  const out = pathInside(reportsDir, spec.name, "external");
  const recordPath = pathInside(out, `${label}.json`);
  await Deno.mkdir(out, { recursive: true });
  const record = {
    experiment: spec.name,
    stage: stageId,
    key: stage.key,
    images: o.images,
    prompt,
    n: samples.length,
    correct,
    accuracy: result.accuracy,
    ci95: [100 * ci.low, 100 * ci.high],
    predictions: result.predictions.map((p, i) => ({
      file: files[i],
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
    if (args.includes("-h") || args.includes("--help")) return printHelp(USAGE);
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
