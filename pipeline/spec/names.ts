/**
 * The one rule for names that become paths: an experiment's `name` (reports/NAME/, the
 * cache's refs/NAME/), the name of each point of a sweep (reports/NAME--LABEL/), an arm's
 * name (part of its stages' file names in the cache) and the label of an outside evaluation
 * (reports/NAME/external/LABEL.json, from `deno task eval --name` or the images' folder).
 *
 * A name is one path segment: letters, digits, ".", "_" and "-", starting with a letter or
 * digit, never "..", at most NAME_MAX_LENGTH characters, and none of the entries the
 * pipeline itself keeps under reports/. `pathInside` checks the joined path too.
 */
import { isAbsolute, relative, resolve } from "node:path";
import { clip } from "../lib/terminal.ts";

/**
 * Longest name: a folder name may be 255 bytes on common filesystems, and the pipeline adds
 * suffixes to it (report folders are written as NAME.tmp-XXXXXXXX-XXXXXXXX, then renamed).
 */
export const NAME_MAX_LENGTH = 100;

/** One path segment, starting with a letter or digit (never ".", "..", or an option). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Entries the pipeline keeps directly under reports/, which an experiment's folder must not
 * replace (compared without case: some filesystems ignore it).
 */
export const RESERVED_NAMES: Readonly<Record<string, string>> = {
  "index.html": "reports/index.html is the list of every report",
  paper: "reports/paper/ is the committed paper record",
  preview: "reports/preview/ holds the contact sheets of `deno task preview`",
  figures: "figures/ is where a report keeps its charts",
};

/** Report folders being replaced are NAME.tmp-... and NAME.old-... (the index skips them). */
const TEMP_MARKER = /\.(tmp|old)-/i;

/** Device names on Windows: a file named so, with any extension, is the device. */
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)/i;

/** What a name should have been and what it is. */
export interface NameProblem {
  expected: string;
  found: string;
}

/**
 * What is wrong with `name` as a name that becomes a path, or undefined when it is fine.
 * `role` (e.g. "it names the report folder") is added to what was expected.
 */
export function nameProblem(name: string, role?: string): NameProblem | undefined {
  const why = role ? ` (${role})` : "";
  const shown = JSON.stringify(clip(name, 60));
  if (name.length > NAME_MAX_LENGTH) {
    return {
      expected: `a name of at most ${NAME_MAX_LENGTH} characters${why}`,
      found: `a name of ${name.length} characters`,
    };
  }
  if (!NAME_PATTERN.test(name)) {
    return { expected: `a string matching ${NAME_PATTERN}${why}`, found: shown };
  }
  if (name.includes("..")) return { expected: `a name without ".."${why}`, found: shown };
  const reserved = Object.keys(RESERVED_NAMES).find((r) => r === name.toLowerCase());
  if (reserved) {
    return {
      expected: `a name other than ${JSON.stringify(reserved)} (${RESERVED_NAMES[reserved]})`,
      found: shown,
    };
  }
  if (TEMP_MARKER.test(name)) {
    return {
      expected: `a name without ".tmp-" or ".old-" (they mark a report folder being replaced)`,
      found: shown,
    };
  }
  if (DEVICE_NAME.test(name)) {
    return {
      expected: `a name that is not a Windows device name (con, prn, aux, nul, com0-9, lpt0-9)`,
      found: shown,
    };
  }
  return undefined;
}

/**
 * nameProblem for an experiment's own `name`, which also may not hold "--": a sweep names
 * its points NAME--LABEL and writes the report comparing them to the part before the first
 * "--", which must be the whole name (`paper--x` would otherwise write to reports/paper/).
 */
export function experimentNameProblem(name: string, role?: string): NameProblem | undefined {
  const problem = nameProblem(name, role);
  if (problem || !name.includes("--")) return problem;
  return {
    expected: `a name without "--" (a sweep names its points NAME--LABEL)`,
    found: JSON.stringify(clip(name, 60)),
  };
}

/**
 * `root` joined with `segments`, resolved; throws when the result does not lie strictly
 * inside `root` (a segment that climbs out, or an absolute one).
 */
export function pathInside(root: string, ...segments: string[]): string {
  const base = resolve(root);
  const path = resolve(base, ...segments);
  const rel = relative(base, path);
  if (rel === "" || rel.split(/[\\/]/)[0] === ".." || isAbsolute(rel)) {
    throw new Error(
      `${JSON.stringify(segments.join("/"))} does not lie inside ${JSON.stringify(base)}`,
    );
  }
  return path;
}
