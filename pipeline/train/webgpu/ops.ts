/**
 * Recording the whole-step trainer's dispatches (./trainer.ts): a compute pipeline made once
 * per kernel source, a uniform block and a bind group made once per dispatch, and the
 * builders every layer uses — a matmul (split over K into scratch and summed when worth it),
 * the split reduction and column sums into the gradient buffer. Each dispatch covers every
 * arm of a stacked trainer: the arm is the grid's z on top of one arm's grid (./wgsl.ts).
 */
import { UNIFORM } from "./setup.ts";
import {
  columnSumSource,
  type Epilogue,
  grid1d,
  matmulSource,
  type MatmulTile,
  matmulTile,
  REDUCE_SPLITS,
  splitK,
} from "./wgsl.ts";

/** One recorded dispatch. */
export interface Op {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
}

/** How an [m, n] x K product is split over K with `tile` (default: by shape). */
export function productSplit(
  m: number,
  n: number,
  k: number,
  tile?: MatmulTile,
): { tile: MatmulTile; splits: number; chunk: number } {
  const side = tile ?? matmulTile(m, n);
  return { tile: side, ...splitK(m, n, k, side) };
}

/** Rows each workgroup of a column sum adds up (its partial sums are then reduced). */
export const COLUMN_ROWS = 64;

/**
 * C = op(A)·op(B) (+ epilogue) for every arm. An operand's arm stride (`…Arm`) is the floats
 * between two arms' copies of it: the parameters' P, an activation's per-arm size.
 */
export interface MatmulSpec {
  m: number;
  n: number;
  k: number;
  a: GPUBuffer;
  aOff?: number;
  aArm: number;
  lda: number;
  transA?: boolean;
  b: GPUBuffer;
  bOff?: number;
  bArm: number;
  ldb: number;
  transB?: boolean;
  c: GPUBuffer;
  cOff?: number;
  cArm: number;
  epilogue?: Epilogue;
  /** Offset of the bias in the parameters (epilogues bias and gelu). */
  bias?: number;
  /** The saved pre-activation (epilogue geluGrad). */
  aux?: GPUBuffer;
  /** Where gelu writes its activation (epilogue gelu; C gets the pre-activation). */
  g?: GPUBuffer;
  /** Split over K into scratch when the output alone would leave the GPU idle. */
  split?: boolean;
}

/** The buffers the builders bind besides their operands. */
export interface RecorderBuffers {
  /** Every arm's parameters (bias and gelu epilogues read their bias here). */
  params: GPUBuffer;
  /** Every arm's gradients (column sums land here). */
  grads: GPUBuffer;
  /** Split-K partial products and column-sum partials. */
  scratch: GPUBuffer;
}

/** Makes the ops of one trainer (see the top of this file). */
export class OpRecorder {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  /**
   * @param arms the arms every dispatch covers
   * @param parameterFloats one arm's parameters (the arm stride of params and grads)
   * @param owned the trainer's list of buffers to free; every uniform block goes there
   * @param tile every matmul's output tile (default: by shape, ./wgsl.ts `matmulTile`)
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly arms: number,
    private readonly parameterFloats: number,
    private readonly buffers: RecorderBuffers,
    private readonly owned: GPUBuffer[],
    private readonly tile?: MatmulTile,
  ) {}

  /** The compute pipeline of a kernel source (made once). */
  pipeline(source: string): GPUComputePipeline {
    let p = this.pipelines.get(source);
    if (!p) {
      p = this.device.createComputePipeline({
        layout: "auto",
        compute: { module: this.device.createShaderModule({ code: source }), entryPoint: "main" },
      });
      this.pipelines.set(source, p);
    }
    return p;
  }

