/**
 * The Slurm executor against a real single-node Slurm started on this machine
 * (tests/slurm/start.sh: munged, slurmctld, slurmd with a generated slurm.conf), plus the
 * `executor:` spec block and `--executor` flag, which need no Slurm.
 *
 * The real-Slurm test is skipped, with the reason printed, when the Slurm programs are not
 * installed (Debian: slurmctld slurmd munge slurm-client) or the test is not root.
 */
import assert from "node:assert/strict";
import { TASKS } from "../tasks/registry.ts";
import { SlurmExecutor } from "../pipeline/run/executors/slurm.ts";
import { parseArgs } from "../pipeline/commands/experiment.ts";
import { buildPlan, type ResolvedStage, resolvePlan } from "../pipeline/run/plan.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { ROOT, tinySpec } from "./cli.ts";
import { problemsOf } from "./spec_fixtures.ts";

const MAIN = `${ROOT}pipeline/commands/experiment.ts`;
const START = `${ROOT}tests/slurm/start.sh`;

/** The tiny spec of tests/e2e_test.ts with two arms. */
const TINY_SPEC = tinySpec("slurm-tiny", {
  ntp: "{ lambda: 0 }",
  klal: "{ lambda: 1.0, layers: all }",
});

/** A spec whose held-out data stage throws: its annotation file has no valid row. */
const FAILING_SPEC = `
name: slurm-fail
seeds: [0]
task: { name: pixmo-points, image_size: 16, train: 16, test: 8,
        source: { test: { path: bad.jsonl } } }
model: { patch_size: 8, d_model: 16, layers: 1, heads: 2 }
base: { steps: 1, batch_size: 4, train: 8 }
train: { steps: 1, batch_size: 4, warmup: 0, log_every: 1 }
arms:
  ntp: { lambda: 0 }
`;

const EXECUTOR_BLOCK = `executor:
  name: slurm
  partition: debug
  time: "0:10:00"
  cpus: 1
  sbatch: ["--comment=klal-test"]
`;

// ---------------------------------------------------------------------------------------
// No Slurm needed

const ctx = { tasks: TASKS };

function specProblems(text: string): string[] {
  return problemsOf(() => parseSpec(text, "x.yaml", [], ctx));
}

Deno.test("executor block: validated strictly, defaults filled, absent when not given", () => {
  assert.equal(parseSpec(TINY_SPEC, "x.yaml", [], ctx).executor, undefined);
  const spec = parseSpec(TINY_SPEC + EXECUTOR_BLOCK, "x.yaml", [], ctx);
  assert.deepEqual(spec.executor, {
    name: "slurm",
    partition: "debug",
    time: "0:10:00",
    cpus: 1,
    sbatch: ["--comment=klal-test"],
    stages: {},
  });
  // Minutes as a bare number, and overrides reach the block like any other key.
  const minutes = parseSpec(TINY_SPEC, "x.yaml", ["executor.time=90", "executor.gres=gpu:1"], ctx);
  assert.deepEqual(minutes.executor, {
    name: "local",
    time: "90",
    gres: "gpu:1",
    sbatch: [],
    stages: {},
  });
  for (const time of ["5:30", "1-12", "1-12:30", "2-00:00:00", "UNLIMITED"]) {
    const ok = parseSpec(TINY_SPEC, "x.yaml", [`executor.time="${time}"`], ctx);
    assert.equal(ok.executor?.time, time);
  }

  const bad = specProblems(
    TINY_SPEC +
      `executor: { name: pbs, time: "2 hours", cpus: 0, gres: "gpu 1", sbatch: "--qos=x", queue: q }`,
  );
  const line = TINY_SPEC.split("\n").length;
  assert.equal(bad.length, 6, bad.join("\n"));
  assert.match(
    bad[0],
    new RegExp(
      `^x\\.yaml:${line}:\\d+ executor\\.name: expected one of "local", "slurm", found "pbs"`,
    ),
  );
  assert.match(bad.join("\n"), /executor\.time: expected a Slurm time limit.*found "2 hours"/);
  assert.match(bad.join("\n"), /executor\.cpus: expected an integer >= 1, found 0/);
  assert.match(bad.join("\n"), /executor\.gres: expected generic resources .*found "gpu 1"/);
  assert.match(
    bad.join("\n"),
    /executor\.sbatch: expected a list of sbatch options.*found "--qos=x"/,
  );
  assert.match(
    bad.join("\n"),
    /executor\.queue: expected a known key.*valid keys: name, partition/,
  );
  assert.match(specProblems(TINY_SPEC + "executor: slurm")[0], /executor: expected a mapping/);
  assert.match(specProblems(TINY_SPEC + "executor: { time: 1:2:3:4 }")[0], /executor\.time/);
});

