import { fileURLToPath } from "node:url";
import { Cache } from "../pipeline/cache/store.ts";
/**
 * Running the pipeline's commands as a user would, in a subprocess, on tiny specs in
 * temporary folders (shared by tests).
 */

/** The repository root, with a trailing slash. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Output of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `deno run -A ...flags <ROOT><script> ...args` with `env` added (plain progress lines, no
 * colour), e.g. `runScript("pipeline/commands/experiment.ts", [spec], { KLAL_CACHE_DIR: dir })`.
 */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  flags: string[] = [],
): Promise<CommandResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...flags, `${ROOT}${script}`, ...args],
    env: { ...env, KLAL_PLAIN_PROGRESS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/**
 * The sections of a tiny Grid Patch spec, as YAML flow text: 16 px images of 2x2 cells, a
 * two-layer model of width 16 and a few steps of each stage, so a whole run takes seconds.
 */
export const TINY_SECTIONS: Readonly<Record<string, string>> = {
  seeds: "[0]",
  task: "{ name: grid-patch, image_size: 16, train: 64, test: 16, params: { grid: 2, blobs: 1 } }",
  model: "{ patch_size: 8, d_model: 16, layers: 2, heads: 2 }",
  base: "{ steps: 4, batch_size: 8, train: 32 }",
  train: "{ steps: 4, batch_size: 8, warmup: 1, log_every: 1 }",
  eval: "{ batch_size: 8 }",
};

/**
 * A tiny spec's YAML: `name`, the sections of TINY_SECTIONS with `changes` over them (a
 * section changed to null is left out, so it takes the schema's defaults), then `arms`, each
 * arm's settings as YAML flow text.
 */
export function tinySpec(
  name: string,
  arms: Record<string, string>,
  changes: Record<string, string | null> = {},
): string {
  const sections = Object.entries({ ...TINY_SECTIONS, ...changes })
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([key, value]) => `${key}: ${value}\n`);
  const armLines = Object.entries(arms).map(([arm, settings]) => `  ${arm}: ${settings}\n`);
  return `name: ${name}\n${sections.join("")}arms:\n${armLines.join("")}`;
}

/** The smallest spec that runs every stage kind: one seed, one NTP arm, one step each. */
export function smallestSpec(name: string): string {
  return tinySpec(name, { ntp: "{ lambda: 0 }" }, {
    backend: "wasm",
    task: "{ name: grid-patch, image_size: 16, train: 16, test: 8, params: { grid: 2, blobs: 1 } }",
    model: "{ patch_size: 8, d_model: 8, layers: 1, heads: 2 }",
    base: "{ steps: 1, batch_size: 4, train: 8 }",
    train: "{ steps: 1, batch_size: 4, warmup: 1 }",
    eval: null,
  });
}

/** A temporary folder holding `spec` as `file`, and the environment of a run inside it. */
export interface TempRun {
  dir: string;
  /** The spec file's path. */
  spec: string;
  /** KLAL_CACHE_DIR and KLAL_REPORTS_DIR, both inside `dir`. */
  env: Record<string, string>;
}

/** A new TempRun (a folder `klal-<prefix>-…`), so a test never touches the real cache. */
export async function tempRun(prefix: string, spec: string, file = "spec.yaml"): Promise<TempRun> {
  const dir = await Deno.makeTempDir({ prefix: `klal-${prefix}-` });
  await Deno.writeTextFile(`${dir}/${file}`, spec);
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  return { dir, spec: `${dir}/${file}`, env };
}

/** `deno task cache gc --experiments <experiments> ...args` on the cache at `cacheDir`. */
export function runGc(
  cacheDir: string,
  experiments: string,
  ...args: string[]
): Promise<CommandResult> {
  return runScript("pipeline/commands/cache.ts", ["gc", "--experiments", experiments, ...args], {
    KLAL_CACHE_DIR: cacheDir,
  });
}

/**
 * A temporary folder `klal-<prefix>-…` with a cache in cache/ that holds one entry, `key`,
 * which no spec uses (gc's to remove).
 */
export async function cacheWithStrayEntry(
  prefix: string,
): Promise<{ dir: string; cache: Cache; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: `klal-${prefix}-` });
  const cache = new Cache(`${dir}/cache`);
  const key = "ab" + "0".repeat(62);
  await cache.write(
    key,
    { stage: "data:x", kind: "data", params: {}, inputs: {}, codeVersion: "v1" },
    (out) => out.writeText("a.txt", "x"),
  );
  return { dir, cache, key };
}

/** Whether `path` exists. */
export function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}

/** The cache entry folder of `stage`, found by its manifest. */
export async function cacheEntryOf(cacheDir: string, stage: string): Promise<string> {
  for await (const shard of Deno.readDir(`${cacheDir}/objects`)) {
    for await (const entry of Deno.readDir(`${cacheDir}/objects/${shard.name}`)) {
      const dir = `${cacheDir}/objects/${shard.name}/${entry.name}`;
      const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
      if (m.stage === stage) return dir;
    }
  }
  throw new Error(`no entry for ${stage}`);
}

/** A planned stage's params as plain data, whatever its kind (for assertions on plans). */
export function paramsOf(stage: { params: unknown }): Record<string, unknown> {
  return stage.params as Record<string, unknown>;
}
