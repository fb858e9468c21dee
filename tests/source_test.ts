/** Real-format data selected by path in a spec: validation errors and the data stage. */
import { paramsOf } from "./cli.ts";
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache/store.ts";
import { buildPlan, resolvePlan } from "../pipeline/run/plan.ts";
import { parseSpec, SpecError } from "../pipeline/spec/mod.ts";
import { runStage } from "../pipeline/stages/mod.ts";
import { loadSamples } from "../pipeline/stages/_data_entry.ts";
import { TASKS } from "../tasks/registry.ts";
import { encodePng, sha256Hex } from "../tasks/image_io.ts";
import { writePickle } from "../tasks/refcoco.ts";
import { FileDigests } from "../pipeline/lib/file_digest.ts";
import type { DataParams } from "../pipeline/stages/types.ts";
import { UsageError } from "../pipeline/lib/cli.ts";

const spec = (task: string, source: string) => `
name: source-test
task:
  name: ${task}
  image_size: 32
  train: 6
  test: 4
  source:
${source}
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
arms: { ntp: { lambda: 0 } }
`;

function problems(text: string, file: string): string[] {
  try {
    parseSpec(text, file, [], { tasks: TASKS });
  } catch (e) {
    if (e instanceof SpecError) return e.message.split("\n");
    throw e;
  }
  return [];
}

Deno.test("task.source: a synthetic task refuses it; missing files are located errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const file = `${dir}/x.yaml`;
  const synthetic = problems(spec("grid-patch", "    train: { path: a.jsonl }"), file);
  assert.equal(synthetic.length, 1);
  assert.match(synthetic[0], /x\.yaml:8:3 task\.source: expected no source: this task generates/);
  const missing = problems(
    spec("pixmo-points", "    train: { path: nope.jsonl, images: imgs }"),
    file,
  );
  assert.equal(missing.length, 2);
  assert.match(
    missing[0],
    /x\.yaml:9:20 task\.source\.train\.path: expected an existing file .*found "nope\.jsonl"/,
  );
  assert.match(missing[1], /task\.source\.train\.images: expected an existing folder/);
  const typo = problems(spec("pixmo-points", "    trian: { path: a.jsonl }"), file);
  assert.match(typo[0], /task\.source\.trian: expected a known key.*did you mean "train"\?/);
});

Deno.test("task.source: the data stage reads real-format files through the task's loader", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const config = {
    imageSize: 32,
    patchSize: 8,
    params: { ...TASKS["pixmo-points"].defaultParams },
  };
  const written = await TASKS["pixmo-points"].writeStandIn!(`${dir}/data`, 7, 10, config);
  const rel = (p: string) => p.replace(`${dir}/`, "");
  const text = spec(
    "pixmo-points",
    `    train: { path: ${rel(written.path)}, images: ${rel(written.images!)} }`,
  );
  const parsed = parseSpec(text, `${dir}/x.yaml`, [], { tasks: TASKS });
  assert.equal(parsed.task.source?.train?.path, written.path);
  const stages = await resolvePlan(buildPlan(parsed));
  const train = stages.find((s) => s.id === "data:pixmo-points:train:s0")!;
  assert.equal(paramsOf(train).source_sha256 !== undefined, true);
  const test = stages.find((s) => s.id.startsWith("data:pixmo-points:test"))!;
  assert.equal(paramsOf(test).source, undefined); // no test source: the offline stand-in
  const cache = new Cache(`${dir}/cache`);
  await runStage(train, { cache, experiment: "source-test" });
  const samples = await loadSamples(cache, train.key);
  const direct = await TASKS["pixmo-points"].load!(written, config);
  assert.equal(samples.length, 6);
  for (const s of samples) {
    assert.ok(direct.some((d) => d.prompt === s.prompt && d.answer === s.answer));
    assert.ok(Math.abs(s.target.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  }
});

Deno.test("task.source: the validation set is held out of the training file, never the test file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-val-" });
  const config = {
    imageSize: 32,
    patchSize: 8,
    params: { ...TASKS["pixmo-points"].defaultParams },
  };
  const train = await TASKS["pixmo-points"].writeStandIn!(`${dir}/train`, 7, 24, config);
  const test = await TASKS["pixmo-points"].writeStandIn!(`${dir}/test`, 8, 6, config);
  const rel = (p: string) => p.replace(`${dir}/`, "");
  const text = spec(
    "pixmo-points",
    `    train: { path: ${rel(train.path)}, images: ${rel(train.images!)} }\n` +
      `    test: { path: ${rel(test.path)}, images: ${rel(test.images!)} }`,
  ).replace("arms:", "train: { steps: 2, eval_every: 1, eval_samples: 5 }\narms:");
  const plan = await resolvePlan(buildPlan(parseSpec(text, `${dir}/x.yaml`, [], { tasks: TASKS })));
  const stage = (prefix: string) => plan.find((s) => s.id.startsWith(prefix))!;
  const cache = new Cache(`${dir}/cache`);
  // Each sample keeps its row of the file (meta.row): the rows tell the splits apart.
  const rows = async (prefix: string) => {
    const st = stage(prefix);
    assert.equal(paramsOf(st).source !== undefined, true, prefix);
    await runStage(st, { cache, experiment: "source-val" });
    return (await loadSamples(cache, st.key)).map((x) => x.meta.row as number);
  };
  assert.equal(paramsOf(stage("data:pixmo-points:val")).holdout, 5);
  assert.equal(paramsOf(stage("data:pixmo-points:train")).holdout, 5);
  assert.equal(paramsOf(stage("data:pixmo-points:test")).holdout, undefined);
  assert.equal(
    (paramsOf(stage("data:pixmo-points:val")).source as { path: string }).path,
    train.path,
    "validation comes from the training file, not the test file",
  );
  const val = await rows("data:pixmo-points:val");
  const fit = await rows("data:pixmo-points:train");
  assert.equal(val.length, 5);
  assert.equal(fit.length, 6);
  assert.deepEqual(val.filter((r) => fit.includes(r)), [], "held-out rows are never trained on");
  await Deno.remove(dir, { recursive: true });
});

