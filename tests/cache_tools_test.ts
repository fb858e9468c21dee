/** `deno task cache ls` and `deno task cache gc`, on a real cache built by a tiny run. */
import assert from "node:assert/strict";
import { Cache, CACHE_MARKER } from "../pipeline/cache/store.ts";
import {
  cacheEntryOf,
  cacheWithStrayEntry,
  type CommandResult,
  exists,
  runGc,
  runScript,
  smallestSpec,
  tempRun,
} from "./cli.ts";

const SPEC = smallestSpec("cache-tools");

/** A temp folder with the tiny spec, the environment that points at its cache, and commands. */
async function setup() {
  const { dir, spec, env } = await tempRun("cache-tools", SPEC);
  await Deno.mkdir(`${dir}/experiments`);
  return {
    dir,
    run: (...args: string[]) => runScript("pipeline/commands/experiment.ts", [spec, ...args], env),
    ls: (...args: string[]) => runScript("pipeline/commands/cache.ts", ["ls", ...args], env),
    // The specs gc plans are the test's own, so the repository's experiments/ never matter.
    gc: (...args: string[]) =>
      runScript(
        "pipeline/commands/cache.ts",
        ["gc", "--experiments", `${dir}/experiments`, ...args],
        env,
      ),
  };
}

Deno.test("cache ls lists entries with their users; gc keeps what specs or last runs use", async () => {
  const t = await setup();
  const first = await t.run();
  assert.equal(first.code, 0, first.stderr);

  const ls = await t.ls();
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /finetune:ntp:s0\s+cache-tools/);
  assert.match(ls.stdout, /^8 entries, [\d.]+ (KB|MB) in /m);
  // The same listing as one JSON document.
  const json = await t.ls("--json");
  assert.equal(json.code, 0, json.stderr);
  const listed = JSON.parse(json.stdout);
  assert.equal(listed.root, `${t.dir}/cache`);
  assert.equal(listed.entries.length, 8);
  const ntp = listed.entries.find((e: { stage: string }) => e.stage === "finetune:ntp:s0");
  assert.deepEqual(ntp.usedBy, ["cache-tools"]);
  assert.match(ntp.key, /^[0-9a-f]{64}$/);
  assert.equal(
    listed.bytes,
    listed.entries.reduce((a: number, e: { bytes: number }) => a + e.bytes, 0),
  );

  // No spec under the experiments folder names this experiment, but its last run (refs/)
  // used every entry: nothing is garbage.
  const keep = await t.gc("--apply");
  assert.equal(keep.code, 0, keep.stderr);
  assert.doesNotMatch(keep.stdout, /removed/);
  assert.match(keep.stdout, /^0 unreferenced entries, 0 B freed/m);
  assert.match((await t.ls()).stdout, /^8 entries/m);

  // An entry nothing uses (as a run of older code or params leaves behind) is garbage.
  const stale = "ab" + "0".repeat(62);
  await new Cache(`${t.dir}/cache`).write(
    stale,
    { stage: "data:old", kind: "data", params: {}, inputs: {}, codeVersion: "v0" },
    (out) => out.writeText("a.txt", "x"),
  );
  const dry = await t.gc();
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^would remove ab0000000000\s+data:old$/m);
  assert.match(dry.stdout, /^1 unreferenced entries, .* \(dry run: add --apply to delete\)/m);
  // ...but a dry run deletes nothing.
  assert.match((await t.ls()).stdout, /^9 entries/m);
  const apply = await t.gc("--apply");
  assert.equal(apply.code, 0, apply.stderr);
  assert.match(apply.stdout, /^removed ab0000000000\s+data:old$/m);
  assert.match(apply.stdout, /^1 unreferenced entries, .* freed/m);
  assert.match((await t.ls()).stdout, /^8 entries/m);

  // Without refs/, the entries are in use while a spec under the experiments folder plans to
  // them, and garbage once it is gone.
  await Deno.rename(`${t.dir}/cache/refs`, `${t.dir}/refs-aside`);
  await Deno.copyFile(`${t.dir}/spec.yaml`, `${t.dir}/experiments/cache-tools.yaml`);
  const planned = await t.gc();
  assert.equal(planned.code, 0, planned.stderr);
  assert.match(planned.stdout, /^0 unreferenced entries/m);
  await Deno.remove(`${t.dir}/experiments/cache-tools.yaml`);
  const unplanned = await t.gc();
  assert.match(unplanned.stdout, /would remove \w{12}\s+finetune:ntp:s0/);
  assert.match(unplanned.stdout, /^8 unreferenced entries/m);

  const bad = await runScript("pipeline/commands/cache.ts", ["prune"], {
    KLAL_CACHE_DIR: `${t.dir}/cache`,
  });
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /expected "ls", "verify" or "gc", found "prune"/,
  );
  await Deno.remove(t.dir, { recursive: true });
});