Deno.test("executor block: not part of any stage key (report included)", async () => {
  const plain = await resolvePlan(buildPlan(parseSpec(TINY_SPEC, "x.yaml", [], ctx)));
  const withSlurm = await resolvePlan(
    buildPlan(parseSpec(TINY_SPEC + EXECUTOR_BLOCK, "x.yaml", [], ctx)),
  );
  assert.deepEqual(withSlurm.map((s) => [s.id, s.key]), plain.map((s) => [s.id, s.key]));
});

Deno.test("--executor: local or slurm, anything else is a usage error", () => {
  assert.equal(parseArgs(["x.yaml", "--executor", "slurm"]).executor, "slurm");
  assert.equal(parseArgs(["x.yaml", "--executor=local"]).executor, "local");
  assert.equal(parseArgs(["x.yaml"]).executor, undefined);
  assert.throws(() => parseArgs(["--executor", "pbs"]), /--executor expects one of local, slurm/);
  assert.throws(() => parseArgs(["--executor"]), /--executor expects a value/);
});

Deno.test("sbatch arguments: job name, log files, resources, extra options, quoted command", () => {
  const executor = new SlurmExecutor({
    partition: "gpu",
    time: "2:00:00",
    cpus: 4,
    gres: "gpu:1",
    sbatch: ["--qos=long"],
    denoPath: "/opt/my deno/deno",
  });
  const stage = { id: "finetune:klal:s0" } as ResolvedStage;
  const args = executor.sbatchArgs(stage, "/shared/cache/jobs/stage-1.json");
  for (
    const expected of [
      "--parsable",
      "--job-name=klal-finetune:klal:s0",
      "--output=/shared/cache/jobs/stage-1.json.out",
      "--error=/shared/cache/jobs/stage-1.json.err",
      "--export=ALL",
      "--requeue",
      "--open-mode=append",
      "--partition=gpu",
      "--time=2:00:00",
      "--cpus-per-task=4",
      "--gres=gpu:1",
      "--qos=long",
    ]
  ) assert.ok(args.includes(expected), `${expected} missing from ${args.join(" ")}`);
  const wrap = args.at(-1)!;
  assert.match(
    wrap,
    /^--wrap='\/opt\/my deno\/deno' run --allow-read --allow-write --allow-env --allow-sys --allow-ffi --no-prompt --quiet \S+\/pipeline\/run\/worker\.ts /,
  );
  assert.ok(wrap.endsWith(" /shared/cache/jobs/stage-1.json"));
});

Deno.test("a job array: one element per stage, each worker's output in its own files", () => {
  const executor = new SlurmExecutor({ gres: "gpu:1", denoPath: "/usr/bin/deno" });
  const entries = [0, 1, 2].map((i) => ({
    stage: { id: `finetune:ntp:s${i}`, kind: "finetune" } as ResolvedStage,
    descriptorPath: `/shared/jobs/stage-${i}.json`,
  }));
  const args = executor.arrayArgs(entries);
  for (
    const expected of [
      "--parsable",
      "--array=0-2",
      "--job-name=klal-finetune[3]",
      "--output=/shared/jobs/array-%A_%a.log",
      "--gres=gpu:1",
      "--requeue",
    ]
  ) assert.ok(args.includes(expected), `${expected} missing from ${args.join(" ")}`);
  const wrap = args.at(-1)!;
  assert.ok(
    wrap.startsWith('--wrap=case "$SLURM_ARRAY_TASK_ID" in 0) exec /usr/bin/deno run '),
    wrap,
  );
  assert.match(
    wrap,
    / 2\) exec \S+ run .* \/shared\/jobs\/stage-2\.json >>\/shared\/jobs\/stage-2\.json\.out 2>>\/shared\/jobs\/stage-2\.json\.err;; esac$/,
  );
  assert.equal(args.filter((a) => a.startsWith("--wrap=")).length, 1);
  assert.equal(args.filter((a) => a.startsWith("--job-name=")).length, 1);
});

