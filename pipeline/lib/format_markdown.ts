/**
 * Markdown as `deno fmt` writes it with the repository's settings (deno.json), so that a
 * generated file and `deno task check` agree.
 */
import { PROJECT_URL } from "./paths.ts";

/** `markdown` formatted by `deno fmt --ext=md -`, run from the project root. */
export async function formatMarkdown(markdown: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: PROJECT_URL,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(markdown));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}