Deno.test("a corrupted manifest: ls lists it, a dry run will run it, the run moves it aside", async () => {
  const t = await setup();
  const first = await t.run();
  assert.equal(first.code, 0, first.stderr);
  const cacheDir = `${t.dir}/cache`;
  const evalDir = await cacheEntryOf(cacheDir, "eval:ntp:s0");
  const finetuneDir = await cacheEntryOf(cacheDir, "finetune:ntp:s0");
  await Deno.writeTextFile(`${evalDir}/manifest.json`, "{not json");
  const { files: _files, ...noFiles } = JSON.parse(
    await Deno.readTextFile(`${finetuneDir}/manifest.json`),
  );
  await Deno.writeTextFile(`${finetuneDir}/manifest.json`, JSON.stringify(noFiles));

  const ls = await t.ls();
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /\(corrupted: manifest\.json: not valid JSON .*\) cache-tools/);
  assert.match(ls.stdout, /\(corrupted: manifest\.json: missing or malformed files\) cache-tools/);
  assert.match(ls.stdout, /^8 entries, 2 corrupted \(the next run recomputes them\), /m);

  const dry = await t.run("--dry-run");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(
    dry.stdout,
    /eval:ntp:s0\s+\w{12}\s+run \(corrupted entry: manifest\.json: not valid/,
  );
  assert.match(
    dry.stdout,
    /finetune:ntp:s0\s+\w{12}\s+run \(corrupted entry: manifest\.json: missing or malformed files\)/,
  );
  assert.match(dry.stdout, /data:grid-patch:train:s0\s+\w{12}\s+cached/);

  const second = await t.run();
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stdout,
    /corrupt cache entry of eval:ntp:s0 \(manifest\.json: not valid JSON .*\): moved aside/,
  );
  assert.match(second.stdout, /run\s+finetune:ntp:s0/);
  assert.match(second.stdout, /run\s+eval:ntp:s0/);
  assert.equal([...Deno.readDirSync(`${cacheDir}/evicted`)].length, 2);
  const after = await t.ls();
  assert.match(after.stdout, /^8 entries, [\d.]+ (KB|MB) in /m);
  assert.doesNotMatch(after.stdout, /corrupted/);
  await Deno.remove(t.dir, { recursive: true });
});

/** gc with every permission but writing: if it ever tried to delete, it could not. */
function gcWithoutWrite(cacheDir: string, apply: boolean): Promise<CommandResult> {
  return runScript(
    "pipeline/commands/cache.ts",
    ["gc", ...(apply ? ["--apply"] : [])],
    { KLAL_CACHE_DIR: cacheDir },
    ["--deny-write", "--no-prompt"],
  );
}

