/**
 * Grounding metrics shared by evaluation and the report, kept free of tfjs so the report can
 * import them without loading a backend.
 */

/** Patches counted as "target": those with P_i > 0 and P_i >= 1% of the sample's largest P. */
export function targetSupport(target: ArrayLike<number>): boolean[] {
  let max = 0;
  for (let i = 0; i < target.length; i++) max = Math.max(max, target[i]);
  return Array.from(target, (p) => p > 0 && p >= 0.01 * max);
}
