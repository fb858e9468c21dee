/**
 * No command serves damaged or misread data as a normal result: bytes flipped in a cache
 * entry (same size) are caught by experiment, eval, report and cache verify; damaged
 * resumable checkpoints are discarded; main-process failures read like stage failures; eval
 * names what it skips; a report replaced from another spec file says so.
 */
import assert from "node:assert/strict";
import { Cache, DamagedEntry, PARTIAL_DIR } from "../pipeline/cache/store.ts";
import { readPartial, writePartial } from "../pipeline/stages/_resume.ts";
import type { TrainSnapshot } from "../pipeline/train/options.ts";
import { encodePng } from "../tasks/image_io.ts";
import { TASKS } from "../tasks/registry.ts";
import {
  cacheEntryOf,
  cacheWithStrayEntry,
  exists,
  runGc,
  runScript,
  smallestSpec,
  tempRun,
} from "./cli.ts";

/** XOR `count` bytes of the file at `path` from `offset`: same size, other content. */
async function flipBytes(path: string, offset = 0, count = 16): Promise<void> {
  const bytes = await Deno.readFile(path);
  for (let i = offset; i < Math.min(bytes.length, offset + count); i++) bytes[i] ^= 0xff;
  await Deno.writeFile(path, bytes);
}

/** A stack trace's frames ("    at f (file:...)"), which a user's error never shows. */
const STACK_FRAME = /^\s+at .*:\d+:\d+\)?$/m;

