import { fileURLToPath } from "node:url";
/** Running the pipeline's commands as a user would, in a subprocess (shared by tests). */

/** The repository root, with a trailing slash. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Output of one command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `deno run -A <ROOT><script> ...args` with `env` added (plain progress lines, no colour),
 * e.g. `runScript("pipeline/main.ts", [spec], { KLAL_CACHE_DIR: dir })`.
 */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${script}`, ...args],
    env: { ...env, KLAL_PLAIN_PROGRESS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