Deno.test("sbatch arguments per stage kind: data and report on CPU, each kind's own resources", () => {
  const executor = new SlurmExecutor({
    partition: "gpu",
    time: "2:00:00",
    cpus: 4,
    gres: "gpu:1",
    sbatch: ["--qos=long"],
    stages: {
      finetune: { time: "6:00:00", sbatch: ["--mem=16G"] },
      eval: { gres: "" },
      data: { partition: "cpu", cpus: 2 },
    },
  });
  const args = (kind: string) =>
    executor.sbatchArgs({ id: `${kind}:x`, kind } as ResolvedStage, "/shared/j.json");
  const has = (kind: string, flag: string) => args(kind).includes(flag);
  // The common gres goes to the training stages only.
  assert.ok(has("pretrain", "--gres=gpu:1") && has("finetune", "--gres=gpu:1"));
  assert.ok(!args("data").some((a) => a.startsWith("--gres")), args("data").join(" "));
  assert.ok(!args("report").some((a) => a.startsWith("--gres")));
  assert.ok(!args("choose-lr").some((a) => a.startsWith("--gres")));
  // "" asks for none; a kind's own values win, the rest are the common ones.
  assert.ok(!args("eval").some((a) => a.startsWith("--gres")));
  assert.ok(has("finetune", "--time=6:00:00") && !has("finetune", "--time=2:00:00"));
  assert.ok(has("finetune", "--qos=long") && has("finetune", "--mem=16G"));
  assert.ok(!has("pretrain", "--mem=16G"));
  assert.ok(has("data", "--partition=cpu") && has("data", "--cpus-per-task=2"));
  assert.ok(has("report", "--partition=gpu") && has("report", "--cpus-per-task=4"));
});

// ---------------------------------------------------------------------------------------
// A real single-node Slurm

function onPath(command: string): boolean {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  return dirs.some((dir) => {
    try {
      return Deno.statSync(`${dir}/${command}`).isFile;
    } catch {
      return false;
    }
  });
}

const SLURM_PROGRAMS = ["sbatch", "squeue", "scancel", "sinfo", "slurmctld", "slurmd", "munged"];
const missing = SLURM_PROGRAMS.filter((p) => !onPath(p));
const SKIP_REASON = missing.length > 0
  ? `${missing.join(", ")} not on PATH (Debian: apt-get install slurmctld slurmd munge ` +
    `slurm-client)`
  : Deno.uid() !== 0
  ? "starting a private Slurm (munged, slurmctld, slurmd) needs root"
  : "";
