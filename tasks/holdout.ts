/**
 * The test set is held out from training: a spec's `source.test` may not be its
 * `source.train` file, nor share rows with it. Two checks:
 *
 * - with the spec (`sameFile`, used by each real-format task's `checkSources`): the two
 *   sources name the same file (the same path, a link to it, or a hard link) and the task
 *   would read the same rows from it;
 * - when data is loaded (`assertHeldOut`): each row gets a content key (a hash of its image
 *   bytes and its question, from the task's loader) and no test row's key may be a
 *   training row's. This finds a copy of the training file under another name, and rows
 *   copied from one file into the other.
 */

import { escapeForTerminal } from "../pipeline/lib/terminal.ts";
import { sha256Hex } from "./image_io.ts";
import type { DataSource } from "./task.ts";

/** Whether paths `a` and `b` name the same file (following links; hard links too). */
export function sameFile(a: string, b: string): boolean {
  try {
    const [sa, sb] = [Deno.statSync(a), Deno.statSync(b)];
    if (sa.ino !== null && sb.ino !== null) return sa.dev === sb.dev && sa.ino === sb.ino;
    return Deno.realPathSync(a) === Deno.realPathSync(b);
  } catch {
    return a === b;
  }
}

/** A path for a message, with control characters escaped. */
function shown(path: string): string {
  return escapeForTerminal(path);
}

/**
 * Throws when rows of `pair.test` are rows of `pair.train`: `keysOf` gives a content key
 * per row a source loads (`question` names what the key holds besides the image, for the
 * message). The error names both files and counts the shared test rows.
 */
export async function assertHeldOut(
  pair: { train: DataSource; test: DataSource },
  keysOf: (source: DataSource) => Promise<string[]>,
  question: string,
): Promise<void> {
  const train = new Set(await keysOf(pair.train));
  const test = await keysOf(pair.test);
  const shared = test.filter((key) => train.has(key)).length;
  if (shared === 0) return;
  const [a, b] = await Promise.all([pair.train.path, pair.test.path].map(async (p) => {
    return sha256Hex(await Deno.readFile(p));
  }));
  const identical = a === b ? "; the two files have the same content" : "";
  throw new Error(
    `${shown(pair.test.path)} (source.test) shares ${shared} of its ${test.length} rows with ` +
      `${
        shown(pair.train.path)
      } (source.train): the same image content and ${question}${identical}; ` +
      `expected a test set held out from training`,
  );
}
