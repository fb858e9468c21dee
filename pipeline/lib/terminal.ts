/**
 * Text from files, folders and the command line, made safe to print on a terminal.
 *
 * A spec key, a file name or a value may hold control characters: an ANSI escape sequence
 * (`\x1b[2J` clears the screen), a carriage return that overwrites the line, or an invisible
 * direction mark that reorders what follows. Printed as escapes instead, the text shows what
 * the input holds and cannot change what the terminal displays.
 */

/** Escapes with a one-letter form; other control characters are shown as `\xNN`. */
const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Control characters (C0, DEL, C1), Unicode line and paragraph separators, zero-width and
 * bidirectional formatting characters, the byte-order mark and lone surrogates.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `text` with every character that could steer a terminal written as an escape: `\x1b` for
 * ESC, `\n`, `\r`, `\t`, `\x7f`, `\x9b`, `\u{202e}` for a right-to-left override. Printable
 * text, including non-ASCII letters, is unchanged; backslashes are left as they are.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(UNSAFE, (c) => {
    if (SHORT[c]) return SHORT[c];
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u{${code.toString(16).padStart(4, "0")}}`;
  });
}

/** `text` cut to at most `max` characters, ending in `mark` ("..." unless given) when cut. */
export function clip(text: string, max: number, mark = "..."): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - mark.length);
  if (/[\ud800-\udbff]/.test(text[end - 1] ?? "")) end--; // never half a surrogate pair
  return `${text.slice(0, end)}${mark}`;
}
