/**
 * Content-addressed stage store.
 *
 *   <root>/objects/<key[0:2]>/<key>/   one finished entry: output files + manifest.json
 *   <root>/tmp/                        entries being written (renamed into objects/ when whole)
 *   <root>/refs/<experiment>/<stage>.json   the key a stage of an experiment last resolved to
 *   <root>/partial/<key>.ckpt          resumable mid-training checkpoints (and <key>.prev.ckpt)
 *   <root>/memo/file-digests.json      SHA-256 of source files and images, by path, size, mtime
 *   <root>/live/<experiment>/<stage>.jsonl   a training stage's metrics while it runs
 *   <root>/.klal-cache                 marker: this folder is a cache (format version inside)
 *
 * An entry becomes visible only by an atomic rename of a complete directory, so a crash or
 * kill never leaves a half-written entry where a reader could see it.
 *
 * Commands that delete (`cache gc`) act only on a folder with the marker: the cache's folder
 * names (tmp/, jobs/) are common ones, and a mistyped or empty KLAL_CACHE_DIR must never make
 * them delete someone else's files.
 */
import { publishFolderOnce, writeFileAtomic, writeJsonAtomic } from "../lib/atomic.ts";
import { resolve } from "node:path";
import { canonicalJson } from "../lib/canonical_json.ts";
import { sha256Hex } from "../lib/hash.ts";
import { FileDigests } from "../lib/file_digest.ts";
import { projectPath } from "../lib/paths.ts";
import { SetupError } from "../lib/cli.ts";

export { sha256Hex };

/** What manifest.json records for every entry. */
export interface Manifest {
  key: string;
  stage: string;
  kind: string;
  params: unknown;
  inputs: Record<string, string>;
  codeVersion: string;
  files: Record<string, { bytes: number; sha256: string }>;
  startedAt: string;
  seconds: number;
  /** Free-form facts a stage wants to keep (backend, samples/s...). */
  info: Record<string, unknown>;
}

/** Where a stage's key was last resolved, for `--dry-run` reasons. */
export interface StageRef {
  key: string;
  params: unknown;
  inputs: Record<string, string>;
  codeVersion: string;
}

/**
 * The cache root: `KLAL_CACHE_DIR`, else `.cache/` at the repository root. Set but empty, it
 * stays empty, so that commands refuse it rather than fall back to a default.
 */
export function defaultCacheDir(): string {
  return Deno.env.get("KLAL_CACHE_DIR") ??
    projectPath(".cache");
}

/** File at the root of every cache; its presence is what lets a command delete there. */
export const CACHE_MARKER = ".klal-cache";

/** Layout version written into the marker; a cache with a higher one is refused. */
export const CACHE_FORMAT = 1;

/** Folder at the root that holds resumable mid-training checkpoints. */
export const PARTIAL_DIR = "partial";

/**
 * The stage key a file in partial/ belongs to (a checkpoint, the previous one, or a temp
 * sibling of either), or undefined for a name the cache does not make.
 */
export function partialKeyOf(fileName: string): string | undefined {
  return /^([0-9a-f]{64})\.(?:prev\.)?ckpt(?:\.[\w-]+)?$/.exec(fileName)?.[1];
}

/** Names the cache itself creates at its root (an unmarked folder holding only these is one). */
const LAYOUT_NAMES = new Set([
  "objects",
  "refs",
  "tmp",
  "locks",
  "jobs",
  "evicted",
  "gpu",
  "machine",
  "cache.lock",
  "running",
  "partial",
  "memo",
  "live",
]);

/** A marker being written (temp name, renamed into place): never a sign of foreign files. */
const MARKER_TEMP = /^\.klal-cache\.(?:[\w-]+\.tmp|tmp-[\w-]+)$/;

/** The cache root cannot be used: empty, the filesystem root, not a cache, a newer format. */
export class CacheRootError extends SetupError {}

/**
 * A cache entry whose manifest or files do not match what it recorded when it was written
 * (flipped bytes, a truncated or missing file): never served as a result.
 */
