/** Helpers every task file shares: parameter checks, per-sample seeding, exact-match scoring. */
import { Rng, seedFrom } from "../pipeline/lib/rng.ts";
import type { ParamProblem, Sample } from "./task.ts";

/** True for a safe integer. */
export function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

/** Words joined by single spaces, no leading or trailing space. */
export function normaliseWhitespace(text: string): string {
  return text.trim().split(/\s+/).join(" ");
}

/** The exact-match scorer: the prediction equals the answer, whitespace-normalised. */
export function exactMatch(prediction: string, sample: Sample): boolean {
  return normaliseWhitespace(prediction) === normaliseWhitespace(sample.answer);
}

/** Throw the first parameter problem as `task: expected KEY to be ..., got ...`. */
export function assertParams(task: string, problems: ParamProblem[]): void {
  if (problems.length === 0) return;
  const p = problems[0];
  throw new Error(`${task}: expected ${p.key} to be ${p.expected}, got ${JSON.stringify(p.found)}`);
}

/** `n` samples, each from its own random stream, so sample i does not depend on n. */
export function perSample(
  task: string,
  seed: number,
  n: number,
  make: (rng: Rng, index: number) => Sample,
): Sample[] {
  return Array.from({ length: n }, (_, i) => make(new Rng(seedFrom(task, seed, i)), i));
}
