/**
 * WGSL sources of the whole-step WebGPU trainer (./trainer.ts), but for attention's
 * (./attention.ts): one compute shader per kernel kind, each specialised by a few
 * compile-time choices (transposes, epilogue, whether a residual is added, the matmul's
 * tile). Sizes and buffer offsets travel in a per-dispatch uniform block, so one pipeline
 * serves every layer and every batch size.
 *
 * The launch geometry that matches them lives here too (`grid1d`, `gridRows`, `splitK`), and
 * `bits`, which writes an f32 field of a uniform block.
 *
 * Conventions: every matrix is row-major f32 in a flat storage buffer, addressed by an element
 * offset (`…Off`) and a leading dimension (`ld…`). A 1-D launch covers `n` items with
 * `ceil(n/256)` workgroups of 256 threads, folded into a second grid dimension past 65,535
 * workgroups (`ITEM`); a per-row launch gives each row one workgroup of 64 threads.
 *
 * Arms: the trainer stacks several models of the same shapes (arms) along a leading axis of
 * every buffer, arm-major: an arm's parameters, gradients and moments at `arm·P`, its
 * activations and batch at `arm·(its per-arm size)`. Every kernel reads its arm from the
 * grid's z (`arm = z`; the matmul folds it with its K-split, `z = arm·splits + split`); the
 * attention kernels, which read no parameters, see the arms' samples as one batch of A·B
 * (`z = arm·B + sample`). The per-arm numbers that change between arms (λ, the AdamW step,
 * whether the arm trains this step) come from a small storage block, `armConst`, ARM_FLOATS
 * values an arm.
 */

/** Threads of a 1-D launch's workgroup. */
export const LINEAR_THREADS = 256;
/** Workgroups per grid dimension (WebGPU's default limit). */
export const MAX_GROUPS = 65535;
/** Threads of a per-row workgroup (layer norm, softmax rows, attention rows). */
export const ROW_THREADS = 64;
/** Longest sequence the attention kernels hold in workgroup memory. */
export const MAX_TOKENS = 512;
/** Largest heads x answer positions the KLAL kernel holds in workgroup memory. */
export const MAX_HEAD_QUERIES = 256;
/** The matmul's default output tile side (64 x 64 a workgroup, 4 x 4 a thread) and K step. */
export const TILE = 64;
export const TILE_K = 16;

/** Floats of an arm's entry in `armConst`: λ, AdamW's step scale, its ε, decay, active. */
export const ARM_FLOATS = 8;

/** Float bits as a u32, for the uniform blocks' f32 fields. */
export function bits(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0];
}

/** Workgroups of a 1-D launch over n items (256 threads each), folded past 65,535. */
export function grid1d(n: number): [number, number, number] {
  const groups = Math.ceil(n / LINEAR_THREADS);
  if (groups <= MAX_GROUPS) return [Math.max(groups, 1), 1, 1];
  return [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS), 1];
}

/** Workgroups of a per-row launch. */
export function gridRows(rows: number): [number, number, number] {
  if (rows <= MAX_GROUPS) return [rows, 1, 1];
  return [MAX_GROUPS, Math.ceil(rows / MAX_GROUPS), 1];
}

/**
 * How a product's K is cut: enough workgroups to fill a large GPU (~512) when the output has
 * few tiles (of side `tile`), chunks of at least 128 (whole K-tiles).
 */
export function splitK(
  m: number,
  n: number,
  k: number,
  tile: number = TILE,
): { splits: number; chunk: number } {
  const tiles = Math.ceil(m / tile) * Math.ceil(n / tile);
  const wanted = Math.max(1, Math.min(Math.ceil(512 / tiles), Math.floor(k / 128)));
  const chunk = Math.ceil(Math.ceil(k / wanted) / TILE_K) * TILE_K;
  return { splits: Math.ceil(k / chunk), chunk };
}

/** Global item index of a 1-D launch within its arm (see `grid1d`). */
const ITEM = `gid.x + gid.y * ${MAX_GROUPS * LINEAR_THREADS}u`;

/** Row index of a per-row launch. */
const ROW = `wg.x + wg.y * ${MAX_GROUPS}u`;

/**
 * The entry of a per-row kernel over `u.rows` rows an arm: `arm`, `row` (within the arm),
 * `at` (the row across arms), the thread's `i` and, for rows of `width` values, the row's first
 * index `base`.
 */
