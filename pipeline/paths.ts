/**
 * Filesystem paths of the project, derived from module URLs through the standard
 * conversion (`fileURLToPath`), so a clone under a path with spaces or non-ASCII
 * characters works: `URL.pathname` would keep them percent-encoded.
 */
import { fileURLToPath } from "node:url";

/** The path of a `file:` URL (or URL string), decoded; throws for other protocols. */
export function pathOf(url: URL | string): string {
  return fileURLToPath(url);
}

/** Absolute path of the repository root, without a trailing separator. */
export const PROJECT_ROOT: string = pathOf(new URL("../", import.meta.url)).replace(/\/$/, "");

/** Absolute path of `relative` inside the repository. */
export function projectPath(relative: string): string {
  return `${PROJECT_ROOT}/${relative}`;
}
