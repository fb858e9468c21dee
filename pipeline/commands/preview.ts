/**
 * `deno task preview TASK [--n 16] [--seed S] [--size PX] [--patch PX] [--out FILE]`
 * `deno task preview SPEC.yaml [--split train|test] [--n 16] [--out FILE]`
 *
 * A PNG contact sheet of a task's samples: each image scaled up, the ground-truth map
 * overlaid (red, opacity by P), and the prompt and answer printed under it. Real-format
 * tasks show their offline stand-in, read back through the real loader; with a spec, the
 * spec's own data (its task's params, and for real data the split's source files).
 */
import { createCanvas } from "@napi-rs/canvas";
import { TASKS } from "../../tasks/registry.ts";
import type { DataSource, Sample, Task, TaskConfig } from "../../tasks/task.ts";
import { formatSpecError, loadSpec, SpecError } from "../spec/mod.ts";
import { PROJECT_ROOT } from "../lib/paths.ts";
import { writeFileAtomic } from "../lib/atomic.ts";
import {
  helpRequested,
  integerOption,
  parseCommand,
  printHelp,
  runCommand,
  UsageError,
  valueOptions,
} from "../lib/cli.ts";
import { escapeForTerminal } from "../lib/terminal.ts";

const ROOT = PROJECT_ROOT;
const USAGE =
  `usage: deno task preview TASK [--n 16] [--seed S] [--size PX] [--patch PX] [--out FILE]

  TASK               a registered task (real-format tasks show their offline stand-in)
  --n N              samples on the sheet (default 16)
  --seed S           the samples' seed (default 0)
  --size PX          image side in pixels (default 64)
  --patch PX         patch side: the ground-truth map's grid (default 8; divides --size)
  --out FILE         the PNG written (default reports/preview/TASK.png, or NAME-SPLIT.png)
  SPEC.yaml          a spec: its task, sizes and params, and for real data the split's file
  --split SPLIT      with a spec: train (default) or test
  -h, --help         this text`;

/** Command-line options of the preview. */
export interface PreviewOptions {
  task: string;
  n: number;
  seed: number;
  size: number;
  patch: number;
  out: string;
  /** With a spec: its task's params and the split's source (real data), else the defaults. */
  params?: Record<string, unknown>;
  source?: DataSource;
}

/**
 * Options for a spec's own data (`deno task preview SPEC.yaml [--split train|test]`): its
 * task, image and patch size, params and, for real data, the split's source file; the seed
 * is the split's (the first fine-tune seed, or test_seed).
 */
export async function specPreviewOptions(args: string[]): Promise<PreviewOptions> {
  const parsed = parseCommand(args, {
    options: valueOptions("n", "out", "split"),
    positionals: { min: 1, max: 1 },
  });
  const v = parsed.values as Record<string, string | undefined>;
  const split = v.split ?? "train";
  if (split !== "train" && split !== "test") {
    throw new UsageError(`--split expects train or test, found ${split}`);
  }
  const spec = await loadSpec(parsed.positionals[0], [], { tasks: TASKS });
  return {
    task: spec.task.name,
    n: Math.max(1, v.n === undefined ? 16 : integerOption("n", v.n)),
    seed: split === "train" ? spec.seeds[0] : spec.task.test_seed,
    size: spec.task.image_size,
    patch: spec.model.patch_size,
    out: v.out ?? `${ROOT}/reports/preview/${spec.name}-${split}.png`,
    params: spec.task.params,
    source: spec.task.source?.[split],
  };
}

/** Parse argv; throws UsageError on anything unexpected. */
export function parsePreviewArgs(args: string[]): PreviewOptions {
  const names = Object.keys(TASKS);
  const parsed = parseCommand(args, {
    options: valueOptions("n", "seed", "size", "patch", "out"),
    positionals: { max: 1 },
  });
  const task = parsed.positionals[0];
  if (!task) throw new UsageError(`expected a task name (${names.join(", ")})`);
  if (!TASKS[task]) {
    throw new UsageError(`unknown task "${task}"; valid tasks: ${names.join(", ")}`);
  }
  const v = parsed.values as Record<string, string | undefined>;
  const int = (name: string, fallback: number) =>
    v[name] === undefined ? fallback : integerOption(name, v[name]!);
  const options: PreviewOptions = {
    task,
    n: Math.max(1, int("n", 16)),
    seed: int("seed", 0),
    size: int("size", 64),
    patch: int("patch", 8),
    out: v.out ?? `${ROOT}/reports/preview/${task}.png`,
  };
  if (options.size % options.patch !== 0) {
    throw new UsageError(`--size ${options.size} is not a multiple of --patch ${options.patch}`);
  }
  return options;
}

