/**
 * Content-addressed stage store.
 *
 *   <root>/objects/<key[0:2]>/<key>/   one finished entry: output files + manifest.json
 *   <root>/tmp/                        entries being written (renamed into objects/ when whole)
 *   <root>/refs/<experiment>/<stage>.json   the key a stage of an experiment last resolved to
 *
 * An entry becomes visible only by an atomic rename of a complete directory, so a crash or
 * kill never leaves a half-written entry where a reader could see it.
 */
import { canonicalJson } from "./spec.ts";
import { pathOf } from "./paths.ts";

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

/** The cache root: `KLAL_CACHE_DIR`, else `.cache/` at the repository root. */
export function defaultCacheDir(): string {
  return Deno.env.get("KLAL_CACHE_DIR") ??
    pathOf(new URL("../.cache", import.meta.url));
}

/** SHA-256 of bytes or text, as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
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
  constructor(readonly root: string) {}

  /** Directory of the finished entry `key` (it may not exist). */
  entryDir(key: string): string {
    return `${this.root}/objects/${key.slice(0, 2)}/${key}`;
  }

  /** True when a finished entry exists for `key`. */
  async has(key: string): Promise<boolean> {
    try {
      await Deno.stat(`${this.entryDir(key)}/manifest.json`);
      return true;
    } catch {
      return false;
    }
  }

  /** The entry's manifest. */
  async manifest(key: string): Promise<Manifest> {
    return JSON.parse(await Deno.readTextFile(`${this.entryDir(key)}/manifest.json`));
  }

  /** Bytes of one output file of an entry. */
  readBytes(key: string, name: string): Promise<Uint8Array> {
    return Deno.readFile(`${this.entryDir(key)}/${name}`);
  }

  /** One JSON output file of an entry. */
  async readJson<T>(key: string, name: string): Promise<T> {
    return JSON.parse(await Deno.readTextFile(`${this.entryDir(key)}/${name}`)) as T;
  }

  /** Check every file against the hashes in the manifest; returns the problems found. */
  async verify(key: string): Promise<string[]> {
    const problems: string[] = [];
    const m = await this.manifest(key);
    for (const [name, expected] of Object.entries(m.files)) {
      try {
        const bytes = await this.readBytes(key, name);
        if (bytes.length !== expected.bytes) {
          problems.push(`${name}: ${bytes.length} bytes, manifest says ${expected.bytes}`);
        } else if ((await sha256Hex(bytes)) !== expected.sha256) {
          problems.push(`${name}: content does not match its sha256`);
        }
      } catch (e) {
        problems.push(`${name}: ${(e as Error).message}`);
      }
    }
    return problems;
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
      await Deno.mkdir(`${this.root}/objects/${key.slice(0, 2)}`, { recursive: true });
      try {
        await Deno.rename(dir, target);
      } catch (e) {
        if (await this.has(key)) {
          await Deno.remove(dir, { recursive: true });
          return await this.manifest(key);
        }
        throw e;
      }
      return manifest;
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

  /** Move an entry out of the way (it is recomputed on the next run). */
  async evict(key: string): Promise<void> {
    if (!(await this.has(key))) return;
    await Deno.mkdir(`${this.root}/evicted`, { recursive: true });
    await Deno.rename(this.entryDir(key), `${this.root}/evicted/${key}-${Date.now()}`);
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
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(ref, null, 2));
    await Deno.rename(tmp, path);
  }

  private refPath(experiment: string, stage: string): string {
    return `${this.root}/refs/${experiment}/${stage.replaceAll(":", "_")}.json`;
  }
}