function rowMain(width: string): string {
  return `@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let arm = wg.z;
  let row = ${ROW};
  if (row >= u.rows) { return; }
  let i = lid.x;
  let at = arm * u.rows + row;
  let base = at * ${width};`;
}

/** Sum and max over a 64-thread workgroup (call from uniform control flow). */
const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, ${ROW_THREADS}>;
fn wgSum(v: f32, i: u32) -> f32 {
  red[i] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (i < s) { red[i] += red[i + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(v: f32, i: u32) -> f32 {
  red[i] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (i < s) { red[i] = max(red[i], red[i + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

/** WGSL reading the f32 field `name` of a uniform block (written with `bits`). */
export const f32Bits = (name: string): string => `bitcast<f32>(u.${name})`;

/**
 * The embedding: visual token t of sample b is patches·patch.w + patch.b + row[t / side] +
 * col[t % side]; text token k is token[id] + position.text[k].
 */
export const EMBED = /* wgsl */ `
struct U { n: u32, T: u32, Tv: u32, Tt: u32, d: u32, pd: u32, side: u32, pw: u32,
           pb: u32, tok: u32, row: u32, col: u32, ptext: u32, P: u32, B: u32, p0: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> patches: array<f32>;
@group(0) @binding(3) var<storage, read> text: array<i32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = ${ITEM};
  if (idx >= u.n) { return; }
  let arm = gid.z;
  let po = arm * u.P;
  let j = idx % u.d;
  let r = idx / u.d;
  let b = arm * u.B + r / u.T;
  let t = r % u.T;
  if (t < u.Tv) {
    var acc = 0.0;
    let base = (b * u.Tv + t) * u.pd;
    for (var p = 0u; p < u.pd; p++) { acc += patches[base + p] * params[po + u.pw + p * u.d + j]; }
    let grid = params[po + u.row + (t / u.side) * u.d + j] +
      params[po + u.col + (t % u.side) * u.d + j];
    x[arm * u.n + idx] = (acc + params[po + u.pb + j]) + grid;
  } else {
    let k = t - u.Tv;
    let id = u32(text[b * u.Tt + k]);
    x[arm * u.n + idx] = params[po + u.tok + id * u.d + j] + params[po + u.ptext + k * u.d + j];
  }
}
`;

/**
 * Layer norm of one row per workgroup: with `residual`, the row is x + r, written back into x
 * (the residual stream) when `writeSum`. Writes the normalised row n, the output n·g + b and
 * the row's 1/sqrt(var + 1e-5).
 */
export function layerNormSource(residual: boolean, writeSum: boolean): string {
  const read = residual ? "x[base + c] + r[base + c]" : "x[base + c]";
  return /* wgsl */ `
struct U { rows: u32, d: u32, g: u32, b: u32, P: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, ${writeSum ? "read_write" : "read"}> x: array<f32>;
${residual ? "@group(0) @binding(3) var<storage, read> r: array<f32>;" : ""}
@group(0) @binding(4) var<storage, read_write> nOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> hOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;
${REDUCE}
${rowMain("u.d")}
  let fd = f32(u.d);
  var s = 0.0;
  for (var c = i; c < u.d; c += ${ROW_THREADS}u) {
    let v = ${read};
    ${writeSum ? "x[base + c] = v;" : ""}
    s += v;
  }
  let mean = wgSum(s, i) / fd;
  var q = 0.0;
  for (var c = i; c < u.d; c += ${ROW_THREADS}u) {
    let v = ${writeSum ? "x[base + c]" : read} - mean;
    q += v * v;
  }
  let rstd = inverseSqrt(wgSum(q, i) / fd + 1e-5);
  for (var c = i; c < u.d; c += ${ROW_THREADS}u) {
    let n = (${writeSum ? "x[base + c]" : read} - mean) * rstd;
    nOut[base + c] = n;
    hOut[base + c] = n * params[arm * u.P + u.g + c] + params[arm * u.P + u.b + c];
  }
  if (i == 0u) { rstdOut[at] = rstd; }
}
`;
}

/**
 * Layer norm's backward for one row: dn = dy·g, dx = rstd·(dn - mean(dn) - n·mean(dn·n)),
 * written into (or, with `accumulate`, added to) the residual stream's gradient.
 */
export function layerNormGradSource(accumulate: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, d: u32, g: u32, P: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> n: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
${REDUCE}
${rowMain("u.d")}
  let fd = f32(u.d);
  let g0 = arm * u.P + u.g;
  var a = 0.0;
  var b = 0.0;
  for (var c = i; c < u.d; c += ${ROW_THREADS}u) {
    let dn = dy[base + c] * params[g0 + c];
    a += dn;
    b += dn * n[base + c];
  }
  let meanDn = wgSum(a, i) / fd;
  let meanDnN = wgSum(b, i) / fd;
  let r = rstd[at];
  for (var c = i; c < u.d; c += ${ROW_THREADS}u) {
    let dn = dy[base + c] * params[g0 + c];
    let g = r * (dn - meanDn - n[base + c] * meanDnN);
    dx[base + c] = ${accumulate ? "dx[base + c] + g" : "g"};
  }
}
`;
}

/**
 * WGSL loading element `e` (of tile·16) of a tile x 16 operand tile into workgroup memory
 * `tile` (element [k · tile + outer], held as vec4s), zero outside the matrix: `outer` is m for
 * A, n for B; with `kContiguous` the operand is stored [outer, K], else [K, outer], so that
 * neighbouring threads read neighbouring addresses either way.
 */
function tileLoad(
  operand: "A" | "B",
  tile: string,
  outer: "m" | "n",
  kContiguous: boolean,
  side: number,
): string {
  const o = outer + outer;
  const g = `g${outer}`;
  const limit = outer === "m" ? "u.M" : "u.N";
  const at = operand === "A" ? "aOff" : "bOff";
  const ld = operand === "A" ? "u.lda" : "u.ldb";
  const split = kContiguous
    ? `let ${o} = e / ${TILE_K}u; let kk = e % ${TILE_K}u;`
    : `let kk = e / ${side}u; let ${o} = e % ${side}u;`;
  const address = kContiguous ? `${at} + ${g} * ${ld} + gk` : `${at} + gk * ${ld} + ${g}`;
  const origin = outer === "m" ? "m0" : "n0";
  return `${split}
       let ${g} = ${origin} + ${o}; let gk = k0 + kk;
       var v = 0.0;
       if (${g} < ${limit} && gk < kEnd) { v = ${operand}[${address}]; }
       ${tile}[kk * ${side / 4}u + ${o} / 4u][${o} % 4u] = v;`;
}

/** What a matmul does with its product before writing it. */
export type Epilogue =
  /** C = A·B */
  | "none"
  /** C = A·B + bias */
  | "bias"
  /** C = A·B + bias (the pre-activation), G = gelu(C) */
  | "gelu"
  /** C = (A·B) ⊙ gelu'(aux): the gradient at the pre-activation aux */
  | "geluGrad";

/** The output tiles a matmul can use: 64 x 64 (4 x 4 a thread) or 128 x 128 (8 x 8). */
export type MatmulTile = 64 | 128;

/**
 * The tile of an [m, n] product: 128 when that still gives at least WIDE_GROUPS workgroups
 * (a large GPU's multiprocessors, twice), 64 otherwise (more, smaller workgroups).
 */
export function matmulTile(m: number, n: number): MatmulTile {
  return Math.ceil(m / 128) * Math.ceil(n / 128) >= WIDE_GROUPS ? 128 : 64;
}

/** Workgroups of 128-tiles from which a product takes them (see `matmulTile`). */
export const WIDE_GROUPS = 264;

/**
 * C[M, N] = op(A)[M, K] · op(B)[K, N] on `tile` x `tile` output tiles, 16 x 16 threads,
 * register-tiled: each thread holds (tile/16)² outputs as vec4s, in 4 x 4 blocks 64 apart (rows
 * m0 + 64·bi + 4·ty + i, columns n0 + 64·bj + 4·tx + j), so that its reads of the operand tiles
 * are whole vec4s, a warp's stores are contiguous, and each k adds (tile/16)² products for
 * tile/8 workgroup-memory reads. K goes in steps of 16 through workgroup memory. Workgroup z
 * takes the K-chunk [s·kChunk, (s+1)·kChunk) of split s = z % splits and writes its partial
 * product at cOff + s·splitStride (a split-K product; ./ops.ts sums the partials); arm
 * z / splits moves each operand by its own arm stride (…Arm: 0 for an operand every arm
 * shares). `transA`: A is stored [K, M]; `transB`: B is stored [N, K]. GELU is
 * x·sigmoid(1.702 x).
 */
export function matmulSource(
  transA: boolean,
  transB: boolean,
  epilogue: Epilogue,
  tile: MatmulTile = TILE,
): string {
  // A tile in workgroup memory: as_[k * tile + m]; B tile: bs[k * tile + n] (as vec4s). A is
  // stored with k contiguous unless transposed, B the other way round.
  const loadA = tileLoad("A", "as_", "m", !transA, tile);
  const loadB = tileLoad("B", "bs", "n", transB, tile);
  const blocks = tile / 64; // 4 x 4 blocks a thread, per side
  const perThread = tile / 16; // rows (and columns) a thread
  const extra = {
    none: "",
    bias: "@group(0) @binding(4) var<storage, read> bias: array<f32>;",
    gelu: `@group(0) @binding(4) var<storage, read> bias: array<f32>;
           @group(0) @binding(5) var<storage, read_write> G: array<f32>;`,
    geluGrad: "@group(0) @binding(4) var<storage, read> aux: array<f32>;",
  }[epilogue];
  const value = `acc[r * ${blocks}u + bj][jj]`;
  const write = {
    none: `C[o] = ${value};`,
    bias: `C[o] = ${value} + bias[biasOff + col];`,
    gelu: `let a = ${value} + bias[biasOff + col];
           C[o] = a;
           G[o] = a / (1.0 + exp(-1.702 * a));`,
    geluGrad: `let a = aux[auxOff + row * u.ldc + col];
               let s = 1.0 / (1.0 + exp(-1.702 * a));
               C[o] = ${value} * (s + 1.702 * (a * s) * (1.0 - s));`,
  }[epilogue];
  return /* wgsl */ `
struct U { M: u32, N: u32, K: u32, kChunk: u32, lda: u32, ldb: u32, ldc: u32, aOff: u32,
           bOff: u32, cOff: u32, splitStride: u32, biasOff: u32, auxOff: u32, splits: u32,
           aArm: u32, bArm: u32, cArm: u32, biasArm: u32, auxArm: u32, p0: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
${extra}
var<workgroup> as_: array<vec4<f32>, ${(tile * TILE_K) / 4}>;
var<workgroup> bs: array<vec4<f32>, ${(tile * TILE_K) / 4}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * 16u + lid.x;
  let m0 = wg.y * ${tile}u;
  let n0 = wg.x * ${tile}u;
  let arm = wg.z / u.splits;
  let split = wg.z % u.splits;
  let aOff = u.aOff + arm * u.aArm;
  let bOff = u.bOff + arm * u.bArm;
  let biasOff = u.biasOff + arm * u.biasArm;
  let auxOff = u.auxOff + arm * u.auxArm;
  let kBegin = split * u.kChunk;
  let kEnd = min(u.K, kBegin + u.kChunk);
  // acc[r * blocks + bj]: the thread's row r (block r / 4, row r % 4), columns of block bj.
  var acc: array<vec4<f32>, ${perThread * blocks}>;
  for (var k0 = kBegin; k0 < kEnd; k0 += ${TILE_K}u) {
    for (var r = 0u; r < ${perThread}u; r++) {
      let e = tid + r * 256u;
      { ${loadA} }
      { ${loadB} }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      var a: array<vec4<f32>, ${blocks}>;
      var b: array<vec4<f32>, ${blocks}>;
      for (var bi = 0u; bi < ${blocks}u; bi++) {
        a[bi] = as_[kk * ${tile / 4}u + bi * 16u + lid.y];
        b[bi] = bs[kk * ${tile / 4}u + bi * 16u + lid.x];
      }
      for (var r = 0u; r < ${perThread}u; r++) {
        let x = a[r / 4u][r % 4u];
        for (var bj = 0u; bj < ${blocks}u; bj++) {
          acc[r * ${blocks}u + bj] = fma(vec4<f32>(x), b[bj], acc[r * ${blocks}u + bj]);
        }
      }
    }
    workgroupBarrier();
  }
  let cBase = u.cOff + arm * u.cArm + split * u.splitStride;
  for (var r = 0u; r < ${perThread}u; r++) {
    let row = m0 + (r / 4u) * 64u + lid.y * 4u + r % 4u;
    if (row >= u.M) { continue; }
    for (var bj = 0u; bj < ${blocks}u; bj++) {
      for (var jj = 0u; jj < 4u; jj++) {
        let col = n0 + bj * 64u + lid.x * 4u + jj;
        if (col >= u.N) { continue; }
        let o = cBase + row * u.ldc + col;
        ${write}
      }
    }
  }
}
`;
}

/**
 * out[outOff + arm·outArm + i] = Σ_s part[(arm·splits + s)·n + i] (the partials of a split-K
 * product or column sum).
 */
export const REDUCE_SPLITS = /* wgsl */ `
struct U { n: u32, splits: u32, outOff: u32, outArm: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = ${ITEM};
  if (idx >= u.n) { return; }
  let first = gid.z * u.splits;
  var s = 0.0;
  for (var k = 0u; k < u.splits; k++) { s += part[(first + k) * u.n + idx]; }
  out[u.outOff + gid.z * u.outArm + idx] = s;
}
`;

/**
 * Column sums over a chunk of rows per workgroup row-block y, per arm z:
 * part[(z·splits + y)·N + j] = Σ_rows A[z·M + i, j] (times B[…] with `product`: layer norm's
 * gain gradient Σ dy·n).
 */
export function columnSumSource(product: boolean): string {
  return /* wgsl */ `
struct U { M: u32, N: u32, rowsPer: u32, splits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> A: array<f32>;
${product ? "@group(0) @binding(2) var<storage, read> B: array<f32>;" : ""}
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = wg.x * ${ROW_THREADS}u + lid.x;
  if (j >= u.N) { return; }
  let begin = wg.y * u.rowsPer;
  let end = min(u.M, begin + u.rowsPer);
  let first = wg.z * u.M;
  var s = 0.0;
  for (var i = first + begin; i < first + end; i++) {
    s += A[i * u.N + j]${product ? " * B[i * u.N + j]" : ""};
  }
  part[(wg.z * u.splits + wg.y) * u.N + j] = s;
}
`;
}

/**
 * KLAL's Q for one supervised layer, one sample per workgroup: each answer-query row's visual
 * attention renormalised (a / (Σ_visual a + 1e-6)), averaged over heads and weighted over
 * query positions (qw = queryMask / count / heads); writes Q into its layer slot of the arm's
 * [slots, B, Tv] and the sample's KL(P || max(Q, eps)) into the arm's [slots, B].
 */
export const KLAL_FORWARD = /* wgsl */ `
struct U { B: u32, H: u32, T: u32, Tv: u32, Tq: u32, q0: u32, slot: u32, eps: u32,
           floor: u32, slots: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<f32>;
@group(0) @binding(3) var<storage, read> goal: array<f32>;
@group(0) @binding(4) var<storage, read_write> qOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> kl: array<f32>;
var<workgroup> rowSum: array<f32, ${MAX_HEAD_QUERIES}>;
${REDUCE}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wg.z * u.B + wg.x;
  let out = (wg.z * u.slots + u.slot) * u.B + wg.x;
  let t = lid.x;
  let rows = u.H * u.Tq;
  for (var r = t; r < rows; r += ${ROW_THREADS}u) {
    let h = r / u.Tq;
    let base = ((b * u.H + h) * u.T + u.q0 + r % u.Tq) * u.T;
    var s = 0.0;
    for (var v = 0u; v < u.Tv; v++) { s += probs[base + v]; }
    rowSum[r] = s + ${f32Bits("floor")};
  }
  workgroupBarrier();
  let eps = ${f32Bits("eps")};
  var part = 0.0;
  for (var v = t; v < u.Tv; v += ${ROW_THREADS}u) {
    var qv = 0.0;
    for (var r = 0u; r < rows; r++) {
      let qi = r % u.Tq;
      let w = qw[b * u.Tq + qi];
      if (w != 0.0) {
        let base = ((b * u.H + r / u.Tq) * u.T + u.q0 + qi) * u.T;
        qv += w * probs[base + v] / rowSum[r];
      }
    }
    qOut[out * u.Tv + v] = qv;
    let pv = goal[b * u.Tv + v];
    if (pv > 0.0) { part += pv * (log(pv) - log(max(qv, eps))); }
  }
  let total = wgSum(part, t);
  if (t == 0u) { kl[out] = total; }
}
`;

/**
 * Next-token cross-entropy of one position per workgroup: w = lossMask / Σ lossMask (set on
 * the host per batch); the row's loss w·(logsumexp - logit[target]) and its gradient
 * w·(softmax - onehot) over the vocabulary.
 */
export const NTP = /* wgsl */ `
struct U { rows: u32, V: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> next: array<i32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dLogits: array<f32>;
${REDUCE}
${rowMain("u.V")}
  let t = i;
  var top = -3.0e38;
  for (var v = t; v < u.V; v += ${ROW_THREADS}u) { top = max(top, logits[base + v]); }
  let m = wgMax(top, t);
  var z = 0.0;
  for (var v = t; v < u.V; v += ${ROW_THREADS}u) { z += exp(logits[base + v] - m); }
  let lse = m + log(wgSum(z, t));
  let w = weight[at];
  let want = u32(next[at]);
  for (var v = t; v < u.V; v += ${ROW_THREADS}u) {
    let hot = select(0.0, 1.0, v == want);
    dLogits[base + v] = w * (exp(logits[base + v] - lse) - hot);
  }
  if (t == 0u) { rowLoss[at] = select(0.0, w * (lse - logits[base + want]), w != 0.0); }
}
`;

/**
 * An arm's losses into its stats[0..2]: NTP = Σ row losses, KLAL = mean over supervised
 * layers of the batch-mean KL, total = NTP + λ·KLAL (the arm's λ). One workgroup an arm.
 */
export const LOSSES = /* wgsl */ `
struct U { rows: u32, B: u32, slots: u32, stats: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> rowLoss: array<f32>;
@group(0) @binding(2) var<storage, read> kl: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read> armConst: array<f32>;
${REDUCE}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let arm = wg.z;
  let t = lid.x;
  var a = 0.0;
  for (var r = t; r < u.rows; r += ${ROW_THREADS}u) { a += rowLoss[arm * u.rows + r]; }
  let ntp = wgSum(a, t);
  var klal = 0.0;
  for (var s = 0u; s < u.slots; s++) {
    var k = 0.0;
    let first = (arm * u.slots + s) * u.B;
    for (var b = t; b < u.B; b += ${ROW_THREADS}u) { k += kl[first + b]; }
    klal += wgSum(k, t) / f32(u.B);
  }
  klal = klal / f32(max(u.slots, 1u));
  if (t == 0u) {
    let o = arm * u.stats;
    stats[o] = ntp;
    stats[o + 1u] = klal;
    stats[o + 2u] = ntp + armConst[arm * ${ARM_FLOATS}u] * klal;
  }
}
`;

/** The visual rows of the embedding's gradient, [B·Tv, d] from [B·T, d]. */
export const GATHER_VISUAL = /* wgsl */ `
struct U { n: u32, T: u32, Tv: u32, d: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = ${ITEM};
  if (idx >= u.n) { return; }
  let j = idx % u.d;
  let r = idx / u.d;
  out[idx] = dx[((r / u.Tv) * u.T + r % u.Tv) * u.d + j];
}
`;

/**
 * Gradients of the token table and the three position tables, which lie one after another in
 * the parameter layout (token [V, d], row [side, d], col [side, d], text [maxText, d]): one
 * thread per value, summing the embedding gradient over the positions that read it.
 */
export const EMBED_GRAD = /* wgsl */ `
struct U { n: u32, B: u32, T: u32, Tv: u32, Tt: u32, d: u32, V: u32, side: u32, out: u32,
           P: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dxAll: array<f32>;
@group(0) @binding(2) var<storage, read> textAll: array<i32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
var<private> dxAt: u32;
var<private> textAt: u32;
fn dx(i: u32) -> f32 { return dxAll[dxAt + i]; }
fn text(i: u32) -> i32 { return textAll[textAt + i]; }
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = ${ITEM};
  if (idx >= u.n) { return; }
  dxAt = gid.z * u.B * u.T * u.d;
  textAt = gid.z * u.B * u.Tt;
  let j = idx % u.d;
  var r = idx / u.d;
  var s = 0.0;
  if (r < u.V) {
    for (var b = 0u; b < u.B; b++) {
      for (var k = 0u; k < u.Tt; k++) {
        if (u32(text(b * u.Tt + k)) == r) { s += dx((b * u.T + u.Tv + k) * u.d + j); }
      }
    }
  } else if (r < u.V + u.side) {
    r -= u.V;
    for (var b = 0u; b < u.B; b++) {
      for (var c = 0u; c < u.side; c++) { s += dx((b * u.T + r * u.side + c) * u.d + j); }
    }
  } else if (r < u.V + 2u * u.side) {
    r -= u.V + u.side;
    for (var b = 0u; b < u.B; b++) {
      for (var c = 0u; c < u.side; c++) { s += dx((b * u.T + c * u.side + r) * u.d + j); }
    }
  } else {
    r -= u.V + 2u * u.side;
    if (r < u.Tt) {
      for (var b = 0u; b < u.B; b++) { s += dx((b * u.T + u.Tv + r) * u.d + j); }
    }
  }
  grads[gid.z * u.P + u.out + idx] = s;
}
`;

/** Partial sums of squares of each arm's gradients, 8 values a thread. */
export const SUM_SQUARES = /* wgsl */ `
struct U { n: u32, parts: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
var<workgroup> red: array<f32, ${LINEAR_THREADS}>;
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let base = wg.x * ${LINEAR_THREADS * 8}u + lid.x;
  var s = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let idx = base + k * ${LINEAR_THREADS}u;
    if (idx < u.n) { let v = g[wg.z * u.n + idx]; s += v * v; }
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var w = ${LINEAR_THREADS / 2}u; w > 0u; w >>= 1u) {
    if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { part[wg.z * u.parts + wg.x] = red[0]; }
}
`;

/**
 * An arm's global gradient norm from its partial sums and the clipping factor
 * min(clip / max(norm, 1e-12), 1) (1 when clip is 0): its stats[3] = norm, stats[4] = factor.
 */
export const CLIP = /* wgsl */ `
struct U { parts: u32, clip: u32, stats: u32, p1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
${REDUCE}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var k = lid.x; k < u.parts; k += ${ROW_THREADS}u) { s += part[wg.z * u.parts + k]; }
  let norm = sqrt(wgSum(s, lid.x));
  let clip = ${f32Bits("clip")};
  if (lid.x == 0u) {
    let o = wg.z * u.stats;
    stats[o + 3u] = norm;
    stats[o + 4u] = select(1.0, min(clip / max(norm, 1e-12), 1.0), clip > 0.0);
  }
}
`;

/**
 * AdamW over each arm's flat parameters, skipped when the arm's gradient norm is not finite or
 * the arm does not train this step (active = 0):
 *   m' = β1 m + (1-β1) g,  v' = β2 v + (1-β2) g²  (g already scaled by the clipping factor)
 *   p' = p·(1 - lr·wd where decay[i] = 1) - m'·stepScale / (sqrt(v') + epsScaled),
 * stepScale = lr / c1 · sqrt(c2), epsScaled = eps · sqrt(c2) (the bias corrections folded in),
 * each the arm's (armConst[1..4]: stepScale, epsScaled, 1 - lr·wd, active).
 */
export const ADAMW = /* wgsl */ `
struct U { n: u32, beta1: u32, beta2: u32, stats: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> decayMask: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<f32>;
@group(0) @binding(7) var<storage, read> armConst: array<f32>;
@compute @workgroup_size(${LINEAR_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let item = ${ITEM};
  if (item >= u.n) { return; }
  let arm = gid.z;
  let c = arm * ${ARM_FLOATS}u;
  let o = arm * u.stats;
  if (armConst[c + 4u] == 0.0) { return; }
  if ((bitcast<u32>(stats[o + 3u]) & 0x7f800000u) == 0x7f800000u) { return; }
  let idx = arm * u.n + item;
  let beta1 = ${f32Bits("beta1")};
  let beta2 = ${f32Bits("beta2")};
  let g = grads[idx] * stats[o + 4u];
  let mi = beta1 * m[idx] + (1.0 - beta1) * g;
  let vi = beta2 * v[idx] + (1.0 - beta2) * g * g;
  m[idx] = mi;
  v[idx] = vi;
  let keep = select(1.0, armConst[c + 3u], decayMask[item] != 0.0);
  params[idx] = params[idx] * keep - mi * armConst[c + 1u] / (sqrt(vi) + armConst[c + 2u]);
}
`;
