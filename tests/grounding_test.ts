/**
 * The generic grounding task on files made here: a COCO instances file, a JSONL of points in
 * pixels and a CSV of boxes in 0-1 corner-and-size, each checked against hand computation.
 */
import assert from "node:assert/strict";
import { grounding, insidePolygon, polygonsTarget } from "../tasks/grounding.ts";
import { encodePng } from "../tasks/image_io.ts";
import type { Sample, TaskConfig } from "../tasks/task.ts";

const CONFIG = (params: Record<string, unknown> = {}): TaskConfig => ({
  imageSize: 32,
  patchSize: 8,
  params: { ...grounding.defaultParams, ...params },
});

/** A w x h grey image as PNG bytes. */
function png(w: number, h: number): Promise<Uint8Array> {
  return encodePng({ width: w, height: h, data: new Float32Array(w * h * 3).fill(0.5) });
}

async function folder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "grounding-" });
  await Deno.mkdir(`${dir}/images/sub`, { recursive: true });
  await Deno.writeFile(`${dir}/images/a.png`, await png(200, 100));
  await Deno.writeFile(`${dir}/images/sub/b.png`, await png(100, 100));
  return dir;
}

const COCO = {
  images: [
    { id: 1, file_name: "a.png", width: 200, height: 100 },
    { id: 2, file_name: "sub/b.png", width: 100, height: 100 },
  ],
  categories: [{ id: 1, name: "dog" }, { id: 2, name: "traffic_light" }],
  annotations: [
    // Two dogs in a.png: the answer is the upper one, either scores.
    { id: 10, image_id: 1, category_id: 1, bbox: [100, 50, 50, 40], iscrowd: 0 },
    { id: 11, image_id: 1, category_id: 1, bbox: [20, 10, 40, 20], iscrowd: 0 },
    // A crowd of traffic lights in a.png: that item is skipped.
    { id: 12, image_id: 1, category_id: 2, bbox: [0, 0, 10, 10], iscrowd: 1 },
    // One traffic light in b.png with a triangle polygon.
    {
      id: 13,
      image_id: 2,
      category_id: 2,
      bbox: [0, 0, 50, 50],
      iscrowd: 0,
      segmentation: [[0, 0, 50, 0, 0, 50]],
    },
  ],
};

