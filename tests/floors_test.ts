import assert from "node:assert/strict";
import { fixedAnswerFloor } from "../pipeline/eval/floors.ts";
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
