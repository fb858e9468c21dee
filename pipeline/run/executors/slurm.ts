/**
 * Stages as Slurm jobs: each ready stage becomes one `sbatch` job (stages of one kind ready
 * together: one job array, an element each) that runs the same
 * worker command as the local executor (`deno run <STAGE_PERMISSIONS> pipeline/run/worker.ts <descriptor>`).
 * The cache, the descriptors and the job logs live under `KLAL_CACHE_DIR`, which must be a
 * path every node shares; the per-key lock in the cache keeps two jobs off one key.
 *
 * One poll loop watches every job in flight with a single `squeue` call per interval (1 s,
 * doubling to 10 s; 10 s once a job runs),
 * streams each job's log files as they grow (lines prefixed by the stage id), and on a
 * job's end asks `sacct` (or `scontrol`, where accounting is off) for its state, exit code
 * and reason.
 */
import type { ResolvedStage } from "../plan.ts";
import { type Executor, WORKER_PATH, workerArgs } from "./executor.ts";
import { CPU_STAGE_KINDS, type StageResources } from "../../spec/types.ts";

/** Cluster settings (the spec's `executor:` block, minus `name`). */
export interface SlurmOptions {
  partition?: string;
  /** Slurm time limit, e.g. "30", "2:00:00", "1-12:00:00". */
  time?: string;
  cpus?: number;
  /** Generic resources, e.g. "gpu:1". */
  gres?: string;
  /** Extra sbatch options, passed as given (after the ones above, so they win). */
  sbatch?: string[];
  /**
   * Per stage kind, resources over the ones above; data, choose-lr and report stages ask
   * for no gres unless their own entry gives one ("" asks for none).
   */
  stages?: Record<string, StageResources>;
  /**
   * Seconds before the first poll of the queue (default 1); each poll after waits twice as
   * long, up to `runningPollSeconds`, and no less than that once a job is running.
   */
  pollSeconds?: number;
  /** Seconds between polls while a job runs, the longest wait (default 10). */
  runningPollSeconds?: number;
  /**
   * Stages of one kind ready together go in one job array (default true); false: one
   * `sbatch` per stage.
   */
  arrays?: boolean;
  /** The Deno binary the jobs run (default: this one; it must be reachable from the nodes). */
  denoPath?: string;
  /** Where streamed job output goes (default: stderr). */
  log?: (line: string) => void;
}

/** States after which a job never runs again. */
const FINAL_STATES = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "PREEMPTED",
  "OUT_OF_MEMORY",
  "BOOT_FAIL",
  "DEADLINE",
]);

/** How many tail lines of a failed job's stderr go into the error message. */
const STDERR_TAIL_LINES = 20;

interface EndState {
  state: string;
  exitCode: string;
  reason: string;
}

/** A log file read as it grows; complete lines only (the rest waits for its newline). */
class LogTail {
  private offset = 0;
  private partial = "";
  private readonly decoder = new TextDecoder();

  constructor(readonly path: string) {}

  /** New complete lines since the last call (all remaining text when `final`). */
  async read(final = false): Promise<string[]> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path);
    } catch {
      return []; // not created yet (the job has not started)
    }
    try {
      await file.seek(this.offset, Deno.SeekMode.Start);
      const chunk = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await file.read(chunk);
        if (n === null || n === 0) break;
        this.offset += n;
        this.partial += this.decoder.decode(chunk.subarray(0, n), { stream: true });
      }
    } finally {
      file.close();
    }
    const lines = this.partial.split("\n");
    this.partial = final ? "" : lines.pop()!;
    return lines.filter((line, i) => line !== "" || i < lines.length - 1);
  }
}

/** A stage gathered for submission, and how to hand back its job id. */
interface Pending {
  stage: ResolvedStage;
  descriptorPath: string;
  resolve: (id: string) => void;
  reject: (error: Error) => void;
}

/** How long ready stages are gathered before their kind's array is submitted. */
const ARRAY_WINDOW_MS = 300;

/** `sbatch --parsable ...`: the job id it printed, or an error naming what it said. */
async function sbatch(args: string[]): Promise<string> {
  const submitted = await slurm("sbatch", args, {
    KLAL_PLAIN_PROGRESS: "1",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  });
  if (!submitted.ok) {
    throw new Error(`sbatch refused the job: ${submitted.stderr.trim() || submitted.stdout}`);
  }
  const id = submitted.stdout.trim().split(";")[0];
  if (!/^\d+(_\d+)?$/.test(id)) throw new Error(`sbatch printed no job id: ${submitted.stdout}`);
  return id;
}

interface Job {
  id: string;
  stage: ResolvedStage;
  descriptorPath: string;
  out: LogTail;
  err: LogTail;
  /** Polls in a row where neither squeue nor the end-state query knew the job. */
  unknownPolls: number;
  /** The last poll saw it ended without success (confirmed, or not, by the next). */
  failedOnce?: boolean;
  settle: (error?: Error) => void;
}

