/**
 * One convention for every command (experiment, eval, report, cache, preview, bench):
 * arguments parsed by the runtime's standard parser (`parseArgs` from `node:util`),
 * `-h`/`--help` prints the usage to stdout and exits 0, and a usage error prints
 * `error: ...`, a blank line and the usage to stderr and exits 2.
 */
import { parseArgs } from "node:util";
import { escapeForTerminal } from "./terminal.ts";

/** A bad command line: exit status 2. */
export class UsageError extends Error {}

/** One option of a command: a flag (boolean) or a value (string), possibly repeated. */
export interface OptionSpec {
  type: "boolean" | "string";
  multiple?: boolean;
  short?: string;
}

/**
 * Options that each take one value (`--name VALUE`), by name.
 *
 * @example parseCommand(args, { options: valueOptions("seed", "out") })
 */
export function valueOptions(...names: string[]): Record<string, OptionSpec> {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }]));
}

/** What a command accepts. */
export interface CommandSpec {
  options: Record<string, OptionSpec>;
  /** Positional arguments accepted (default: none). */
  positionals?: { min?: number; max?: number };
}

/** The parsed command line. */
export interface ParsedCommand {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  help: boolean;
}

/** The part of node's parse error a user needs (it otherwise suggests `--` quoting). */
function shortMessage(error: Error & { code?: string }): string {
  // Node quotes the option as '--jobs <value>' or '-j, --jobs': keep the long name alone.
  const option = /'([^']+)'/.exec(error.message)?.[1]?.replace(/^-\w, /, "").replace(
    / <value>$/,
    "",
  );
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${option ?? error.message}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(error.message)
        ? `${option ?? "an option"} expects a value`
        : `${option ?? "an option"} takes no value`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${option ?? ""}`.trim();
    default:
      return error.message;
  }
}

/**
 * Parse `args` against `spec`; throws UsageError (never node's own error) on unknown
 * options, a missing value, or too few or too many positionals. `--help`/`-h` is always
 * accepted and reported as `help: true` (then nothing else is checked).
 *
 * @example parseCommand(["--apply"], { options: { apply: { type: "boolean" } } })
 */
export function parseCommand(args: string[], spec: CommandSpec): ParsedCommand {
  if (args.includes("--help") || args.includes("-h")) {
    return { values: {}, positionals: [], help: true };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: spec.options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(shortMessage(error as Error & { code?: string }));
  }
  const { min = 0, max = 0 } = spec.positionals ?? {};
  const count = parsed.positionals.length;
  if (count > max) {
    throw new UsageError(`unexpected argument ${parsed.positionals[max]}`);
  }
  if (count < min) throw new UsageError(`expected ${min} argument${min === 1 ? "" : "s"}`);
  return {
    values: parsed.values as ParsedCommand["values"],
    positionals: parsed.positionals,
    help: false,
  };
}

/** An integer option's value, checked: throws UsageError naming the option. */
export function integerOption(name: string, text: string, min = 0): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} expects an integer >= ${min}, found ${text}`);
  }
  return value;
}

/**
 * Run a command's body with the shared exit convention: a UsageError prints the message and
 * the usage to stderr and gives 2; the body's own status otherwise.
 */
export async function runCommand(usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${escapeForTerminal(error.message)}\n\n${usage}`);
      return 2;
    }
    throw error;
  }
}

/** Print the usage for `--help` and give exit status 0. */
export function printHelp(usage: string): number {
  console.log(usage);
  return 0;
}
