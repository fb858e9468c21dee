/**
 * Every path to a file of the project goes through here: the repository root is found once,
 * from this module's own place (pipeline/lib/), and other modules name project files by their
 * root-relative path (`projectPath("pipeline/run/worker.ts")`), never by a URL relative to
 * themselves, so moving a module breaks nothing silently. Paths are derived through the
 * standard conversion (`fileURLToPath`), so a clone under a path with spaces or non-ASCII
 * characters works: `URL.pathname` would keep them percent-encoded.
 */
import { fileURLToPath } from "node:url";

/** The path of a `file:` URL (or URL string), decoded; throws for other protocols. */
export function pathOf(url: URL | string): string {
  return fileURLToPath(url);
}

/** Absolute path of the repository root, without a trailing separator. */
export const PROJECT_ROOT: string = pathOf(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** The `file:` URL of the repository root, with a trailing slash. */
export const PROJECT_URL: URL = new URL("../../", import.meta.url);

/** Absolute path of `relative` inside the repository. */
export function projectPath(relative: string): string {
  return `${PROJECT_ROOT}/${relative}`;
}

/** The `file:` URL of `relative` inside the repository (for `import()` and `fetch`). */
export function projectUrl(relative: string): URL {
  return new URL(relative, PROJECT_URL);
}