/** Runs stages as `sbatch` jobs and waits for them with `squeue`/`sacct`. */
export class SlurmExecutor implements Executor {
  readonly name = "slurm";
  private readonly jobs = new Map<string, Job>();
  private polling: Promise<void> | undefined;
  private cancelled = false;
  private readonly log: (line: string) => void;

  constructor(private readonly options: SlurmOptions = {}) {
    this.log = options.log ?? ((line) => console.error(line));
  }

  /** The sbatch arguments for one stage (exported for tests and `--dry-run`-style checks). */
  sbatchArgs(stage: ResolvedStage, descriptorPath: string): string[] {
    const o = this.options;
    const root = WORKER_PATH.slice(0, WORKER_PATH.lastIndexOf("/pipeline/"));
    const deno = o.denoPath ?? Deno.execPath();
    const command = [deno, ...workerArgs(descriptorPath)].map(shellQuote).join(" ");
    const own = o.stages?.[stage.kind] ?? {};
    const partition = own.partition ?? o.partition;
    const time = own.time ?? o.time;
    const cpus = own.cpus ?? o.cpus;
    // Data, choose-lr and report stages need no GPU: the common gres is not theirs.
    const gres = own.gres ?? (CPU_STAGE_KINDS.includes(stage.kind) ? undefined : o.gres);
    return [
      "--parsable",
      `--job-name=klal-${stage.id}`,
      `--output=${descriptorPath}.out`,
      `--error=${descriptorPath}.err`,
      `--chdir=${root}`,
      "--export=ALL",
      // A preempted (or node-failed) job goes back in the queue under the same id; a
      // fine-tune resumes from its last checkpoint, and the logs carry on where they were.
      "--requeue",
      "--open-mode=append",
      ...(partition ? [`--partition=${partition}`] : []),
      ...(time ? [`--time=${time}`] : []),
      ...(cpus ? [`--cpus-per-task=${cpus}`] : []),
      ...(gres ? [`--gres=${gres}`] : []),
      ...(o.sbatch ?? []),
      ...(own.sbatch ?? []),
      `--wrap=${command}`,
    ];
  }

  /** Stages waiting to be submitted, by kind: gathered for ARRAY_WINDOW_MS, then one array. */
  private readonly batches = new Map<string, Pending[]>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * The sbatch arguments of one job array running `entries` (stages of one kind, so of one
   * set of resources): element i runs entry i's worker, its output appended to that
   * descriptor's .out and .err files as a single job's would be.
   */
  arrayArgs(entries: readonly { stage: ResolvedStage; descriptorPath: string }[]): string[] {
    const first = entries[0];
    const jobs = first.descriptorPath.slice(0, first.descriptorPath.lastIndexOf("/"));
    const deno = this.options.denoPath ?? Deno.execPath();
    const cases = entries.map(({ descriptorPath }, i) => {
      const command = [deno, ...workerArgs(descriptorPath)].map(shellQuote).join(" ");
      const out = shellQuote(`${descriptorPath}.out`);
      const err = shellQuote(`${descriptorPath}.err`);
      return `${i}) exec ${command} >>${out} 2>>${err};;`;
    });
    const single = this.sbatchArgs(first.stage, first.descriptorPath).filter((a) =>
      !/^--(job-name|output|error|wrap)=/.test(a)
    );
    return [
      ...single,
      `--job-name=klal-${first.stage.kind}[${entries.length}]`,
      `--array=0-${entries.length - 1}`,
      `--output=${jobs}/array-%A_%a.log`,
      `--error=${jobs}/array-%A_%a.log`,
      `--wrap=case "$SLURM_ARRAY_TASK_ID" in ${cases.join(" ")} esac`,
    ];
  }

  /** Submit `stage`'s job, alone or, with others of its kind ready at once, as an array element. */
  private submit(stage: ResolvedStage, descriptorPath: string): Promise<string> {
    if (this.options.arrays === false) {
      return sbatch(this.sbatchArgs(stage, descriptorPath));
    }
    return new Promise((resolve, reject) => {
      const kind = stage.kind ?? "stage";
      this.batches.set(kind, [
        ...this.batches.get(kind) ?? [],
        { stage, descriptorPath, resolve, reject },
      ]);
      this.flushTimer ??= setTimeout(() => this.flush(), ARRAY_WINDOW_MS);
    });
  }

