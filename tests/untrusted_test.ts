/**
 * Dataset files come from the internet: a hostile label travels through the real loader,
 * training, evaluation and the report, and arrives in the HTML as text, never as markup.
 */
import assert from "node:assert/strict";
import { TASKS } from "../tasks/registry.ts";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../pipeline/commands/experiment.ts", import.meta.url));
const HOSTILE = "<img src=x onerror=alert(1)>";

Deno.test("a hostile label from a dataset file reaches the report escaped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-untrusted-" });
  const task = TASKS["pixmo-points"];
  const config = { imageSize: 32, patchSize: 8, params: { ...task.defaultParams } };
  // Training and held-out test data: two stand-ins (other seeds, other images).
  const written = await task.writeStandIn!(`${dir}/data`, 5, 12, config);
  await task.writeStandIn!(`${dir}/test`, 6, 12, config);
  for (const folder of ["data", "test"]) {
    const jsonl = `${dir}/${folder}/pixmo_points.jsonl`;
    const rows = (await Deno.readTextFile(jsonl)).trim().split("\n").map((l) => JSON.parse(l));
    for (const row of rows) row.label = HOSTILE;
    await Deno.writeTextFile(jsonl, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  }
  const source = `{ path: data/pixmo_points.jsonl, images: data/images }`;
  const testSource = `{ path: test/pixmo_points.jsonl, images: test/images }`;
  await Deno.writeTextFile(
    `${dir}/spec.yaml`,
    `name: untrusted
description: "${HOSTILE.replaceAll('"', '\\"')}"
seeds: [0]
task: { name: pixmo-points, image_size: 32, train: 8, test: 4, source: { train: ${source}, test: ${testSource} } }
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
  const { parseSpec } = await import("../pipeline/spec/mod.ts");
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

Deno.test("messages about a dataset file quote none of its content and no control character", async () => {
  const { pixmoPoints } = await import("../tasks/pixmo_points.ts");
  const { readPickleData, refcoco, writePickle } = await import("../tasks/refcoco.ts");
  const { encodePng } = await import("../tasks/image_io.ts");
  const dir = await Deno.makeTempDir({ prefix: "klal-messages-" });
  await Deno.mkdir(`${dir}/images`);
  const ESC = "\x1b";
  const SECRET = `${ESC}[31mSECRET${ESC}[0m`;
  const config = { imageSize: 16, patchSize: 8, params: { ...pixmoPoints.defaultParams } };
  const sha = "ab".repeat(32);
  const errorOf = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise;
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error("expected an error");
  };
  const pixmoError = async (line: string) => {
    await Deno.writeTextFile(`${dir}/rows.jsonl`, `${line}\n`);
    return await errorOf(
      pixmoPoints.load({ path: `${dir}/rows.jsonl`, images: `${dir}/images` }, config),
    );
  };
  const row = (extra: Record<string, unknown>) =>
    JSON.stringify({
      image_url: "https://example.com/cat.png",
      image_sha256: sha,
      label: "cat",
      points: [{ x: 1, y: 2 }],
      ...extra,
    });
  const messages: string[] = [];
  const check = (message: string, pattern: RegExp) => {
    messages.push(message);
    assert.match(message, pattern);
  };
  // A file name from the data is shown escaped; the URL itself is not shown.
  check(
    await pixmoError(row({ image_url: `https://${SECRET}.example/evil${ESC}[2J.png` })),
    /rows\.jsonl row 1: image not found in .* \(tried evil\\x1b\[2J\.png, ab/,
  );
  // Values are described, not quoted.
  check(
    await pixmoError(row({ image_sha256: SECRET })),
    /rows\.jsonl row 1: expected "image_sha256" to be 64 hex digits, got a string of 15 characters/,
  );
  check(
    await pixmoError(row({ label: { [SECRET]: SECRET } })),
    /rows\.jsonl row 1: expected "label" to be a string, got an object/,
  );
  check(
    await pixmoError(row({ points: [{ x: SECRET, y: 2 }] })),
    /rows\.jsonl row 1: expected point 1 to be \{x, y\} in percent 0\.\.100, got x a string of 15 characters, y 2/,
  );
  // A malformed line: where, not what.
  check(
    await pixmoError(`{"label": "${SECRET.replaceAll(ESC, "\\u001b")}", oops}`),
    /rows\.jsonl row 1: malformed JSON at character \d+; expected one JSON object per line/,
  );
  // RefCOCO: a field of the wrong type, a code-naming pickle, a hostile file name.
  await Deno.writeFile(
    `${dir}/images/pic.png`,
    await encodePng({ width: 4, height: 4, data: new Float32Array(48) }),
  );
  await Deno.writeTextFile(
    `${dir}/instances.json`,
    JSON.stringify({
      images: [{ id: 1, file_name: `pic${ESC}[2J.png`, width: 4, height: 4 }],
      annotations: [{ id: 7, image_id: 1, bbox: [0, 0, 2, 2] }],
    }),
  );
  const ref = { ref_id: 5, ann_id: 7, image_id: 1, split: "val", sentences: [{ sent: "a" }] };
  const source = {
    path: `${dir}/refs(unc).p`,
    images: `${dir}/images`,
    split: "val",
    extra: { instances: `${dir}/instances.json` },
  };
  await Deno.writeFile(source.path, writePickle([{ ...ref, sentences: SECRET }]));
  check(
    await errorOf(refcoco.load(source, config)),
    /refs\(unc\)\.p ref 1 \(ref_id 5\): expected "sentences" to be a non-empty list, got a string of 15 characters/,
  );
  await Deno.writeFile(source.path, writePickle([ref]));
  check(
    await errorOf(refcoco.load(source, config)),
    /refs\(unc\)\.p ref 1 \(ref_id 5\): image pic\\x1b\[2J\.png not found in /,
  );
  const evil = Uint8Array.from(`\x80\x02cos${ESC}[2J\nsystem\n)R.`, (c) => c.charCodeAt(0));
  try {
    readPickleData(evil, "evil.p");
    assert.fail("expected an error");
  } catch (e) {
    check(
      (e as Error).message,
      /evil\.p: refusing pickle opcode naming global os\\x1b\[2J\.system/,
    );
  }
  for (const message of messages) {
    assert.ok(!message.includes(ESC), `a raw escape reached a message: ${JSON.stringify(message)}`);
    assert.ok(!message.includes("SECRET"), `file content reached a message: ${message}`);
  }
  await Deno.remove(dir, { recursive: true });
});
