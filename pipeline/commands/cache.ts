/**
 * `deno task cache ls` — every cache entry: key, stage, size, which experiments use it
 * (corrupted entries are listed as such), then the resumable checkpoints in partial/.
 * `deno task cache verify` — every entry's files checked against the hashes in its manifest;
 * exit 1 when one is damaged (the next `deno task experiment` recomputes it).
 * `deno task cache gc [--apply] [--experiments DIR]` — entries and partial checkpoints that
 * neither a spec under experiments/ (or DIR) nor an experiment's last run (refs/) uses; dry
 * run by default, --apply deletes them, plus leftovers in tmp/, evicted/, jobs/ and running/.
 *
 * gc works only in a folder marked as a cache, holds the cache lock exclusive while it
 * deletes, and stops before deleting anything when it cannot tell what is in use.
 *
 * Exit status: 0 done; 1 `gc --apply` while an experiment runs (nothing deleted), or `verify`
 * found a damaged entry; 2 refused, nothing deleted: the root is not a cache (empty, /, a
 * file, no marker), a spec fails to plan, a ref is unreadable, or bad usage.
 */
import type { FileDigests } from "../lib/file_digest.ts";
import { TASKS } from "../../tasks/registry.ts";
import {
  helpRequested,
  isNotWritable,
  parseCommand,
  printHelp,
  runCommand,
  SetupError,
  UsageError,
} from "../lib/cli.ts";
import {
  Cache,
  CacheRootError,
  defaultCacheDir,
  PARTIAL_DIR,
  partialKeyOf,
} from "../cache/store.ts";
import { describeHolders, type HeldLock, tryExclusiveLock } from "../cache/lock.ts";
import { buildPlan, resolvePlan } from "../run/plan.ts";
import { SpecError } from "../spec/mod.ts";
import { expandSweep } from "../spec/sweep.ts";
import { PROJECT_ROOT } from "../lib/paths.ts";
import { parse as parseYaml } from "yaml";
import { dirname, resolve } from "node:path";

const ROOT = PROJECT_ROOT;
const USAGE = `usage: deno task cache ls [--json] | verify | gc [--apply] [--experiments DIR]

  ls                 every entry: key, size, stage, the experiments whose last run used it;
                     then the resumable checkpoints of unfinished fine-tunes (partial/)
    --json           the same as one JSON document ({root, entries, partials, bytes})
  verify             check every entry's files against the hashes in its manifest
                     (exit 1 when one is damaged; the next experiment run recomputes it)
  gc                 what no spec under experiments/ and no last run uses (dry run)
    --apply          delete it, with the leftovers of interrupted runs
    --experiments DIR  the folder of specs whose stages are kept (default: experiments/)

environment: KLAL_CACHE_DIR (default .cache/ in the repository)`;

/** One cache entry as the tools show it. */
export interface EntryInfo {
  key: string;
  stage: string;
  kind: string;
  bytes: number;
  createdAt: string;
  /** Experiments whose last run used this entry (from refs/). */
  usedBy: string[];
  /** Why the entry cannot be served (its manifest), when it is corrupted. */
  corrupted?: string;
}

async function dirSize(path: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(path)) {
    const full = `${path}/${entry.name}`;
    if (entry.isDirectory) total += await dirSize(full);
    else total += (await Deno.stat(full)).size;
  }
  return total;
}

