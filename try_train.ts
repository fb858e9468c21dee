import { initBackend } from "./pipeline/backend.ts";
import { gridPatch } from "./tasks/grid_patch.ts";
import { pretrainMix } from "./tasks/pretrain_mix.ts";
import { vocabularyOf } from "./tasks/registry.ts";
import { Tokenizer } from "./pipeline/tokenizer.ts";
import { encodeSamples, layoutFor } from "./pipeline/batch.ts";
import { TinyVlm } from "./pipeline/model/tiny_vlm.ts";
import { train } from "./pipeline/train.ts";
import { evaluate } from "./pipeline/eval.ts";
import * as tf from "@tensorflow/tfjs";
console.log(await initBackend("wasm"));
const cfg = { imageSize: 32, patchSize: 8, params: { ...gridPatch.defaultParams } };
const tok = new Tokenizer(vocabularyOf([gridPatch, pretrainMix]));
const trainS = gridPatch.generate(1, 4000, cfg);
const testS = gridPatch.generate(5000, 500, cfg);
const layout = layoutFor([...trainS, ...testS], tok, 8);
console.log(layout, trainS[0].prompt, "|", trainS[0].answer);
const tr = encodeSamples(trainS, tok, layout, 8), te = encodeSamples(testS, tok, layout, 8);
const steps = Number(Deno.args[0] ?? 300), lambda = Number(Deno.args[1] ?? 0);
const model = new TinyVlm({ patchDim: 192, vocab: tok.size, dModel: 64, layers: 2, heads: 4, mlpRatio: 4, gridSide: 4, maxText: 32, positionStd: Number(Deno.env.get('POS_STD') ?? 0.02) }, 0);
const posStd = Number(Deno.env.get("POS_STD") ?? 0.02);

const lr = Number(Deno.env.get("LR") ?? 1e-3);
const PRE = Number(Deno.env.get("PRE") ?? 0);
if (PRE > 0) {
  const ps = pretrainMix.generate(0, 4000, { imageSize: 32, patchSize: 8, params: { ...pretrainMix.defaultParams } });
  const pl = layoutFor(ps, tok, 8);
  const pe = encodeSamples(ps, tok, pl, 8);
  const pr = train(model, pe, { steps: PRE, batchSize: 32, lr: 1e-3, optimizer: "adamw", weightDecay: 0.01, warmup: 50, logEvery: 10, lambda: 0, layers: [0, 1], seed: 0, label: "pre" });
  console.log("pre", pr.log.at(-1));
}
const before = tf.memory().numTensors;
const r = train(model, tr, { steps, batchSize: 32, lr, optimizer: "adamw", weightDecay: 0.01, warmup: 30, logEvery: 10, lambda, layers: [0, 1], seed: Number(Deno.env.get('SEED') ?? 0), label: "t" });
console.log("tensors", before, tf.memory().numTensors, "sps", r.samplesPerSecond.toFixed(0), r.log.at(-1));
const e = evaluate(model, te, testS, gridPatch, tok, 128);
console.log("acc", e.accuracy, "mass", e.targetAttention.toFixed(3), "ratio", e.targetAttentionRatio.toFixed(2), e.predictions.slice(0,3).map(p=>p.prediction+"/"+p.answer));
