/**
 * Evaluation's grounding measures on a stand-in model whose attention is set by hand: the
 * ratio over all answer positions, at the first one, and the raw share on visual tokens.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { evaluate } from "../pipeline/eval/evaluate.ts";
import { queryCount, queryStart } from "../pipeline/model/batch.ts";
import type { ForwardInputs, TinyVlm } from "../pipeline/model/tiny_vlm.ts";
import { gridPatch } from "../tasks/grid_patch.ts";
import { tinyGridData } from "./fixtures.ts";

await tf.setBackend("cpu");

Deno.test("evaluate: attention ratio (all and first position) and raw visual share, by hand", async () => {
  const fixture = tinyGridData(21, 6);
  const { data, layout } = fixture;
  const tv = layout.visual; // 4 patches; each sample's target is one of them
  const t = tv + layout.prompt + layout.answer;
  const q0 = queryStart(layout);
  const tq = queryCount(layout);
  const targetIndex = (row: number) => {
    const p = Array.from(data.target.subarray(row * tv, (row + 1) * tv));
    return p.indexOf(Math.max(...p));
  };
  // Which rows of `data` the next forward call covers: evaluate walks them in order.
  let cursor = 0;
  const fake = {
    config: { layers: 1, heads: 1 },
    forward(inputs: ForwardInputs) {
      const b = inputs.patches.shape[0];
      const rows = Array.from({ length: b }, (_, i) => (cursor + i) % data.n);
      const values = new Float32Array(b * t * t);
      rows.forEach((row, i) => {
        const target = targetIndex(row);
        for (let q = 0; q < t; q++) {
          const base = (i * t + q) * t;
          for (let k = 0; k < tv; k++) {
            // First answer position: 0.3 on the target patch, 0.1 on the others (visual
            // share 0.6); later positions: 0.05 on each patch (share 0.2, spread evenly).
            values[base + k] = q === q0 ? (k === target ? 0.3 : 0.1) : 0.05;
          }
        }
      });
      return {
        logits: tf.zeros([b, t, fixture.tokenizer.size]) as tf.Tensor3D,
        attentions: [tf.tensor4d(values, [b, 1, t, t])],
        hidden: tf.zeros([b, t, 4]) as tf.Tensor3D,
      };
    },
  };
  // Greedy decoding calls forward once per answer slot at most, then grounding once per
  // batch: advance the cursor only on the teacher-forced calls (full answers in the text).
  const model = new Proxy(fake, {
    get(target, prop) {
      if (prop !== "forward") return Reflect.get(target, prop);
      return (inputs: ForwardInputs & { queryMask?: tf.Tensor }) => {
        const out = target.forward(inputs);
        if (inputs.queryMask) cursor += inputs.patches.shape[0];
        return out;
      };
    },
  }) as unknown as TinyVlm;
  const result = await evaluate(
    model,
    data,
    fixture.samples,
    gridPatch,
    fixture.tokenizer,
    data.n,
  );
  // Per sample with k real answer positions (the query mask):
  //   first position: rows renormalised [0.5 on target, 1/6 elsewhere] -> ratio 0.5 / (1/4) = 2
  //   all positions: (0.5 + 0.25 (k - 1)) / k on the target, over 1/4
  //   raw share: first 0.6; all (0.6 + 0.2 (k - 1)) / k
  let ratio = 0;
  let share = 0;
  for (let row = 0; row < data.n; row++) {
    const k = data.queryMask.subarray(row * tq, (row + 1) * tq).reduce((a, v) => a + v, 0);
    ratio += (0.5 + 0.25 * (k - 1)) / k / 0.25 / data.n;
    share += (0.6 + 0.2 * (k - 1)) / k / data.n;
  }
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) < 1e-4, `${what}: expected ${b}, got ${a}`);
  close(result.targetAttentionRatioFirst, 2, "ratio at the first position");
  close(result.targetAttentionRatio, ratio, "ratio over all positions");
  close(result.visualShareFirst, 0.6, "visual share at the first position");
  close(result.visualShare, share, "visual share over all positions");
  close(result.layers[0].ratioFirst, 2, "layer 0 ratio at the first position");
  assert.ok(result.targetAttentionRatio < result.targetAttentionRatioFirst);
});
