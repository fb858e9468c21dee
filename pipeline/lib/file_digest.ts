/**
 * SHA-256 of files by content, with a memo on path, size and modification time, so that a
 * plan over a folder of thousands of images hashes each image once and afterwards only
 * stats it. The memo is an accelerator, never a source of truth: an entry whose size or
 * modification time differs from the file's is recomputed, a memo that cannot be read is
 * ignored, and it is written atomically (two runs saving at once leave one of their memos
 * whole). A file rewritten with the same size inside the same modification-time tick would
 * keep its old digest; `--force` on its data stage recomputes it regardless.
 */
import { resolve } from "node:path";
import { writeJsonAtomic } from "./atomic.ts";
import { sha256Hex } from "./hash.ts";

/** One remembered digest. */
interface MemoEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** The memo file's format version; another version is ignored (and rewritten). */
const MEMO_FORMAT = 1;

/** Files hashed at once (reads overlap; memory stays bounded). */
const CONCURRENCY = 8;

export class FileDigests {
  private entries = new Map<string, MemoEntry>();
  private loaded = false;
  private changed = false;
  /** Files read and hashed (not answered from the memo) since construction. */
  hashed = 0;

  /** `memoPath`: where the memo lives (undefined: hash every file, remember nothing). */
  constructor(readonly memoPath?: string) {}

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.memoPath) return;
    try {
      const parsed = JSON.parse(await Deno.readTextFile(this.memoPath));
      if (parsed?.format !== MEMO_FORMAT || typeof parsed.files !== "object") return;
      for (const [path, e] of Object.entries(parsed.files as Record<string, MemoEntry>)) {
        if (
          typeof e?.size === "number" && typeof e.mtimeMs === "number" &&
          typeof e.sha256 === "string" && /^[0-9a-f]{64}$/.test(e.sha256)
        ) this.entries.set(path, e);
      }
    } catch {
      // No memo yet, or one that cannot be read: every file is hashed.
    }
  }

  /** SHA-256 (hex) of the file at `path`; throws Deno.errors.NotFound when it is missing. */
  async digest(path: string): Promise<string> {
    await this.load();
    const absolute = resolve(path);
    const info = await Deno.stat(absolute);
    const mtimeMs = info.mtime?.getTime() ?? -1;
    const known = this.entries.get(absolute);
    if (known && known.size === info.size && known.mtimeMs === mtimeMs && mtimeMs >= 0) {
      return known.sha256;
    }
    const sha256 = await sha256Hex(await Deno.readFile(absolute));
    this.hashed++;
    this.entries.set(absolute, { size: info.size, mtimeMs, sha256 });
    this.changed = true;
    return sha256;
  }

  /**
   * One digest over many files: SHA-256 of their paths (as given, sorted) each with its
   * content's digest, so that a changed, added, removed or renamed file changes it.
   */
  async digestAll(paths: readonly string[]): Promise<string> {
    const sorted = [...new Set(paths)].sort();
    const lines: string[] = new Array(sorted.length);
    for (let i = 0; i < sorted.length; i += CONCURRENCY) {
      const chunk = sorted.slice(i, i + CONCURRENCY);
      const digests = await Promise.all(chunk.map((p) => this.digest(p)));
      chunk.forEach((p, k) => lines[i + k] = `${p}\t${digests[k]}\n`);
    }
    return await sha256Hex(lines.join(""));
  }

  /** Write the memo when something new was hashed (atomically; creates its folder). */
  async save(): Promise<void> {
    if (!this.memoPath || !this.changed) return;
    const files = Object.fromEntries([...this.entries].sort(([a], [b]) => a < b ? -1 : 1));
    await Deno.mkdir(resolve(this.memoPath, ".."), { recursive: true });
    await writeJsonAtomic(this.memoPath, { format: MEMO_FORMAT, files }, 0);
    this.changed = false;
  }
}
