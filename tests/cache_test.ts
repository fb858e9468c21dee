import assert from "node:assert/strict";
import { Cache, sha256Hex, stageKey } from "../pipeline/cache.ts";

async function tempCache(): Promise<Cache> {
  return new Cache(await Deno.makeTempDir({ prefix: "klal-cache-test-" }));
}

const meta = { stage: "data:x", kind: "data", params: { a: 1 }, inputs: {}, codeVersion: "v1" };

Deno.test("stageKey: canonical JSON, so key order does not matter; any change does", async () => {
  const a = await stageKey("data", { x: 1, y: [1, 2] }, { in: "k" }, "v1");
  const b = await stageKey("data", { y: [1, 2], x: 1 }, { in: "k" }, "v1");
  assert.equal(a, b);
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, await stageKey("data", { x: 2, y: [1, 2] }, { in: "k" }, "v1"));
  assert.notEqual(a, await stageKey("data", { x: 1, y: [1, 2] }, { in: "k2" }, "v1"));
  assert.notEqual(a, await stageKey("data", { x: 1, y: [1, 2] }, { in: "k" }, "v2"));
  assert.notEqual(a, await stageKey("eval", { x: 1, y: [1, 2] }, { in: "k" }, "v1"));
});

Deno.test("sha256Hex matches a known digest", async () => {
  assert.equal(
    await sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("write: entry appears whole, with a manifest of hashed files", async () => {
  const cache = await tempCache();
  const key = "ab" + "0".repeat(62);
  assert.equal(await cache.has(key), false);
  const manifest = await cache.write(key, meta, async (out) => {
    await out.writeText("a.txt", "hello");
    await out.writeJson("b.json", { x: 1 });
    return { backend: "wasm" };
  });
  assert.equal(await cache.has(key), true);
  assert.equal(manifest.key, key);
  assert.deepEqual(manifest.info, { backend: "wasm" });
  assert.equal(manifest.files["a.txt"].sha256, await sha256Hex("hello"));
  assert.deepEqual(await cache.readJson(key, "b.json"), { x: 1 });
  const stored = JSON.parse(await Deno.readTextFile(`${cache.entryDir(key)}/manifest.json`));
  assert.deepEqual(stored.params, { a: 1 });
  assert.deepEqual(await cache.verify(key), []);
  // Nothing is left in tmp/.
  assert.deepEqual([...Deno.readDirSync(`${cache.root}/tmp`)], []);
});

Deno.test("write: a failing stage leaves no entry and no temp files", async () => {
  const cache = await tempCache();
  const key = "cd" + "1".repeat(62);
  await assert.rejects(
    cache.write(key, meta, async (out) => {
      await out.writeText("partial.txt", "half");
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(await cache.has(key), false);
  assert.deepEqual([...Deno.readDirSync(`${cache.root}/tmp`)], []);
});

Deno.test("verify finds a corrupted file; evict moves the entry aside", async () => {
  const cache = await tempCache();
  const key = "ef" + "2".repeat(62);
  await cache.write(key, meta, (out) => out.writeText("a.txt", "hello"));
  await Deno.writeTextFile(`${cache.entryDir(key)}/a.txt`, "jello");
  assert.deepEqual(await cache.verify(key), ["a.txt: content does not match its sha256"]);
  await Deno.writeTextFile(`${cache.entryDir(key)}/a.txt`, "hi");
  assert.deepEqual(await cache.verify(key), ["a.txt: 2 bytes, manifest says 5"]);
  await cache.evict(key);
  assert.equal(await cache.has(key), false);
  assert.equal([...Deno.readDirSync(`${cache.root}/evicted`)].length, 1);
});

Deno.test("refs remember the last key of a stage", async () => {
  const cache = await tempCache();
  assert.equal(await cache.readRef("exp", "finetune:klal:s0"), undefined);
  const ref = { key: "k", params: { lambda: 1 }, inputs: { base: "b" }, codeVersion: "c" };
  await cache.writeRef("exp", "finetune:klal:s0", ref);
  assert.deepEqual(await cache.readRef("exp", "finetune:klal:s0"), ref);
});