Deno.test("gc refuses an empty root, / and any folder without the marker: exit 2", async () => {
  // An empty KLAL_CACHE_DIR once made `$ROOT/tmp` mean /tmp. Run without write permission,
  // so a regression fails this test instead of deleting anything.
  for (const [root, message] of [["", /the cache root is empty/], ["/", /filesystem root \//]]) {
    for (const apply of [false, true]) {
      const out = await gcWithoutWrite(root as string, apply);
      assert.equal(out.code, 2, `${root}: ${out.stdout}${out.stderr}`);
      assert.match(out.stderr, message as RegExp);
      assert.doesNotMatch(out.stdout, /unreferenced entries/);
    }
  }

  // A folder that merely has tmp/, jobs/ and evicted/ is not a cache.
  const dir = await Deno.makeTempDir({ prefix: "klal-cache-not-" });
  for (const sub of ["tmp", "jobs", "evicted"]) {
    await Deno.mkdir(`${dir}/${sub}`);
    await Deno.writeTextFile(`${dir}/${sub}/keep.txt`, "mine");
  }
  const env = { KLAL_CACHE_DIR: dir };
  const apply = await runScript("pipeline/commands/cache.ts", ["gc", "--apply"], env);
  assert.equal(apply.code, 2, apply.stdout);
  assert.match(apply.stderr, /has no \.klal-cache file, so it is not known to be a cache/);
  for (const sub of ["tmp", "jobs", "evicted"]) {
    assert.equal(await Deno.readTextFile(`${dir}/${sub}/keep.txt`), "mine");
  }
  // gc never marks a folder itself.
  assert.equal(await exists(`${dir}/${CACHE_MARKER}`), false);
  assert.equal(await exists(`${dir}/cache.lock`), false);

  const missing = await runScript("pipeline/commands/cache.ts", ["gc"], {
    KLAL_CACHE_DIR: `${dir}/missing`,
  });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no cache at .*missing \(the folder does not exist\)/);
  const ls = await runScript("pipeline/commands/cache.ts", ["ls"], { KLAL_CACHE_DIR: "" });
  assert.equal(ls.code, 2);
  assert.match(ls.stderr, /the cache root is empty/);
  // A run refuses such a folder too, before writing anything into it.
  await Deno.writeTextFile(`${dir}/spec.yaml`, SPEC);
  const run = await runScript(
    "pipeline/commands/experiment.ts",
    [`${dir}/spec.yaml`, "--dry-run"],
    env,
  );
  assert.equal(run.code, 2);
  assert.match(run.stderr, /is not empty and is not a cache/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("gc stops when it cannot tell what is in use (bad spec, no such folder, bad ref): exit 2", async () => {
  const { dir, cache, key } = await cacheWithStrayEntry("cache-badspec");
  await Deno.mkdir(`${dir}/cache/tmp/leftover`, { recursive: true });
  await Deno.mkdir(`${dir}/experiments`);
  await Deno.writeTextFile(`${dir}/experiments/broken.yaml`, "name: [unclosed\n");
  await Deno.writeTextFile(
    `${dir}/experiments/invalid.yaml`,
    SPEC.replace("seeds: [0]", "seeds: zero"),
  );
  for (const apply of [[], ["--apply"]]) {
    const out = await runGc(cache.root, `${dir}/experiments`, ...apply);
    assert.equal(out.code, 2, out.stdout + out.stderr);
    assert.match(
      out.stderr,
      /cannot plan .*broken\.yaml:\n.*broken\.yaml:\d+:\d+: expected valid YAML/,
    );
    assert.match(
      out.stderr,
      /cannot plan .*invalid\.yaml:\n.*invalid\.yaml:\d+:\d+ seeds: expected/,
    );
    assert.match(out.stderr, /gc stopped, nothing deleted/);
    assert.doesNotMatch(out.stdout, /remove/);
  }
  assert.equal(await cache.has(key), true);
  assert.equal(await exists(`${dir}/cache/tmp/leftover`), true);

  const gc = (experiments: string, ...args: string[]) => runGc(cache.root, experiments, ...args);
  // A mistyped folder plans no spec at all: refused too.
  const typo = await gc(`${dir}/experimens`, "--apply");
  assert.equal(typo.code, 2, typo.stdout);
  assert.match(typo.stderr, /no folder .*experimens/);
  // An unreadable ref could be keeping any entry: gc stops as well.
  await Deno.remove(`${dir}/experiments/broken.yaml`);
  await Deno.remove(`${dir}/experiments/invalid.yaml`);
  await Deno.mkdir(`${dir}/cache/refs/exp`, { recursive: true });
  await Deno.writeTextFile(`${dir}/cache/refs/exp/data_x.json`, "{");
  const badRef = await gc(`${dir}/experiments`, "--apply");
  assert.equal(badRef.code, 2, badRef.stdout);
  assert.match(badRef.stderr, /unreadable ref .*refs\/exp\/data_x\.json/);
  assert.equal(await cache.has(key), true);
  // Fixed, gc goes ahead.
  await Deno.remove(`${dir}/cache/refs/exp/data_x.json`);
  const fixed = await gc(`${dir}/experiments`, "--apply");
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /^removed ab0000000000\s+data:x$/m);
  assert.equal(await cache.has(key), false);
  assert.equal(await exists(`${dir}/cache/tmp`), false);
  await Deno.remove(dir, { recursive: true });
});
