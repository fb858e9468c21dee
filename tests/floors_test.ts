import assert from "node:assert/strict";
import { fixedAnswerFloor, shortcutFloors } from "../pipeline/eval/floors.ts";
import {
  candidatePatches,
  INK_THRESHOLD,
  inkPatches,
  inkRatio,
  questionBlind,
} from "../pipeline/eval/question_blind.ts";
import { lineIntersection, PARITY_SHORTCUT } from "../tasks/line_intersection.ts";
import { promptOverlap } from "../pipeline/eval/prompt_overlap.ts";
import type { Sample } from "../tasks/task.ts";

function sample(answer: string): Sample {
  return {
    image: { width: 1, height: 1, data: new Float32Array(3) },
    prompt: "q",
    answer,
    target: new Float32Array([1]),
    meta: { difficulty: 0 },
  };
}

Deno.test("fixedAnswerFloor: exact-match tasks get the majority answer", () => {
  const samples = ["0", "1", "1", "2", "1", "0"].map(sample);
  const floor = fixedAnswerFloor({ score: (p, s) => p === s.answer }, samples);
  assert.deepEqual(floor, { answer: "1", accuracy: 50, kind: "majority", candidates: 3 });
});

Deno.test("fixedAnswerFloor: point answers get the best constant under the task's scorer", () => {
  // Points on a line; a prediction is right within distance 1. "5" covers 4, 5 and 6 (3 of
  // 7); "0" covers 0, 0 and 1 (3 of 7 too, and wins the tie as the more common answer);
  // "10" covers itself only.
  const answers = ["0", "0", "1", "4", "5", "6", "10"];
  const score = (p: string, s: Sample) => Math.abs(Number(p) - Number(s.answer)) <= 1;
  const floor = fixedAnswerFloor({ score }, answers.map(sample));
  assert.equal(floor.kind, "best-constant");
  assert.equal(floor.answer, "0");
  assert.ok(Math.abs(floor.accuracy - 300 / 7) < 1e-9);
  // With 1 moved to 4, "5" covers 4, 4, 5 and 6: four of seven.
  const more = fixedAnswerFloor({ score }, ["0", "0", "4", "4", "5", "6", "10"].map(sample));
  assert.equal(more.answer, "5");
  assert.ok(Math.abs(more.accuracy - 400 / 7) < 1e-9);
});

Deno.test("fixedAnswerFloor: empty test set", () => {
  assert.ok(Number.isNaN(fixedAnswerFloor({ score: () => true }, []).accuracy));
});

Deno.test("shortcutFloors: the best answer per feature value, by hand; best rule first", () => {
  const withF = (answer: string, f: number): Sample => ({
    ...sample(answer),
    meta: { difficulty: "", f },
  });
  // f = 1: answers 1, 1, 0 (best "1": 2 right); f = -1: 0, 2, 2, 0, 0 (best "0": 3 right).
  const samples = [
    withF("1", 1),
    withF("1", 1),
    withF("0", 1),
    withF("0", -1),
    withF("2", -1),
    withF("2", -1),
    withF("0", -1),
    withF("0", -1),
  ];
  const byF = { name: "f", feature: (s: Sample) => s.meta.f as number };
  const constant = { name: "nothing", feature: () => 0 }; // the majority answer: "0", 4 of 8
  assert.deepEqual(shortcutFloors([constant, byF], samples), [
    { rule: "f", accuracy: 62.5 },
    { rule: "nothing", accuracy: 50 },
  ]);
  assert.deepEqual(shortcutFloors([byF], []), []);
});

Deno.test("inkRatio: attention spread over the inked patches, by hand", () => {
  // 16 px, 8 px patches (2 x 2): white with ink in patches 0 and 1; the target is patch 0.
  const data = new Float32Array(16 * 16 * 3).fill(1);
  for (const [x, y] of [[2, 2], [12, 3]]) data.fill(0, 3 * (y * 16 + x), 3 * (y * 16 + x) + 3);
  const s = {
    image: { width: 16, height: 16, data },
    target: Float32Array.from([1, 0, 0, 0]),
  } as unknown as Sample;
  assert.deepEqual(inkPatches(s.image, 8), [true, true, false, false]);
  // mass on the target 1/2, its share 1/4: ratio 2.
  assert.equal(inkRatio(s, 8), 2);
  assert.deepEqual(questionBlind([s, s], 8), { ink: 2 });
  // Noise below the threshold is not ink.
  const faint = new Float32Array(16 * 16 * 3).fill(1);
  faint[0] = 1 - INK_THRESHOLD / 2;
  assert.deepEqual(inkPatches({ width: 16, height: 16, data: faint }, 8), [
    false,
    false,
    false,
    false,
  ]);
});

Deno.test("line-intersection's parity shortcut scores near two thirds, above the majority", () => {
  const samples = lineIntersection.generate(3, 300, {
    imageSize: 64,
    patchSize: 8,
    params: { ...lineIntersection.defaultParams },
  });
  const [parity] = shortcutFloors(lineIntersection.shortcuts!, samples);
  const majority = fixedAnswerFloor(lineIntersection, samples);
  assert.equal(parity.rule, PARITY_SHORTCUT.name);
  // "1" vs "0 or 2" with balanced counts: at most 2/3 (plus sampling noise); well above 1/3.
  assert.ok(parity.accuracy > majority.accuracy + 20, `${parity.accuracy} vs ${majority.accuracy}`);
  assert.ok(parity.accuracy <= 100 * 2 / 3 + 5, `${parity.accuracy}`);
});

Deno.test("promptOverlap: test prompts seen word for word, and their words, by hand", () => {
  const o = promptOverlap(
    ["Point to the cat", "point to  the cat", "point to the dog", "where is it ?"],
    ["point to the cat", "where is the cat ?"],
  );
  // Distinct: "point to the cat", "point to the dog", "where is it ?"; seen: the first only.
  // Words: point, to, the, cat, dog, where, is, it, ? (9); seen: all but dog and it (7).
  assert.deepEqual(o, {
    distinct: 3,
    seen: 1,
    words: 9,
    wordsSeen: 7,
    examples: ["point to the cat"],
  });
});

Deno.test("candidatePatches and the objects baseline, by hand", () => {
  // 32 px, 8 px patches (4 x 4). Candidates: [0, 0, 50, 25] covers rows 0, columns 0-1; [75,
  // 75, 100, 100] covers patch 15. The target is patch 0: mass 1/3 over a share of 1/16.
  const target = new Float32Array(16);
  target[0] = 1;
  const s = {
    image: { width: 32, height: 32, data: new Float32Array(32 * 32 * 3).fill(1) },
    target,
    meta: { difficulty: "", candidates: [[0, 0, 50, 25], [75, 75, 100, 100]] },
  } as unknown as Sample;
  const covered = candidatePatches(s, 8)!;
  assert.deepEqual(covered.flatMap((v, i) => (v ? [i] : [])), [0, 1, 15]);
  const blind = questionBlind([s], 8);
  assert.equal(blind.objects, (1 / 3) / (1 / 16));
  assert.equal(blind.ink, 1, "a blank image has no ink: uniform attention");
  // Samples that list no candidates give no objects baseline.
  assert.equal(questionBlind([{ ...s, meta: { difficulty: "" } }], 8).objects, undefined);
});
