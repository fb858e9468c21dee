/** docs/spec-keys.md is what the schema generates (`deno task spec-keys` writes it). */
import assert from "node:assert/strict";
import type { Fields, SectionField } from "../pipeline/lib/schema.ts";
import {
  SPEC_KEYS_PATH,
  specKeysDocument,
  specKeysMarkdown,
} from "../pipeline/commands/spec_keys.ts";
import { ROOT_FIELDS } from "../pipeline/spec/schema.ts";
import { PRETRAIN_TASK, TASKS } from "../tasks/registry.ts";
import { ROOT, runScript } from "./cli.ts";

Deno.test("docs/spec-keys.md is what the schema generates", async () => {
  const committed = await Deno.readTextFile(`${ROOT}${SPEC_KEYS_PATH}`);
  const generated = await specKeysDocument();
  assert.ok(
    committed === generated,
    `${SPEC_KEYS_PATH} differs from the schema: run \`deno task spec-keys\` and commit it`,
  );
});

/** Dotted paths of every key the docs must list. */
function paths(fields: Fields, prefix: string): string[] {
  return Object.entries(fields).flatMap(([key, field]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (field.type === "section" && path === "task.source") {
      // task.source.train, val and test share their keys: listed together; then the map of
      // further test sets, its entries with the same keys.
      const inner = Object.entries(field.fields);
      const splits = inner.filter(([, f]) => f.type === "section");
      const first = splits[0][1] as SectionField;
      const names = splits.map(([k]) => k).join(" \\| ");
      const maps = inner.flatMap(([k, f]) =>
        f.type === "map" && f.values.type === "section"
          ? paths(f.values.fields, `${path}.${k}.${f.key}`)
          : []
      );
      return [path, ...paths(first.fields, `${path}.<${names}>`), ...maps];
    }
    if (field.type === "section") return [path, ...paths(field.fields, path)];
    if (field.type === "map" && field.values.type === "section") {
      return [path, ...paths(field.values.fields, `${path}.${field.key}`)];
    }
    return [path];
  });
}

Deno.test("docs: every key of the spec and of every task's params has a row", () => {
  const text = specKeysMarkdown();
  for (const path of paths(ROOT_FIELDS, "")) {
    assert.ok(text.includes(`| \`${path}\` |`), path);
  }
  for (const task of [...Object.values(TASKS), PRETRAIN_TASK]) {
    assert.ok(text.includes(`### ${task.name}\n`), task.name);
    // The pretraining mix's params are written under base.mix.
    const prefix = task === PRETRAIN_TASK ? "base.mix" : "task.params";
    for (const key of Object.keys(task.defaultParams)) {
      assert.ok(text.includes(`| \`${prefix}.${key}\` |`), `${task.name}: ${key}`);
    }
  }
  assert.match(text, /\| `train\.lr_grid` \| list of number \| distinct, each > 0, at most 100 /);
  assert.match(
    text,
    /\| `base\.seed` \| integer \\\| "run" \\\| list of integer \| >= 0; at least 2, distinct, each >= 0, at most 1000 .*\| `0` \|/,
  );
});

Deno.test("deno task spec-keys --check passes on the committed file", async () => {
  const run = await runScript("pipeline/commands/spec_keys.ts", ["--check"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /is up to date/);
});
