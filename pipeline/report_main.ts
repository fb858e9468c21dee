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
import { Cache, defaultCacheDir } from "./cache.ts";
import { PROJECT_ROOT } from "./paths.ts";
import { MissingStage, rebuildReport, UnknownExperiment } from "./report/rebuild.ts";
import {
  collectPaperRecord,
  CPU_SOURCES,
  MissingReport,
  type PaperSources,
  rebuildPaper,
} from "./report/paper/mod.ts";

const USAGE = `usage: deno task report NAME

  Rebuild reports/NAME/ (index.html, results.json, table.md, figures/) from the cache, with no
  training, and refresh reports/index.html. NAME is an experiment's name (its spec's "name").
  \`deno task report paper [--collect]\` rebuilds the committed paper record instead
  (reports/paper/; see --help there).

environment: KLAL_CACHE_DIR (default .cache/ in the repository),
             KLAL_REPORTS_DIR (default reports/ in the repository)`;

const ROOT = PROJECT_ROOT;

const PAPER_USAGE = `usage: deno task report paper [--collect [--table1 NAME] [--table1-long NAME]
                                  [--lambda NAME] [--lambda-long NAME] [--layers NAME]
                                  [--long NAME] [--sigma NAME]
                                  [--confirm NAME] [--gpu TEXT]]

  Rebuild reports/paper/ (table.md, README.md from README.src.md, figures/*.svg) from its
  committed results.json. With --collect, first gather results.json from the experiments'
  reports: Table 1 and the lambda sweep (each also with longer training), the layer ablation and
  the investigations (longer training, ground-truth sharpness, a confirmation on the test seed)
  (defaults: ${Object.values(CPU_SOURCES).join(", ")}; "none" leaves a part out).
  --gpu names the GPU the runs used (the record says "no GPU" otherwise).`;

/** \`deno task report paper ...\`: the committed paper record (see report/paper/mod.ts). */
async function paperMain(args: string[]): Promise<number> {
  const sources: PaperSources = { ...CPU_SOURCES };
  let collect = false;
  let gpu: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("-")) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === "--collect") collect = true;
    else if (flag === "--table1") sources.table1 = value();
    else if (flag === "--table1-long") sources.table1Long = optional(value());
    else if (flag === "--lambda") sources.lambda = optional(value());
    else if (flag === "--lambda-long") sources.lambdaLong = optional(value());
    else if (flag === "--layers") sources.layers = optional(value());
    else if (flag === "--long") sources.long = optional(value());
    else if (flag === "--sigma") sources.sigma = optional(value());
    else if (flag === "--confirm") sources.confirm = optional(value());
    else if (flag === "--gpu") gpu = value();
    else if (flag === "-h" || flag === "--help") {
      console.log(PAPER_USAGE);
      return 0;
    } else throw new UsageError(`unexpected argument ${flag}`);
  }
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

/** A bad command line (exit 2). */
class UsageError extends Error {}

/** The command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  if (args[0] === "paper") return await paperMain(args.slice(1));
  const names = args.filter((a) => !a.startsWith("-"));
  const unknown = args.filter((a) => a.startsWith("-"));
  if (unknown.length > 0 || names.length !== 1) {
    console.error(
      `error: expected one experiment NAME${
        unknown.length > 0 ? `, found option ${unknown.join(" ")}` : `, found ${names.length}`
      }\n\n${USAGE}`,
    );
    return 2;
  }
  const cache = new Cache(defaultCacheDir());
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  try {
    const started = performance.now();
    const { dir, notes } = await rebuildReport(names[0], { cache, reportsDir });
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

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${PAPER_USAGE}`);
    Deno.exit(2);
  }
}
