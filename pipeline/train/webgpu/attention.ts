/**
 * WGSL sources of the whole-step trainer's attention (./trainer.ts): the forward pass and the
 * two halves of its backward pass, each taking `rows` query rows (or key columns) of one
 * (head, sample) per workgroup. The workgroup's 64 threads split into `rows` segments of
 * 64/rows threads, one segment a row; reductions run within a segment (every thread takes part
 * in every barrier, so rows past the sequence's end and rows that KLAL does not supervise only
 * mask their contributions). More rows a workgroup means fewer workgroups, fewer barriers per
 * row and fewer idle threads where the head is narrower than 64.
 *
 * Samples: the grid's z is the sample over every arm of a stacked trainer (`z = arm·B + b`);
 * only the KLAL term reads the arm (its λ, from `armConst`). Workgroup memory is sized by the
 * sequence (`tokens`, the model's T) and the head (`head`), so a source is made per shape.
 *
 * Causality: P_ij = 0 exactly for keys j > i (their score is -1e9 below a real one), so the
 * sums over keys stop at i and those over queries start at j; the results are the same
 * numbers.
 */
import { ARM_FLOATS, f32Bits, MAX_TOKENS, ROW_THREADS } from "./wgsl.ts";

/** Workgroup memory the attention kernels may use (WebGPU's default limit). */
export const ATTENTION_MEMORY = 16384;

/** The rows a workgroup takes. */
export type AttentionRows = 1 | 2 | 4 | 8;

/**
 * The rows a workgroup takes for T tokens and heads of `head`: 4 (16 threads a row) where the
 * backward pass's workgroup memory allows, fewer otherwise.
 */
export function attentionRows(tokens: number, head: number): AttentionRows {
  for (const rows of [4, 2, 1] as const) {
    if (attentionMemory(rows, tokens, head) <= ATTENTION_MEMORY) return rows;
  }
  return 1;
}

/** Bytes of workgroup memory the largest attention kernel (backward rows) takes. */
export function attentionMemory(rows: number, tokens: number, head: number): number {
  return 4 * (rows * (head + 3 * tokens) + ROW_THREADS);
}

/** Sum and max within a segment of `width` threads (call from uniform control flow). */
function segmentReduce(width: number): string {
  const step = (combine: string) => `
  red[seg * ${width}u + lane] = v;
  workgroupBarrier();
  for (var s = ${width / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) { ${combine} }
    workgroupBarrier();
  }
  let r = red[seg * ${width}u];
  workgroupBarrier();
  return r;`;
  const at = `red[seg * ${width}u + lane]`;
  const other = `red[seg * ${width}u + lane + s]`;
  return /* wgsl */ `
var<workgroup> red: array<f32, ${ROW_THREADS}>;
fn segSum(v: f32, seg: u32, lane: u32) -> f32 {${step(`${at} += ${other};`)}
}
fn segMax(v: f32, seg: u32, lane: u32) -> f32 {${step(`${at} = max(${at}, ${other});`)}
}
`;
}

/** Checks shared by the sources: the shapes fit the workgroup memory. */
function check(rows: AttentionRows, tokens: number, head: number): number {
  if (tokens > MAX_TOKENS) throw new Error(`attention: ${tokens} tokens exceeds ${MAX_TOKENS}`);
  if (head > 128) throw new Error(`attention: head size ${head} exceeds 128`);
  if (attentionMemory(rows, tokens, head) > ATTENTION_MEMORY) {
    throw new Error(`attention: ${rows} rows of ${tokens} tokens exceed the workgroup memory`);
  }
  return ROW_THREADS / rows;
}

/** The segment, lane and row (i: a query row, or a key column) of a thread. */
function rowOf(width: number, rows: number): string {
  return `let seg = lid.x / ${width}u;
  let lane = lid.x % ${width}u;
  let i = wg.x * ${rows}u + seg;
  let live = i < u.T;
  let h = wg.y;
  let b = wg.z;
  let d3 = 3u * u.d;`;
}

/**
 * Causal attention for `rows` query rows i of (head h, sample b of all arms') per workgroup,
 * reading q, k and v from the fused qkv rows [B·T, 3d]: scores scale·q·k over every key,
 * -1e9 where key j > i or is padding, softmax, the probabilities written to [B, H, T, T] and
 * the mixed values into the heads-side-by-side [B·T, d].
 */