  /** Submit every gathered batch: one job for a lone stage, one array for several. */
  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const entries of batches) {
      try {
        if (entries.length === 1) {
          entries[0].resolve(
            await sbatch(this.sbatchArgs(entries[0].stage, entries[0].descriptorPath)),
          );
          continue;
        }
        const master = await sbatch(this.arrayArgs(entries));
        entries.forEach((entry, i) => entry.resolve(`${master}_${i}`));
      } catch (e) {
        for (const entry of entries) entry.reject(e as Error);
      }
    }
  }

  /**
   * The file that records the job computing `stage` (beside the descriptors, in the shared
   * cache), so that a later run of the driver reattaches to it instead of submitting again.
   */
  private recordPath(stage: ResolvedStage, descriptorPath: string): string {
    return `${descriptorPath.slice(0, descriptorPath.lastIndexOf("/"))}/slurm-${stage.key}.json`;
  }

  /** A job an earlier driver submitted for `stage` that is still queued or running. */
  private async earlierJob(
    stage: ResolvedStage,
    descriptorPath: string,
  ): Promise<{ id: string; descriptorPath: string } | undefined> {
    if (!stage.key) return undefined;
    let record: { id: string; descriptorPath: string };
    try {
      record = JSON.parse(await Deno.readTextFile(this.recordPath(stage, descriptorPath)));
    } catch {
      return undefined;
    }
    const listed = await slurm("squeue", ["-h", "-r", "-t", "all", "-j", record.id, "-o", "%T"]);
    const state = listed.ok ? listed.stdout.trim() : "";
    return state && !FINAL_STATES.has(state) ? record : undefined;
  }

  async run(stage: ResolvedStage, descriptorPath: string): Promise<void> {
    if (this.cancelled) throw new Error("cancelled before submission");
    const record = this.recordPath(stage, descriptorPath);
    const earlier = await this.earlierJob(stage, descriptorPath);
    if (earlier) {
      // The driver that submitted it is gone (a lost terminal, a killed login shell): wait on
      // its job, reading its logs, rather than computing the stage twice.
      this.log(
        `  [${stage.id}] reattached to slurm job ${earlier.id} (submitted by an earlier run)`,
      );
      await this.waitFor(stage, earlier.id, earlier.descriptorPath);
      await Deno.remove(record).catch(() => {});
      await Deno.remove(earlier.descriptorPath).catch(() => {});
      await Deno.remove(`${earlier.descriptorPath}.error`).catch(() => {});
      return;
    }
    const id = await this.submit(stage, descriptorPath);
    // In flight (so Ctrl-C cancels it) and recorded (so a later driver finds it) before the
    // line that names it.
    const done = this.waitFor(stage, id, descriptorPath);
    done.catch(() => {}); // awaited below; this keeps an early throw from leaving it unhandled
    try {
      if (stage.key) {
        await Deno.writeTextFile(`${record}.tmp`, JSON.stringify({ id, descriptorPath }) + "\n");
        await Deno.rename(`${record}.tmp`, record);
      }
      this.log(`  [${stage.id}] slurm job ${id}`);
      if (this.cancelled) await slurm("scancel", [id]); // Ctrl-C came while sbatch ran
      await done;
    } finally {
      await Deno.remove(record).catch(() => {});
    }
  }

  /**
   * Track job `id` of `stage` from now (its polls start at once) and wait for it to end,
   * streaming its logs; rejects when it failed.
   */
  private async waitFor(stage: ResolvedStage, id: string, descriptorPath: string): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.jobs.set(id, {
        id,
        stage,
        descriptorPath,
        out: new LogTail(`${descriptorPath}.out`),
        err: new LogTail(`${descriptorPath}.err`),
        unknownPolls: 0,
        settle: (error) => error ? reject(error) : resolve(),
      });
    });
    this.polling ??= this.pollLoop().finally(() => this.polling = undefined);
    await done;
    // The logs were streamed already; a failed job's stay beside its descriptor's error.
    await Deno.remove(`${descriptorPath}.out`).catch(() => {});
    await Deno.remove(`${descriptorPath}.err`).catch(() => {});
    if (id.includes("_")) {
      // An array element's own log (the shell around the worker; normally empty).
      const jobs = descriptorPath.slice(0, descriptorPath.lastIndexOf("/"));
      await Deno.remove(`${jobs}/array-${id}.log`).catch(() => {});
    }
  }

  /** `scancel` every job in flight; their `run` calls then fail as CANCELLED. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    const ids = [...this.jobs.keys()];
    if (ids.length === 0) return;
    this.log(`cancelling ${ids.length} slurm job(s): ${ids.join(" ")}`);
    const result = await slurm("scancel", ids);
    if (!result.ok) this.log(`scancel: ${result.stderr.trim()}`);
  }

  /** Seconds between polls so far, in order (the backoff, for tests and the log). */
  readonly pollWaits: number[] = [];

  private async pollLoop(): Promise<void> {
    const first = this.options.pollSeconds ?? 1;
    const longest = Math.max(first, this.options.runningPollSeconds ?? 10);
    let wait = first;
    let squeueFailures = 0;
    while (this.jobs.size > 0) {
      this.pollWaits.push(wait);
      await new Promise((r) => setTimeout(r, wait * 1000));
      wait = Math.min(2 * wait, longest);
      const ids = [...this.jobs.keys()];
      const listed = await slurm("squeue", [
        "-h",
        "-r", // array elements one per line, pending ones included
        "-t",
        "all",
        "-j",
        ids.join(","),
        "-o",
        "%i|%T",
      ]);
      // A single unknown id makes squeue fail with "Invalid job id": treat it as not listed.
      if (!listed.ok && !/invalid job id/i.test(listed.stderr)) {
        if (++squeueFailures % 30 === 1) this.log(`squeue failed: ${listed.stderr.trim()}`);
        continue; // a busy controller; the jobs are still there
      }
      squeueFailures = 0;
      const states = new Map<string, string>();
      for (const line of listed.stdout.split("\n")) {
        const [id, state] = line.trim().split("|");
        if (id && state) states.set(id, state);
      }
      // A running job ends in minutes, not seconds: poll it no faster than `longest`.
      if ([...states.values()].includes("RUNNING")) wait = longest;
      for (const job of [...this.jobs.values()]) {
        await this.stream(job);
        const state = states.get(job.id);
        if (state !== undefined && !FINAL_STATES.has(state)) {
          job.failedOnce = false;
          continue;
        }
        const end = await endState(job.id);
        if (!end || !FINAL_STATES.has(end.state)) {
          // squeue no longer lists it and nothing records its end (yet): wait a little.
          if (++job.unknownPolls < 30) continue;
        } else if (!(end.state === "COMPLETED" && end.exitCode === "0:0") && !job.failedOnce) {
          // A requeued job (preemption, a node failure) shows its killed attempt as ended for
          // a moment before it is pending again: believe a failure seen twice in a row.
          job.failedOnce = true;
          continue;
        }
        await this.stream(job, true);
        this.jobs.delete(job.id);
        job.settle(await this.failure(job, end));
      }
    }
  }

  private async stream(job: Job, final = false): Promise<void> {
    for (const tail of [job.out, job.err]) {
      for (const line of await tail.read(final)) this.log(`  [${job.stage.id}] ${line}`);
    }
  }

  /** The error for a job that ended, or undefined when it succeeded. */
  private async failure(job: Job, end: EndState | undefined): Promise<Error | undefined> {
    if (end?.state === "COMPLETED" && end.exitCode === "0:0") return undefined;
    const what = end
      ? `${end.state}, exit code ${end.exitCode}, reason ${end.reason || "None"}`
      : "no end state (squeue, sacct and scontrol no longer know the job)";
    const lines = [`slurm job ${job.id} (klal-${job.stage.id}) ended ${what}`];
    const workerError = await Deno.readTextFile(`${job.descriptorPath}.error`).catch(() => "");
    if (workerError) lines.push(`worker error: ${workerError.trim()}`);
    const stderr = await Deno.readTextFile(`${job.descriptorPath}.err`).catch(() => "");
    const tail = stderr.trimEnd().split("\n").slice(-STDERR_TAIL_LINES).join("\n");
    if (tail) lines.push(`stderr (${job.descriptorPath}.err, last lines):\n${tail}`);
    return new Error(lines.join("\n"));
  }
}

