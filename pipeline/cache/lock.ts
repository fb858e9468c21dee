/**
 * The cache-wide lock between running experiments and `cache gc --apply`.
 *
 *   <root>/cache.lock                 an OS file lock (flock): shared by every running
 *                                     experiment, exclusive while gc deletes
 *   <root>/running/<pid>-<id>.json    who holds it shared, so gc can name them
 *
 * An experiment keeps its work in progress in tmp/ and jobs/ and writes its refs only at the
 * end, so gc must not run while one is in flight. The kernel releases a lock when its process
 * dies, so a crash never leaves the cache locked; a stale `running/` file is only a name in a
 * message, removed by the next `gc --apply`.
 */
import { writeJsonAtomic } from "../lib/atomic.ts";
import type { Cache } from "./store.ts";

/** File name of the lock at the cache root. */
export const CACHE_LOCK = "cache.lock";

/** An experiment that holds the lock shared, as it recorded itself. */
export interface LockHolder {
  pid: number;
  host: string;
  experiment: string;
  startedAt: string;
}

/** A held lock; released by `release()` or at the end of an `await using` block. */
export interface HeldLock extends AsyncDisposable {
  release(): Promise<void>;
}

function openLockFile(cache: Cache): Promise<Deno.FsFile> {
  return Deno.open(`${cache.root}/${CACHE_LOCK}`, { create: true, write: true });
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "?";
  }
}

/**
 * Hold the lock shared for the run of `experiment` (many experiments at once are fine). If
 * gc holds it, `onWait` is told and this waits until gc is done. The cache root must exist.
 */
export async function holdExperimentLock(
  cache: Cache,
  experiment: string,
  onWait?: () => void,
): Promise<HeldLock> {
  const file = await openLockFile(cache);
  let record: string | undefined;
  try {
    if (!(await file.tryLock(false))) {
      onWait?.();
      await file.lock(false);
    }
    await Deno.mkdir(`${cache.root}/running`, { recursive: true });
    record = `${cache.root}/running/${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.json`;
    const holder: LockHolder = {
      pid: Deno.pid,
      host: hostname(),
      experiment,
      startedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(record, holder, 0); // gc reads only whole *.json records
  } catch (e) {
    file.close();
    throw e;
  }
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await Deno.remove(record!).catch(() => {});
    file.close(); // closing the last descriptor releases the flock
  };
  return { release, [Symbol.asyncDispose]: release };
}

/** The experiments that recorded themselves as holding the lock (stale ones included). */
export async function lockHolders(cache: Cache): Promise<LockHolder[]> {
  const holders: LockHolder[] = [];
  try {
    for await (const entry of Deno.readDir(`${cache.root}/running`)) {
      if (!entry.name.endsWith(".json")) continue;
      try {
        holders.push(JSON.parse(await Deno.readTextFile(`${cache.root}/running/${entry.name}`)));
      } catch { /* being written or removed right now */ }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return holders.sort((a, b) => String(a.startedAt).localeCompare(String(b.startedAt)));
}

/** "an experiment is running (pid N on HOST: NAME, since T)", for refusals. */
export function describeHolders(holders: LockHolder[]): string {
  if (holders.length === 0) return "an experiment is running on this cache";
  const one = (h: LockHolder) => `pid ${h.pid} on ${h.host}: ${h.experiment}, since ${h.startedAt}`;
  return holders.length === 1
    ? `an experiment is running (${one(holders[0])})`
    : `${holders.length} experiments are running (${holders.map(one).join("; ")})`;
}

/**
 * Take the lock exclusive without waiting: the lock, or the experiments that hold it. While
 * it is held no experiment runs, so any `running/` record left is stale.
 */
export async function tryExclusiveLock(
  cache: Cache,
): Promise<{ lock: HeldLock } | { holders: LockHolder[] }> {
  const file = await openLockFile(cache);
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) return { holders: await lockHolders(cache) };
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      file.close();
    }
    return Promise.resolve();
  };
  return { lock: { release, [Symbol.asyncDispose]: release } };
}