export class DamagedEntry extends Error {
  constructor(readonly key: string, readonly problems: string[]) {
    super(`cache entry ${key.slice(0, 12)} is damaged (${problems.join("; ")})`);
  }
}

/** What is wrong with `bytes` as the file `name` a manifest records, or undefined. */
async function fileProblem(
  name: string,
  expected: { bytes: number; sha256: string },
  bytes: Uint8Array,
): Promise<string | undefined> {
  if (bytes.length !== expected.bytes) {
    return `${name}: ${bytes.length} bytes, manifest says ${expected.bytes}`;
  }
  if ((await sha256Hex(bytes)) !== expected.sha256) {
    return `${name}: content does not match its sha256`;
  }
  return undefined;
}

/** What a lookup of one key finds. */
export type EntryState =
  | { state: "missing" }
  | { state: "ok"; manifest: Manifest }
  | { state: "corrupted"; problem: string };

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * What is wrong with the text of `key`'s manifest.json, or undefined when it is whole: valid
 * JSON with every field of a Manifest, of the right type, and the entry's own key.
 */
export function manifestProblem(text: string, key: string): string | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    return `manifest.json: not valid JSON (${(e as Error).message})`;
  }
  if (!isRecord(m)) return "manifest.json: not a JSON object";
  const bad: string[] = [];
  for (const field of ["stage", "kind", "codeVersion", "startedAt"]) {
    if (typeof m[field] !== "string") bad.push(field);
  }
  if (!("params" in m)) bad.push("params");
  if (typeof m.seconds !== "number") bad.push("seconds");
  if (!isRecord(m.info)) bad.push("info");
  if (!isRecord(m.inputs) || !Object.values(m.inputs).every((v) => typeof v === "string")) {
    bad.push("inputs");
  }
  const files = m.files;
  if (
    !isRecord(files) ||
    !Object.values(files).every((f) =>
      isRecord(f) && typeof f.bytes === "number" && typeof f.sha256 === "string"
    )
  ) bad.push("files");
  if (bad.length > 0) return `manifest.json: missing or malformed ${bad.join(", ")}`;
  if (m.key !== key) return `manifest.json: records key ${String(m.key)}, not this entry's`;
  return undefined;
}

/** Key of a stage: SHA-256 of canonical JSON of its kind, params, input keys and code version. */
export function stageKey(
  kind: string,
  params: unknown,
  inputs: Record<string, string>,
  codeVersion: string,
): Promise<string> {
  return sha256Hex(canonicalJson({ kind, params, inputs, codeVersion }));
}

/** A writer for one entry under construction (a private temp directory). */
export interface EntryWriter {
  dir: string;
  writeJson(name: string, value: unknown): Promise<void>;
  writeBytes(name: string, data: Uint8Array): Promise<void>;
  writeText(name: string, text: string): Promise<void>;
}

/** The content-addressed store. */
export class Cache {
  /** Absolute path of the root ("" when given an empty one, which every use refuses). */
  readonly root: string;
  private prepared?: Promise<unknown>;

  constructor(root: string) {
    // Resolved once, so every message names the real folder and workers started elsewhere
    // see the same one; an empty root stays empty (resolving would make it the cwd).
    this.root = root.trim() === "" ? "" : resolve(root);
  }

  /** Digests of source files and images, remembered in this cache (./../lib/file_digest.ts). */
  fileDigests(): FileDigests {
    return new FileDigests(this.root === "" ? undefined : `${this.root}/memo/file-digests.json`);
  }

  /** Why this root can never be a cache (empty, the filesystem root), else undefined. */
  rootProblem(): string | undefined {
    if (this.root === "") {
      return "the cache root is empty (KLAL_CACHE_DIR is set to an empty string): " +
        "set it to a folder, or unset it for .cache/ in the repository";
    }
    if (this.root === resolve("/")) {
      return `the cache root is the filesystem root ${this.root}: set KLAL_CACHE_DIR to a folder`;
    }
    return undefined;
  }

