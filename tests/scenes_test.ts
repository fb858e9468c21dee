import assert from "node:assert/strict";
import {
  chooseExpressions,
  fillTriangle,
  generateScene,
  referringExpressions,
  type Relation,
  RELATIONS,
  SCENE_WORDS,
  type SceneObject,
  SHAPES,
  SIZES,
  solidImage,
} from "../tasks/scenes.ts";
import { COLOR_NAMES, COLORS } from "../tasks/draw.ts";
import { Rng } from "../pipeline/lib/rng.ts";

function obj(
  shape: SceneObject["shape"],
  color: string,
  size: SceneObject["size"],
  x: number,
  y: number,
  side: number,
): SceneObject {
  return { shape, color, size, bbox: [x, y, side, side], cx: x + side / 2, cy: y + side / 2 };
}

/**
 * An independent reading of an expression: parse the words back into attributes and a
 * relation, and list every object it could mean under a loose reading (a candidate is
 * "left of" the anchor when its centre is left of the anchor's centre).
 */
function looseReferents(objects: readonly SceneObject[], text: string): number[] {
  const words = text.split(" ");
  const relAt = words.findIndex((w, i) =>
    i > 0 && (w === "above" || w === "below" || w === "left" || w === "right")
  );
  const headWords = relAt < 0 ? words : words.slice(0, relAt);
  const matches = (ws: string[], o: SceneObject) =>
    ws.every((w) => w === "the" || w === o.shape || w === o.color || w === o.size);
  const heads = objects.flatMap((o, i) => matches(headWords, o) ? [i] : []);
  if (relAt < 0) return heads;
  const rel = (words[relAt] === "left" || words[relAt] === "right")
    ? `${words[relAt]} of`
    : words[relAt];
  const anchorWords = words.slice(relAt + (rel.includes(" ") ? 2 : 1));
  const anchors = objects.flatMap((o, i) => matches(anchorWords, o) ? [i] : []);
  assert.equal(anchors.length, 1, `anchor of "${text}" is not unique`);
  const a = objects[anchors[0]];
  const loose: Record<Relation, (o: SceneObject) => boolean> = {
    "left of": (o) => o.cx < a.cx,
    "right of": (o) => o.cx > a.cx,
    "above": (o) => o.cy < a.cy,
    "below": (o) => o.cy > a.cy,
  };
  return heads.filter((i) => i !== anchors[0] && loose[rel as Relation](objects[i]));
}

Deno.test("generateScene is deterministic in the seed and varies across seeds", () => {
  const a = generateScene(new Rng(5));
  const b = generateScene(new Rng(5));
  const c = generateScene(new Rng(6));
  assert.deepEqual(a.objects, b.objects);
  assert.deepEqual(a.image.data, b.image.data);
  assert.notDeepEqual(a.image.data.slice(0, 300), c.image.data.slice(0, 300));
});

Deno.test("scenes: objects fit, do not overlap, show their colour; sides vary", () => {
  let nonSquare = 0;
  for (let seed = 0; seed < 40; seed++) {
    const { image, objects } = generateScene(new Rng(seed));
    if (image.width !== image.height) nonSquare++;
    assert.ok(image.width >= 128 && image.width <= 224 && image.height >= 128);
    assert.ok(objects.length >= 2, `seed ${seed}: only ${objects.length} objects`);
    assert.ok(image.data.every((v) => v >= 0 && v <= 1));
    objects.forEach((o, i) => {
      const [x, y, w, h] = o.bbox;
      assert.ok(x >= 0 && y >= 0 && x + w <= image.width && y + h <= image.height);
      for (const p of objects.slice(i + 1)) {
        const [px, py, pw, ph] = p.bbox;
        assert.ok(x + w <= px || px + pw <= x || y + h <= py || py + ph <= y, "overlap");
      }
      // The triangle's centroid, the others' centre: the object's colour (noise 0.04).
      const sy = Math.floor(o.shape === "triangle" ? y + (2 * h) / 3 : o.cy);
      const pix = 3 * (sy * image.width + Math.floor(o.cx));
      COLORS[o.color].forEach((v, ch) => assert.ok(Math.abs(image.data[pix + ch] - v) <= 0.05));
    });
  }
  assert.ok(nonSquare > 30, "most scenes should be non-square");
});

