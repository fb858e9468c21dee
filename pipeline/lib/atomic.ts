/**
 * Atomic writes: a reader (or a crash) sees either the old content or the new, never a
 * half-written file or folder.
 *
 * Every write goes to a uniquely named temporary sibling (same folder, so the rename stays
 * on one filesystem), is flushed to disk (`fsync` of the file, then of the folder that
 * holds the new name), and is renamed over the target. Replacing a folder takes two
 * renames (old aside, new in); if the second fails the old one is put back.
 */

/** A unique temporary name beside `target`: `<target>.tmp-<time>-<random>`. */
export function temporarySibling(target: string, tag = "tmp"): string {
  return `${target}.${tag}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/** The folder that holds `path` ("." for a bare name). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/** Flush a file's data (and size) to disk. */
async function syncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Flush a folder's entries, so a rename into it survives a power loss. Opening a folder
 * for writing is refused on some systems; a folder that cannot be synced is left as is
 * (the rename itself is still atomic).
 */
async function syncFolder(path: string): Promise<void> {
  let folder: Deno.FsFile;
  try {
    folder = await Deno.open(path, { read: true });
  } catch {
    return;
  }
  try {
    await folder.sync();
  } catch {
    // Not supported for folders here: nothing more to do.
  } finally {
    folder.close();
  }
}

/** Every file under `path` (recursively), flushed to disk. */
async function syncTree(path: string): Promise<void> {
  for await (const entry of Deno.readDir(path)) {
    const full = `${path}/${entry.name}`;
    if (entry.isDirectory) await syncTree(full);
    else if (entry.isFile) await syncFile(full);
  }
  await syncFolder(path);
}

/**
 * Write `data` to `path` atomically (creates the parent folder).
 *
 * @example await writeFileAtomic("reports/x/results.json", JSON.stringify(results));
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const parent = parentOf(path);
  await Deno.mkdir(parent, { recursive: true });
  const temp = temporarySibling(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(temp, data);
    else await Deno.writeFile(temp, data);
    await syncFile(temp);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncFolder(parent);
}

/** `writeFileAtomic(path, JSON.stringify(value, null, indent))`. */
export function writeJsonAtomic(path: string, value: unknown, indent = 2): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, indent));
}

/**
 * Build a folder with `fill(tempFolder)` and put it at `target` in one step, replacing what
 * was there. On any failure the temporary folder is removed and the old `target`, if any,
 * is left (or put back) in place.
 *
 * @example await replaceFolderAtomic("reports/x", async (dir) => {
 *   await Deno.writeTextFile(`${dir}/table.md`, table);
 * });
 */
export async function replaceFolderAtomic(
  target: string,
  fill: (folder: string) => Promise<void>,
): Promise<void> {
  const parent = parentOf(target);
  await Deno.mkdir(parent, { recursive: true });
  const temp = temporarySibling(target);
  const old = temporarySibling(target, "old");
  await Deno.mkdir(temp);
  try {
    await fill(temp);
    await syncTree(temp);
    let hadOld = false;
    try {
      await Deno.rename(target, old);
      hadOld = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    try {
      await Deno.rename(temp, target);
    } catch (error) {
      if (hadOld) await Deno.rename(old, target);
      throw error;
    }
    await syncFolder(parent);
    if (hadOld) await Deno.remove(old, { recursive: true });
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Move a finished folder `source` to `target`, which must not exist yet (the content-
 * addressed cache: a key's entry never changes once written). Returns false, leaving
 * `source` in place, when another writer got there first.
 */
export async function publishFolderOnce(source: string, target: string): Promise<boolean> {
  await syncTree(source);
  await Deno.mkdir(parentOf(target), { recursive: true });
  try {
    await Deno.rename(source, target);
  } catch (error) {
    // rename(2) over a non-empty folder fails with ENOTEMPTY (or EEXIST): someone else won.
    if (await Deno.stat(target).then((s) => s.isDirectory, () => false)) return false;
    throw error;
  }
  await syncFolder(parentOf(target));
  return true;
}
