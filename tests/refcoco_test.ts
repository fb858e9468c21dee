import assert from "node:assert/strict";
import { createCanvas } from "@napi-rs/canvas";
import { parquetWriteBuffer } from "hyparquet-writer";
import {
  boxIou,
  boxTarget,
  expressionWords,
  formatBox,
  parseBox,
  percentBox,
  type PickleValue,
  readPickleData,
  refcoco,
  writePickle,
} from "../tasks/refcoco.ts";
import { encodePng } from "../tasks/image_io.ts";
import type { DataSource, Sample, TaskConfig } from "../tasks/task.ts";

function config(imageSize = 16, patchSize = 4, params: Record<string, unknown> = {}): TaskConfig {
  return { imageSize, patchSize, params: { ...refcoco.defaultParams, ...params } };
}

function sum(values: Float32Array): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Bytes of a string whose characters are all below 256 (pickle opcodes as text). */
function bytesOf(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sampleWithBox(box: [number, number, number, number]): Sample {
  return {
    image: { width: 1, height: 1, data: new Float32Array(3) },
    prompt: "the cat",
    answer: formatBox(box),
    target: new Float32Array([1]),
    meta: { difficulty: "1-3 words", box, minIou: 0.5 },
  };
}

/** A real `pickle.dumps(refs, protocol=2)` from Python 3 (memo BINPUT/BINGET included). */
const PYTHON_REFS_HEX = [
  "80025d71007d710128580800000073656e745f69647371025d7103284b074b0865580900000066696c65",
  "5f6e616d6571045827000000434f434f5f747261696e323031345f3030303030303030303034325f3132",
  "33343536372e6a706771055806000000616e6e5f696471064a87d6120058060000007265665f69647107",
  "4b035808000000696d6167655f696471084b2a580500000073706c69747109580300000076616c710a58",
  "0900000073656e74656e636573710b5d710c287d710d285806000000746f6b656e73710e5d710f285803",
  "0000006d616e711058020000006f6e711158040000006c65667471126558030000007261777113580c00",
  "00004d616e206f6e206c6566742e7114580700000073656e745f696471154b07580400000073656e7471",
  "16580b0000006d616e206f6e206c6566747117757d711828680e5d7119285803000000677579711a5802",
  "000000696e711b5803000000726564711c656813580a00000067757920696e20726564711d68154b0868",
  "16681d7565580b00000063617465676f72795f6964711e4b0175612e",
].join("");

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
}

/** A temp folder with a 200x100 PNG `images/pic.png`, refs(unc).p and instances.json. */
async function refsFixture(
  refs: PickleValue,
  annotations: PickleValue[] = [{ id: 7, image_id: 1, bbox: [50, 25, 100, 50], category_id: 1 }],
): Promise<DataSource> {
  const dir = await Deno.makeTempDir({ prefix: "refcoco_test_" });
  await Deno.mkdir(`${dir}/images`);
  const data = new Float32Array(200 * 100 * 3).fill(0.5);
  await Deno.writeFile(`${dir}/images/pic.png`, await encodePng({ width: 200, height: 100, data }));
  await Deno.writeFile(`${dir}/refs(unc).p`, writePickle(refs));
  await Deno.writeTextFile(
    `${dir}/instances.json`,
    JSON.stringify({
      images: [{ id: 1, file_name: "pic.png", width: 200, height: 100 }],
      annotations,
    }),
  );
  return {
    path: `${dir}/refs(unc).p`,
    images: `${dir}/images`,
    split: "val",
    extra: { instances: `${dir}/instances.json` },
  };
}

function ref(extra: Record<string, PickleValue> = {}): Record<string, PickleValue> {
  return {
    ref_id: 5,
    ann_id: 7,
    image_id: 1,
    split: "val",
    category_id: 1,
    file_name: "pic_7.png",
    sentences: [
      { sent: "man on left", raw: "Man on left.", tokens: ["man", "on", "left"] },
      { raw: "The man, on the LEFT!" },
    ],
    ...extra,
  };
}

