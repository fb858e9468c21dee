/**
 * Where and how a run was made: the project's git commit and whether the working tree had
 * changes, the command line, the host, its CPU, and the Deno, V8, TypeScript and tfjs
 * versions. Recorded in each published report's results.json (`run`), never in a cache key:
 * the same stages made elsewhere are the same results.
 */
import * as tf from "@tensorflow/tfjs";
import { PROJECT_ROOT } from "./paths.ts";

export interface Provenance {
  /** The commit checked out, or null outside a git checkout (or without git). */
  commit: string | null;
  /** Uncommitted changes to tracked files, or files git does not ignore; null without git. */
  dirty: boolean | null;
  argv: string[];
  host: string;
  os: string;
  cpu: string | null;
  cores: number;
  memoryGiB: number | null;
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  startedAt: string;
}

/** Run git in the project's folder; null when it fails or is missing. */
async function git(...args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", PROJECT_ROOT, ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/** The CPU's model name (Linux's /proc/cpuinfo), else null. */
function cpuName(): string | null {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    return match ? match[1].trim() : null;
  } catch {
    return null;
  }
}

/** This run's provenance; `argv` is the command line it was started with. */
export async function provenance(argv: readonly string[]): Promise<Provenance> {
  const commit = (await git("rev-parse", "HEAD"))?.trim() || null;
  const status = commit ? await git("status", "--porcelain") : null;
  let memoryGiB: number | null = null;
  try {
    memoryGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10;
  } catch {
    // Not offered by this runtime or permission set.
  }
  return {
    commit,
    dirty: status === null ? null : status.trim().length > 0,
    argv: [...argv],
    host: Deno.hostname(),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    cpu: cpuName(),
    cores: navigator.hardwareConcurrency ?? 1,
    memoryGiB,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version.tfjs ?? tf.version["tfjs-core"],
    startedAt: new Date().toISOString(),
  };
}