/** The end state from accounting (`sacct`), or from the controller when accounting is off. */
async function endState(id: string): Promise<EndState | undefined> {
  const sacct = await slurm("sacct", ["-n", "-P", "-X", "-j", id, "-o", "State,ExitCode,Reason"]);
  const row = sacct.ok ? sacct.stdout.split("\n").find((line) => line.trim()) : undefined;
  if (row) {
    const [state, exitCode, reason] = row.trim().split("|");
    // "CANCELLED by 0" -> "CANCELLED"
    const end = { state: state.split(" ")[0], exitCode, reason: reason ?? "" };
    if (FINAL_STATES.has(end.state)) return end;
  }
  const shown = await slurm("scontrol", ["show", "job", "-o", id]);
  if (!shown.ok) return undefined;
  const field = (name: string) => new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(shown.stdout)?.[1];
  const state = field("JobState");
  if (!state) return undefined;
  return { state, exitCode: field("ExitCode") ?? "?", reason: field("Reason") ?? "" };
}

interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a Slurm client command; a missing command is a clear error, not a crash. */
async function slurm(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  try {
    const out = await new Deno.Command(command, { args, env, stdin: "null" }).output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { ok: out.success, stdout: text(out.stdout), stderr: text(out.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return {
        ok: false,
        stdout: "",
        stderr: `${command}: not found on PATH (is Slurm installed?)`,
      };
    }
    throw e;
  }
}

/** Quotes one word for /bin/sh (sbatch --wrap runs its text in a shell). */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