/** Two distinct PNG images under `dir/images` (cat.png, dog.png) and their sha256. */
async function twoImages(dir: string): Promise<{ cat: string; dog: string }> {
  await Deno.mkdir(`${dir}/images`, { recursive: true });
  const shas: string[] = [];
  for (const [name, value] of [["cat", 0.2], ["dog", 0.8]] as const) {
    const png = await encodePng({ width: 8, height: 8, data: new Float32Array(192).fill(value) });
    await Deno.writeFile(`${dir}/images/${name}.png`, png);
    shas.push(await sha256Hex(png));
  }
  return { cat: shas[0], dog: shas[1] };
}

/** A PixMo-Points JSONL row of image `name` (with sha256 `sha`) and `label`. */
function pixmoRow(name: string, sha: string, label: string, x = 50): string {
  return JSON.stringify({
    image_url: `https://example.com/${name}.png`,
    image_sha256: sha,
    label,
    points: [{ x, y: 50 }],
  });
}

Deno.test("task.source.tests: named test sets need the main one, names of their own, existing files, held-out rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-tests-" });
  await Deno.writeTextFile(`${dir}/a.jsonl`, "");
  await Deno.writeTextFile(`${dir}/b.jsonl`, "");
  const file = `${dir}/x.yaml`;
  const alone = problems(
    spec("pixmo-points", "    train: { path: a.jsonl }\n    tests: { b: { path: b.jsonl } }"),
    file,
  );
  assert.equal(alone.length, 1);
  assert.match(alone[0], /x\.yaml:10:5 task\.source\.tests: expected task\.source\.test beside it/);
  const named = problems(
    spec(
      "pixmo-points",
      "    train: { path: a.jsonl }\n    test: { path: b.jsonl }\n" +
        "    tests: { B: { path: b.jsonl }, c: { path: nope.jsonl } }",
    ),
    file,
  );
  assert.equal(named.length, 2, named.join("\n"));
  assert.match(named[0], /task\.source\.tests\.B: expected a test set name matching/);
  assert.match(
    named[1],
    /task\.source\.tests\.c\.path: expected an existing file .*found "nope\.jsonl"/,
  );
  // Once every file exists, each named test set is checked against the training file.
  const training = problems(
    spec(
      "pixmo-points",
      "    train: { path: a.jsonl }\n    test: { path: b.jsonl }\n" +
        "    tests: { d: { path: a.jsonl } }",
    ),
    file,
  );
  assert.equal(training.length, 1, training.join("\n"));
  assert.match(
    training[0],
    /x\.yaml:11:25 task\.source\.tests\.d\.path: expected a test file other than source\.train.s/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: test and train the same file is a spec error naming both", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const { cat } = await twoImages(dir);
  await Deno.writeTextFile(`${dir}/rows.jsonl`, pixmoRow("cat", cat, "cat") + "\n");
  await Deno.symlink(`${dir}/rows.jsonl`, `${dir}/link.jsonl`);
  const file = `${dir}/x.yaml`;
  const both = (train: string, test: string) =>
    `    train: { path: ${train}, images: images }\n    test: { path: ${test}, images: images }`;
  for (const test of ["rows.jsonl", "link.jsonl"]) {
    const found = problems(spec("pixmo-points", both("rows.jsonl", test)), file);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(
      found[0],
      new RegExp(
        `x\\.yaml:10:19 task\\.source\\.test\\.path: expected a test file other than ` +
          `source\\.train's \\(the test set must be held out\\), found ".*/${test}", the same ` +
          `file as task\\.source\\.train\\.path ".*/rows\\.jsonl"`,
      ),
    );
  }
  // RefCOCO keeps its splits in one pickle: the same file is fine with another split.
  await Deno.writeFile(`${dir}/refs.p`, writePickle([]));
  await Deno.writeTextFile(`${dir}/instances.json`, '{"images": [], "annotations": []}');
  const refs = (trainSplit: string, testSplit: string) =>
    [trainSplit, testSplit].map((split, i) =>
      `    ${i ? "test" : "train"}: { path: refs.p, images: images, split: ${split}, ` +
      `extra: { instances: instances.json } }`
    ).join("\n");
  assert.deepEqual(problems(spec("refcoco", refs("train", "val")), file), []);
  const same = problems(spec("refcoco", refs("val", "val")), file);
  assert.equal(same.length, 1, same.join("\n"));
  assert.match(
    same[0],
    /task\.source\.test\.path: expected a test file or split other than source\.train's .*found ".*\/refs\.p" split "val", the same file and split as task\.source\.train/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: test rows that are training rows stop the data stage, naming both files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  const { cat, dog } = await twoImages(dir);
  const lines = (...rows: string[]) => rows.join("\n") + "\n";
  await Deno.writeTextFile(
    `${dir}/train.jsonl`,
    lines(pixmoRow("cat", cat, "cat"), pixmoRow("dog", dog, "dog"), pixmoRow("dog", dog, "tail")),
  );
  // Shared: the cat image asked about "Cat" (the same words) and the dog's "tail" (other
  // points); not shared: the cat image asked about something else.
  await Deno.writeTextFile(
    `${dir}/test.jsonl`,
    lines(
      pixmoRow("cat", cat, "Cat", 10),
      pixmoRow("cat", cat, "ear"),
      pixmoRow("dog", dog, "tail", 90),
    ),
  );
  const sources = `    train: { path: train.jsonl, images: images }\n` +
    `    test: { path: test.jsonl, images: images }`;
  const parsed = parseSpec(spec("pixmo-points", sources), `${dir}/x.yaml`, [], { tasks: TASKS });
  const stages = await resolvePlan(buildPlan(parsed));
  const cache = new Cache(`${dir}/cache`);
  // The test stage checks its rows against the training file; the training data names no test
  // file, so it is the same entry whichever test set a spec evaluates on.
  const stage = stages.find((s) => s.id === "data:pixmo-points:test:s0")!;
  await assert.rejects(
    runStage(stage, { cache, experiment: "source-test" }),
    new RegExp(
      `.*/test\\.jsonl \\(source\\.test\\) shares 2 of its 3 rows with .*/train\\.jsonl ` +
        `\\(source\\.train\\): the same image content and label; expected a test set held out`,
    ),
  );
  const trainKey = (plan: { id: string; key: string }[]) =>
    plan.find((s) => s.id === "data:pixmo-points:train:s0")!.key;
  await Deno.writeTextFile(`${dir}/other-test.jsonl`, lines(pixmoRow("cat", cat, "ear")));
  const otherTest = parseSpec(
    spec("pixmo-points", sources.replace("test.jsonl", "other-test.jsonl")),
    `${dir}/x.yaml`,
    [],
    { tasks: TASKS },
  );
  assert.equal(trainKey(await resolvePlan(buildPlan(otherTest))), trainKey(stages));
  // A copy of the training file under another name: every row, and the same content.
  await Deno.copyFile(`${dir}/train.jsonl`, `${dir}/copy.jsonl`);
  const config = {
    imageSize: 32,
    patchSize: 8,
    params: { ...TASKS["pixmo-points"].defaultParams },
  };
  const train = { path: `${dir}/train.jsonl`, images: `${dir}/images` };
  const copy = { path: `${dir}/copy.jsonl`, images: `${dir}/images` };
  await assert.rejects(
    TASKS["pixmo-points"].load!({ ...copy, pair: { train, test: copy } }, config),
    /copy\.jsonl \(source\.test\) shares 3 of its 3 rows with .*train\.jsonl .*; the two files have the same content/,
  );
  // Held-out rows load as before.
  await Deno.writeTextFile(`${dir}/held.jsonl`, lines(pixmoRow("cat", cat, "ear")));
  const held = { path: `${dir}/held.jsonl`, images: `${dir}/images` };
  assert.equal(
    (await TASKS["pixmo-points"].load!({ ...held, pair: { train, test: held } }, config)).length,
    1,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: RefCOCO test refs that are training refs (same image and expression) are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  await twoImages(dir);
  await Deno.writeTextFile(
    `${dir}/instances.json`,
    JSON.stringify({
      images: [{ id: 1, file_name: "cat.png", width: 8, height: 8 }, {
        id: 2,
        file_name: "dog.png",
        width: 8,
        height: 8,
      }],
      annotations: [{ id: 10, image_id: 1, bbox: [0, 0, 4, 4] }, {
        id: 20,
        image_id: 2,
        bbox: [2, 2, 4, 4],
      }],
    }),
  );
  const ref = (refId: number, imageId: number, split: string, ...sents: string[]) => ({
    ref_id: refId,
    ann_id: imageId * 10,
    image_id: imageId,
    split,
    sentences: sents.map((sent) => ({ sent })),
  });
  await Deno.writeFile(
    `${dir}/train.p`,
    writePickle([ref(1, 1, "train", "left cat"), ref(2, 2, "train", "the dog")]),
  );
  // One of the three test expressions is a training one ("The  dog": the same words).
  await Deno.writeFile(
    `${dir}/test.p`,
    writePickle([ref(7, 2, "val", "The  dog", "big dog"), ref(8, 1, "val", "right cat")]),
  );
  const source = (name: string, split: string) => ({
    path: `${dir}/${name}`,
    images: `${dir}/images`,
    split,
    extra: { instances: `${dir}/instances.json` },
  });
  const train = source("train.p", "train");
  const test = source("test.p", "val");
  const config = { imageSize: 16, patchSize: 8, params: { ...TASKS["refcoco"].defaultParams } };
  await assert.rejects(
    TASKS["refcoco"].load!({ ...test, pair: { train, test } }, config),
    /test\.p \(source\.test\) shares 1 of its 3 rows with .*\/train\.p \(source\.train\): the same image content and expression/,
  );
  // The same pickle, other splits: held out.
  const val = source("test.p", "val");
  const trainOfTest = source("test.p", "train");
  assert.equal(
    (await TASKS["refcoco"].load!({ ...val, pair: { train: trainOfTest, test: val } }, config))
      .length,
    3,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: RefCOCO's instances.json is part of the data key; a missing one is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-instances-" });
  const config = { imageSize: 32, patchSize: 8, params: { ...TASKS["refcoco"].defaultParams } };
  const written = await TASKS["refcoco"].writeStandIn!(`${dir}/data`, 3, 6, config);
  const rel = (p: string) => p.replace(`${dir}/`, "");
  const text = spec(
    "refcoco",
    `    train: { path: ${rel(written.path)}, images: ${rel(written.images!)} }`,
  );
  const trainKey = async () => {
    const parsed = parseSpec(text, `${dir}/x.yaml`, [], { tasks: TASKS });
    const plan = await resolvePlan(buildPlan(parsed));
    return plan.find((s) => s.id === "data:refcoco:train:s0")!.key;
  };
  const before = await trainKey();
  await Deno.writeTextFile(`${dir}/data/notes.txt`, "not read by the loader");
  assert.equal(await trainKey(), before, "a file the loader does not read changes nothing");
  const instances = `${dir}/data/instances.json`;
  const coco = JSON.parse(await Deno.readTextFile(instances));
  coco.annotations[0].bbox[0] += 1; // one box moved by a pixel
  await Deno.writeTextFile(instances, JSON.stringify(coco));
  assert.notEqual(await trainKey(), before, "an edited instances.json is new data");
  await Deno.remove(instances);
  await assert.rejects(trainKey(), /instances\.json: no such file \(named by .*refs\(unc\)\.p\)/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: every image the source names is in the data key by content, through a memo on size and mtime", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-images-" });
  for (const task of ["refcoco", "grounding"]) {
    const config = { imageSize: 32, patchSize: 8, params: { ...TASKS[task].defaultParams } };
    const written = await TASKS[task].writeStandIn!(`${dir}/${task}`, 3, 6, config);
    const rel = (p: string) => p.replace(`${dir}/`, "");
    const text = spec(
      task,
      `    train: { path: ${rel(written.path)}, images: ${rel(written.images!)} }`,
    );
    const memo = `${dir}/memo-${task}.json`;
    const resolve = async (digests = new FileDigests(memo)) => {
      const parsed = parseSpec(text, `${dir}/x.yaml`, [], { tasks: TASKS });
      const stage = (await resolvePlan(buildPlan(parsed), { digests }))
        .find((s) => s.id === `data:${task}:train:s0`)!;
      await digests.save();
      return { key: stage.key, images: (stage.params as DataParams).images!, digests };
    };
    const first = await resolve();
    const names = [...Deno.readDirSync(written.images!)].map((e) => e.name).sort();
    assert.ok(
      first.images.count >= 2 && first.images.count <= names.length,
      `${task}: ${first.images.count}`,
    );
    assert.equal(first.digests.hashed, first.images.count + 1 + (task === "refcoco" ? 1 : 0));
    // A second plan answers every file from the memo, to the same key.
    const again = await resolve();
    assert.equal(again.key, first.key);
    assert.equal(again.digests.hashed, 0, `${task}: nothing hashed twice`);
    // An image the source does not name changes nothing; one it names, by a byte, is new data.
    await Deno.writeFile(`${written.images}/unused.png`, new Uint8Array([1, 2, 3]));
    assert.equal((await resolve()).key, first.key);
    const used = names.find((n) => n.endsWith(".png"))!;
    const bytes = await Deno.readFile(`${written.images}/${used}`);
    await Deno.writeFile(`${written.images}/${used}`, new Uint8Array([...bytes, 0]));
    const edited = await resolve();
    assert.notEqual(edited.key, first.key, `${task}: an edited image is new data`);
    assert.notEqual(edited.images.sha256, first.images.sha256);
    assert.equal(edited.digests.hashed, 1, "only the edited image is read again");
    // A memo that cannot be read is ignored: every file is hashed again, to the same key.
    await Deno.writeTextFile(memo, "{ not json");
    const fresh = await resolve();
    assert.equal(fresh.key, edited.key);
    assert.equal(fresh.digests.hashed, edited.images.count + 1 + (task === "refcoco" ? 1 : 0));
    // A missing image is a usage error naming it and the file that names it.
    await Deno.remove(`${written.images}/${used}`);
    await assert.rejects(
      resolve(),
      (e: Error) =>
        e instanceof UsageError && e.message.includes(`${used}: no such file (named by `),
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("task.source: every row by default, subsets from subset_seed, validation from its own file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-source-" });
  await Deno.mkdir(`${dir}/images`);
  await Deno.writeFile(
    `${dir}/images/a.png`,
    await encodePng({ width: 8, height: 8, data: new Float32Array(192).fill(0.5) }),
  );
  for (const split of ["train", "val", "test"]) {
    const rows = Array.from(
      { length: split === "train" ? 5 : 3 },
      (_, i) => JSON.stringify({ image: "a.png", category: `${split} ${i}`, point: [i, i] }),
    );
    await Deno.writeTextFile(`${dir}/${split}.jsonl`, rows.join("\n") + "\n");
  }
  const text = (extra: string, sizes = "") => `
name: all-rows
seeds: [0, 1]
task:
  name: grounding
  image_size: 32${sizes}
  subset_seed: 7
  source:
    train: { path: train.jsonl, images: images }
    test: { path: test.jsonl, images: images }
${extra}
model: { patch_size: 8, d_model: 8, layers: 1, heads: 2 }
train: { eval_every: 10, eval_samples: 2 }
arms: { ntp: { lambda: 0 } }
`;
  const own = parseSpec(
    text("    val: { path: val.jsonl, images: images }"),
    `${dir}/x.yaml`,
    [],
    { tasks: TASKS },
  );
  assert.equal(own.task.train, "all");
  assert.equal(own.task.test, "all");
  const ids = buildPlan(own).filter((s) => s.kind === "data" && s.id.startsWith("data:grounding"));
  // One training set for both fine-tune seeds, drawn with the subset seed.
  assert.deepEqual(ids.map((s) => s.id).sort(), [
    "data:grounding:test:s7",
    "data:grounding:train:s7",
    "data:grounding:val:s7",
  ]);
  const byId = new Map(ids.map((s) => [s.id, paramsOf(s)]));
  const val = byId.get("data:grounding:val:s7")!;
  assert.equal((val.source as { path: string }).path, `${dir}/val.jsonl`);
  assert.equal(val.holdout, undefined, "validation from its own file holds nothing out");
  assert.equal(byId.get("data:grounding:train:s7")!.n, "all");
  const cache = new Cache(`${dir}/cache`);
  const resolved = await resolvePlan(buildPlan(own));
  // The data's words join the Base's vocabulary; the report says what each split brought:
  // "val" and "test" are words no training prompt holds.
  const vocabulary = (paramsOf(resolved.find((s) => s.kind === "pretrain")!).model as {
    vocabulary: string[];
  }).vocabulary;
  for (const w of ["train", "val", "test", "point"]) assert.ok(vocabulary.includes(w), w);
  const report = paramsOf(resolved.find((s) => s.kind === "report")!).vocabulary as {
    splits: Record<
      string,
      { prompts: number; tokens: number; unseenTokens: number; unseenExamples: string[] }
    >;
  };
  assert.deepEqual(Object.keys(report.splits), ["test", "train", "val"]);
  assert.equal(report.splits.train.prompts, 5);
  assert.equal(report.splits.train.tokens, 5 * 5); // "point to the train 0"
  assert.equal(report.splits.test.unseenTokens, 3);
  assert.deepEqual(report.splits.test.unseenExamples, ["test"]);
  const train = resolved.find((s) => s.id === "data:grounding:train:s7")!;
  await runStage(train, { cache, experiment: "all-rows" });
  const samples = await loadSamples(cache, train.key);
  assert.deepEqual(
    samples.map((s) => s.prompt),
    [0, 1, 2, 3, 4].map((i) => `point to the train ${i}`),
  );
  // Without its own file, validation rows are held out of the training file.
  const carved = buildPlan(parseSpec(text(""), `${dir}/x.yaml`, [], { tasks: TASKS }));
  assert.equal(paramsOf(carved.find((s) => s.id === "data:grounding:val:s7")!).holdout, 2);
  // The training file read for validation too counts once, as train.
  const carvedReport = paramsOf((await resolvePlan(carved)).find((s) => s.kind === "report")!)
    .vocabulary as { splits: Record<string, { prompts: number }> };
  assert.deepEqual(Object.keys(carvedReport.splits), ["test", "train"]);
  assert.equal(carvedReport.splits.train.prompts, 5);
  // "all" needs the split's file.
  const noTest = text("", "\n  test: 5").replace(
    "    test: { path: test.jsonl, images: images }\n",
    "",
  );
  assert.equal(parseSpec(noTest, `${dir}/x.yaml`, [], { tasks: TASKS }).task.test, 5);
  const bad = problems(
    text("", "\n  test: all").replace("    test: { path: test.jsonl, images: images }\n", ""),
    `${dir}/x.yaml`,
  );
  assert.equal(bad.length, 1);
  assert.match(
    bad[0],
    /x\.yaml:7:9 task\.test: expected a number of samples \(all: every row of task\.source\.test, real data only\), found all/,
  );
  await Deno.remove(dir, { recursive: true });
});