Deno.test("pickle: the TS writer round-trips; Python's own protocol-2 output reads", () => {
  const value: PickleValue = [
    { a: 1, b: -5, c: 70000, d: -70000, e: 2 ** 40, f: 1.5, g: "héllo ✓", h: [true, null] },
    [],
    {},
  ];
  assert.deepEqual(readPickleData(writePickle(value), "x.p"), value);
  const refs = readPickleData(fromHex(PYTHON_REFS_HEX), "py.p") as Record<string, PickleValue>[];
  assert.equal(refs[0].ann_id, 1234567);
  assert.deepEqual(refs[0].sent_ids, [7, 8]);
  const sentences = refs[0].sentences as Record<string, PickleValue>[];
  assert.equal(sentences[1].sent, "guy in red");
  assert.deepEqual(sentences[1].tokens, ["guy", "in", "red"]);
});

Deno.test("pickle: Python 2 style strings (SHORT_BINSTRING) read as text", () => {
  // PROTO 2, EMPTY_LIST, BINPUT, EMPTY_DICT, BINPUT, MARK, U"split" U"val" U"ref_id" K 1,
  // SETITEMS, APPEND, STOP: what Python 2's cPickle writes for refs(unc).p.
  const bytes = bytesOf("\x80\x02]q\x00}q\x01(U\x05splitU\x03valU\x06ref_idK\x01ua.");
  assert.deepEqual(readPickleData(bytes, "py2.p"), [{ split: "val", ref_id: 1 }]);
});

