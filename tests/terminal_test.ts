import assert from "node:assert/strict";
import { clip, escapeForTerminal } from "../pipeline/lib/terminal.ts";

Deno.test("escapeForTerminal: control characters become escapes, printable text stays", () => {
  assert.equal(escapeForTerminal("a\x1b[31mred\x1b[0m"), "a\\x1b[31mred\\x1b[0m");
  assert.equal(escapeForTerminal("line\nnext\r\tx"), "line\\nnext\\r\\tx");
  assert.equal(escapeForTerminal("\x00\x07\x7f\x9b"), "\\x00\\x07\\x7f\\x9b");
  // Bidirectional overrides, zero-width characters, line separators and a lone surrogate.
  assert.equal(
    escapeForTerminal("a\u202eb\u200bc\u2028d\ud800"),
    "a\\u{202e}b\\u{200b}c\\u{2028}d\\u{d800}",
  );
  // Letters of any script, emoji (a surrogate pair), quotes and backslashes are unchanged.
  const printable = 'Grüße, 名前, 🙂, "quoted" C:\\path';
  assert.equal(escapeForTerminal(printable), printable);
  for (let code = 0; code < 0x20; code++) {
    const escaped = escapeForTerminal(`x${String.fromCharCode(code)}y`);
    assert.ok([...escaped].every((c) => c.charCodeAt(0) >= 0x20), escaped);
  }
});

Deno.test("clip: long text is cut with a mark, never half a surrogate pair", () => {
  assert.equal(clip("short", 10), "short");
  assert.equal(clip("abcdefghijkl", 10), "abcdefg...");
  assert.equal(clip("abcdef🙂xyz", 10), "abcdef...");
});
