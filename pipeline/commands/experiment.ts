/**
 * `deno task experiment [SPEC.yaml] [key.path=value ...] [--dry-run] [--force STAGE] [--keep-going] [--jobs N]
 *  [--executor local|slurm]`
 *
 * Exit status: 0 done, 1 a stage failed (the message names it), 2 bad spec, usage or setup
 * (a cache folder that is read-only or not a cache). KLAL_DEBUG=1 adds stack traces.
 */
import { TASKS } from "../../tasks/registry.ts";
import { Cache, defaultCacheDir } from "../cache/store.ts";
import { SlurmExecutor } from "../run/executors/slurm.ts";
import { runExperiment } from "../run/runner.ts";
import type { Executor } from "../run/executors/executor.ts";
import { LocalExecutor } from "../run/executors/local.ts";
import {
  integerOption,
  parseCommand,
  printFailure,
  printHelp,
  runCommand,
  SetupError,
  UsageError,
} from "../lib/cli.ts";
import { openBlasNotice } from "../kernels/backend.ts";
import { formatSpecError, readSpecFile, SpecError } from "../spec/mod.ts";
import { type ExecutorName, EXECUTORS, type Spec } from "../spec/types.ts";
import { expandSweep } from "../spec/sweep.ts";
import { writeSweepReport } from "../run/sweep_report.ts";
import { PROJECT_ROOT } from "../lib/paths.ts";
import { escapeForTerminal } from "../lib/terminal.ts";
import { resolve } from "node:path";

const USAGE = `usage: deno task experiment [SPEC.yaml] [key.path=value ...] [options]

  SPEC.yaml          experiment spec (default: experiments/quickstart.yaml)
  key.path=value     override a spec value, e.g. train.steps=200 arms.klal.lambda=2

options:
  --dry-run          print every stage with its key and whether it is cached or why it runs
  --json             with --dry-run: the plan as one JSON document on stdout (the
                     progress lines go to stderr)
  --force STAGE      recompute STAGE even if cached (an id such as finetune:klal:s0, or a
                     prefix such as finetune or eval:ntp), and every stage that reads it;
                     may repeat
  --jobs N           stages in flight at once (default: number of cores; slurm: 64)
  --executor NAME    where stages run: local (worker processes, the default) or slurm
                     (one sbatch job per stage; overrides the spec's executor.name)
  --keep-going       after a stage fails, run every stage that does not need it (their
                     results are cached); the run still fails and names what did not run
  --version          the project's commit and the Deno and tfjs versions
  -h, --help         this text

environment: KLAL_CACHE_DIR (default .cache/ in the repository),
             KLAL_REPORTS_DIR (default reports/ in the repository);
             on a cluster KLAL_CACHE_DIR must be a path every node shares`;

const ROOT = PROJECT_ROOT;

/** Parsed command line. */
export interface Cli {
  specPath: string;
  overrides: string[];
  dryRun: boolean;
  json: boolean;
  force: string[];
  keepGoing: boolean;
  jobs?: number;
  executor?: ExecutorName;
  help: boolean;
}

