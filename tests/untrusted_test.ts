/**
 * Dataset files come from the internet: a hostile label travels through the real loader,
 * training, evaluation and the report, and arrives in the HTML as text, never as markup.
 */
import assert from "node:assert/strict";
import { TASKS } from "../tasks/registry.ts";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../pipeline/main.ts", import.meta.url));
const HOSTILE = "<img src=x onerror=alert(1)>";

Deno.test("a hostile label from a dataset file reaches the report escaped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-untrusted-" });
  const task = TASKS["pixmo-points"];
  const config = { imageSize: 32, patchSize: 8, params: { ...task.defaultParams } };
  const written = await task.writeStandIn!(`${dir}/data`, 5, 12, config);
  const jsonl = `${dir}/data/pixmo_points.jsonl`;
  const rows = (await Deno.readTextFile(jsonl)).trim().split("\n").map((l) => JSON.parse(l));
  for (const row of rows) row.label = HOSTILE;
  await Deno.writeTextFile(jsonl, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const source = `{ path: data/pixmo_points.jsonl, images: data/images }`;
  await Deno.writeTextFile(
    `${dir}/spec.yaml`,
    `name: untrusted
description: "${HOSTILE.replaceAll('"', '\\"')}"
seeds: [0]
task: { name: pixmo-points, image_size: 32, train: 8, test: 4, source: { train: ${source}, test: ${source} } }
model: { patch_size: 8, d_model: 16, layers: 1, heads: 2 }
base: { steps: 2, batch_size: 4, train: 8 }
train: { steps: 2, batch_size: 4, warmup: 1 }
arms:
  ntp: { lambda: 0 }
  klal: { lambda: 1 }
`,
  );
  assert.ok(written.images);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, `${dir}/spec.yaml`],
    env: {
      KLAL_CACHE_DIR: `${dir}/cache`,
      KLAL_REPORTS_DIR: `${dir}/reports`,
      KLAL_PLAIN_PROGRESS: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const html = await Deno.readTextFile(`${dir}/reports/untrusted/index.html`);
  assert.ok(!html.includes("<img src=x"), "raw markup from the dataset reached the HTML");
  // The prompt ("point to the <img ...>") and the description arrive as text.
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
  assert.ok(/point to the (&lt;|\\u003c)img/.test(html), "the hostile prompt is not in the report");
  const table = await Deno.readTextFile(`${dir}/reports/untrusted/table.md`);
  assert.ok(!table.includes("<img"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("YAML tags instantiate nothing: a tagged value is read as plain data", async () => {
  const { parseSpec } = await import("../pipeline/spec.ts");
  const spec = parseSpec(
    `name: tags
description: !!js/function "function () { globalThis.pwned = true }"
task: { name: !custom grid-patch }
arms: { ntp: { lambda: 0 } }
`,
    "tags.yaml",
    [],
    { tasks: TASKS },
  );
  assert.equal(typeof spec.description, "string");
  assert.equal(spec.task.name, "grid-patch");
  assert.equal((globalThis as { pwned?: boolean }).pwned, undefined);
});
