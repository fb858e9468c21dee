/**
 * `deno task cache ls` — every cache entry: key, stage, size, which experiments use it.
 * `deno task cache gc [--apply]` — entries that no spec under experiments/ references
 * (dry run by default; --apply deletes them, plus leftovers in tmp/, evicted/ and jobs/).
 */
import { TASKS } from "../tasks/registry.ts";
import { Cache, defaultCacheDir, type Manifest } from "./cache.ts";
import { buildPlan, resolvePlan } from "./plan.ts";
import { formatSpecError, SpecError } from "./spec.ts";
import { expandSweep } from "./sweep.ts";
import { PROJECT_ROOT } from "./paths.ts";

const ROOT = PROJECT_ROOT;
const USAGE = "usage: deno task cache ls | deno task cache gc [--apply]";

/** One cache entry as the tools show it. */
export interface EntryInfo {
  key: string;
  stage: string;
  kind: string;
  bytes: number;
  createdAt: string;
  /** Experiments whose last run used this entry (from refs/). */
  usedBy: string[];
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

/** Every finished entry of the cache, with who uses it. */
export async function listEntries(cache: Cache): Promise<EntryInfo[]> {
  const usedBy = new Map<string, Set<string>>();
  for await (const experiment of listDir(`${cache.root}/refs`)) {
    for await (const ref of listDir(`${cache.root}/refs/${experiment.name}`)) {
      const { key } = JSON.parse(
        await Deno.readTextFile(`${cache.root}/refs/${experiment.name}/${ref.name}`),
      );
      if (!usedBy.has(key)) usedBy.set(key, new Set());
      usedBy.get(key)!.add(experiment.name);
    }
  }
  const entries: EntryInfo[] = [];
  for await (const shard of listDir(`${cache.root}/objects`)) {
    for await (const entry of listDir(`${cache.root}/objects/${shard.name}`)) {
      const dir = `${cache.root}/objects/${shard.name}/${entry.name}`;
      let manifest: Partial<Manifest> = {};
      try {
        manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
      } catch { /* listed as unreadable */ }
      entries.push({
        key: entry.name,
        stage: manifest.stage ?? "(no manifest)",
        kind: manifest.kind ?? "?",
        bytes: await dirSize(dir),
        createdAt: manifest.startedAt ?? "",
        usedBy: [...(usedBy.get(entry.name) ?? [])].sort(),
      });
    }
  }
  return entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
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

/** Keys that the specs under `experimentsDir` resolve to today (sweeps expanded). */
export async function referencedKeys(
  experimentsDir: string,
): Promise<{ keys: Set<string>; problems: string[] }> {
  const keys = new Set<string>();
  const problems: string[] = [];
  for (const file of await specFiles(experimentsDir)) {
    try {
      const specs = expandSweep(await Deno.readTextFile(file), file, [], { tasks: TASKS });
      for (const spec of specs) {
        for (const stage of await resolvePlan(buildPlan(spec))) keys.add(stage.key);
      }
    } catch (e) {
      problems.push(e instanceof SpecError ? formatSpecError(e) : `${file}: ${e}`);
    }
  }
  return { keys, problems };
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

async function main(args: string[]): Promise<number> {
  const cache = new Cache(defaultCacheDir());
  const [command, ...rest] = args;
  if (command === "ls" && rest.length === 0) {
    const entries = await listEntries(cache);
    for (const e of entries) {
      console.log(
        `${e.key.slice(0, 12)}  ${human(e.bytes).padStart(9)}  ${e.stage.padEnd(34)} ${
          e.usedBy.join(", ") || "-"
        }`,
      );
    }
    const total = entries.reduce((a, e) => a + e.bytes, 0);
    console.log(`${entries.length} entries, ${human(total)} in ${cache.root}`);
    return 0;
  }
  if (command === "gc" && rest.every((a) => a === "--apply")) {
    const apply = rest.includes("--apply");
    const { keys, problems } = await referencedKeys(`${ROOT}/experiments`);
    for (const p of problems) console.error(`warning: cannot plan ${p}`);
    const unused = (await listEntries(cache)).filter((e) => !keys.has(e.key));
    let freed = 0;
    for (const e of unused) {
      freed += e.bytes;
      console.log(`${apply ? "removed" : "would remove"} ${e.key.slice(0, 12)}  ${e.stage}`);
      if (apply) await Deno.remove(cache.entryDir(e.key), { recursive: true });
    }
    if (apply) {
      for (const leftover of ["tmp", "evicted", "jobs"]) {
        await Deno.remove(`${cache.root}/${leftover}`, { recursive: true }).catch(() => {});
      }
    }
    console.log(
      `${unused.length} unreferenced entries, ${human(freed)}${
        apply ? " freed" : " (dry run: add --apply to delete)"
      }`,
    );
    return 0;
  }
  console.error(`error: expected "ls" or "gc [--apply]", found "${args.join(" ")}"\n${USAGE}`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