async function* listDir(path: string): AsyncGenerator<Deno.DirEntry> {
  try {
    yield* Deno.readDir(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Which experiments' last runs use each key, from refs/. A ref that cannot be read is a
 * problem, not a crash: `ls` warns, gc stops (it could be protecting any entry).
 */
export async function readRefs(
  cache: Cache,
): Promise<{ usedBy: Map<string, Set<string>>; problems: string[] }> {
  const usedBy = new Map<string, Set<string>>();
  const problems: string[] = [];
  for await (const experiment of listDir(`${cache.root}/refs`)) {
    if (!experiment.isDirectory) continue;
    for await (const ref of listDir(`${cache.root}/refs/${experiment.name}`)) {
      // Only finished refs: writeRef renames a `.tmp` file into place.
      if (!ref.name.endsWith(".json")) continue;
      const path = `${cache.root}/refs/${experiment.name}/${ref.name}`;
      let key: unknown;
      try {
        key = JSON.parse(await Deno.readTextFile(path)).key;
      } catch (e) {
        problems.push(`${path}: ${(e as Error).message}`);
        continue;
      }
      if (typeof key !== "string" || key === "") {
        problems.push(`${path}: no "key" in it`);
        continue;
      }
      if (!usedBy.has(key)) usedBy.set(key, new Set());
      usedBy.get(key)!.add(experiment.name);
    }
  }
  return { usedBy, problems };
}

/** Every entry of the cache, whole or corrupted, with who uses it; plus unreadable refs. */
export async function listEntries(
  cache: Cache,
): Promise<{ entries: EntryInfo[]; refProblems: string[] }> {
  const { usedBy, problems: refProblems } = await readRefs(cache);
  const entries: EntryInfo[] = [];
  for await (const shard of listDir(`${cache.root}/objects`)) {
    if (!shard.isDirectory) continue;
    for await (const entry of listDir(`${cache.root}/objects/${shard.name}`)) {
      if (!entry.isDirectory) continue;
      const found = await cache.lookup(entry.name);
      const manifest = found.state === "ok" ? found.manifest : undefined;
      entries.push({
        key: entry.name,
        stage: manifest?.stage ?? "(corrupted)",
        kind: manifest?.kind ?? "?",
        bytes: await dirSize(`${cache.root}/objects/${shard.name}/${entry.name}`),
        createdAt: manifest?.startedAt ?? "",
        usedBy: [...(usedBy.get(entry.name) ?? [])].sort(),
        ...(found.state === "corrupted" ? { corrupted: found.problem } : {}),
      });
    }
  }
  entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return { entries, refProblems };
}

/** A resumable checkpoint file in partial/ (../stages/_resume.ts). */
export interface PartialInfo {
  file: string;
  key: string;
  bytes: number;
}

/** The checkpoint files in partial/ (names the cache does not make are left out). */
export async function listPartials(cache: Cache): Promise<PartialInfo[]> {
  const out: PartialInfo[] = [];
  for await (const entry of listDir(`${cache.root}/${PARTIAL_DIR}`)) {
    const key = partialKeyOf(entry.name);
    if (!entry.isFile || key === undefined) continue;
    const bytes = (await Deno.stat(`${cache.root}/${PARTIAL_DIR}/${entry.name}`)).size;
    out.push({ file: entry.name, key, bytes });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

async function specFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of listDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await specFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/**
 * The YAML files among `files` that some spec names as its `base:` block (a path relative to
 * the spec's folder): not specs themselves. A file that does not parse names nothing here;
 * planning it reports it.
 */
async function baseFiles(files: string[]): Promise<Set<string>> {
  const bases = new Set<string>();
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parseYaml(await Deno.readTextFile(file));
    } catch {
      continue;
    }
    const base = (doc as { base?: unknown } | null)?.base;
    if (typeof base !== "string") continue;
    bases.add(resolve(dirname(file), base));
  }
  return bases;
}

/** Keys that the specs under `experimentsDir` resolve to today (sweeps expanded). */
export async function referencedKeys(
  experimentsDir: string,
  digests?: FileDigests,
): Promise<{ keys: Set<string>; problems: string[] }> {
  const keys = new Set<string>();
  const problems: string[] = [];
  const files = await specFiles(experimentsDir);
  const bases = await baseFiles(files);
  for (const file of files) {
    // A `base:` block file is read by the specs naming it, and planned with them.
    if (bases.has(resolve(file))) continue;
    try {
      const specs = expandSweep(await Deno.readTextFile(file), file, [], { tasks: TASKS });
      for (const spec of specs) {
        for (const stage of await resolvePlan(buildPlan(spec), { digests })) keys.add(stage.key);
      }
    } catch (e) {
      problems.push(formatProblem(file, e));
    }
  }
  return { keys, problems };
}

/** One spec's failure, naming the file (a SpecError's lines name file:line:column too). */
function formatProblem(file: string, e: unknown): string {
  if (e instanceof SpecError) return `${file}:\n${e.message.replace(/^/gm, "  ")}`;
  return `${file}: ${e instanceof Error ? e.message : String(e)}`;
}

function human(bytes: number): string {
  const units = ["B", "KB", "MB", "GB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** "1 thing", "2 things". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function describe(e: EntryInfo): string {
  return e.corrupted ? `(corrupted: ${e.corrupted})` : e.stage;
}

/** Refuse a root that is not a cache: the message, exit status 2. */
function refuseRoot(e: unknown): number {
  if (!(e instanceof CacheRootError)) throw e;
  console.error(`error: ${e.message}`);
  return 2;
}

/**
 * Refuse a root that cannot be read as a cache (CacheRootError): empty, the filesystem root,
 * a file, unreadable. A folder that does not exist yet is an empty cache.
 */
async function readableRoot(cache: Cache): Promise<void> {
  const problem = cache.rootProblem();
  if (problem) throw new CacheRootError(problem);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(cache.root);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new CacheRootError(`cannot read the cache root ${cache.root}: ${(e as Error).message}`);
  }
  if (!info.isDirectory) {
    throw new CacheRootError(
      `the cache root ${cache.root} is a file, not a folder: point KLAL_CACHE_DIR at a folder`,
    );
  }
  try {
    for await (const _ of Deno.readDir(cache.root)) break;
  } catch (e) {
    throw new CacheRootError(`cannot read the cache root ${cache.root}: ${(e as Error).message}`);
  }
}

async function ls(cache: Cache, json = false): Promise<number> {
  try {
    await readableRoot(cache);
  } catch (e) {
    return refuseRoot(e);
  }
  const { entries, refProblems } = await listEntries(cache);
  const partials = await listPartials(cache);
  for (const p of refProblems) console.error(`warning: unreadable ref ${p}`);
  if (json) {
    const bytes = [...entries, ...partials].reduce((a, e) => a + e.bytes, 0);
    console.log(JSON.stringify({ root: cache.root, entries, partials, bytes }, null, 2));
    return 0;
  }
  for (const e of entries) {
    console.log(
      `${e.key.slice(0, 12)}  ${human(e.bytes).padStart(9)}  ${describe(e).padEnd(34)} ${
        e.usedBy.join(", ") || "-"
      }`,
    );
  }
  for (const p of partials) {
    const which = p.file.endsWith(".prev.ckpt")
      ? "previous"
      : p.file.endsWith(".ckpt")
      ? "newest"
      : "being written";
    console.log(
      `${p.key.slice(0, 12)}  ${human(p.bytes).padStart(9)}  ${
        `partial checkpoint (${which})`.padEnd(34)
      } -`,
    );
  }
  const total = entries.reduce((a, e) => a + e.bytes, 0);
  const partialBytes = partials.reduce((a, p) => a + p.bytes, 0);
  const corrupted = entries.filter((e) => e.corrupted).length;
  const parts = [
    `${entries.length} entries`,
    ...(corrupted > 0 ? [`${corrupted} corrupted (the next run recomputes them)`] : []),
    ...(partials.length > 0
      ? [`${count(partials.length, "partial checkpoint")} (${human(partialBytes)})`]
      : []),
  ];
  console.log(`${parts.join(", ")}, ${human(total + partialBytes)} in ${cache.root}`);
  return 0;
}

/** Check every entry's files against its manifest; exit 1 when one is damaged. */
async function verifyAll(cache: Cache): Promise<number> {
  try {
    await readableRoot(cache);
  } catch (e) {
    return refuseRoot(e);
  }
  const { entries } = await listEntries(cache);
  let damaged = 0;
  for (const e of entries) {
    const problems = await cache.verify(e.key);
    if (problems.length === 0) continue;
    damaged++;
    console.log(`damaged ${e.key.slice(0, 12)}  ${e.stage}: ${problems.join("; ")}`);
  }
  console.log(
    damaged === 0
      ? `${entries.length} entries, all sound`
      : `${damaged} of ${entries.length} entries damaged: never served; the next ` +
        "`deno task experiment` that uses one moves it aside and recomputes it",
  );
  return damaged === 0 ? 0 : 1;
}

async function gc(cache: Cache, apply: boolean, experimentsDir: string): Promise<number> {
  try {
    await cache.requireMarker();
  } catch (e) {
    return refuseRoot(e);
  }
  // A mistyped folder would plan no spec, and everything but refs/ would look unused.
  if (!(await Deno.stat(experimentsDir).then((s) => s.isDirectory, () => false))) {
    console.error(`error: no folder ${experimentsDir} (gc keeps what the specs in it use)`);
    return 2;
  }
  // Taken before anything is read, so what is listed is what is deleted.
  let lock: HeldLock | undefined;
  const attempt = await tryExclusiveLock(cache).catch((e) => {
    // A dry run needs no lock: on a cache it cannot write to, it lists without one.
    if (!apply) return undefined;
    if (isNotWritable(e)) {
      throw new SetupError(
        `cache folder ${cache.root} is read-only, so gc --apply deletes nothing (${e.message})`,
      );
    }
    throw e;
  });
  if (attempt && "holders" in attempt) {
    const running = describeHolders(attempt.holders);
    if (apply) {
      console.error(
        `error: ${running}; gc --apply deletes nothing while an experiment runs: ` +
          "try again when it ends",
      );
      return 1;
    }
    console.log(`note: ${running}; entries it makes are listed until it ends`);
  } else if (attempt && apply) lock = attempt.lock;
  else await attempt?.lock.release();
  try {
    const { keys, problems } = await referencedKeys(experimentsDir, cache.fileDigests());
    if (problems.length > 0) {
      for (const p of problems) console.error(`error: cannot plan ${p}`);
      console.error(
        `gc stopped, nothing deleted: without the plan of every spec under ${experimentsDir} ` +
          "it cannot tell which entries are in use (fix the spec or move it out)",
      );
      return 2;
    }
    const { entries, refProblems } = await listEntries(cache);
    if (refProblems.length > 0) {
      for (const p of refProblems) console.error(`error: unreadable ref ${p}`);
      console.error(
        "gc stopped, nothing deleted: it cannot tell which entries these refs keep " +
          "(fix or delete them)",
      );
      return 2;
    }
    const unused = entries.filter((e) => e.usedBy.length === 0 && !keys.has(e.key));
    let freed = 0;
    for (const e of unused) {
      freed += e.bytes;
      console.log(`${apply ? "removed" : "would remove"} ${e.key.slice(0, 12)}  ${describe(e)}`);
      if (apply) await removeEntry(cache, e.key);
    }
    // A checkpoint is kept while a spec plans its stage and the stage has no entry yet (the
    // next run resumes from it); any other is a leftover.
    const finished = new Set(entries.map((e) => e.key));
    const stale = (await listPartials(cache)).filter((p) =>
      !keys.has(p.key) || finished.has(p.key)
    );
    for (const p of stale) {
      freed += p.bytes;
      console.log(`${apply ? "removed" : "would remove"} partial/${p.file}`);
      if (apply) await Deno.remove(`${cache.root}/${PARTIAL_DIR}/${p.file}`).catch(() => {});
    }
    if (apply) {
      for (const leftover of ["tmp", "evicted", "jobs", "running", "live"]) {
        await Deno.remove(`${cache.root}/${leftover}`, { recursive: true }).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) {
            console.error(`warning: cannot remove ${cache.root}/${leftover}: ${e.message}`);
          }
        });
      }
    }
    console.log(
      `${unused.length} unreferenced entries, ${
        stale.length > 0 ? `${count(stale.length, "stale partial checkpoint")}, ` : ""
      }${human(freed)}${apply ? " freed" : " (dry run: add --apply to delete)"}`,
    );
    return 0;
  } finally {
    await lock?.release();
  }
}

