/**
 * Checkpoints as safetensors: the bytes of a small file checked by hand, refusals named, a
 * model's checkpoint read back by Python (the safetensors package where installed, else
 * PyTorch reading the format's layout) with every tensor equal to ours.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
} from "../pipeline/lib/safetensors.ts";
import { findTorchPython } from "../pipeline/lib/torch_python.ts";
import { initBackend } from "../pipeline/kernels/backend.ts";
import { TinyVlm } from "../pipeline/model/tiny_vlm.ts";
import { tinyGridData, tinyModelConfig } from "./fixtures.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { loadCheckpoint, saveCheckpoint, WEIGHTS_FILE } from "../pipeline/stages/_checkpoint.ts";

const READER = fileURLToPath(new URL("./reference/read_safetensors.py", import.meta.url));

Deno.test("safetensors: the bytes of one small tensor, by hand", () => {
  const bytes = encodeSafetensors({ a: { shape: [2], data: new Float32Array([1, -2]) } });
  const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  assert.equal(header.length, 54);
  // 54 header bytes padded with spaces to 56; then 1.0f and -2.0f little-endian.
  assert.deepEqual([...bytes.subarray(0, 8)], [56, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(new TextDecoder().decode(bytes.subarray(8, 64)), header + "  ");
  assert.deepEqual([...bytes.subarray(64)], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.tensors.a.shape, [2]);
  assert.deepEqual([...back.tensors.a.data], [1, -2]);
  assert.deepEqual(back.metadata, {});
});

Deno.test("safetensors: metadata kept; a file that is not one is refused, named", () => {
  const bytes = encodeSafetensors(
    {
      w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      b: { shape: [1], data: new Float32Array([5]) },
    },
    { format: "klal tiny-vlm" },
  );
  const back = decodeSafetensors(bytes);
  assert.deepEqual(Object.keys(back.tensors), ["w", "b"]);
  assert.deepEqual(back.metadata, { format: "klal tiny-vlm" });
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 5)), /5 bytes: no header length/);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 4)), SafetensorsError);
  const f16 = new TextEncoder().encode('{"x":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}');
  const file = new Uint8Array(8 + f16.length + 2);
  new DataView(file.buffer).setBigUint64(0, BigInt(f16.length), true);
  file.set(f16, 8);
  assert.throws(() => decodeSafetensors(file), /x: dtype F16, expected F32/);
  assert.throws(
    () => encodeSafetensors({ x: { shape: [3], data: new Float32Array(2) } }),
    /x: shape \[3\] holds 3 values, not 2/,
  );
});

const python = await findTorchPython();
const skip = "python" in python ? "" : python.problems.join("; ");
if (skip) console.warn(`safetensors_test: skipping the Python reader: ${skip}`);

Deno.test({
  name: "safetensors: a model's checkpoint read back in Python, every tensor equal",
  ignore: skip !== "",
  async fn() {
    await initBackend("wasm");
    const fixture = tinyGridData(2, 12);
    const model = new TinyVlm(tinyModelConfig(fixture), 3);
    const weights = await model.getWeights();
    const dir = await Deno.makeTempDir();
    try {
      // A checkpoint entry as the pretrain and finetune stages write it.
      const cache = new Cache(`${dir}/cache`);
      const key = "cd" + "0".repeat(62);
      const meta = {
        stage: "finetune:x",
        kind: "finetune",
        params: {},
        inputs: {},
        codeVersion: "v",
      };
      await cache.write(
        key,
        meta,
        (out) => saveCheckpoint(out, model, fixture.tokenizer, fixture.layout),
      );
      model.dispose();
      const path = `${cache.entryDir(key)}/${WEIGHTS_FILE}`;
      const out = await new Deno.Command((python as { python: string }).python, {
        args: [READER, path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const read = JSON.parse(new TextDecoder().decode(out.stdout));
      console.log(`read by ${read.reader}`);
      assert.equal(read.metadata.format, "klal tiny-vlm");
      assert.deepEqual(JSON.parse(read.metadata.vocabulary), [...fixture.tokenizer.words]);
      assert.equal(JSON.parse(read.metadata.config).dModel, 16);
      assert.deepEqual(Object.keys(read.tensors).sort(), Object.keys(weights).sort());
      for (const [name, w] of Object.entries(weights)) {
        const t = read.tensors[name];
        assert.deepEqual(t.shape, w.shape, name);
        // float32 values printed by Python as doubles: exactly the same numbers.
        assert.deepEqual(t.values, [...w.data], name);
      }
      // And the project loads the same entry back to the same weights.
      const loaded = await loadCheckpoint(cache, key);
      const again = await loaded.model.getWeights();
      loaded.model.dispose();
      for (const [name, w] of Object.entries(weights)) {
        assert.deepEqual(again[name].data, w.data, name);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("checkpoints written before safetensors (weights.f32 and offsets) still load", async () => {
  await initBackend("wasm");
  const fixture = tinyGridData(2, 12);
  const model = new TinyVlm(tinyModelConfig(fixture), 5);
  const weights = await model.getWeights();
  model.dispose();
  const dir = await Deno.makeTempDir();
  try {
    const cache = new Cache(`${dir}/cache`);
    const key = "ef" + "0".repeat(62);
    const meta = { stage: "pretrain", kind: "pretrain", params: {}, inputs: {}, codeVersion: "v" };
    await cache.write(key, meta, async (out) => {
      const tensors: { name: string; shape: number[]; offset: number; length: number }[] = [];
      let offset = 0;
      for (const [name, w] of Object.entries(weights)) {
        tensors.push({ name, shape: w.shape, offset, length: w.data.length });
        offset += w.data.length;
      }
      const flat = new Float32Array(offset);
      for (const t of tensors) flat.set(weights[t.name].data, t.offset);
      await out.writeBytes("weights.f32", new Uint8Array(flat.buffer));
      await out.writeJson("checkpoint.json", {
        config: tinyModelConfig(fixture),
        vocabulary: [...fixture.tokenizer.words],
        layout: fixture.layout,
        tensors,
      });
    });
    const loaded = await loadCheckpoint(cache, key);
    const back = await loaded.model.getWeights();
    loaded.model.dispose();
    for (const [name, w] of Object.entries(weights)) {
      assert.deepEqual(back[name].data, w.data, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
