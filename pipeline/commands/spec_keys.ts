/**
 * docs/spec-keys.md, generated from the schema: every key of a spec (../spec/schema.ts) and
 * every task's `task.params` (tasks/*.ts, `defineParams`), each with its type, range, default
 * and doc.
 *
 *   deno task spec-keys            # write docs/spec-keys.md
 *   deno task spec-keys --check    # exit 1 when the file differs from what the schema gives
 *
 * tests/spec_docs_test.ts fails when the committed file is not what this writes.
 */
import { parseCommand, printHelp, runCommand } from "../lib/cli.ts";
import { defaultDoc, type Field, type Fields, rangeDoc, typeWords } from "../lib/schema.ts";
import { ROOT_FIELDS } from "../spec/schema.ts";
import { PRETRAIN_TASK, TASKS } from "../../tasks/registry.ts";
import type { Task } from "../../tasks/task.ts";
import { PROJECT_URL } from "../lib/paths.ts";
import { formatMarkdown } from "../lib/format_markdown.ts";

/** Where the file is written, relative to the repository root. */
export const SPEC_KEYS_PATH = "docs/spec-keys.md";

const ROOT = PROJECT_URL;

/**
 * A table cell: pipes escaped, line breaks joined, and outside code spans "<" escaped (so
 * `<arm>` is not read as HTML).
 */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ").split("`")
    .map((part, i) => i % 2 === 0 ? part.replaceAll("<", "\\<") : part).join("`");
}

/** A doc line as a sentence: capital first letter, a full stop. */
function sentence(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/** One row per value field of `fields` (paths under `prefix`), mappings as "see below". */
function rows(fields: Fields, prefix: string): string[] {
  return Object.entries(fields).map(([key, field]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    const nested = field.type === "section" ||
      (field.type === "map" && field.values.type === "section");
    const doc = nested ? `${field.doc ?? ""}; its keys below` : field.doc ?? "";
    return row(path, field, doc);
  });
}

function row(path: string, field: Field, doc: string): string {
  const cells = [`\`${path}\``, typeWords(field), rangeDoc(field), defaultDoc(field), doc];
  return `| ${cells.map(cell).join(" | ")} |`;
}

function table(lines: string[]): string[] {
  return [
    "| key | type | range | default | description |",
    "| --- | --- | --- | --- | --- |",
    ...lines,
  ];
}

/** A section of the spec and each section nested in it, depth first. */
function sections(fields: Fields, prefix: string): string[] {
  const out: string[] = [];
  for (const [key, field] of Object.entries(fields)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (field.type === "section") {
      // task.source.train, val and test share their keys: list them once (then the map of
      // further test sets, whose entries hold the same keys).
      const inner = Object.entries(field.fields).filter(([, f]) => f.type === "section");
      const first = inner[0]?.[1] as Extract<Field, { type: "section" }> | undefined;
      const shared = first !== undefined && inner.length > 1 &&
        inner.every(([, f]) => f.type === "section" && f.fields === first.fields);
      if (shared) {
        const splits = inner.map(([k]) => k).join(", ");
        const at = `${path}.<${splits.replaceAll(", ", " | ")}>`;
        out.push("", `## \`${at}\``, "", sentence(`${field.doc} (${splits})`), "");
        out.push(...table(rows(first.fields, at)));
        out.push(...sections(
          Object.fromEntries(Object.entries(field.fields).filter(([, f]) => f.type === "map")),
          path,
        ));
        continue;
      }
      out.push("", `## \`${path}\``, "", sentence(field.doc ?? ""), "");
      out.push(...table(rows(field.fields, path)));
      out.push(...sections(field.fields, path));
    } else if (field.type === "map" && field.values.type === "section") {
      const at = `${path}.${field.key}`;
      out.push("", `## \`${at}\``, "", sentence(field.values.doc ?? field.doc ?? ""), "");
      out.push(...table(rows(field.values.fields, at)));
    }
  }
  return out;
}

/** A task's params: its declared fields, or (undeclared) its defaults alone. */
function taskParams(task: Task, prefix = "task.params"): string[] {
  const head = ["", `### ${task.name}`, ""];
  if (task.paramSchema) {
    if (Object.keys(task.paramSchema).length === 0) return [...head, "No parameters."];
    return [...head, ...table(rows(task.paramSchema, prefix))];
  }
  const lines = Object.entries(task.defaultParams).map(([key, value]) =>
    `| ${
      [`\`${prefix}.${key}\``, `\`${JSON.stringify(value)}\``].map(cell).join(" | ")
    } | checked by the task's checkParams |`
  );
  return [
    ...head,
    "Declared as defaults only (no schema yet).",
    "",
    "| key | default | range |",
    "| --- | --- | --- |",
    ...lines,
  ];
}

/** The document, before formatting. */
export function specKeysMarkdown(): string {
  const lines = [
    "# Spec keys",
    "",
    "Every key of an experiment spec (`experiments/*.yaml`, `deno task experiment`): its type, " +
    "range, default and what it does. Generated from `pipeline/spec/schema.ts` and each " +
    "task's declared parameters by `deno task spec-keys`; do not edit it by hand " +
    "(`tests/spec_docs_test.ts` fails when it differs from what the schema gives).",
    "",
    "A key is written in YAML under its section (`train: { lr: 1.0e-3 }`) or as a dotted " +
    "override on the command line (`train.lr=1e-3`). A key left out takes its default; a " +
    "required key has none. Rules between keys (a patch size that divides the image size, " +
    "heads that divide `d_model`, a warm-up within the steps, a test seed that is none of " +
    "the seeds) are checked with the spec and reported like the rest.",
    "",
    "## Top level",
    "",
    ...table(rows(ROOT_FIELDS, "")),
    ...sections(ROOT_FIELDS, ""),
    "",
    "## `task.params`",
    "",
    "Each task's parameters (merged with its defaults). Rules between them, or with the " +
    "image and patch size, are the task's own `checkParams`.",
    ...Object.values(TASKS).flatMap((task) => taskParams(task)),
    "",
    "The pretraining mix of the Base checkpoint (not selectable as `task.name`) takes its " +
    "parameters from `base.mix`, merged with these defaults:",
    ...taskParams(PRETRAIN_TASK, "base.mix"),
    "",
  ];
  return lines.join("\n");
}

/** docs/spec-keys.md as the schema gives it. */
export async function specKeysDocument(): Promise<string> {
  return await formatMarkdown(specKeysMarkdown());
}

const USAGE = `usage: deno task spec-keys [--check]

  Writes ${SPEC_KEYS_PATH}: every key of a spec and of every task's params, from the schema.

options:
  --check      write nothing; exit 1 when the file differs from what the schema gives
  --version    the project's commit and the Deno and tfjs versions
  -h, --help   this text`;

/** The command: write docs/spec-keys.md, or with --check compare it. */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    const parsed = parseCommand(args, { options: { check: { type: "boolean" } } });
    if (parsed.help) return printHelp(USAGE);
    const path = new URL(SPEC_KEYS_PATH, ROOT);
    const text = await specKeysDocument();
    if (parsed.values.check) {
      let current = "";
      try {
        current = await Deno.readTextFile(path);
      } catch {
        // A missing file differs.
      }
      if (current !== text) {
        console.error(`${SPEC_KEYS_PATH} is out of date: run \`deno task spec-keys\``);
        return 1;
      }
      console.log(`${SPEC_KEYS_PATH} is up to date`);
      return 0;
    }
    await Deno.mkdir(new URL("docs/", ROOT), { recursive: true });
    await Deno.writeTextFile(path, text);
    console.log(`wrote ${SPEC_KEYS_PATH}`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