export function attentionForwardSource(rows: AttentionRows, tokens: number, head: number): string {
  const w = check(rows, tokens, head);
  return /* wgsl */ `
struct U { T: u32, d: u32, H: u32, dh: u32, scale: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> keyMask: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> mixed: array<f32>;
var<workgroup> q: array<f32, ${rows * head}>;
var<workgroup> p: array<f32, ${rows * tokens}>;
${segmentReduce(w)}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${rowOf(w, rows)}
  let scale = ${f32Bits("scale")};
  let qo = seg * ${head}u;
  let po = seg * ${tokens}u;
  if (live) {
    for (var c = lane; c < u.dh; c += ${w}u) { q[qo + c] = qkv[(b * u.T + i) * d3 + h * u.dh + c]; }
  }
  workgroupBarrier();
  var top = -3.0e38;
  if (live) {
    for (var j = lane; j < u.T; j += ${w}u) {
      var s = -1e9;
      if (j <= i && keyMask[b * u.T + j] != 0.0) {
        let kb = (b * u.T + j) * d3 + u.d + h * u.dh;
        var dot = 0.0;
        for (var c = 0u; c < u.dh; c++) { dot += q[qo + c] * qkv[kb + c]; }
        s = dot * scale;
      }
      p[po + j] = s;
      top = max(top, s);
    }
  }
  let m = segMax(top, seg, lane);
  var z = 0.0;
  if (live) {
    for (var j = lane; j < u.T; j += ${w}u) {
      let e = exp(p[po + j] - m);
      p[po + j] = e;
      z += e;
    }
  }
  let total = segSum(z, seg, lane);
  if (live) {
    let row = ((b * u.H + h) * u.T + i) * u.T;
    for (var j = lane; j < u.T; j += ${w}u) {
      let v = p[po + j] / total;
      p[po + j] = v;
      probs[row + j] = v;
    }
  }
  workgroupBarrier();
  if (live) {
    for (var c = lane; c < u.dh; c += ${w}u) {
      var acc = 0.0;
      for (var j = 0u; j <= i; j++) {
        acc += p[po + j] * qkv[(b * u.T + j) * d3 + 2u * u.d + h * u.dh + c];
      }
      mixed[(b * u.T + i) * u.d + h * u.dh + c] = acc;
    }
  }
}
`;
}

/**
 * Attention backward, `rows` query rows (i, h, b) per workgroup (b over all arms' samples):
 * dP_ij = dmixed_i·v_j, plus, on a supervised layer's answer-query rows, KLAL's gradient
 * through Q (coef = -λ / (layers·B), λ the arm's:
 * G_v = coef·qw·P_v / Q_v, dP_v += G_v / S - Σ_u G_u a_u / S², S the row's visual mass +
 * 1e-6); then dS = P·(dP - Σ P·dP), written to [B, H, T, T] for the key side, and
 * dq_i = scale·Σ_j dS_ij k_j.
 */