  /** The marker's format version, or undefined when the root has no marker. */
  async markerFormat(): Promise<number | undefined> {
    const problem = this.rootProblem();
    if (problem) throw new CacheRootError(problem);
    const path = `${this.root}/${CACHE_MARKER}`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw new CacheRootError(`cannot read ${path}: ${(e as Error).message}`);
    }
    let format: unknown;
    try {
      format = JSON.parse(text).format;
    } catch { /* reported below */ }
    if (typeof format !== "number" || !Number.isInteger(format) || format < 1) {
      throw new CacheRootError(`${path} is not a cache marker (expected {"format": N})`);
    }
    if (format > CACHE_FORMAT) {
      throw new CacheRootError(
        `${this.root} is a cache of format ${format}, newer than this code's ${CACHE_FORMAT}`,
      );
    }
    return format;
  }

  /**
   * Make sure the root is a cache before anything is written there. A new or empty folder
   * gets the marker; so does one made by code older than the marker (every name in it is
   * one the cache creates, with objects/ or refs/ among them). Any other folder is refused:
   * the cache never mixes with foreign files. With `write: false` (a dry run) the same
   * checks run but nothing is written. Returns what it found.
   */
  async prepare(
    options: { write: boolean },
  ): Promise<"marked" | "new" | "adopted"> {
    if ((await this.markerFormat()) !== undefined) return "marked";
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(this.root)) {
        if (!MARKER_TEMP.test(entry.name)) names.push(entry.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new CacheRootError(
          `cannot read the cache root ${this.root}: ${(e as Error).message}`,
        );
      }
    }
    // Another process may have marked the root between the read above and the listing: its
    // marker then shows in the listing (it is written before anything else), and wins.
    if (names.includes(CACHE_MARKER) && (await this.markerFormat()) !== undefined) {
      return "marked";
    }
    const found = names.length === 0 ? "new" : "adopted";
    if (names.length > 0 && !(await this.hasCacheLayout(names))) {
      const shown = names.sort().slice(0, 5).join(", ") + (names.length > 5 ? ", ..." : "");
      throw new CacheRootError(
        `${this.root} is not empty and is not a cache (no ${CACHE_MARKER} file; it holds ` +
          `${shown}): point KLAL_CACHE_DIR at a new or empty folder, or at an existing cache`,
      );
    }
    if (options.write) await this.writeMarker();
    return found;
  }

  /**
   * Refuse (CacheRootError) unless the root carries the marker: what a command calls before
   * it deletes anything. It never writes the marker itself.
   */
  async requireMarker(): Promise<void> {
    if ((await this.markerFormat()) !== undefined) return;
    const exists = await Deno.stat(this.root).then(() => true, () => false);
    throw new CacheRootError(
      exists
        ? `${this.root} has no ${CACHE_MARKER} file, so it is not known to be a cache and ` +
          "nothing in it is deleted (a cache made before the marker existed gets one on its " +
          "next `deno task experiment` run)"
        : `no cache at ${this.root} (the folder does not exist)`,
    );
  }

  private async hasCacheLayout(names: string[]): Promise<boolean> {
    if (!names.every((n) => LAYOUT_NAMES.has(n))) return false;
    if (!names.includes("objects") && !names.includes("refs")) return false;
    if (!names.includes("objects")) return true;
    try {
      for await (const shard of Deno.readDir(`${this.root}/objects`)) {
        if (!shard.isDirectory || !/^[0-9a-f]{2}$/.test(shard.name)) return false;
      }
    } catch {
      return false;
    }
    return true;
  }

  private async writeMarker(): Promise<void> {
    // Atomic: a reader sees no marker or a whole one.
    await writeFileAtomic(
      `${this.root}/${CACHE_MARKER}`,
      JSON.stringify({ cache: "klal", format: CACHE_FORMAT }) + "\n",
    );
  }

  /** Once per instance, before this process first creates anything in the cache. */
  private ready(): Promise<unknown> {
    return this.prepared ??= this.prepare({ write: true });
  }

  /** Directory of the finished entry `key` (it may not exist). */
  entryDir(key: string): string {
    return `${this.root}/objects/${key.slice(0, 2)}/${key}`;
  }

  /**
   * What the cache holds for `key`. An entry folder whose manifest is missing, unreadable,
   * not JSON, short of a field or for another key is corrupted: never served, and moved aside
   * by the next write of that key.
   */
  async lookup(key: string): Promise<EntryState> {
    const dir = this.entryDir(key);
    let text: string;
    try {
      text = await Deno.readTextFile(`${dir}/manifest.json`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        return { state: "corrupted", problem: `manifest.json: ${(e as Error).message}` };
      }
      const exists = await Deno.stat(dir).then(() => true, () => false);
      return exists ? { state: "corrupted", problem: "manifest.json: missing" } : {
        state: "missing",
      };
    }
    const problem = manifestProblem(text, key);
    if (problem) return { state: "corrupted", problem };
    return { state: "ok", manifest: JSON.parse(text) };
  }

  /** True when a whole finished entry exists for `key` (a corrupted one does not count). */
  async has(key: string): Promise<boolean> {
    return (await this.lookup(key)).state === "ok";
  }

  /** The entry's manifest; throws NotFound when it is missing, DamagedEntry when corrupted. */
  async manifest(key: string): Promise<Manifest> {
    const entry = await this.lookup(key);
    if (entry.state === "ok") return entry.manifest;
    if (entry.state === "missing") throw new Deno.errors.NotFound(`no cache entry ${key}`);
    throw new DamagedEntry(key, [entry.problem]);
  }

  /**
   * Bytes of one output file of an entry, checked against the size and sha256 its manifest
   * records: every read of an entry goes through here, so no command serves damaged bytes.
   * Throws DamagedEntry when they differ (or the file is gone), NotFound for a missing entry.
   */
  async readBytes(key: string, name: string): Promise<Uint8Array> {
    const manifest = await this.manifest(key);
    const expected = manifest.files[name];
    if (!expected) {
      throw new Deno.errors.NotFound(`cache entry ${key.slice(0, 12)} has no file ${name}`);
    }
    const bytes = await this.readEntryFile(key, name);
    const problem = typeof bytes === "string" ? bytes : await fileProblem(name, expected, bytes);
    if (problem !== undefined) throw new DamagedEntry(key, [problem]);
    return bytes as Uint8Array;
  }

  /** One JSON output file of an entry, checked as readBytes checks it. */
  async readJson<T>(key: string, name: string): Promise<T> {
    return JSON.parse(new TextDecoder().decode(await this.readBytes(key, name))) as T;
  }

  /**
   * Check a whole entry, its manifest and every file against the hashes it records; returns
   * the problems found (none for a sound entry). What each command runs before it uses an
   * entry: `experiment` recomputes what fails, `eval` and `report` refuse it.
   */
  async verify(key: string): Promise<string[]> {
    const entry = await this.lookup(key);
    if (entry.state === "corrupted") return [entry.problem];
    if (entry.state === "missing") return ["the entry is missing"];
    const problems: string[] = [];
    for (const [name, expected] of Object.entries(entry.manifest.files)) {
      const bytes = await this.readEntryFile(key, name);
      const problem = typeof bytes === "string" ? bytes : await fileProblem(name, expected, bytes);
      if (problem !== undefined) problems.push(problem);
    }
    return problems;
  }

  /** Throw DamagedEntry unless `verify(key)` finds nothing wrong. */
  async requireSound(key: string): Promise<void> {
    const problems = await this.verify(key);
    if (problems.length > 0) throw new DamagedEntry(key, problems);
  }

  /** A file of an entry, or why it cannot be read (a message naming the file). */
  private async readEntryFile(key: string, name: string): Promise<Uint8Array | string> {
    try {
      return await Deno.readFile(`${this.entryDir(key)}/${name}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return `${name}: missing`;
      return `${name}: ${(e as Error).message}`;
    }
  }

  /**
   * Build entry `key`: `produce` writes files into a private temp dir; then the manifest is
   * written and the directory renamed into place. If another writer finished first, its entry
   * wins and ours is discarded (same key = same content).
   */
  async write(
    key: string,
    meta: Omit<Manifest, "key" | "files" | "seconds" | "startedAt" | "info">,
    produce: (writer: EntryWriter) => Promise<Record<string, unknown> | void>,
  ): Promise<Manifest> {
    const started = new Date();
    await this.ready();
    await Deno.mkdir(`${this.root}/tmp`, { recursive: true });
    const dir = await Deno.makeTempDir({ dir: `${this.root}/tmp`, prefix: `${key.slice(0, 12)}-` });
    const files: Manifest["files"] = {};
    const record = async (name: string, bytes: Uint8Array) => {
      files[name] = { bytes: bytes.length, sha256: await sha256Hex(bytes) };
    };
    const writer: EntryWriter = {
      dir,
      async writeBytes(name, data) {
        if (name.includes("/")) {
          await Deno.mkdir(`${dir}/${name.slice(0, name.lastIndexOf("/"))}`, { recursive: true });
        }
        await Deno.writeFile(`${dir}/${name}`, data);
        await record(name, data);
      },
      writeText(name, text) {
        return this.writeBytes(name, new TextEncoder().encode(text));
      },
      writeJson(name, value) {
        return this.writeText(name, JSON.stringify(value));
      },
    };
    try {
      const info = (await produce(writer)) ?? {};
      const manifest: Manifest = {
        key,
        ...meta,
        files,
        startedAt: started.toISOString(),
        seconds: (Date.now() - started.getTime()) / 1000,
        info,
      };
      await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest, null, 2));
      const target = this.entryDir(key);
      if (await publishFolderOnce(dir, target)) return manifest;
      const existing = await this.lookup(key);
      if (existing.state === "ok") {
        await Deno.remove(dir, { recursive: true });
        return existing.manifest;
      }
      // A corrupted entry sits where ours goes: keep it for inspection, out of the way.
      await this.evict(key);
      if (await publishFolderOnce(dir, target)) return manifest;
      throw new Error(`cache entry ${key}: another writer replaced it while this one was written`);
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /**
   * Run `fn` holding the exclusive lock of `key` (an OS file lock: released by the kernel
   * if the process dies, so a crash never leaves a stale lock). Other processes asking
   * for the same key wait here.
   */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    await this.ready();
    await Deno.mkdir(`${this.root}/locks`, { recursive: true });
    const file = await Deno.open(`${this.root}/locks/${key}.lock`, {
      create: true,
      write: true,
    });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close();
    }
  }

  /** Move an entry, whole or corrupted, out of the way (it is recomputed on the next run). */
  async evict(key: string): Promise<void> {
    if (!(await Deno.stat(this.entryDir(key)).then(() => true, () => false))) return;
    await Deno.mkdir(`${this.root}/evicted`, { recursive: true });
    // Unique even for two evictions of one key in the same millisecond.
    const aside = `${key}-${Date.now()}-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.rename(this.entryDir(key), `${this.root}/evicted/${aside}`);
  }

  /**
   * The resumable mid-training checkpoints of stage `key` (../stages/_resume.ts), newest first:
   * outside its entry, which appears only whole.
   */
  partialPaths(key: string): { newest: string; previous: string } {
    return {
      newest: `${this.root}/${PARTIAL_DIR}/${key}.ckpt`,
      previous: `${this.root}/${PARTIAL_DIR}/${key}.prev.ckpt`,
    };
  }

  /** The key a stage of `experiment` resolved to last time, if any. */
  async readRef(experiment: string, stage: string): Promise<StageRef | undefined> {
    try {
      return JSON.parse(await Deno.readTextFile(this.refPath(experiment, stage)));
    } catch {
      return undefined;
    }
  }

  /** Remember what `stage` of `experiment` resolved to (atomic replace). */
  async writeRef(experiment: string, stage: string, ref: StageRef): Promise<void> {
    const path = this.refPath(experiment, stage);
    await this.ready();
    await writeJsonAtomic(path, ref);
  }

  private refPath(experiment: string, stage: string): string {
    return `${this.root}/refs/${experiment}/${stage.replaceAll(":", "_")}.json`;
  }
}