Deno.test("grounding: COCO items per image and category, crowds skipped, several instances", async () => {
  const dir = await folder();
  await Deno.writeTextFile(`${dir}/instances.json`, JSON.stringify(COCO));
  const source = { path: `${dir}/instances.json`, images: `${dir}/images` };
  const samples = await grounding.load(source, CONFIG());
  assert.deepEqual(samples.map((s) => s.prompt), [
    "point to the dog",
    "point to the traffic light",
  ]);
  const dog = samples[0];
  // Boxes in percent of 200 x 100: [20,10,40,20] -> [10, 10, 30, 30]; centre (20, 20).
  assert.deepEqual(dog.meta.boxes, [[10, 10, 30, 30], [50, 50, 75, 90]]);
  assert.equal(dog.answer, "20 , 20");
  assert.ok(grounding.score("20 , 20", dog));
  assert.ok(grounding.score("60 , 70", dog), "inside the other dog's box");
  assert.ok(!grounding.score("90 , 10", dog));
  assert.ok(!grounding.score("dog", dog));
  // The map gives each instance half the mass, spread over the patches (25% a side) by the
  // area of its box inside them: [10,10,30,30] covers 225, 75, 75, 25 (of 625) of patches 0,
  // 1, 4, 5; [50,50,75,90] 625 and 375 of patches 10 and 14.
  const expected = new Array(16).fill(0);
  [[0, 225], [1, 75], [4, 75], [5, 25]].forEach(([i, m]) => expected[i] = m / 400 / 2);
  [[10, 625], [14, 375]].forEach(([i, m]) => expected[i] = m / 1000 / 2);
  dog.target.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `patch ${i}: ${v}`));
  assert.equal(dog.meta.file, "a.png");
  // The triangle's polygon makes the map: nothing in the bottom-right patch.
  const light = samples[1];
  assert.equal(light.target[15], 0);
  assert.ok(light.target[0] > light.target[5]);
  // several: skip drops the two dogs; box answers give the box and IoU.
  const skipped = await grounding.load(source, CONFIG({ several: "skip", answer: "box" }));
  assert.deepEqual(skipped.map((s) => s.answer), ["0 0 50 50"]);
  assert.ok(grounding.score("0 0 50 40", skipped[0])); // IoU 0.8
  assert.ok(!grounding.score("0 0 50 20", skipped[0])); // IoU 0.4
  assert.deepEqual(grounding.metrics!("0 0 50 20", skipped[0]), { iou: 0.4, accuracy_iou30: 100 });
  assert.deepEqual(await grounding.prompts!(source, CONFIG()), samples.map((s) => s.prompt));
  assert.deepEqual(await grounding.images!(source, CONFIG()), [
    `${dir}/images/a.png`,
    `${dir}/images/sub/b.png`,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("grounding: JSONL points in pixels with a prompt column; CSV boxes in 0-1 xywh", async () => {
  const dir = await folder();
  await Deno.writeTextFile(
    `${dir}/points.jsonl`,
    JSON.stringify({ image: "a.png", text: "The Dog, on the left!", point: [50, 25] }) + "\n" +
      JSON.stringify({ image: "sub/b.png", text: "two cups", point: [[10, 90], [10, 10]] }) +
      "\n",
  );
  const points = await grounding.load(
    { path: `${dir}/points.jsonl`, images: `${dir}/images` },
    CONFIG({ prompt_column: "text" }),
  );
  assert.deepEqual(points.map((s) => s.prompt), ["the dog , on the left !", "two cups"]);
  // 50 px of 200 is 25%, 25 px of 100 is 25%; the second row's first point in reading order.
  assert.deepEqual(points.map((s) => s.answer), ["25 , 25", "10 , 10"]);
  assert.ok(grounding.score("30 , 30", points[0])); // within 10 percent-units
  assert.ok(!grounding.score("40 , 25", points[0]));
  assert.ok(grounding.score("10 , 88", points[1]), "any point scores");
  await Deno.writeTextFile(
    `${dir}/boxes.csv`,
    'file,label,x,y,w,h\na.png,"red, round ball",0.1,0.2,0.3,0.4\n',
  );
  const csvParams = {
    image_column: "file",
    category_column: "label",
    prompt: "find the {category}",
    answer: "box",
    box_columns: ["x", "y", "w", "h"],
    coordinates: "unit",
    box_format: "xywh",
  };
  const boxes = await grounding.load(
    { path: `${dir}/boxes.csv`, images: `${dir}/images` },
    CONFIG(csvParams),
  );
  assert.equal(boxes[0].prompt, "find the red , round ball");
  assert.equal(boxes[0].answer, "10 20 40 60");
  // Errors name the file, the line and what was expected.
  await Deno.writeTextFile(`${dir}/bad.csv`, "file,label,x,y,w,h\na.png,ball,0.1,zero,0.3,0.4\n");
  await assert.rejects(
    () => grounding.load({ path: `${dir}/bad.csv`, images: `${dir}/images` }, CONFIG(csvParams)),
    /bad\.csv:2 box: expected four numbers \(xywh\)/,
  );
  await Deno.writeTextFile(
    `${dir}/climb.jsonl`,
    JSON.stringify({ image: "../x.png", point: [1, 1], category: "x" }),
  );
  await assert.rejects(
    () => grounding.load({ path: `${dir}/climb.jsonl`, images: `${dir}/images` }, CONFIG()),
    /climb\.jsonl row 1: expected an image path inside the images folder/,
  );
  await assert.rejects(
    () => grounding.load({ path: `${dir}/points.jsonl`, images: `${dir}/images` }, CONFIG()),
    /points\.jsonl row 1: no column "category" \(columns: image, text, point\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("grounding: polygon maps by hand, the stand-in reads back", async () => {
  assert.ok(insidePolygon(10, 10, [0, 0, 50, 0, 0, 50]));
  assert.ok(!insidePolygon(40, 40, [0, 0, 50, 0, 0, 50]));
  // A square over exactly the top-left patch of a 2 x 2 grid: all the mass there.
  assert.deepEqual(Array.from(polygonsTarget([[0, 0, 50, 0, 50, 50, 0, 50]], 16, 8)!), [
    1,
    0,
    0,
    0,
  ]);
  const dir = await Deno.makeTempDir();
  const source = await grounding.writeStandIn(dir, 3, 12, CONFIG());
  const samples: Sample[] = await grounding.load(source, CONFIG());
  assert.ok(samples.length >= 12);
  assert.ok(samples.every((s) => /^point to the (circle|square|triangle)$/.test(s.prompt)));
  assert.ok(samples.every((s) => grounding.score(s.answer, s)), "each answer scores itself");
  await Deno.remove(dir, { recursive: true });
});
