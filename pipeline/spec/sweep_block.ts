/**
 * Validation of a `sweep:` block, and the bound on how many points a sweep may expand to
 * (shared with sweeps given on the command line, ./sweep.ts).
 */

import { showNode, toPlain } from "./yaml_tree.ts";
import type { Section } from "./section.ts";
import { LIMITS } from "./limits.ts";

/**
 * `sweep:` maps dotted spec paths to lists of values (Hydra-style); each value is checked
 * when its point of the sweep is validated (pipeline/spec/sweep.ts).
 */
export function validateSweep(root: Section): Record<string, unknown[]> | undefined | null {
  if (!root.entry("sweep")) return undefined;
  const section = root.section("sweep");
  if (!section?.map) return section ? {} : null;
  const out: Record<string, unknown[]> = {};
  let ok = true;
  for (const [key, entry] of section.map.entries) {
    const value = toPlain(entry.node);
    if (!Array.isArray(value) || value.length === 0) {
      section.problems.add(
        entry.node.loc,
        `sweep.${key}`,
        "a non-empty list of values",
        showNode(entry.node),
      );
      ok = false;
      continue;
    }
    const dotted = /^[a-z_][a-z0-9_-]*(\.[a-z0-9_-]+)+$/.test(key) && !key.startsWith("sweep.");
    if (!dotted && key !== "task") {
      section.problems.add(
        entry.keyLoc,
        `sweep.${key}`,
        "a dotted spec path such as arms.klal.lambda, or task (whole task blocks)",
        JSON.stringify(key),
      );
      ok = false;
      continue;
    }
    out[key] = value;
  }
  // Every point is a validated spec: refuse a sweep too large to expand before expanding it.
  const points = sweepPoints(Object.values(out).map((values) => values.length));
  if (points > LIMITS.sweepPoints.max) {
    const sizes = Object.values(out).map((values) => values.length).join(" x ");
    section.problems.add(
      root.entry("sweep")!.keyLoc,
      "sweep",
      sweepLimitExpected(),
      `${points} points (${sizes})`,
    );
    ok = false;
  }
  return ok ? out : null;
}

/** Points of a sweep whose axes have `sizes` values each: their product. */
export function sweepPoints(sizes: number[]): number {
  return sizes.reduce((product, size) => product * size, 1);
}

/** What a sweep is expected to be, with its bound (also used for command-line axes). */
export function sweepLimitExpected(): string {
  const { max, reason } = LIMITS.sweepPoints;
  return `a sweep of at most ${max} points, the product of its axes' lengths (${reason})`;
}
