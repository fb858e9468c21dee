import assert from "node:assert/strict";
import {
  parsePreviewArgs,
  previewSamples,
  renderContactSheet,
} from "../pipeline/commands/preview.ts";
import { TASKS } from "../tasks/registry.ts";

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