/** The samples a preview shows (generated, or the stand-in read back by the loader). */
export async function previewSamples(task: Task, o: PreviewOptions): Promise<Sample[]> {
  const config: TaskConfig = {
    imageSize: o.size,
    patchSize: o.patch,
    params: { ...task.defaultParams, ...o.params },
  };
  const problems = task.checkParams(config);
  if (problems.length > 0) {
    const p = problems[0];
    throw new Error(
      `task.params.${p.key}: expected ${p.expected}, found ${JSON.stringify(p.found)}`,
    );
  }
  if (task.generate) return task.generate(o.seed, o.n, config);
  if (o.source) return (await task.load!(o.source, config)).slice(0, o.n);
  const dir = await Deno.makeTempDir({ prefix: "klal-preview-" });
  try {
    const source = await task.writeStandIn!(dir, o.seed, o.n, config);
    return (await task.load!(source, config)).slice(0, o.n);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Render the contact sheet as PNG bytes. */
export async function renderContactSheet(samples: Sample[], patch: number): Promise<Uint8Array> {
  const size = samples[0].image.width;
  const scale = Math.max(1, Math.floor(192 / size));
  const cell = size * scale;
  const textHeight = 44;
  const columns = Math.min(4, samples.length);
  const rows = Math.ceil(samples.length / columns);
  const gap = 12;
  const canvas = createCanvas(columns * (cell + gap) + gap, rows * (cell + textHeight + gap) + gap);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const side = size / patch;
  samples.forEach((s, i) => {
    const x0 = gap + (i % columns) * (cell + gap);
    const y0 = gap + Math.floor(i / columns) * (cell + textHeight + gap);
    const pixels = ctx.createImageData(cell, cell);
    for (let y = 0; y < cell; y++) {
      for (let x = 0; x < cell; x++) {
        const src = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3;
        const dst = (y * cell + x) * 4;
        for (let c = 0; c < 3; c++) pixels.data[dst + c] = Math.round(s.image.data[src + c] * 255);
        pixels.data[dst + 3] = 255;
      }
    }
    ctx.putImageData(pixels, x0, y0);
    const max = Math.max(...s.target);
    for (let p = 0; p < s.target.length; p++) {
      if (s.target[p] <= 0) continue;
      const r = Math.floor(p / side);
      const c = p % side;
      ctx.fillStyle = `rgba(230, 0, 60, ${(0.55 * s.target[p] / max).toFixed(3)})`;
      ctx.fillRect(x0 + c * patch * scale, y0 + r * patch * scale, patch * scale, patch * scale);
    }
    ctx.strokeStyle = "#999999";
    ctx.strokeRect(x0 - 0.5, y0 - 0.5, cell + 1, cell + 1);
    ctx.fillStyle = "#222222";
    ctx.font = "12px sans-serif";
    fitText(ctx, s.prompt, x0, y0 + cell + 15, cell);
    ctx.fillStyle = "#b00030";
    fitText(ctx, `→ ${s.answer}   (${s.meta.difficulty})`, x0, y0 + cell + 31, cell);
  });
  return await canvas.encode("png");
}

function fitText(
  ctx: ReturnType<ReturnType<typeof createCanvas>["getContext"]>,
  text: string,
  x: number,
  y: number,
  width: number,
): void {
  let shown = text;
  while (shown.length > 3 && ctx.measureText(shown).width > width) {
    shown = shown.slice(0, -2);
  }
  ctx.fillText(shown === text ? text : `${shown.slice(0, -1)}…`, x, y);
}

/** The command: parse, generate, render, write; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    if (helpRequested(args)) return printHelp(USAGE);
    // A spec file previews that spec's own data; a task name, the task's defaults.
    const first = args.find((a) => !a.startsWith("-"));
    let options: PreviewOptions;
    try {
      options = first && /\.ya?ml$/i.test(first)
        ? await specPreviewOptions(args)
        : parsePreviewArgs(args);
    } catch (e) {
      if (e instanceof SpecError) {
        console.error(formatSpecError(e));
        return 2;
      }
      throw e;
    }
    let samples: Sample[];
    try {
      samples = await previewSamples(TASKS[options.task], options);
    } catch (e) {
      console.error(`error: ${escapeForTerminal((e as Error).message)}`);
      return 2;
    }
    const png = await renderContactSheet(samples, options.patch);
    await writeFileAtomic(options.out, png);
    console.log(`${samples.length} samples of ${options.task}: ${options.out}`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
