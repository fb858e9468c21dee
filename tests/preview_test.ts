import assert from "node:assert/strict";
import {
  parsePreviewArgs,
  previewSamples,
  renderContactSheet,
  specPreviewOptions,
} from "../pipeline/commands/preview.ts";
import { TASKS } from "../tasks/registry.ts";
import { runScript } from "./cli.ts";

Deno.test("preview: a PNG contact sheet of 4 columns, one cell per sample", async () => {
  const o = { ...parsePreviewArgs(["grid-patch", "--n", "6", "--seed", "3", "--size", "32"]) };
  assert.deepEqual([o.n, o.seed, o.size, o.patch], [6, 3, 32, 8]);
  const samples = await previewSamples(TASKS["grid-patch"], o);
  assert.equal(samples.length, 6);
  const png = await renderContactSheet(samples, 8);
  assert.deepEqual([...png.subarray(1, 4)], [..."PNG"].map((c) => c.charCodeAt(0)));
  const view = new DataView(png.buffer, png.byteOffset);
  // 32 px scaled 6x = 192 px cells, 12 px gaps; 4 columns, 2 rows of cell + 44 px text.
  assert.equal(view.getUint32(16), 4 * (192 + 12) + 12);
  assert.equal(view.getUint32(20), 2 * (192 + 44 + 12) + 12);
});

Deno.test("preview: real-format tasks show the stand-in read back by the loader", async () => {
  const o = parsePreviewArgs(["pixmo-points", "--n", "3"]);
  const samples = await previewSamples(TASKS["pixmo-points"], o);
  assert.equal(samples.length, 3);
  assert.match(samples[0].prompt, /^point to the /);
});

Deno.test("preview: bad arguments say what was expected", () => {
  assert.throws(() => parsePreviewArgs(["grid-pach"]), /unknown task "grid-pach"; valid tasks:/);
  assert.throws(() => parsePreviewArgs(["grid-patch", "--n", "x"]), /--n expects an integer/);
  assert.throws(() => parsePreviewArgs(["grid-patch", "--size", "30"]), /not a multiple of/);
  assert.throws(() => parsePreviewArgs(["grid-patch", "--frob", "1"]), /unknown option --frob/);
});

Deno.test("preview SPEC: the spec's own data, real files included, train or test split", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-preview-spec-" });
  const task = TASKS["pixmo-points"];
  const config = { imageSize: 32, patchSize: 8, params: { ...task.defaultParams } };
  const train = await task.writeStandIn!(`${dir}/train`, 4, 6, config);
  await Deno.writeTextFile(
    `${dir}/spec.yaml`,
    `name: preview-mine
task:
  name: pixmo-points
  image_size: 32
  train: 6
  test: 4
  source:
    train: { path: ${train.path}, images: ${train.images} }
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
arms: { ntp: { lambda: 0 } }
`,
  );
  const options = await specPreviewOptions([`${dir}/spec.yaml`, "--n", "3"]);
  assert.equal(options.task, "pixmo-points");
  assert.equal(options.size, 32);
  assert.equal(options.source?.path, train.path);
  const samples = await previewSamples(task, options);
  const direct = (await task.load!(train, config)).slice(0, 3);
  assert.deepEqual(samples.map((s) => s.prompt), direct.map((s) => s.prompt));
  // The command writes the sheet; a spec with a typo is refused as the experiment refuses it.
  const run = await runScript("pipeline/commands/preview.ts", [
    `${dir}/spec.yaml`,
    "--out",
    `${dir}/sheet.png`,
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /6 samples of pixmo-points: .*sheet\.png/);
  const png = await Deno.readFile(`${dir}/sheet.png`);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  await Deno.writeTextFile(`${dir}/bad.yaml`, "name: x\ntask: { name: pixmo-pointz }\narms: {}\n");
  const bad = await runScript("pipeline/commands/preview.ts", [`${dir}/bad.yaml`]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.yaml:2:\d+ task\.name: .*pixmo-pointz/);
  await Deno.remove(dir, { recursive: true });
});