Deno.test("pickle: code-naming opcodes are refused, nothing is called", () => {
  const marker = `/tmp/klal-pickle-${crypto.randomUUID()}`;
  const command = `touch ${marker}`;
  // GLOBAL os.system, BINUNICODE command, TUPLE1, REDUCE, STOP.
  const global = bytesOf(
    `\x80\x02cos\nsystem\nX${String.fromCharCode(command.length)}\0\0\0${command}\x85R.`,
  );
  assert.throws(
    () => readPickleData(global, "evil.p"),
    /evil\.p: refusing pickle opcode naming global os\.system/,
  );
  // Protocol 4: SHORT_BINUNICODE x2, STACK_GLOBAL builtins.eval, then a call.
  const stack = bytesOf("\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.");
  assert.throws(
    () => readPickleData(stack, "evil4.p"),
    /refusing pickle opcode naming global builtins\.eval/,
  );
  // Protocol 0: MARK, STRING 'ls', INST os.system.
  const inst = bytesOf("(S'ls'\nios\nsystem\n.");
  assert.throws(
    () => readPickleData(inst, "evil0.p"),
    /refusing pickle opcode naming global os\.system/,
  );
  // REDUCE on plain data (no global to call): an error, not a call.
  const reduce = bytesOf("\x80\x02X\x02\0\0\0hi)R.");
  assert.throws(() => readPickleData(reduce, "odd.p"), /odd\.p: not a readable data pickle/);
  // A persistent id.
  const persid = bytesOf("\x80\x02Pabc\n.");
  assert.throws(
    () => readPickleData(persid, "pid.p"),
    /refusing pickle opcode PERSID \(a persistent id\)/,
  );
  assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
  // A "__proto__" key stays an ordinary key of plain data.
  const proto = readPickleData(bytesOf("\x80\x02}X\t\0\0\0__proto__K\x01s."), "p.p");
  assert.deepEqual(Object.keys(proto as object), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
});

Deno.test("pickle: truncated bytes are a clear error", () => {
  const good = writePickle([{ a: "b" }]);
  assert.throws(
    () => readPickleData(good.slice(0, good.length - 3), "cut.p"),
    /cut\.p: not a readable data pickle/,
  );
});

Deno.test("words, boxes, IoU", () => {
  assert.equal(expressionWords("The man, on the LEFT!").join(" "), "the man , on the left !");
  assert.deepEqual(percentBox([50, 25, 100, 50], 200, 100), [25, 25, 75, 75]);
  assert.deepEqual(percentBox([-5, 0, 300, 200], 200, 100), [0, 0, 100, 100]);
  assert.equal(formatBox([12.4, 12.6, 99.5, 100.2]), "12 13 100 100");
  assert.deepEqual(parseBox("1 2 3 4"), [1, 2, 3, 4]);
  assert.deepEqual(parseBox("1 , 2 , 3 , 4"), [1, 2, 3, 4]);
  assert.equal(parseBox("1 2 3"), null);
  assert.equal(parseBox("the man"), null);
  assert.equal(boxIou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
  assert.equal(boxIou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
  assert.equal(boxIou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
  assert.equal(boxIou([10, 10, 0, 0], [0, 0, 10, 10]), 0);
});

Deno.test("score: Acc@IoU >= 0.5 at the boundary; metrics iou and accuracy at IoU >= 0.3", () => {
  const half = sampleWithBox([0, 0, 50, 100]);
  assert.equal(refcoco.score("0 0 100 100", half), true); // IoU exactly 0.5
  const less = sampleWithBox([0, 0, 49, 100]);
  assert.equal(refcoco.score("0 0 100 100", less), false); // IoU 0.49
  assert.equal(refcoco.score("0 0 49 100", less), true);
  assert.equal(refcoco.score("left man", less), false);
  assert.deepEqual(refcoco.metrics!("0 0 100 100", half), { iou: 0.5, accuracy_iou30: 100 });
  assert.deepEqual(refcoco.metrics!("nonsense", half), { iou: 0, accuracy_iou30: 0 });
  // [0, 0, 30, 100] against [0, 0, 100, 100]: IoU 0.3, at the threshold; 29: below.
  assert.deepEqual(refcoco.metrics!("0 0 100 100", sampleWithBox([0, 0, 30, 100])), {
    iou: 0.3,
    accuracy_iou30: 100,
  });
  assert.equal(refcoco.metrics!("0 0 100 100", sampleWithBox([0, 0, 29, 100])).accuracy_iou30, 0);
});

Deno.test("boxTarget: patches weighted by covered fraction, sums to 1", () => {
  // 16-px image, 4-px patches (4x4 grid): [25, 25, 75, 75] % is patches rows/cols 1-2.
  const t = boxTarget([25, 25, 75, 75], 16, 4);
  const rows = [0, 1, 2, 3].map((r) => [...t.slice(4 * r, 4 * r + 4)].map((v) => v.toFixed(2)));
  assert.deepEqual(rows.map((r) => r.join(" ")), [
    "0.00 0.00 0.00 0.00",
    "0.00 0.25 0.25 0.00",
    "0.00 0.25 0.25 0.00",
    "0.00 0.00 0.00 0.00",
  ]);
  // [0, 0, 37.5, 25] %: x 0-6 px, y 0-4 px: patch 0 full, patch 1 half covered.
  const u = boxTarget([0, 0, 37.5, 25], 16, 4);
  assert.ok(Math.abs(u[0] - 2 / 3) < 1e-6 && Math.abs(u[1] - 1 / 3) < 1e-6);
  assert.ok(Math.abs(sum(u) - 1) < 1e-6);
});

Deno.test("load refs(unc).p + instances.json: one sample per (ref, sentence) of the split", async () => {
  const source = await refsFixture([
    ref(),
    ref({ ref_id: 6, split: "testA", sentences: [{ sent: "other" }] }),
  ]);
  const samples = await refcoco.load(source, config());
  assert.deepEqual(samples.map((s) => s.prompt), [
    "man on left",
    "the man , on the left !",
  ]);
  const s = samples[0];
  assert.equal(s.answer, "25 25 75 75");
  assert.deepEqual(s.meta.box, [25, 25, 75, 75]);
  assert.equal(s.meta.refId, 5);
  assert.equal(s.meta.split, "val");
  assert.equal(s.image.width, 16);
  assert.deepEqual(
    [...s.target].map((v) => Math.round(v * 100) / 100),
    [0, 0, 0, 0, 0, 0.25, 0.25, 0, 0, 0.25, 0.25, 0, 0, 0, 0, 0],
  );
  assert.equal(refcoco.score(s.answer, s), true);
  const testA = await refcoco.load({ ...source, split: "testA" }, config());
  assert.deepEqual(testA.map((x) => x.prompt), ["other"]);
  assert.equal((await refcoco.load(source, config(16, 4, { limit: 1 }))).length, 1);
});

Deno.test("load: a hostile expression survives as plain text", async () => {
  const hostile = `<img src=x onerror=alert(1)>`;
  const source = await refsFixture([ref({ sentences: [{ sent: hostile }] })]);
  const [s] = await refcoco.load(source, config());
  assert.equal(s.meta.expression, hostile);
  assert.equal(s.prompt, "<img src=x onerror=alert ( 1 ) >");
});

Deno.test("load refs: errors name the file, ref and field", async () => {
  await assert.rejects(
    refcoco.load(await refsFixture([ref(), ref({ ref_id: 9, ann_id: 99 })]), config()),
    /refs\(unc\)\.p ref 2 \(ref_id 9\): ann_id 99 is not in instances\.json/,
  );
  await assert.rejects(
    refcoco.load(await refsFixture([ref({ sentences: "oops" })]), config()),
    /refs\(unc\)\.p ref 1 \(ref_id 5\): expected "sentences" to be a non-empty list, got a string of 4 characters/,
  );
  await assert.rejects(
    refcoco.load(await refsFixture([ref(), { split: "val" }]), config()),
    /refs\(unc\)\.p ref 2: expected "ref_id" to be a number, got nothing/,
  );
  await assert.rejects(
    refcoco.load(
      await refsFixture([ref()], [{ id: 7, image_id: 1, bbox: [1, 2], category_id: 1 }]),
      config(),
    ),
    /instances\.json annotations\[0\]: expected "bbox" to be \[x, y, w, h\] numbers, got a list of 2 items/,
  );
  const source = await refsFixture([ref()]);
  await Deno.remove(`${source.images}/pic.png`);
  await assert.rejects(
    refcoco.load(source, config()),
    /refs\(unc\)\.p ref 1 \(ref_id 5\): image pic\.png not found in/,
  );
  await Deno.writeTextFile(source.extra!.instances, '{"images": [');
  await assert.rejects(
    refcoco.load(source, config()),
    /instances\.json: cannot read COCO instances/,
  );
  await Deno.writeFile(source.path, bytesOf("\x80\x02cos\nsystem\n)R."));
  await assert.rejects(refcoco.load(source, config()), /refs\(unc\)\.p: refusing pickle opcode/);
});

Deno.test("load refs: a truncated JPEG is an error naming the ref and file", async () => {
  const source = await refsFixture([ref()]);
  const canvas = createCanvas(200, 100);
  canvas.getContext("2d").fillRect(10, 10, 50, 50);
  const jpeg = new Uint8Array(await canvas.encode("jpeg"));
  await Deno.writeFile(`${source.images}/pic.png`, jpeg);
  assert.equal((await refcoco.load(source, config())).length, 2); // a whole JPEG reads
  await Deno.writeFile(`${source.images}/pic.png`, jpeg.slice(0, jpeg.length - 40));
  await assert.rejects(
    refcoco.load(source, config()),
    /ref 1 \(ref_id 5\): cannot decode image pic\.png \(truncated JPEG/,
  );
});

Deno.test("load parquet export: embedded or named images, answer lists, pixel boxes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refcoco_parquet_" });
  await Deno.mkdir(`${dir}/images`);
  const data = new Float32Array(100 * 50 * 3).fill(0.2);
  const png = await encodePng({ width: 100, height: 50, data });
  await Deno.writeFile(`${dir}/images/named.png`, png);
  const write = async (name: string, images: ({ bytes: Uint8Array; path: string } | null)[]) => {
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: "question_id", data: ["q1", "q2"] },
        { name: "image", data: images },
        { name: "question", data: ["Please describe the region.", "Please describe."] },
        { name: "answer", data: [["left dog", "brown dog"], ["the <b>cup</b>"]] },
        { name: "bbox", data: [[10, 5, 40, 20], [0, 0, 100, 50]] },
        { name: "file_name", data: ["embedded.png", "named.png"] },
      ],
      schema: [
        { name: "root", num_children: 6 },
        { name: "question_id", type: "BYTE_ARRAY", converted_type: "UTF8" },
        { name: "image", repetition_type: "OPTIONAL", num_children: 2 },
        { name: "bytes", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" },
        { name: "path", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "question", type: "BYTE_ARRAY", converted_type: "UTF8" },
        { name: "answer", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        {
          name: "element",
          type: "BYTE_ARRAY",
          converted_type: "UTF8",
          repetition_type: "OPTIONAL",
        },
        { name: "bbox", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "DOUBLE", repetition_type: "OPTIONAL" },
        { name: "file_name", type: "BYTE_ARRAY", converted_type: "UTF8" },
      ],
    });
    await Deno.writeFile(`${dir}/${name}`, new Uint8Array(buffer));
    return { path: `${dir}/${name}`, images: `${dir}/images` };
  };
  const source = await write("val.parquet", [{ bytes: png, path: "embedded.png" }, null]);
  const samples = await refcoco.load(source, config());
  assert.deepEqual(samples.map((s) => s.prompt), ["left dog", "brown dog", "the <b>cup</b>"]);
  // [10, 5, 40, 20] px of 100x50 -> [10, 10, 50, 50] %.
  assert.deepEqual(samples.map((s) => s.answer), ["10 10 50 50", "10 10 50 50", "0 0 100 100"]);
  assert.deepEqual(samples.map((s) => s.meta.questionId), ["q1", "q1", "q2"]);
  assert.ok(samples.every((s) => Math.abs(sum(s.target) - 1) < 1e-5));
  await Deno.remove(`${dir}/images/named.png`);
  await assert.rejects(
    refcoco.load(source, config()),
    /val\.parquet row 2: image named\.png not found in/,
  );
});

