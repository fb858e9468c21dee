/**
 * What every stage module shares: the context a stage runs in, the task a stage names, and
 * the reader of data entries. Kept free of runtime imports, so a stage's import closure (its
 * code version, ../cache/code_version.ts) gains nothing by importing it but this file.
 */
import type { Cache } from "../cache/store.ts";
import type { Sample, Task } from "../../tasks/task.ts";
import { projectUrl } from "../lib/paths.ts";

/** What every stage gets besides its own params. */
export interface StageContext {
  cache: Cache;
  /** Experiment name (for messages). */
  experiment: string;
  /** Called when another process computed the stage while this one waited for its lock. */
  onReuse?: () => void;
}

/** Root-relative path of the module that defines task `name` ("line-tracing" -> tasks/line_tracing.ts). */
export function taskModulePath(name: string): string {
  return `tasks/${name.replaceAll("-", "_")}.ts`;
}

/**
 * The task named `name`, imported from its own module only (tasks/registry.ts would import
 * every task). The specifier is computed, so the import closure of a stage module does not
 * include any task: a stage that names a task adds the task's module to its code version.
 */
export async function loadTask(name: string): Promise<Task> {
  const path = taskModulePath(name);
  let module: Record<string, unknown>;
  try {
    module = await import(projectUrl(path).href);
  } catch (e) {
    throw new Error(`unknown task ${name}: cannot import ${path}: ${(e as Error).message}`);
  }
  const task = Object.values(module).find((value): value is Task =>
    typeof value === "object" && value !== null && (value as Task).name === name &&
    typeof (value as Task).score === "function"
  );
  if (!task) throw new Error(`unknown task ${name}: ${path} exports no task of that name`);
  return task;
}

/** Read the samples of a data entry back. */
export async function loadSamples(cache: Cache, key: string): Promise<Sample[]> {
  const info = await cache.readJson<{ n: number; image_size: number; patches: number }>(
    key,
    "data.json",
  );
  const images = await cache.readBytes(key, "images.u8");
  const targetBytes = await cache.readBytes(key, "targets.f32");
  const targets = new Float32Array(
    targetBytes.buffer,
    targetBytes.byteOffset,
    info.n * info.patches,
  );
  const text = new TextDecoder().decode(await cache.readBytes(key, "samples.jsonl"));
  const rows = text.trim().split("\n").map((l) => JSON.parse(l));
  const pixels = info.image_size * info.image_size * 3;
  return rows.map((r, i) => {
    const data = new Float32Array(pixels);
    for (let j = 0; j < pixels; j++) data[j] = images[i * pixels + j] / 255;
    return {
      image: { width: info.image_size, height: info.image_size, data },
      prompt: r.prompt,
      answer: r.answer,
      target: targets.slice(i * info.patches, (i + 1) * info.patches),
      meta: r.meta,
    };
  });
}
