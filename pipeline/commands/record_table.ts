/**
 * The record read as pre-registered (docs/preregistration.md), from the task reports'
 * results.json files, so that the write-up's numbers and verdicts are not typed by hand:
 *
 *   deno task record-table docs/record/results/{line-intersection,pixmo-points}/results.json
 *
 * Exit status: 0 done; 2 bad usage or a file that is not a report's results.json.
 */
import { parseCommand, printHelp, runCommand, UsageError } from "../lib/cli.ts";
import { readRecord, type RecordResults, recordTables } from "../report/record.ts";

const USAGE = `usage: deno task record-table RESULTS.json...

  RESULTS.json   results.json of each task report of the record (docs/record/results/TASK/)
  --version      the project's commit and the Deno and tfjs versions
  -h, --help     this text

Prints, as Markdown, each task's pre-registered reading: the regime, the primary comparison
with its Holm p over the tasks given, each Base's gain, the verdict, the attention claim per
Base and what each control rules out.`;

async function readResults(path: string): Promise<RecordResults> {
  let data: RecordResults;
  try {
    data = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new UsageError(`${path}: not readable as JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(data?.table1) || !Array.isArray(data?.rows) || !data.statistics) {
    throw new UsageError(`${path}: not a report's results.json (no table1, rows or statistics)`);
  }
  return data;
}

/** The command line; returns the exit status. */
export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    const parsed = parseCommand(args, { options: {}, positionals: { min: 1, max: Infinity } });
    if (parsed.help) return printHelp(USAGE);
    const results = await Promise.all(parsed.positionals.map(readResults));
    console.log(recordTables(readRecord(results)).join("\n"));
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
