/**
 * `deno task report NAME`: rebuild `reports/NAME/` from the cache without training, then
 * `reports/index.html`, the list of every experiment report with its date and headline.
 * `deno task report paper [--collect ...]`: the committed paper record instead.
 *
 * This file only reads the command line; the work is in pipeline/report/ (rebuild.ts for a
 * report, paper/ for the paper record).
 *
 * Exit status: 0 done, 1 a stage's result is missing from the cache, 2 usage or unknown NAME.
 * Environment: KLAL_CACHE_DIR (the cache), KLAL_REPORTS_DIR (the reports root).
 */
import { parseCommand, printHelp, runCommand } from "../lib/cli.ts";
import { Cache, defaultCacheDir } from "../cache/store.ts";
import { PROJECT_ROOT } from "../lib/paths.ts";
import { MissingStage, rebuildReport, UnknownExperiment } from "../run/rebuild_report.ts";
import {
  collectPaperRecord,
  MissingReport,
  type PaperSources,
  rebuildPaper,
  RECORD_SOURCES,
} from "../report/paper/mod.ts";

const USAGE = `usage: deno task report NAME [--samples]

  Rebuild reports/NAME/ (index.html, results.json, table.md, table1.csv, table1.tex, figures/)
  from the cache, with no training, and refresh reports/index.html. NAME is an experiment's
  name (its spec's "name"). \`deno task report paper [--collect]\` rebuilds the committed
  paper record instead (reports/paper/; see --help there).

options:
  --samples    also write every evaluation's per-item predictions as JSONL in the shape
               lmms-eval logs with --log_samples: reports/NAME/samples/TASK/samples_ARM_sS.jsonl
               (fields: docs/formats.md)
  --version    the project's commit and the Deno and tfjs versions
  -h, --help   this text

environment: KLAL_CACHE_DIR (default .cache/ in the repository),
             KLAL_REPORTS_DIR (default reports/ in the repository)`;

const ROOT = PROJECT_ROOT;

const PAPER_USAGE =
  `usage: deno task report paper [--collect [--table1 NAME[,NAME...]] [--table1-long NAME]
                                  [--lambda NAME] [--lambda-long NAME] [--layers NAME]
                                  [--long NAME] [--sigma NAME] [--tracing NAME]
                                  [--confirm NAME] [--gpu TEXT]]

  Rebuild reports/paper/ (table.md, README.md from README.src.md, figures/*.svg) from its
  committed results.json. With --collect, first gather results.json from the experiments'
  reports: Table 1 (one experiment, or several whose tasks are merged), the lambda sweep (a
  report, or the per-task reports of a sweep by that name), the layer ablation, and optionally
  Table 1 and the sweep with longer training and investigations (longer training, ground-truth
  sharpness, Line Tracing trained longer, a confirmation on the test seed). Defaults: ${
    Object.entries(RECORD_SOURCES).map(([k, v]) => `${k} ${v}`).join("; ")
  }; "none" leaves a part out.
  --gpu names the GPU the runs used (the record says "no GPU" otherwise).`;

/** \`deno task report paper ...\`: the committed paper record (see report/paper/mod.ts). */
async function paperMain(args: string[]): Promise<number> {
  const parsed = parseCommand(args, {
    options: {
      collect: { type: "boolean" },
      table1: { type: "string" },
      "table1-long": { type: "string" },
      lambda: { type: "string" },
      "lambda-long": { type: "string" },
      layers: { type: "string" },
      long: { type: "string" },
      sigma: { type: "string" },
      tracing: { type: "string" },
      confirm: { type: "string" },
      gpu: { type: "string" },
    },
  });
  if (parsed.help) return printHelp(PAPER_USAGE);
  const v = parsed.values as Record<string, string | undefined>;
  const sources: PaperSources = { ...RECORD_SOURCES };
  if (v.table1 !== undefined) sources.table1 = v.table1.split(",").filter((n) => n !== "");
  const optionalSources = [
    ["table1-long", "table1Long"],
    ["lambda", "lambda"],
    ["lambda-long", "lambdaLong"],
    ["layers", "layers"],
    ["long", "long"],
    ["sigma", "sigma"],
    ["tracing", "tracing"],
    ["confirm", "confirm"],
  ] as const;
  for (const [flag, key] of optionalSources) {
    if (v[flag] !== undefined) sources[key] = optional(v[flag]!);
  }
  const collect = parsed.values.collect === true;
  const gpu = v.gpu ?? null;
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  const dir = `${reportsDir}/paper`;
  try {
    if (collect) {
      const cache = new Cache(defaultCacheDir());
      const path = await collectPaperRecord(dir, { reportsDir, sources, cache, gpu });
      console.log(`collected: ${path}`);
    }
    const written = await rebuildPaper(dir);
    console.log(`paper record: ${dir}/ (${written.join(", ")})`);
    return 0;
  } catch (e) {
    if (e instanceof MissingReport) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

/** A source name, or undefined for "none" (leave that part out of the record). */
function optional(name: string): string | undefined {
  return name === "none" ? undefined : name;
}

/** The command line; returns the exit status. */
export function main(args: string[]): Promise<number> {
  if (args[0] === "paper") return runCommand(PAPER_USAGE, () => paperMain(args.slice(1)));
  return runCommand(USAGE, () => reportMain(args));
}

/** \`deno task report NAME\`. */
async function reportMain(args: string[]): Promise<number> {
  const parsed = parseCommand(args, {
    options: { samples: { type: "boolean" } },
    positionals: { min: 1, max: 1 },
  });
  if (parsed.help) return printHelp(USAGE);
  const names = parsed.positionals;
  const cache = new Cache(defaultCacheDir());
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  try {
    const started = performance.now();
    const samples = parsed.values.samples === true;
    const { dir, notes } = await rebuildReport(names[0], { cache, reportsDir, samples });
    for (const note of notes) console.log(`note: ${note}`);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`report: ${dir}/index.html  (${seconds} s)`);
    console.log(`index:  ${reportsDir}/index.html`);
    return 0;
  } catch (e) {
    if (e instanceof UnknownExperiment) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof MissingStage) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
