/**
 * The two numbers KLAL's formulation fixes (./losses.ts), shared by every implementation of
 * it (tfjs ops, the wasm kernels, the WGSL trainer) without loading any of them.
 */

/** Added to each row's visual mass before renormalising (see visualAttention in ./losses.ts). */
export const ROW_FLOOR = 1e-6;

/** Lower clamp of Q before the log (KlalOptions.epsilon's default). */
export const KLAL_EPSILON = 1e-8;
