/**
 * `cache gc --apply` and running experiments: a shared lock on the cache keeps gc from
 * deleting a run's temp folders and job descriptors under it.
 */
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache/store.ts";
import { LocalExecutor } from "../pipeline/run/executors/local.ts";
import { runExperiment } from "../pipeline/run/runner.ts";
import type { ResolvedStage } from "../pipeline/run/plan.ts";
import { expandSweep } from "../pipeline/spec/sweep.ts";
import { TASKS } from "../tasks/registry.ts";
import {
  cacheWithStrayEntry,
  type CommandResult,
  exists,
  ROOT,
  runGc,
  smallestSpec,
} from "./cli.ts";

const SPEC = smallestSpec("gc-lock");

/** A process that holds the experiments' lock on `root` until its stdin closes. */
const HOLDER = `
import { Cache } from "${new URL("../pipeline/cache/store.ts", import.meta.url).href}";
import { holdExperimentLock } from "${new URL("../pipeline/cache/lock.ts", import.meta.url).href}";
const lock = await holdExperimentLock(new Cache(Deno.args[0]), "held-by-test");
console.log("locked");
for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
await lock.release();
`;

Deno.test("gc --apply deletes nothing while an experiment holds the cache, and names it", async () => {
  const { dir, cache, key } = await cacheWithStrayEntry("gc-lock");
  // What a run in flight has: a half-written entry and a job descriptor.
  await Deno.mkdir(`${cache.root}/tmp/ab0000000000-run`, { recursive: true });
  await Deno.mkdir(`${cache.root}/jobs`);
  await Deno.writeTextFile(`${cache.root}/jobs/stage-1.json`, "{}");
  await Deno.mkdir(`${dir}/experiments`);
  await Deno.writeTextFile(`${dir}/holder.ts`, HOLDER);

  const holder = new Deno.Command(Deno.execPath(), {
    // The script lives outside the repository: the repository's config resolves its imports.
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${dir}/holder.ts`, cache.root],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await lines.read()).value?.trim(), "locked");

  const refused = await runGc(cache.root, `${dir}/experiments`, "--apply");
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(`an experiment is running \\(pid ${holder.pid} on .*: held-by-test, since `),
  );
  assert.match(refused.stderr, /gc --apply deletes nothing while an experiment runs/);
  assert.equal(await cache.has(key), true);
  assert.equal(await exists(`${cache.root}/tmp/ab0000000000-run`), true);
  assert.equal(await exists(`${cache.root}/jobs/stage-1.json`), true);
  // A dry run still reports, and says why its list may change.
  const dry = await runGc(cache.root, `${dir}/experiments`);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`note: an experiment is running \\(pid ${holder.pid} `));
  assert.match(dry.stdout, /would remove ab0000000000/);

  await holder.stdin.close();
  assert.equal((await holder.status).code, 0);
  await lines.cancel();

  const apply = await runGc(cache.root, `${dir}/experiments`, "--apply");
  assert.equal(apply.code, 0, apply.stderr);
  assert.match(apply.stdout, /^removed ab0000000000/m);
  assert.equal(await cache.has(key), false);
  for (const leftover of ["tmp", "jobs", "running"]) {
    assert.equal(await exists(`${cache.root}/${leftover}`), false, leftover);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a running experiment holds the cache: gc during its stages deletes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-gc-run-" });
  await Deno.mkdir(`${dir}/experiments`);
  const cache = new Cache(`${dir}/cache`);
  const [spec] = expandSweep(SPEC, `${dir}/spec.yaml`, [], { tasks: TASKS });
  const during: CommandResult[] = [];
  const local = new LocalExecutor();
  // Runs gc --apply while each stage's descriptor is in jobs/, then the stage itself.
  const executor = {
    name: "gc-in-between",
    async run(stage: ResolvedStage, descriptor: string, options: { plainProgress: boolean }) {
      during.push(await runGc(cache.root, `${dir}/experiments`, "--apply"));
      assert.equal(
        await exists(descriptor),
        true,
        "gc deleted the job descriptor of a running stage",
      );
      await local.run(stage, descriptor, options);
    },
    cancel: () => local.cancel(),
  };
  const summary = await runExperiment(spec, {
    cache,
    reportsDir: `${dir}/reports`,
    executor,
    jobs: 1,
    log: () => {},
  });
  assert.equal(summary.stages.length, 8);
  assert.equal(during.length, 7);
  for (const out of during) {
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stderr, new RegExp(`an experiment is running \\(pid ${Deno.pid} .*: gc-lock`));
  }
  // The lock is released when the run ends: gc now runs, and keeps what the run used.
  const after = await runGc(cache.root, `${dir}/experiments`, "--apply");
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stdout, /^0 unreferenced entries/m);
  await Deno.remove(dir, { recursive: true });
});