Deno.test("stand-in: refs pickle + instances.json, split filled, deterministic, in vocabulary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refcoco_standin_" });
  const cfg = config(64, 8);
  const source = await refcoco.writeStandIn(`${dir}/a`, 11, 12, cfg);
  assert.equal(source.split, "val");
  const samples = await refcoco.load(source, cfg);
  assert.equal(samples.length, 12);
  const vocab = new Set(refcoco.vocabulary);
  let relational = 0;
  for (const s of samples) {
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
    if (/ (left of|right of|above|below) /.test(s.prompt)) relational++;
    assert.equal(refcoco.score(s.answer, s), true);
    assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
    // All the mass inside the box (patch grid 8x8, 12.5 % a patch).
    const [x1, y1, x2, y2] = s.meta.box as number[];
    s.target.forEach((v, i) => {
      if (v === 0) return;
      const col = i % 8;
      const row = Math.floor(i / 8);
      assert.ok(
        (col + 1) * 12.5 > x1 && col * 12.5 < x2 && (row + 1) * 12.5 > y1 && row * 12.5 < y2,
      );
    });
  }
  assert.ok(relational > 0, "some stand-in expressions use relations");
  const refs = readPickleData(await Deno.readFile(source.path), "refs") as { split: string }[];
  assert.ok(refs.some((r) => r.split !== "val"), "other splits are present too");
  await refcoco.writeStandIn(`${dir}/b`, 11, 12, cfg);
  for (const f of ["refs(unc).p", "instances.json", "images/scene-000000.png"]) {
    assert.deepEqual(await Deno.readFile(`${dir}/a/${f}`), await Deno.readFile(`${dir}/b/${f}`));
  }
});

