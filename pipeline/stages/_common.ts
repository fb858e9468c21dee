/**
 * What every stage module shares: the context a stage runs in and the task a stage names. Kept free of runtime imports, so a stage's import closure (its
 * code version, ../cache/code_version.ts) gains nothing by importing it but this file.
 */
import type { Cache } from "../cache/store.ts";
import type { Task } from "../../tasks/task.ts";
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
