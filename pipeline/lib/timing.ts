/** Timing of short synchronous kernels for the bench and the GFLOP/s probes. */

/** The best of `repeats` runs of `fn` after `warmups` untimed ones, in seconds. */
export function bestSeconds(fn: () => void, repeats: number, warmups = 2): number {
  for (let i = 0; i < warmups; i++) fn();
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    fn();
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best;
}