if (SKIP_REASON) console.warn(`slurm_test: skipping the real-Slurm test: ${SKIP_REASON}`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function command(program: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(program, {
    args,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) } as Run;
}

function experiment(args: string[], env: Record<string, string>): Promise<Run> {
  // Polls at most a second apart, so the tiny stages' tests stay quick.
  const polled = { KLAL_SLURM_POLL_SECONDS: "1", ...env };
  return command(Deno.execPath(), ["run", "-A", MAIN, ...args], polled);
}

/** A spec whose one fine-tune runs long enough, checkpointing, to be requeued mid-way. */
const REQUEUE_SPEC = tinySpec("slurm-requeue", { klal: "{ lambda: 1.0 }" }, {
  backend: "wasm",
  base: "{ steps: 2, batch_size: 8, train: 16 }",
  train: "{ steps: 600, batch_size: 8, warmup: 1, log_every: 100, checkpoint_every: 40 }",
  eval: "{ batch_size: 16 }",
});

async function resultRows(reportsDir: string, name: string): Promise<unknown[]> {
  return JSON.parse(await Deno.readTextFile(`${reportsDir}/${name}/results.json`)).rows;
}

Deno.test({
  name: `slurm executor on a real single-node Slurm${
    SKIP_REASON ? ` (skipped: ${SKIP_REASON})` : ""
  }`,
  ignore: SKIP_REASON !== "",
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "klal-slurm-test-" });
    const slurmDir = `${dir}/slurm`;
    try {
      const started = await command("bash", [START, slurmDir]);
      assert.equal(started.code, 0, `start.sh failed:\n${started.stdout}${started.stderr}`);
      const slurmEnv = { SLURM_CONF: `${slurmDir}/slurm.conf` };
      // The client programs inside this test process read SLURM_CONF too.
      Deno.env.set("SLURM_CONF", slurmEnv.SLURM_CONF);
      await Deno.writeTextFile(`${dir}/tiny.yaml`, TINY_SPEC);

      await t.step("a two-arm spec gives the same results as the local executor", async () => {
        const local = { KLAL_CACHE_DIR: `${dir}/cache-local`, KLAL_REPORTS_DIR: `${dir}/local` };
        const localRun = await experiment([`${dir}/tiny.yaml`, "--executor", "local"], local);
        assert.equal(localRun.code, 0, localRun.stderr);

        const onSlurm = { ...slurmEnv, KLAL_CACHE_DIR: `${dir}/cache-slurm` };
        const env = { ...onSlurm, KLAL_REPORTS_DIR: `${dir}/slurm-reports` };
        const slurmRun = await experiment([`${dir}/tiny.yaml`, "--executor", "slurm"], env);
        assert.equal(slurmRun.code, 0, slurmRun.stdout + slurmRun.stderr);
        assert.match(slurmRun.stdout, /10 stages, 0 cached, 10 to run/);
        // Every worker stage was a Slurm job, and its progress streamed back by stage id.
        const jobs = [...slurmRun.stderr.matchAll(/^\s+\[(\S+)\] slurm job (\d+)(_\d+)?$/gm)];
        assert.equal(jobs.length, 9, slurmRun.stderr);
        // The four data stages, ready together, went as one job array of four elements.
        const data = jobs.filter((m) => m[1].startsWith("data:"));
        assert.equal(data.length, 4);
        assert.equal(new Set(data.map((m) => m[2])).size, 1, slurmRun.stderr);
        assert.deepEqual(data.map((m) => m[3]).sort(), ["_0", "_1", "_2", "_3"]);
        assert.match(
          slurmRun.stderr,
          /\[finetune:klal:s0\] slurm-tiny finetune:klal:s0 \[#+\] 4\/4/,
        );

        const rows = await resultRows(`${dir}/slurm-reports`, "slurm-tiny");
        assert.ok(rows.length > 0);
        assert.deepEqual(rows, await resultRows(`${dir}/local`, "slurm-tiny"));

        // Rerunning resumes from the shared cache: nothing is submitted.
        const again = await experiment([`${dir}/tiny.yaml`, "--executor", "slurm"], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /10 stages, 10 cached, 0 to run/);
        assert.doesNotMatch(again.stderr, /slurm job/);

        // The spec's executor block changes no key: the local cache serves all of it.
        await Deno.writeTextFile(`${dir}/block.yaml`, TINY_SPEC + EXECUTOR_BLOCK);
        const block = await experiment([`${dir}/block.yaml`], local);
        assert.equal(block.code, 0, block.stderr);
        assert.match(block.stdout, /10 stages, 10 cached, 0 to run/);
      });

      await t.step("a failing stage reports the stage, Slurm's state and the error", async () => {
        await Deno.writeTextFile(`${dir}/fail.yaml`, FAILING_SPEC);
        await Deno.writeTextFile(`${dir}/bad.jsonl`, `{"bad": 1}\n`);
        const env = {
          ...slurmEnv,
          KLAL_CACHE_DIR: `${dir}/cache-fail`,
          KLAL_REPORTS_DIR: `${dir}/fail-reports`,
        };
        const run = await experiment([`${dir}/fail.yaml`, "--executor", "slurm"], env);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(
          run.stderr,
          /stage data:pixmo-points:test:s0 failed: slurm job \d+(_\d+)? \(klal-data:pixmo-points:test:s0\) ended FAILED, exit code 1:0, reason NonZeroExitCode/,
        );
        assert.match(run.stderr, /worker error: .*bad\.jsonl row 1: expected "image_url"/);

        // --keep-going: the same failure, and the stages that do not need it still run.
        const going = await experiment(
          [`${dir}/fail.yaml`, "--executor", "slurm", "--keep-going"],
          { ...env, KLAL_CACHE_DIR: `${dir}/cache-fail-going` },
        );
        assert.equal(going.code, 1, going.stdout + going.stderr);
        assert.match(going.stdout, /done finetune:ntp:s0 in/);
        assert.match(going.stderr, /not run, 1 stage\(s\) that need a failed one: eval:ntp:s0/);
      });

      await t.step("a job whose descriptor is missing fails with its stderr tail", async () => {
        const executor = new SlurmExecutor({ pollSeconds: 0.25, log: () => {} });
        const stage = { id: "data:missing" } as ResolvedStage;
        await assert.rejects(
          executor.run(stage, `${dir}/no-such-descriptor.json`),
          (e: Error) => {
            assert.match(e.message, /\(klal-data:missing\) ended FAILED, exit code 1:0/);
            assert.match(e.message, /stderr \(.*no-such-descriptor\.json\.err, last lines\):/);
            assert.match(e.message, /NotFound/);
            return true;
          },
        );
      });

      await t.step(
        "polls back off: doubling from the first wait, the longest once running",
        async () => {
          const executor = new SlurmExecutor({
            pollSeconds: 0.25,
            runningPollSeconds: 1,
            log: () => {},
          });
          const stage = { id: "data:sleep" } as ResolvedStage;
          // A job that starts Deno and fails (no descriptor): its waits are what is checked.
          await assert.rejects(
            executor.run(stage, `${dir}/sleeping.json`),
            /\(klal-data:sleep\) ended FAILED/,
          );
          const waits = executor.pollWaits;
          assert.equal(waits[0], 0.25, waits.join(" "));
          assert.ok(waits.every((w, i) => i === 0 || w >= waits[i - 1]), waits.join(" "));
          assert.ok(Math.max(...waits) <= 1, waits.join(" "));
        },
      );

      await t.step(
        "a job requeued mid-fine-tune (as on preemption) resumes and finishes",
        async () => {
          await Deno.writeTextFile(`${dir}/requeue.yaml`, REQUEUE_SPEC);
          const local = {
            KLAL_CACHE_DIR: `${dir}/cache-rq-local`,
            KLAL_REPORTS_DIR: `${dir}/rq-local`,
          };
          const whole = await experiment([`${dir}/requeue.yaml`, "--executor", "local"], local);
          assert.equal(whole.code, 0, whole.stderr);
          const env = {
            ...slurmEnv,
            KLAL_CACHE_DIR: `${dir}/cache-rq`,
            KLAL_REPORTS_DIR: `${dir}/rq-slurm`,
            KLAL_SLURM_POLL_SECONDS: "1",
            NO_COLOR: "1",
          };
          const child = new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", MAIN, `${dir}/requeue.yaml`, "--executor", "slurm"],
            env,
            stdin: "null",
            stdout: "null",
            stderr: "piped",
          }).spawn();
          let stderr = "";
          const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
          const partial = `${dir}/cache-rq/partial`;
          const checkpointed = () => {
            try {
              return [...Deno.readDirSync(partial)].some((e) => e.name.endsWith(".prev.ckpt"));
            } catch {
              return false;
            }
          };
          const reading = (async () => {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              stderr += value;
            }
          })();
          // Once the fine-tune has two checkpoints, requeue its job (what preemption does).
          let requeued = "";
          const deadline = Date.now() + 120_000;
          while (!requeued && Date.now() < deadline) {
            const job = /\[finetune:klal:s0\] slurm job (\d+(?:_\d+)?)/.exec(stderr)?.[1];
            if (job && checkpointed()) {
              const r = await command("scontrol", ["requeue", job]);
              assert.equal(r.code, 0, r.stderr);
              // Slurm holds a requeued job back for a while (its begin time moves on); let
              // it go at once, as a cluster does once the preempting job is done.
              for (let i = 0; i < 100; i++) {
                const shown = await command("scontrol", ["show", "job", "-o", job]);
                if (/Reason=BeginTime/.test(shown.stdout)) {
                  // (a few seconds on, so that its killed attempt has finished completing)
                  await command("scontrol", ["update", `JobId=${job}`, "StartTime=now+5"]);
                  break;
                }
                await new Promise((r) => setTimeout(r, 100));
              }
              requeued = job;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
          await reading;
          const status = await child.status;
          assert.equal(status.code, 0, stderr);
          assert.ok(requeued, `never requeued: ${stderr}`);
          // The same job id came back and the fine-tune went on from its checkpoint.
          assert.match(stderr, /\[finetune:klal:s0\] .*resuming from step \d+/);
          assert.equal([...stderr.matchAll(/\[finetune:klal:s0\] slurm job /g)].length, 1);
          assert.deepEqual(
            await resultRows(`${dir}/rq-slurm`, "slurm-requeue"),
            await resultRows(`${dir}/rq-local`, "slurm-requeue"),
          );
        },
      );

      await t.step("a driver killed mid-run, run again, reattaches to its jobs", async () => {
        const env = {
          ...slurmEnv,
          KLAL_CACHE_DIR: `${dir}/cache-re`,
          KLAL_REPORTS_DIR: `${dir}/re-reports`,
          KLAL_SLURM_POLL_SECONDS: "1",
          NO_COLOR: "1",
        };
        // The first driver's jobs wait 5 s to start; it is killed (no scancel) once four are in.
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            MAIN,
            `${dir}/tiny.yaml`,
            "--executor",
            "slurm",
            `executor.sbatch=["--begin=now+5"]`,
          ],
          env,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        let stderr = "";
        const ids = () => [...stderr.matchAll(/slurm job (\d+(?:_\d+)?)/g)].map((m) => m[1]);
        const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
        while (ids().length < 4) {
          const { value, done } = await reader.read();
          if (done) break;
          stderr += value;
        }
        child.kill("SIGKILL");
        await child.status;
        await reader.cancel();
        const orphans = ids();
        assert.equal(orphans.length, 4, stderr);
        // Run again (without the delay: the executor block is in no key): it waits on the
        // four jobs still queued instead of submitting their stages again.
        const again = await experiment([`${dir}/tiny.yaml`, "--executor", "slurm"], env);
        assert.equal(again.code, 0, again.stderr);
        for (const id of orphans) {
          assert.match(
            again.stderr,
            new RegExp(`reattached to slurm job ${id} \\(submitted by an earlier run\\)`),
          );
        }
        const fresh = [...again.stderr.matchAll(/\] slurm job (\d+(?:_\d+)?)$/gm)].map((m) => m[1]);
        assert.ok(fresh.every((id) => !orphans.includes(id)), again.stderr);
        assert.equal(fresh.length + orphans.length, 9, again.stderr);
        assert.deepEqual(
          await resultRows(`${dir}/re-reports`, "slurm-tiny"),
          await resultRows(`${dir}/local`, "slurm-tiny"),
        );
      });

      await t.step("cancel() scancels the jobs in flight", async () => {
        let submitted!: () => void;
        const seen = new Promise<void>((resolve) => submitted = resolve);
        const executor = new SlurmExecutor({
          pollSeconds: 0.25,
          // Held in the queue for ten minutes: cancelled long before it could start.
          sbatch: ["--begin=now+600"],
          log: (line) => line.includes("slurm job") && submitted(),
        });
        const stage = { id: "finetune:held" } as ResolvedStage;
        const running = executor.run(stage, `${dir}/held.json`);
        await seen;
        await executor.cancel();
        await assert.rejects(running, /\(klal-finetune:held\) ended CANCELLED/);
      });

      await t.step("Ctrl-C of the runner scancels its jobs and exits 130", async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            MAIN,
            `${dir}/tiny.yaml`,
            "--executor",
            "slurm",
            `executor.sbatch=["--begin=now+600"]`, // held in the queue until cancelled
          ],
          env: { ...slurmEnv, KLAL_CACHE_DIR: `${dir}/cache-int`, NO_COLOR: "1" },
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        let stderr = "";
        const ids = () => [...stderr.matchAll(/slurm job (\d+(?:_\d+)?)/g)].map((m) => m[1]);
        const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
        while (ids().length < 4) { // the four data stages are ready at once
          const { value, done } = await reader.read();
          if (done) break;
          stderr += value;
        }
        assert.equal(ids().length, 4, stderr);
        child.kill("SIGINT");
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          stderr += value;
        }
        assert.equal((await child.status).code, 130, stderr);
        assert.match(stderr, /cancelling 4 slurm job/);
        const states = await command("squeue", [
          "-h",
          "-r",
          "-t",
          "all",
          "-j",
          [...new Set(ids().map((id) => id.split("_")[0]))].join(","),
          "-o",
          "%T",
        ]);
        // A job array cancelled while pending is one record (its elements never started).
        const listed = states.stdout.trim().split("\n");
        assert.ok(listed.length >= 1 && listed.every((s) => s === "CANCELLED"), states.stdout);
      });
    } finally {
      Deno.env.delete("SLURM_CONF");
      const stopped = await command("bash", [START, "--stop", slurmDir]);
      if (stopped.code !== 0) console.error(stopped.stderr);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
