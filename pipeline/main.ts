/**
 * `deno task experiment [SPEC.yaml] [key.path=value ...] [--dry-run] [--force STAGE] [--jobs N]`
 *
 * Exit status: 0 done, 1 a stage failed (the message names it), 2 bad spec or usage.
 */
import { TASKS } from "../tasks/registry.ts";
import { Cache, defaultCacheDir } from "./cache.ts";
import { runExperiment, StageFailure, UsageError } from "./run.ts";
import { formatSpecError, loadSpec, SpecError } from "./spec.ts";

const USAGE = `usage: deno task experiment [SPEC.yaml] [key.path=value ...] [options]

  SPEC.yaml          experiment spec (default: experiments/quickstart.yaml)
  key.path=value     override a spec value, e.g. train.steps=200 arms.klal.lambda=2

options:
  --dry-run          print every stage with its key and whether it is cached or why it runs
  --force STAGE      recompute STAGE even if cached (an id such as finetune:klal:s0, or a
                     prefix such as finetune or eval:ntp); may repeat
  --jobs N           parallel worker processes (default: number of cores)
  -h, --help         this text

environment: KLAL_CACHE_DIR (default .cache/ in the repository),
             KLAL_REPORTS_DIR (default reports/ in the repository)`;

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Parsed command line. */
export interface Cli {
  specPath: string;
  overrides: string[];
  dryRun: boolean;
  force: string[];
  jobs?: number;
  help: boolean;
}

/** Parse argv; throws UsageError with a clear message on anything unexpected. */
export function parseArgs(args: string[]): Cli {
  const cli: Cli = { specPath: "", overrides: [], dryRun: false, force: [], help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = (flag: string) => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) {
        throw new UsageError(`${flag} expects a value, found ${v === undefined ? "nothing" : v}`);
      }
      return v;
    };
    if (arg === "--dry-run") cli.dryRun = true;
    else if (arg === "-h" || arg === "--help") cli.help = true;
    else if (arg === "--force") cli.force.push(value("--force"));
    else if (arg.startsWith("--force=")) cli.force.push(arg.slice(8));
    else if (arg === "--jobs" || arg.startsWith("--jobs=")) {
      const text = arg === "--jobs" ? value("--jobs") : arg.slice(7);
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1) {
        throw new UsageError(`--jobs expects an integer >= 1, found ${text}`);
      }
      cli.jobs = n;
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown option ${arg}`);
    } else if (arg.includes("=")) cli.overrides.push(arg);
    else if (!cli.specPath) cli.specPath = arg;
    else {
      throw new UsageError(
        `expected one spec file, found a second one: ${arg} (overrides look like key.path=value)`,
      );
    }
  }
  if (!cli.specPath) cli.specPath = `${ROOT}/experiments/quickstart.yaml`;
  return cli;
}

async function main(args: string[]): Promise<number> {
  let cli: Cli;
  try {
    cli = parseArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (cli.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const spec = await loadSpec(cli.specPath, cli.overrides, { tasks: TASKS });
    const started = performance.now();
    const summary = await runExperiment(spec, {
      cache: new Cache(defaultCacheDir()),
      reportsDir: Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`,
      dryRun: cli.dryRun,
      force: cli.force,
      jobs: cli.jobs,
    });
    if (summary.reportDir) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const table = await Deno.readTextFile(`${summary.reportDir}/table.md`);
      console.log(`\n${table}`);
      console.log(`report: ${summary.reportDir}/index.html  (${seconds} s)`);
    }
    return 0;
  } catch (e) {
    if (e instanceof SpecError) {
      console.error(formatSpecError(e));
      return 2;
    }
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof StageFailure) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