/** Parse argv; throws UsageError with a clear message on anything unexpected. */
export function parseArgs(args: string[]): Cli {
  const parsed = parseCommand(args, {
    options: {
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      force: { type: "string", multiple: true },
      "keep-going": { type: "boolean" },
      jobs: { type: "string" },
      executor: { type: "string" },
    },
    positionals: { max: Infinity },
  });
  const cli: Cli = {
    specPath: "",
    overrides: [],
    dryRun: false,
    json: false,
    force: [],
    keepGoing: false,
    help: parsed.help,
  };
  if (parsed.help) return cli;
  const { values } = parsed;
  cli.dryRun = values["dry-run"] === true;
  cli.json = values.json === true;
  if (cli.json && !cli.dryRun) throw new UsageError("--json goes with --dry-run");
  cli.force = (values.force as string[] | undefined) ?? [];
  cli.keepGoing = values["keep-going"] === true;
  if (values.jobs !== undefined) cli.jobs = integerOption("jobs", values.jobs as string, 1);
  if (values.executor !== undefined) {
    const name = values.executor as string;
    if (!(EXECUTORS as readonly string[]).includes(name)) {
      throw new UsageError(`--executor expects one of ${EXECUTORS.join(", ")}, found ${name}`);
    }
    cli.executor = name as ExecutorName;
  }
  for (const arg of parsed.positionals) {
    if (arg.includes("=")) cli.overrides.push(arg);
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

/** Slurm jobs wait in a queue, so many may be in flight at once. */
const SLURM_DEFAULT_JOBS = 64;

/** The executor the command line (first) or the spec names; local by default. */
function makeExecutor(cli: Cli, spec: Spec): Executor {
  const name = cli.executor ?? spec.executor?.name ?? "local";
  if (name === "local") return new LocalExecutor();
  const { partition, time, cpus, gres, sbatch, stages } = spec.executor ?? { sbatch: [] };
  // KLAL_SLURM_POLL_SECONDS: the longest wait between polls of the queue (default 10 s).
  const poll = Number(Deno.env.get("KLAL_SLURM_POLL_SECONDS") ?? "");
  const waits = poll > 0 ? { pollSeconds: Math.min(1, poll), runningPollSeconds: poll } : {};
  return new SlurmExecutor({ partition, time, cpus, gres, sbatch, stages, ...waits });
}

/** On Ctrl-C (or SIGTERM): cancel what the executor has in flight (scancel), then exit. */
function cancelOnSignal(executor: Executor): void {
  const stop = (signal: Deno.Signal, code: number) => async () => {
    console.error(`\n${signal}: cancelling running stages`);
    await executor.cancel();
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT", 130));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM", 143));
}

async function main(args: string[]): Promise<number> {
  let cli: Cli;
  try {
    cli = parseArgs(args);
  } catch (e) {
    if (e instanceof UsageError) return runCommand(USAGE, () => Promise.reject(e));
    throw e;
  }
  if (cli.help) return printHelp(USAGE);
  try {
    const text = await readSpecFile(cli.specPath);
    const specs = expandSweep(text, cli.specPath, cli.overrides, { tasks: TASKS });
    const started = performance.now();
    const cache = new Cache(defaultCacheDir());
    const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
    // With --json, stdout holds the JSON document alone; every other line goes to stderr.
    const say = cli.json
      ? (line: string) => console.error(line)
      : (line: string) => console.log(line);
    if (specs.length > 1) say(`sweep: ${specs.length} experiments`);
    const executor = makeExecutor(cli, specs[0]);
    // Once per run, here rather than in each worker: wasm without OpenBLAS is much slower.
    const notice = executor.name === "local" ? openBlasNotice(specs.map((s) => s.backend)) : null;
    if (notice) say(notice);
    const jobs = cli.jobs ?? (executor.name === "slurm" ? SLURM_DEFAULT_JOBS : undefined);
    if (!cli.dryRun) cancelOnSignal(executor);
    const summaries = [];
    for (const spec of specs) {
      summaries.push(
        await runExperiment(spec, {
          cache,
          reportsDir,
          dryRun: cli.dryRun,
          force: cli.force,
          keepGoing: cli.keepGoing,
          jobs,
          executor,
          specFile: resolve(cli.specPath),
          argv: ["deno", "task", "experiment", ...args],
          log: say,
        }),
      );
    }
    if (cli.json) {
      const plans = summaries.map((s, i) => ({
        experiment: specs[i].name,
        stages: s.dryRun ?? [],
      }));
      console.log(JSON.stringify(plans.length === 1 ? plans[0] : { sweep: plans }, null, 2));
      return 0;
    }
    let reportDir = summaries[0].reportDir;
    let table = summaries[0].reportKey
      ? new TextDecoder().decode(await cache.readBytes(summaries[0].reportKey, "table.md"))
      : "";
    if (specs.length > 1 && !cli.dryRun) {
      reportDir = await writeSweepReport(specs, summaries, cache, reportsDir);
      table = await Deno.readTextFile(`${reportDir}/table.md`);
    }
    if (reportDir) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`\n${table}`);
      console.log(`report: ${reportDir}/index.html  (${seconds} s)`);
    }
    return 0;
  } catch (e) {
    if (e instanceof SpecError) {
      console.error(formatSpecError(e));
      return 2;
    }
    if (e instanceof UsageError) {
      console.error(`error: ${escapeForTerminal(e.message)}`);
      return 2;
    }
    // The message; the stack trace only with KLAL_DEBUG=1.
    printFailure(e);
    return e instanceof SetupError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