  /**
   * Append one dispatch of `source` to `list` with `values` as its uniform block. `groups`
   * is one arm's grid and its z is multiplied by the arms, unless `spansArms` says the grid
   * already covers them (the attention kernels, which see every arm's samples as one batch).
   */
  op(
    list: Op[],
    source: string,
    values: number[],
    bindings: Record<number, GPUBuffer>,
    groups: [number, number, number],
    spansArms = false,
  ): void {
    const pipeline = this.pipeline(source);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.uniform(values) } },
    ];
    for (const [binding, buf] of Object.entries(bindings)) {
      entries.push({ binding: Number(binding), resource: { buffer: buf } });
    }
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    const z = spansArms ? groups[2] : groups[2] * this.arms;
    list.push({ pipeline, bindGroup, groups: [groups[0], groups[1], z] });
  }

  /** C = op(A)·op(B) (+ epilogue) for every arm (see MatmulSpec). */
  matmul(list: Op[], spec: MatmulSpec): void {
    const epilogue = spec.epilogue ?? "none";
    const split = productSplit(spec.m, spec.n, spec.k, this.tile);
    const tile = split.tile;
    const { splits, chunk } = spec.split ? split : { splits: 1, chunk: spec.k };
    if (splits > 1 && epilogue !== "none") throw new Error("split-K with an epilogue");
    const direct = splits === 1;
    const bindings: Record<number, GPUBuffer> = {
      1: spec.a,
      2: spec.b,
      3: direct ? spec.c : this.buffers.scratch,
    };
    if (epilogue === "bias" || epilogue === "gelu") bindings[4] = this.buffers.params;
    if (epilogue === "gelu") bindings[5] = spec.g!;
    if (epilogue === "geluGrad") bindings[4] = spec.aux!;
    const mn = spec.m * spec.n;
    this.op(
      list,
      matmulSource(spec.transA ?? false, spec.transB ?? false, epilogue, tile),
      [
        spec.m,
        spec.n,
        spec.k,
        chunk,
        spec.lda,
        spec.ldb,
        spec.n,
        spec.aOff ?? 0,
        spec.bOff ?? 0,
        direct ? spec.cOff ?? 0 : 0,
        mn,
        spec.bias ?? 0,
        0,
        splits,
        spec.aArm,
        spec.bArm,
        direct ? spec.cArm : splits * mn,
        this.parameterFloats,
        spec.cArm,
        0,
      ],
      bindings,
      [Math.ceil(spec.n / tile), Math.ceil(spec.m / tile), splits],
    );
    if (!direct) this.reduce(list, mn, splits, spec.c, spec.cOff ?? 0, spec.cArm);
  }

  /** out[outOff..+n] = the sum of `splits` partial results in scratch, for every arm. */
  reduce(
    list: Op[],
    n: number,
    splits: number,
    out: GPUBuffer,
    outOff: number,
    outArm: number,
  ): void {
    this.op(list, REDUCE_SPLITS, [n, splits, outOff, outArm], {
      1: this.buffers.scratch,
      2: out,
    }, grid1d(n));
  }

  /** grads[outOff..+n] = Σ_rows a (⊙ b) over each arm's [m, n] matrix. */
  columnSum(
    list: Op[],
    m: number,
    n: number,
    a: GPUBuffer,
    outOff: number,
    b?: GPUBuffer,
  ): void {
    const splits = Math.ceil(m / COLUMN_ROWS);
    const bindings: Record<number, GPUBuffer> = { 1: a, 3: this.buffers.scratch };
    if (b) bindings[2] = b;
    this.op(list, columnSumSource(!!b), [m, n, COLUMN_ROWS, splits], bindings, [
      Math.ceil(n / 64),
      splits,
      1,
    ]);
    this.reduce(list, n, splits, this.buffers.grads, outOff, this.parameterFloats);
  }

  /** A uniform block of `values` (as u32; floats through ./wgsl.ts `bits`), made once. */
  private uniform(values: number[]): GPUBuffer {
    const data = new Uint32Array(Math.ceil(values.length / 4) * 4);
    data.set(values);
    const buf = this.device.createBuffer({ size: data.byteLength, usage: UNIFORM });
    this.device.queue.writeBuffer(buf, 0, data);
    this.owned.push(buf);
    return buf;
  }
}
