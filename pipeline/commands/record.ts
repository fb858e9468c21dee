/**
 * The record's write-up, rebuilt from its committed results:
 *
 *   deno task record            compute docs/record/record.json, render README.md, table.md, figures/
 *   deno task record --check    exit 1 if a committed file differs from what the results give
 *
 * Exit status: 0 done (or up to date); 1 a file is stale or unreadable; 2 bad usage.
 */
import { parseCommand, printHelp, runCommand, UsageError } from "../lib/cli.ts";
import {
  collectRecord,
  renderRecordFiles,
  staleRecordFiles,
  writeRecordFiles,
} from "../report/record_files.ts";

const USAGE = `usage: deno task record [--check] [--dir DIR] [--readme FILE]

  --dir DIR       the record's folder (default docs/record): results/TASK/results.json,
                  validation/NAME/results.json, wall.json and README.src.md in it
  --readme FILE   the top-level README whose record table is rendered between its
                  record-table markers (default README.md; "none" leaves it alone)
  --check         write nothing; exit 1 naming each file that differs from the results
  --version       the project's commit and the Deno and tfjs versions
  -h, --help      this text

Computes record.json from the task reports, the validation runs and the timings, and renders
README.md from README.src.md (refused if its prose holds a number or a count word of its own),
table.md and figures/ (Vega-Lite specs and SVG) from record.json.`;

/** The command line; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    const parsed = parseCommand(args, {
      options: {
        check: { type: "boolean" },
        dir: { type: "string" },
        readme: { type: "string" },
      },
    });
    if (parsed.help) return printHelp(USAGE);
    const dir = (parsed.values.dir as string | undefined) ?? "docs/record";
    const readme = (parsed.values.readme as string | undefined) ?? "README.md";
    for (const path of [`${dir}/results`, `${dir}/README.src.md`]) {
      if (!(await Deno.stat(path).then(() => true, () => false))) {
        throw new UsageError(`${path}: not found (--dir names the record's folder)`);
      }
    }
    const files = await renderRecordFiles(
      dir,
      await collectRecord(dir),
      readme === "none" ? undefined : readme,
    );
    if (parsed.values.check) {
      const stale = await staleRecordFiles(files);
      if (stale.length > 0) {
        console.error(`out of date: ${stale.join(", ")} (run deno task record)`);
        return 1;
      }
      console.log(`up to date (${files.size} files)`);
      return 0;
    }
    for (const path of await writeRecordFiles(files)) console.log(`wrote ${path}`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