Deno.test("cache: a read checks the file against its manifest; verify lists every problem", async () => {
  const { dir, cache, key } = await cacheWithStrayEntry("integrity-unit");
  assert.equal(new TextDecoder().decode(await cache.readBytes(key, "a.txt")), "x");
  await Deno.writeTextFile(`${cache.entryDir(key)}/a.txt`, "y"); // same size
  await assert.rejects(cache.readBytes(key, "a.txt"), (e: Error) => {
    assert.ok(e instanceof DamagedEntry);
    assert.equal(
      e.message,
      `cache entry ${key.slice(0, 12)} is damaged (a.txt: content does not match its sha256)`,
    );
    return true;
  });
  await assert.rejects(cache.readJson(key, "a.txt"), DamagedEntry);
  assert.deepEqual(await cache.verify(key), ["a.txt: content does not match its sha256"]);
  await assert.rejects(cache.requireSound(key), DamagedEntry);
  await Deno.remove(`${cache.entryDir(key)}/a.txt`);
  assert.deepEqual(await cache.verify(key), ["a.txt: missing"]);
  await assert.rejects(cache.readBytes(key, "b.txt"), /has no file b\.txt/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("flipped bytes: eval and report refuse them, cache verify names them, experiment recomputes", async () => {
  const { dir, spec, env } = await tempRun("integrity", smallestSpec("integrity-tiny"));
  const run = (...args: string[]) =>
    runScript("pipeline/commands/experiment.ts", [spec, ...args], env);
  const first = await run();
  assert.equal(first.code, 0, first.stderr);

  // Outside images for eval: real files elsewhere, linked into the folder it reads, beside
  // entries it must skip and name.
  const config = { imageSize: 16, patchSize: 8, params: { grid: 2, blobs: 1 } };
  const samples = TASKS["grid-patch"].generate!(5, 3, config);
  await Deno.mkdir(`${dir}/real`);
  await Deno.mkdir(`${dir}/images/sub.png`, { recursive: true });
  const labels: Record<string, string> = {};
  for (const [i, s] of samples.entries()) {
    await Deno.writeFile(`${dir}/real/img${i}.png`, await encodePng(s.image));
    await Deno.symlink(`${dir}/real/img${i}.png`, `${dir}/images/img${i}.png`);
    labels[`img${i}.png`] = s.answer;
  }
  await Deno.symlink(`${dir}/real/none.png`, `${dir}/images/broken.png`);
  await Deno.writeTextFile(`${dir}/images/notes.txt`, "x");
  await Deno.writeTextFile(`${dir}/labels.json`, JSON.stringify(labels));
  const evaluate = () =>
    runScript("pipeline/commands/eval.ts", [
      spec,
      "--arm",
      "ntp",
      "--images",
      `${dir}/images`,
      "--labels",
      `${dir}/labels.json`,
      "--prompt",
      samples[0].prompt,
    ], env);
  const sound = await evaluate();
  assert.equal(sound.code, 0, sound.stderr);
  assert.match(sound.stdout, /accuracy [\d.]+% \(\d\/3;/);
  assert.match(
    sound.stderr,
    /note: 3 entries of .*images not scored: broken\.png \(a broken link\), notes\.txt \(not \.png\/\.jpg\), sub\.png \(a folder\)/,
  );

  const finetune = await cacheEntryOf(`${dir}/cache`, "finetune:ntp:s0");
  await flipBytes(`${finetune}/model.safetensors`, 200);
  const damaged = await evaluate();
  assert.equal(damaged.code, 1, damaged.stdout);
  assert.match(
    damaged.stderr,
    /error: finetune:ntp:s0 of integrity-tiny: its cache entry [0-9a-f]{12} is damaged \(model\.safetensors: content does not match its sha256\); run `deno task experiment .*spec\.yaml` to recompute it/,
  );
  assert.doesNotMatch(damaged.stdout, /accuracy/);

  const verify = await runScript("pipeline/commands/cache.ts", ["verify"], env);
  assert.equal(verify.code, 1, verify.stderr);
  assert.match(
    verify.stdout,
    /damaged [0-9a-f]{12} {2}finetune:ntp:s0: model\.safetensors: content/,
  );
  assert.match(verify.stdout, /^1 of 8 entries damaged/m);

  // One digit of an eval entry's accuracy changed: the rebuilt report must not show it.
  const evalEntry = await cacheEntryOf(`${dir}/cache`, "eval:ntp:s0");
  const text = await Deno.readTextFile(`${evalEntry}/metrics.json`);
  const at = text.search(/\d/);
  const tampered = text.slice(0, at) + (text[at] === "7" ? "8" : "7") + text.slice(at + 1);
  await Deno.writeTextFile(`${evalEntry}/metrics.json`, tampered);
  const tableBefore = await Deno.readTextFile(`${dir}/reports/integrity-tiny/table.md`);
  const report = await runScript("pipeline/commands/report.ts", ["integrity-tiny"], env);
  assert.equal(report.code, 1, report.stdout);
  assert.match(
    report.stderr,
    /damaged cache entries, not used: finetune:ntp:s0 \([0-9a-f]{12}: model\.safetensors: content does not match its sha256\), eval:ntp:s0 \([0-9a-f]{12}: metrics\.json: content/,
  );
  assert.equal(await Deno.readTextFile(`${dir}/reports/integrity-tiny/table.md`), tableBefore);

  const again = await run();
  assert.equal(again.code, 0, again.stderr);
  assert.match(
    again.stdout,
    /corrupt cache entry of finetune:ntp:s0 \(model\.safetensors: content/,
  );
  assert.match(again.stdout, /corrupt cache entry of eval:ntp:s0 \(metrics\.json: content/);
  assert.equal(await Deno.readTextFile(`${dir}/reports/integrity-tiny/table.md`), tableBefore);
  const clean = await runScript("pipeline/commands/cache.ts", ["verify"], env);
  assert.equal(clean.code, 0, clean.stdout);
  assert.match(clean.stdout, /^8 entries, all sound$/m);

  // The same experiment name from another spec file replaces the report, and says so.
  await Deno.copyFile(spec, `${dir}/other.yaml`);
  const other = await runScript("pipeline/commands/experiment.ts", [`${dir}/other.yaml`], env);
  assert.equal(other.code, 0, other.stderr);
  assert.match(
    other.stdout,
    /note: .*reports\/integrity-tiny was made from .*\/spec\.yaml; it now holds the report of .*\/other\.yaml \(both specs are named integrity-tiny\)/,
  );
  const same = await runScript("pipeline/commands/experiment.ts", [`${dir}/other.yaml`], env);
  assert.doesNotMatch(same.stdout, /was made from/);
  await Deno.remove(dir, { recursive: true });
});

/** A training snapshot of `n` moments at `step` (values that show which one was read). */
function snapshot(step: number, n: number): TrainSnapshot {
  return {
    step,
    optimizer: { t: step, m: new Float32Array(n).fill(step), v: new Float32Array(n).fill(-step) },
    order: { rng: 1, order: [0, 1], cursor: 1 },
    log: [],
    seconds: step / 10,
  };
}

Deno.test("partial checkpoints: a damaged one is discarded with a message, the previous one used", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-partial-" });
  const cache = new Cache(dir);
  const key = "cd" + "0".repeat(62);
  const weights = (v: number) => ({ w: { shape: [2, 3], data: new Float32Array(6).fill(v) } });
  await writePartial(cache, key, snapshot(10, 6), weights(1), { curve: [] });
  await writePartial(cache, key, snapshot(20, 6), weights(2), { curve: [] });
  const said: string[] = [];
  const say = (line: string) => said.push(line);
  const newest = await readPartial(cache, key, say);
  assert.equal(newest?.snapshot.step, 20);
  assert.deepEqual([...newest!.weights.w.data], [2, 2, 2, 2, 2, 2]);
  assert.deepEqual([...newest!.snapshot.optimizer.v], [-20, -20, -20, -20, -20, -20]);
  assert.deepEqual(said, []);

  const { newest: path, previous } = cache.partialPaths(key);
  const size = (await Deno.stat(path)).size;
  await flipBytes(path, size - 40); // in the moments: the header still parses
  const fallback = await readPartial(cache, key, say);
  assert.equal(fallback?.snapshot.step, 10);
  assert.deepEqual([...fallback!.weights.w.data], [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(said, [
    `discarding the damaged checkpoint ${path} (its sha256 does not match its content)`,
    `using the previous checkpoint ${previous}`,
  ]);
  assert.equal(await exists(path), false, "the damaged file is removed");

  said.length = 0;
  await flipBytes(previous, 0, 4); // the magic itself
  assert.equal(await readPartial(cache, key, say), undefined);
  assert.deepEqual(said, [
    `discarding the damaged checkpoint ${previous} (not a checkpoint of this format)`,
    "no sound checkpoint left: training restarts from step 0",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("partial checkpoints: ls counts them, gc removes those no spec plans", async () => {
  const { dir, cache, key } = await cacheWithStrayEntry("integrity-gc");
  const env = { KLAL_CACHE_DIR: cache.root };
  const stray = "ef" + "1".repeat(62);
  await writePartial(
    cache,
    stray,
    snapshot(5, 4),
    { w: { shape: [4], data: new Float32Array(4) } },
    {},
  );
  await writePartial(
    cache,
    stray,
    snapshot(6, 4),
    { w: { shape: [4], data: new Float32Array(4) } },
    {},
  );
  // A partial checkpoint of a finished entry is a leftover too.
  await Deno.writeFile(cache.partialPaths(key).newest, new Uint8Array(100));
  const ls = await runScript("pipeline/commands/cache.ts", ["ls"], env);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(
    ls.stdout,
    /^1 entries, 3 partial checkpoints \([\d.]+ (B|KB)\), [\d.]+ (B|KB) in /m,
  );
  assert.match(
    ls.stdout,
    new RegExp(`^${stray.slice(0, 12)} .* partial checkpoint \\(previous\\)`, "m"),
  );

  await Deno.mkdir(`${dir}/experiments`);
  const gc = await runGc(cache.root, `${dir}/experiments`, "--apply");
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, new RegExp(`removed partial/${stray}\\.ckpt`));
  assert.match(gc.stdout, new RegExp(`removed partial/${key}\\.ckpt`));
  assert.match(gc.stdout, /^1 unreferenced entries, 3 stale partial checkpoints, /m);
  assert.deepEqual([...Deno.readDirSync(`${cache.root}/${PARTIAL_DIR}`)], []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("main-process failures: one line each, exit 1 for a failed run, 2 for a bad setup", async () => {
  const { dir, spec, env } = await tempRun("integrity-main", smallestSpec("integrity-main"));
  // The reports folder is a file: publishing fails after every stage has run.
  await Deno.writeTextFile(`${dir}/reports-file`, "");
  const publish = await runScript("pipeline/commands/experiment.ts", [spec], {
    ...env,
    KLAL_REPORTS_DIR: `${dir}/reports-file`,
  });
  assert.equal(publish.code, 1, publish.stderr);
  assert.match(
    publish.stderr,
    /^error: publishing the report to .*reports-file\/integrity-main failed: /m,
  );
  assert.doesNotMatch(publish.stderr, STACK_FRAME);

  // The report stage cannot write its entry (tmp/ is a file): a stage failure like any other.
  await Deno.writeTextFile(`${dir}/cache/tmp-blocker`, "");
  await Deno.remove(`${dir}/cache/tmp`, { recursive: true });
  await Deno.rename(`${dir}/cache/tmp-blocker`, `${dir}/cache/tmp`);
  const stage = await runScript(
    "pipeline/commands/experiment.ts",
    [spec, "--force", "report"],
    env,
  );
  assert.equal(stage.code, 1, stage.stderr);
  assert.match(stage.stderr, /^error: stage report failed: /m);
  assert.doesNotMatch(stage.stderr, STACK_FRAME);
  const debug = await runScript("pipeline/commands/experiment.ts", [spec, "--force", "report"], {
    ...env,
    KLAL_DEBUG: "1",
  });
  assert.match(debug.stderr, STACK_FRAME, "KLAL_DEBUG=1 shows where it failed");
  await Deno.remove(`${dir}/cache/tmp`);

  // A cache folder this process may not write to is a bad setup.
  const readOnly = await runScript("pipeline/commands/experiment.ts", [spec], {
    ...env,
    KLAL_CACHE_DIR: `${dir}/new-cache`,
  }, [`--deny-write=${dir}/new-cache`]);
  assert.equal(readOnly.code, 2, readOnly.stderr);
  assert.match(
    readOnly.stderr,
    /^error: cache folder .*new-cache is read-only \(preparing the cache: /m,
  );
  assert.doesNotMatch(readOnly.stderr, STACK_FRAME);

  // An existing cache that may not be written: refused at its lock, before any stage.
  const lockedOut = await runScript("pipeline/commands/experiment.ts", [spec], env, [
    `--deny-write=${dir}/cache`,
  ]);
  assert.equal(lockedOut.code, 2, lockedOut.stderr);
  assert.match(
    lockedOut.stderr,
    /^error: cache folder .*cache is read-only \(locking the cache: /m,
  );

  const gc = await runScript(
    "pipeline/commands/cache.ts",
    [
      "gc",
      "--apply",
      "--experiments",
      dir,
    ],
    env,
    [`--deny-write=${dir}/cache`],
  );
  assert.equal(gc.code, 2, gc.stderr);
  assert.match(
    gc.stderr,
    /^error: cache folder .*cache is read-only, so gc --apply deletes nothing/m,
  );

  // cache ls on a file is refused with a message.
  const ls = await runScript("pipeline/commands/cache.ts", ["ls"], {
    KLAL_CACHE_DIR: `${dir}/reports-file`,
  });
  assert.equal(ls.code, 2, ls.stderr);
  assert.match(ls.stderr, /^error: the cache root .*reports-file is a file, not a folder/m);
  await Deno.remove(dir, { recursive: true });
});

/** Mounts a tmpfs of `size` at `dir` for `fn`; false (nothing run) where mounting is refused. */
async function onSmallDisk(dir: string, size: string, fn: () => Promise<void>): Promise<boolean> {
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => ({ success: false }));
  if (!mount.success) return false;
  try {
    await fn();
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
  }
  return true;
}

const canMount = await (async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-mount-probe-" });
  const ok = await onSmallDisk(dir, "64k", () => Promise.resolve());
  await Deno.remove(dir, { recursive: true });
  return ok;
})();

Deno.test({
  name: "a full disk: the failing stage named in one line, exit 1, no entry left half-written" +
    (canMount ? "" : " (skipped: this machine refuses to mount a tmpfs)"),
  ignore: !canMount,
  async fn() {
    const { dir, spec, env } = await tempRun("integrity-disk", smallestSpec("integrity-disk"));
    await Deno.mkdir(`${dir}/disk`);
    const mounted = await onSmallDisk(`${dir}/disk`, "300k", async () => {
      const cacheEnv = { ...env, KLAL_CACHE_DIR: `${dir}/disk/cache` };
      const full = await runScript("pipeline/commands/experiment.ts", [spec], cacheEnv);
      assert.equal(full.code, 1, full.stderr);
      assert.match(full.stderr, /^error: stage \S+ failed: No space left on device/m);
      assert.doesNotMatch(full.stderr, STACK_FRAME);
      // Whatever was written is whole: every entry matches its manifest.
      const verify = await runScript("pipeline/commands/cache.ts", ["verify"], cacheEnv);
      assert.equal(verify.code, 0, verify.stdout);
      assert.match(verify.stdout, /entries, all sound$/m);
    });
    assert.ok(mounted);
    await Deno.remove(dir, { recursive: true });
  },
});
