import assert from "node:assert/strict";
import { resolve } from "node:path";
import {
  Cache,
  CACHE_MARKER,
  CacheRootError,
  manifestProblem,
  sha256Hex,
  stageKey,
} from "../pipeline/cache/store.ts";

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

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("marker: the first write into a new folder marks it as a cache", async () => {
  const parent = await Deno.makeTempDir({ prefix: "klal-cache-marker-" });
  const cache = new Cache(`${parent}/new`);
  assert.equal(await cache.markerFormat(), undefined);
  await cache.write("ab" + "3".repeat(62), meta, (out) => out.writeText("a.txt", "x"));
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${parent}/new/${CACHE_MARKER}`)), {
    cache: "klal",
    format: 1,
  });
  assert.equal(await cache.markerFormat(), 1);
  await cache.requireMarker();
  // No temp file of the marker is left beside it.
  assert.deepEqual(
    [...Deno.readDirSync(`${parent}/new`)].map((e) => e.name).filter((n) => n.startsWith(".")),
    [CACHE_MARKER],
  );
  await Deno.remove(parent, { recursive: true });
});

Deno.test("marker: deleting commands refuse an empty root, / and unmarked folders", async () => {
  const empty = new Cache("");
  assert.equal(empty.root, "");
  await assert.rejects(empty.requireMarker(), CacheRootError);
  await assert.rejects(empty.requireMarker(), /the cache root is empty/);
  await assert.rejects(new Cache("/").requireMarker(), /the cache root is the filesystem root/);
  await assert.rejects(new Cache("/tmp/..").requireMarker(), /filesystem root/);
  // A relative root is resolved against the working directory once, at construction.
  assert.equal(new Cache("some/dir/../cache").root, resolve("some/cache"));

  const dir = await Deno.makeTempDir({ prefix: "klal-cache-unmarked-" });
  await Deno.mkdir(`${dir}/tmp`);
  await assert.rejects(new Cache(dir).requireMarker(), /has no \.klal-cache file/);
  // Checking never marks the folder.
  assert.equal(await exists(`${dir}/${CACHE_MARKER}`), false);
  await assert.rejects(new Cache(`${dir}/missing`).requireMarker(), /no cache at .*missing/);

  await Deno.writeTextFile(`${dir}/${CACHE_MARKER}`, "junk");
  await assert.rejects(new Cache(dir).requireMarker(), /is not a cache marker/);
  await Deno.writeTextFile(`${dir}/${CACHE_MARKER}`, JSON.stringify({ format: 99 }));
  await assert.rejects(new Cache(dir).requireMarker(), /format 99, newer than this code's 1/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("marker: a cache made before the marker is adopted; a foreign folder is refused", async () => {
  // The layout older code left: objects/<shard>/<key>/, refs/, tmp/, locks/, no marker.
  const old = await Deno.makeTempDir({ prefix: "klal-cache-old-" });
  const key = "ab" + "4".repeat(62);
  await new Cache(old).write(key, meta, (out) => out.writeText("a.txt", "x"));
  await Deno.remove(`${old}/${CACHE_MARKER}`);
  await Deno.mkdir(`${old}/refs/exp`, { recursive: true });
  const cache = new Cache(old);
  assert.equal(await cache.prepare({ write: false }), "adopted");
  assert.equal(await exists(`${old}/${CACHE_MARKER}`), false, "a dry check writes nothing");
  assert.equal(await cache.prepare({ write: true }), "adopted");
  assert.equal(await cache.markerFormat(), 1);
  assert.equal(await cache.prepare({ write: true }), "marked");

  // Anything else in the folder: not a cache, and nothing is written into it.
  const foreign = await Deno.makeTempDir({ prefix: "klal-cache-foreign-" });
  await Deno.mkdir(`${foreign}/tmp`);
  await Deno.writeTextFile(`${foreign}/notes.txt`, "mine");
  const stranger = new Cache(foreign);
  await assert.rejects(
    stranger.prepare({ write: true }),
    /is not empty and is not a cache \(no \.klal-cache file; it holds notes\.txt, tmp\)/,
  );
  await assert.rejects(
    stranger.write(key, meta, (out) => out.writeText("a.txt", "x")),
    CacheRootError,
  );
  assert.deepEqual([...Deno.readDirSync(foreign)].map((e) => e.name).sort(), ["notes.txt", "tmp"]);
  // objects/ with something that is not a shard is not the cache's layout either.
  await Deno.remove(`${foreign}/notes.txt`);
  await Deno.mkdir(`${foreign}/objects/photos`, { recursive: true });
  await assert.rejects(stranger.prepare({ write: false }), /not a cache/);
  await Deno.remove(old, { recursive: true });
  await Deno.remove(foreign, { recursive: true });
});

Deno.test("marker: a root another process marks between our read and our listing is a cache", async () => {
  // The race of two processes on one new root: ours reads no marker, the other writes it
  // and creates its lock, then ours lists the folder.
  const dir = await Deno.makeTempDir({ prefix: "klal-cache-race-" });
  const ours = new Cache(dir);
  const read = ours.markerFormat.bind(ours);
  let calls = 0;
  ours.markerFormat = async () => {
    if (calls++ > 0) return await read();
    assert.equal(await read(), undefined);
    assert.equal(await new Cache(dir).prepare({ write: true }), "new");
    await Deno.writeTextFile(`${dir}/cache.lock`, "");
    await Deno.mkdir(`${dir}/running`);
    return undefined;
  };
  assert.equal(await ours.prepare({ write: true }), "marked");
  assert.equal(calls, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("manifestProblem: invalid JSON, missing or malformed fields, another entry's key", () => {
  const key = "ab" + "5".repeat(62);
  const whole = {
    key,
    ...meta,
    files: { "a.txt": { bytes: 1, sha256: "00" } },
    startedAt: "2026-01-01T00:00:00.000Z",
    seconds: 1,
    info: {},
  };
  assert.equal(manifestProblem(JSON.stringify(whole), key), undefined);
  assert.match(manifestProblem("{not json", key)!, /^manifest\.json: not valid JSON/);
  assert.equal(manifestProblem("[]", key), "manifest.json: not a JSON object");
  const { files: _files, seconds: _seconds, ...partial } = whole;
  assert.equal(
    manifestProblem(JSON.stringify(partial), key),
    "manifest.json: missing or malformed seconds, files",
  );
  assert.equal(
    manifestProblem(JSON.stringify({ ...whole, files: { "a.txt": { bytes: "1" } } }), key),
    "manifest.json: missing or malformed files",
  );
  assert.match(
    manifestProblem(JSON.stringify({ ...whole, key: "cd" + "5".repeat(62) }), key)!,
    /records key cd5+, not this entry's/,
  );
});

Deno.test("a corrupted manifest is a corrupted entry: never served, replaced by the next write", async () => {
  const cache = await tempCache();
  const key = "ef" + "6".repeat(62);
  await cache.write(key, meta, (out) => out.writeText("a.txt", "hello"));
  const manifestPath = `${cache.entryDir(key)}/manifest.json`;
  const whole = await Deno.readTextFile(manifestPath);

  await Deno.writeTextFile(manifestPath, "{not json");
  const found = await cache.lookup(key);
  assert.equal(found.state, "corrupted");
  assert.equal(await cache.has(key), false);
  assert.match((await cache.verify(key))[0], /^manifest\.json: not valid JSON/);
  await assert.rejects(cache.manifest(key), /cache entry ef6{10} is damaged \(manifest\.json/);

  const { files: _files, ...noFiles } = JSON.parse(whole);
  await Deno.writeTextFile(manifestPath, JSON.stringify(noFiles));
  assert.deepEqual(await cache.lookup(key), {
    state: "corrupted",
    problem: "manifest.json: missing or malformed files",
  });
  await Deno.remove(manifestPath);
  assert.deepEqual(await cache.lookup(key), {
    state: "corrupted",
    problem: "manifest.json: missing",
  });
  assert.deepEqual(await cache.lookup("ff" + "0".repeat(62)), { state: "missing" });

  // Recomputing the key moves the corrupted entry aside and puts the new one in its place.
  await cache.write(key, meta, (out) => out.writeText("a.txt", "hello"));
  assert.equal(await cache.has(key), true);
  assert.deepEqual(await cache.verify(key), []);
  assert.equal([...Deno.readDirSync(`${cache.root}/evicted`)].length, 1);
  // evict handles a corrupted entry too.
  await Deno.writeTextFile(manifestPath, "{");
  await cache.evict(key);
  assert.equal(await exists(cache.entryDir(key)), false);
  assert.equal([...Deno.readDirSync(`${cache.root}/evicted`)].length, 2);
});
