/**
 * Which Base each fine-tune starts from. `base.seed` is one seed (every fine-tune from one
 * Base), "run" (one Base per fine-tune seed, pretrained from that seed) or a list of Base
 * seeds: one Base per seed listed, the fine-tune seeds split among them in order, in equal
 * blocks (`seeds: [0..5]` with `base.seed: [10, 11, 12]`: seeds 0, 1 from Base 10, 2, 3 from
 * Base 11, 4, 5 from Base 12). Every fine-tune seed stays distinct, so fine-tunes are nested in
 * Bases and the report can treat Bases as a level of the analysis (draw Bases, then seeds
 * within each).
 */
import type { Spec } from "./types.ts";

/** The part of a spec that decides the Bases. */
type BaseDesign = Pick<Spec, "seeds"> & { base: Pick<Spec["base"], "seed"> };

/** The Base seeds of a spec, in the order they are pretrained. */
export function baseSeeds(spec: BaseDesign): number[] {
  const seed = spec.base.seed;
  if (seed === "run") return [...spec.seeds];
  return Array.isArray(seed) ? [...seed] : [seed];
}

/** Whether the fine-tunes start from more than one Base (Bases are then a level). */
export function severalBases(spec: BaseDesign): boolean {
  return baseSeeds(spec).length > 1;
}

/** The Base seed fine-tune seed `seed` starts from (its block's, for a list of Bases). */
export function baseOfSeed(spec: BaseDesign, seed: number): number {
  const base = spec.base.seed;
  if (base === "run") return seed;
  if (!Array.isArray(base)) return base;
  const index = spec.seeds.indexOf(seed);
  if (index < 0) throw new Error(`seed ${seed} is not one of the spec's seeds`);
  return base[Math.floor(index / (spec.seeds.length / base.length))];
}

/** Per Base seed, the fine-tune seeds that start from it, in the spec's order. */
export function seedsByBase(spec: BaseDesign): Map<number, number[]> {
  const out = new Map<number, number[]>(baseSeeds(spec).map((b) => [b, []]));
  for (const seed of spec.seeds) out.get(baseOfSeed(spec, seed))!.push(seed);
  return out;
}

/** "3 Bases (seeds 10, 11, 12) x 2 fine-tune seeds each" or "one Base (seed 0)". */
export function describeBases(spec: BaseDesign): string {
  const bases = baseSeeds(spec);
  if (bases.length === 1) return `one Base (seed ${bases[0]})`;
  const per = spec.seeds.length / bases.length;
  return `${bases.length} Bases (seeds ${bases.join(", ")}) x ${per} fine-tune ${
    per === 1 ? "seed" : "seeds"
  } each`;
}
