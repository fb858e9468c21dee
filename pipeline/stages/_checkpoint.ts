/**
 * Model checkpoints in a cache entry: the weights as `model.safetensors` (readable by the
 * safetensors and Hugging Face tools; its metadata holds the model's config and vocabulary
 * too) and `checkpoint.json` (config, vocabulary, batch layout). Entries written before hold
 * `weights.f32` with the tensors' offsets in `checkpoint.json`, and still load.
 */
import type { Layout } from "../model/batch.ts";
import type { Cache, EntryWriter } from "../cache/store.ts";
import { TinyVlm, type TinyVlmConfig, type WeightMap } from "../model/tiny_vlm.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { decodeSafetensors, encodeSafetensors } from "../lib/safetensors.ts";

/** The weights file of a checkpoint entry. */
export const WEIGHTS_FILE = "model.safetensors";

interface CheckpointIndex {
  config: TinyVlmConfig;
  vocabulary: string[];
  layout: Layout;
  /** The weights' file (model.safetensors); absent in entries written before it. */
  weights?: string;
  /** Entries written before: each tensor's place in weights.f32. */
  tensors?: { name: string; shape: number[]; offset: number; length: number }[];
}

/** Write `model`'s weights, its tokenizer's vocabulary and the batch layout it trained on. */
export async function saveCheckpoint(
  out: EntryWriter,
  model: TinyVlm,
  tokenizer: Tokenizer,
  layout: Layout,
): Promise<void> {
  const weights = await model.getWeights();
  const metadata = {
    format: "klal tiny-vlm",
    config: JSON.stringify(model.config),
    vocabulary: JSON.stringify(tokenizer.words),
  };
  await out.writeBytes(WEIGHTS_FILE, encodeSafetensors(weights, metadata));
  const index: CheckpointIndex = {
    config: model.config,
    vocabulary: [...tokenizer.words],
    layout,
    weights: WEIGHTS_FILE,
  };
  await out.writeJson("checkpoint.json", index);
}

/** The model, tokenizer and layout of the checkpoint entry `key`. */
export async function loadCheckpoint(
  cache: Cache,
  key: string,
): Promise<{ model: TinyVlm; tokenizer: Tokenizer; layout: Layout }> {
  const index = await cache.readJson<CheckpointIndex>(key, "checkpoint.json");
  let weights: WeightMap = {};
  if (index.weights) {
    weights = decodeSafetensors(await cache.readBytes(key, index.weights)).tensors as WeightMap;
  } else {
    const bytes = await cache.readBytes(key, "weights.f32");
    const flat = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (const t of index.tensors ?? []) {
      weights[t.name] = { shape: t.shape, data: flat.subarray(t.offset, t.offset + t.length) };
    }
  }
  const model = new TinyVlm(index.config, 0);
  model.setWeights(weights);
  return { model, tokenizer: new Tokenizer(index.vocabulary), layout: index.layout };
}