/** Delete an entry so that no half of it is ever visible: rename it out of objects/ first. */
async function removeEntry(cache: Cache, key: string): Promise<void> {
  await Deno.mkdir(`${cache.root}/tmp`, { recursive: true });
  const doomed = `${cache.root}/tmp/gc-${key}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.rename(cache.entryDir(key), doomed);
  await Deno.remove(doomed, { recursive: true });
}

/** `deno task cache ls | gc [--apply] [--experiments DIR]`; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    const [command, ...rest] = args;
    if (command !== undefined && helpRequested([command])) return printHelp(USAGE);
    if (command === "ls") {
      const parsed = parseCommand(rest, { options: { json: { type: "boolean" } } });
      if (parsed.help) return printHelp(USAGE);
      return await ls(new Cache(defaultCacheDir()), parsed.values.json === true);
    }
    if (command === "verify") {
      if (parseCommand(rest, { options: {} }).help) return printHelp(USAGE);
      return await verifyAll(new Cache(defaultCacheDir()));
    }
    if (command === "gc") {
      const parsed = parseCommand(rest, {
        options: { apply: { type: "boolean" }, experiments: { type: "string" } },
      });
      if (parsed.help) return printHelp(USAGE);
      const experimentsDir = (parsed.values.experiments as string | undefined) ??
        `${ROOT}/experiments`;
      return await gc(new Cache(defaultCacheDir()), parsed.values.apply === true, experimentsDir);
    }
    throw new UsageError(
      command === undefined
        ? 'expected "ls", "verify" or "gc"'
        : `expected "ls", "verify" or "gc", found "${command}"`,
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
