/** The maps a control arm trains toward instead of the task's own (shuffled, uniform). */
import type { Encoded } from "../model/batch.ts";
import { Rng, seedFrom } from "../lib/rng.ts";

/**
 * Ground-truth maps for a control arm, as a copy of `data`: `shuffled` gives each sample
 * another sample's map (a random cyclic derangement of the rows, seeded), so the maps keep
 * their shape statistics but no longer point at this image's answer; `uniform` spreads P
 * evenly over the visual tokens.
 */
export function controlTargets(data: Encoded, kind: "shuffled" | "uniform", seed: number): Encoded {
  const tv = data.layout.visual;
  const target = new Float32Array(data.target.length);
  if (kind === "uniform") {
    target.fill(1 / tv);
  } else {
    const order = new Rng(seedFrom(seed, "shuffled-targets")).shuffle(
      Array.from({ length: data.n }, (_, i) => i),
    );
    // Row order[i] takes the map of order[i + 1]: no row keeps its own when n >= 2.
    order.forEach((row, i) => {
      const from = order[(i + 1) % data.n];
      target.set(data.target.subarray(from * tv, (from + 1) * tv), row * tv);
    });
  }
  return { ...data, target };
}