export function attentionBackwardRowsSource(
  rows: AttentionRows,
  tokens: number,
  head: number,
): string {
  const w = check(rows, tokens, head);
  return /* wgsl */ `
struct U { B: u32, T: u32, d: u32, H: u32, dh: u32, Tv: u32, Tq: u32, q0: u32,
           slot: u32, scale: u32, coef: u32, eps: u32, floor: u32, supervised: u32,
           slots: u32, p1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> dMixed: array<f32>;
@group(0) @binding(4) var<storage, read_write> dScores: array<f32>;
@group(0) @binding(5) var<storage, read_write> dQkv: array<f32>;
@group(0) @binding(6) var<storage, read> goal: array<f32>;
@group(0) @binding(7) var<storage, read> qBuf: array<f32>;
@group(0) @binding(8) var<storage, read> qw: array<f32>;
@group(0) @binding(9) var<storage, read> armConst: array<f32>;
var<workgroup> gm: array<f32, ${rows * head}>;
var<workgroup> p: array<f32, ${rows * tokens}>;
var<workgroup> dp: array<f32, ${rows * tokens}>;
var<workgroup> gk: array<f32, ${rows * tokens}>;
${segmentReduce(w)}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${rowOf(w, rows)}
  let go = seg * ${head}u;
  let po = seg * ${tokens}u;
  let row = ((b * u.H + h) * u.T + i) * u.T;
  if (live) {
    for (var c = lane; c < u.dh; c += ${w}u) { gm[go + c] = dMixed[(b * u.T + i) * u.d + h * u.dh + c]; }
    for (var j = lane; j < u.T; j += ${w}u) { p[po + j] = probs[row + j]; }
  }
  workgroupBarrier();
  if (live) {
    for (var j = lane; j < u.T; j += ${w}u) {
      var g = 0.0;
      if (p[po + j] != 0.0) {
        let vb = (b * u.T + j) * d3 + 2u * u.d + h * u.dh;
        for (var c = 0u; c < u.dh; c++) { g += gm[go + c] * qkv[vb + c]; }
      }
      dp[po + j] = g;
    }
  }
  workgroupBarrier();
  if (u.supervised != 0u) {
    // Every row reduces (barriers are uniform); rows KLAL does not read add nothing.
    let klal = live && i >= u.q0 && i < u.q0 + u.Tq;
    let arm = b / u.B;
    let qRow = ((arm * u.slots + u.slot) * u.B + b % u.B) * u.Tv;
    var weight = 0.0;
    if (klal) { weight = qw[b * u.Tq + i - u.q0]; }
    let coef = ${f32Bits("coef")} * armConst[arm * ${ARM_FLOATS}u];
    let eps = ${f32Bits("eps")};
    var mass = 0.0;
    if (klal) { for (var v = lane; v < u.Tv; v += ${w}u) { mass += p[po + v]; } }
    let s = segSum(mass, seg, lane) + ${f32Bits("floor")};
    var ga = 0.0;
    if (klal) {
      for (var v = lane; v < u.Tv; v += ${w}u) {
        let pv = goal[b * u.Tv + v];
        let qv = qBuf[qRow + v];
        var g = 0.0;
        if (pv > 0.0 && qv >= eps) { g = coef * weight * pv / qv; }
        gk[po + v] = g;
        ga += g * p[po + v];
      }
    }
    let sum = segSum(ga, seg, lane);
    if (klal) {
      for (var v = lane; v < u.Tv; v += ${w}u) { dp[po + v] += gk[po + v] / s - sum / (s * s); }
    }
    workgroupBarrier();
  }
  var pd = 0.0;
  if (live) { for (var j = lane; j < u.T; j += ${w}u) { pd += p[po + j] * dp[po + j]; } }
  let dot = segSum(pd, seg, lane);
  if (live) {
    for (var j = lane; j < u.T; j += ${w}u) {
      let ds = p[po + j] * (dp[po + j] - dot);
      gk[po + j] = ds;
      dScores[row + j] = ds;
    }
  }
  workgroupBarrier();
  let scale = ${f32Bits("scale")};
  if (live) {
    for (var c = lane; c < u.dh; c += ${w}u) {
      var acc = 0.0;
      for (var j = 0u; j <= i; j++) { acc += gk[po + j] * qkv[(b * u.T + j) * d3 + u.d + h * u.dh + c]; }
      dQkv[(b * u.T + i) * d3 + h * u.dh + c] = acc * scale;
    }
  }
}
`;
}

/**
 * Attention backward, `rows` key columns (j, h, b) per workgroup: dk_j = scale·Σ_i dS_ij q_i
 * and dv_j = Σ_i P_ij dmixed_i, into the k and v parts of the qkv gradient.
 */
export function attentionBackwardKeysSource(
  rows: AttentionRows,
  tokens: number,
  head: number,
): string {
  const w = check(rows, tokens, head);
  return /* wgsl */ `
struct U { T: u32, d: u32, H: u32, dh: u32, scale: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> dMixed: array<f32>;
@group(0) @binding(4) var<storage, read> dScores: array<f32>;
@group(0) @binding(5) var<storage, read_write> dQkv: array<f32>;
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${rowOf(w, rows)}
  if (!live) { return; }
  let j = i;
  let scale = ${f32Bits("scale")};
  let column = (b * u.H + h) * u.T * u.T + j;
  for (var c2 = lane; c2 < 2u * u.dh; c2 += ${w}u) {
    var acc = 0.0;
    if (c2 < u.dh) {
      for (var r = j; r < u.T; r++) {
        acc += dScores[column + r * u.T] * qkv[(b * u.T + r) * d3 + h * u.dh + c2];
      }
      dQkv[(b * u.T + j) * d3 + u.d + h * u.dh + c2] = acc * scale;
    } else {
      let c = c2 - u.dh;
      for (var r = j; r < u.T; r++) {
        acc += probs[column + r * u.T] * dMixed[(b * u.T + r) * u.d + h * u.dh + c];
      }
      dQkv[(b * u.T + j) * d3 + 2u * u.d + h * u.dh + c] = acc;
    }
  }
}
`;
}