Deno.test("stand-in: larger objects and one item per image when asked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-refcoco-sizes-" });
  const config = (params: Record<string, unknown>) => ({
    imageSize: 64,
    patchSize: 8,
    params: { ...refcoco.defaultParams, ...params },
  });
  const wide = config({ stand_in_sizes: ["large"], stand_in_refs: 1, stand_in_expressions: 1 });
  const samples = await refcoco.load!(await refcoco.writeStandIn!(`${dir}/a`, 9, 60, wide), wide);
  assert.equal(samples.length, 60);
  assert.equal(new Set(samples.map((s) => s.meta.file)).size, 60, "one item per image");
  // Every object of the image is a candidate, the referred one among them.
  for (const s of samples) {
    const candidates = s.meta.candidates as number[][];
    assert.ok(candidates.length >= 3, `${candidates.length} candidates`); // scenes hold 3-6
    const box = s.meta.box as number[];
    assert.ok(candidates.some((c) => c.every((v, k) => Math.abs(v - box[k]) < 1e-9)), "referred");
  }
  // Large objects: a half-extent of at least 13% of the shorter side (squares at 85% of it),
  // sides of 128-224 px: every box is at least 2 * 0.85 * 0.13 * 128 / 224 = 12.6% wide.
  for (const s of samples) {
    const [x1, , x2] = s.meta.box as number[];
    assert.ok(x2 - x1 >= 12.6 - 1, `box ${s.meta.box}`); // percent boxes are rounded
  }
  const usual = config({});
  const shared = await refcoco.load!(await refcoco.writeStandIn!(`${dir}/b`, 9, 60, usual), usual);
  assert.ok(new Set(shared.map((s) => s.meta.file)).size < 40, "by default images hold several");
  await assert.rejects(
    refcoco.writeStandIn!(`${dir}/c`, 9, 5, config({ stand_in_refs: 0 })),
    /stand_in_refs/,
  );
  await Deno.remove(dir, { recursive: true });
});
