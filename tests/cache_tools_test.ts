/** `deno task cache ls` and `deno task cache gc`, on a real cache built by a tiny run. */
import assert from "node:assert/strict";
import { runScript } from "./cli.ts";

const SPEC = `
name: cache-tools
seeds: [0]
backend: wasm
task: { name: grid-patch, image_size: 16, train: 16, test: 8, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
base: { steps: 1, batch_size: 4, train: 8 }
train: { steps: 1, batch_size: 4, warmup: 1 }
arms: { ntp: { lambda: 0 } }
`;

Deno.test("cache ls lists entries with their users; gc removes only unreferenced ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-cache-tools-" });
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  await Deno.writeTextFile(`${dir}/spec.yaml`, SPEC);
  const run = await runScript("pipeline/main.ts", [`${dir}/spec.yaml`], env);
  assert.equal(run.code, 0, run.stderr);

  const ls = await runScript("pipeline/cache_main.ts", ["ls"], env);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /finetune:ntp:s0\s+cache-tools/);
  assert.match(ls.stdout, /^7 entries, [\d.]+ (KB|MB) in /m);

  // No spec under experiments/ uses this tiny experiment: gc would remove all 7 entries...
  const dry = await runScript("pipeline/cache_main.ts", ["gc"], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove \w{12}\s+finetune:ntp:s0/);
  assert.match(dry.stdout, /7 unreferenced entries, .* \(dry run: add --apply to delete\)/);
  // ...but a dry run deletes nothing.
  assert.match((await runScript("pipeline/cache_main.ts", ["ls"], env)).stdout, /^7 entries/m);

  const apply = await runScript("pipeline/cache_main.ts", ["gc", "--apply"], env);
  assert.equal(apply.code, 0, apply.stderr);
  assert.match(apply.stdout, /7 unreferenced entries, .* freed/);
  assert.match((await runScript("pipeline/cache_main.ts", ["ls"], env)).stdout, /^0 entries/m);

  const bad = await runScript("pipeline/cache_main.ts", ["prune"], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected "ls" or "gc \[--apply\]", found "prune"/);
  await Deno.remove(dir, { recursive: true });
});
