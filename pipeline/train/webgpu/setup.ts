/**
 * What the whole-step WebGPU trainer (./trainer.ts) is given and gives back, and the device it
 * runs on: its options, an arm's parameters, a step's stats, the buffer usages it makes.
 */
import type { Layout } from "../../model/batch.ts";
import type { KlalQueries } from "../../model/losses.ts";
import type { TinyVlmConfig } from "../../model/tiny_vlm.ts";
import type { AttentionRows } from "./attention.ts";
import type { MatmulTile } from "./wgsl.ts";

/** What the trainer needs to know about a run (what a stack's arms share, and λ). */
export interface WebGpuTrainerOptions {
  config: TinyVlmConfig;
  layout: Layout;
  batch: number;
  /** KLAL weight (0: NTP only; KLAL is still measured); a stack's arms each have their own. */
  lambda: number;
  /** Supervised layers (at least one: KLAL is always measured). */
  layers: number[];
  queries: KlalQueries;
  /** Decoupled weight decay on parameters of rank >= 2 (0: Adam). */
  weightDecay: number;
  /** Global gradient-norm clip (0: off). */
  clipNorm: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** KLAL's lower clamp of Q (as ../../model/losses.ts klalLoss, default 1e-8). */
  klalEpsilon?: number;
  /** Every matmul's output tile (default: by shape, ./wgsl.ts `matmulTile`). */
  matmulTile?: MatmulTile;
  /** Attention rows a workgroup (default: by shape, ./attention.ts `attentionRows`). */
  attentionRows?: AttentionRows;
}

/** One parameter: name, shape, initial values (the model's variables, in order). */
export interface FlatParameter {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** One arm of a stacked trainer: its KLAL weight and initial parameters. */
export interface ArmInit {
  lambda: number;
  parameters: FlatParameter[];
}

/** The stats of one submitted step: `step` counts submissions from 1, `arms` one per arm. */
export interface StepResult {
  step: number;
  /** Arm 0's stats (a single-arm trainer's). */
  stats: StepStats;
  arms: StepStats[];
}

/** A step's numbers, as the GPU computed them. */
export interface StepStats {
  ntp: number;
  klal: number;
  total: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
}
/** GPUBufferUsage STORAGE | COPY_DST | COPY_SRC: a buffer kernels read and write. */
export const STORAGE = 0x80 | 0x08 | 0x04;
/** GPUBufferUsage UNIFORM | COPY_DST: a kernel's constants. */
export const UNIFORM = 0x40 | 0x08;
/** GPUBufferUsage MAP_READ | COPY_DST: a staging buffer the host reads. */
export const READBACK = 0x01 | 0x08;

/** The GPU device the trainer runs on (a high-performance adapter, its largest buffers). */
export async function webgpuDevice(): Promise<GPUDevice> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("WebGPU: no adapter");
  const limits = adapter.limits;
  return await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(limits.maxStorageBuffersPerShaderStage, 10),
    },
  });
}