Deno.test("fillTriangle paints exactly the pixels whose centres are inside", () => {
  const img = solidImage(4, 4, [0, 0, 0]);
  fillTriangle(img, [0, 0], [4, 0], [0, 4], [1, 1, 1]);
  const painted = Array.from({ length: 16 }, (_, p) => img.data[3 * p]);
  // Centres (x + 0.5, y + 0.5) with x + y + 1 <= 4.
  assert.deepEqual(painted, [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0]);
  // With a mask, it marks the same pixels and paints nothing else.
  const mask = new Uint8Array(16);
  const again = solidImage(4, 4, [0, 0, 0]);
  fillTriangle(again, [0, 0], [4, 0], [0, 4], [1, 1, 1], mask);
  assert.deepEqual([...mask], painted);
  assert.deepEqual(again.data, img.data);
});

Deno.test("a relation is used exactly when attributes do not single an object out", () => {
  const objects = [
    obj("circle", "blue", "small", 10, 50, 20), // 0: left of the square
    obj("square", "red", "large", 60, 40, 40), // 1
    obj("circle", "blue", "small", 120, 50, 20), // 2: right of the square
  ];
  const left = referringExpressions(objects, 0).map((e) => e.text);
  assert.ok(!left.includes("the blue circle"));
  assert.ok(left.includes("the blue circle left of the red square"));
  assert.ok(left.includes("the circle left of the square"));
  assert.ok(!left.some((t) => t.includes("right of") || t.includes("above")));
  const square = referringExpressions(objects, 1).map((e) => e.text);
  assert.equal(square[0], "the square");
  // Borderline: a blue circle overlapping the square's column is neither clearly left of
  // it nor clearly not, so "left of the square" is dropped for object 0.
  const crowded = [...objects, obj("circle", "blue", "small", 62, 5, 20)];
  assert.ok(
    !referringExpressions(crowded, 0).some((e) => e.text === "the circle left of the square"),
  );
  assert.ok(
    referringExpressions(crowded, 3).some((e) => e.text === "the circle above the square"),
  );
});

Deno.test("identical twins with no separating relation get no expression", () => {
  const objects = [
    obj("circle", "red", "small", 10, 10, 20),
    obj("circle", "red", "small", 40, 10, 20),
  ];
  assert.deepEqual(referringExpressions(objects, 0), []);
  assert.deepEqual(chooseExpressions(new Rng(1), objects, 0, 3), []);
});

Deno.test("every generated expression is unambiguous and uses scene words only", () => {
  let relational = 0;
  let total = 0;
  for (let seed = 0; seed < 60; seed++) {
    const { objects } = generateScene(new Rng(seed));
    objects.forEach((_, i) => {
      for (const e of referringExpressions(objects, i)) {
        total++;
        if (e.needsRelation) relational++;
        assert.deepEqual(looseReferents(objects, e.text), [i], `seed ${seed}: "${e.text}"`);
        for (const w of e.text.split(" ")) assert.ok(SCENE_WORDS.includes(w), w);
      }
    });
  }
  assert.ok(total > 500);
  assert.ok(relational > 50, `only ${relational} expressions need a relation`);
});

Deno.test("SCENE_WORDS covers shapes, sizes, colours and relations", () => {
  for (const w of [...SHAPES, ...SIZES, ...COLOR_NAMES, "the", "left", "right", "of"]) {
    assert.ok(SCENE_WORDS.includes(w), w);
  }
  for (const r of RELATIONS) for (const w of r.split(" ")) assert.ok(SCENE_WORDS.includes(w));
});
