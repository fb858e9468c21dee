/**
 * One convention for every command (experiment, eval, report, cache, preview, bench):
 * arguments parsed by the runtime's standard parser (`parseArgs` from `node:util`),
 * `-h`/`--help` prints the usage to stdout and exits 0, and a usage error prints
 * `error: ...`, a blank line and the usage to stderr and exits 2.
 */
import { parseArgs } from "node:util";
import { escapeForTerminal } from "./terminal.ts";
import { PROJECT_ROOT } from "./paths.ts";

/** A bad command line: exit status 2. */
export class UsageError extends Error {}

/**
 * The command cannot run where it was pointed (a cache folder that is read-only or not a
 * cache): exit status 2, with the message and no usage text.
 */
export class SetupError extends Error {}

/** Environment variable that makes failures print their stack traces. */
export const DEBUG_ENV = "KLAL_DEBUG";

/**
 * True when `e` says a path cannot be written: a read-only filesystem, no permission from the
 * OS, or none from Deno (`--deny-write`).
 */
export function isNotWritable(e: unknown): boolean {
  if (e instanceof Deno.errors.PermissionDenied) return true;
  if (e instanceof Deno.errors.NotCapable) return /write access/.test(e.message);
  return e instanceof Error && /read-only file system|os error 30\b/i.test(e.message);
}

/**
 * One failure as the user sees it: `error: <message>` on stderr; the stack trace only with
 * KLAL_DEBUG=1 (it names this code's internals, not what went wrong).
 */
export function printFailure(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  // Line by line: several stages may fail at once, one line each.
  const lines = message.split("\n").map((line) => escapeForTerminal(line));
  console.error(`error: ${lines.join("\n")}`);
  if (Deno.env.get(DEBUG_ENV) !== "1" || !(error instanceof Error)) return;
  // A failure wrapped to name its step keeps the original, whose stack says where it was.
  const origin = error.cause instanceof Error ? error.cause : error;
  for (const line of origin.stack?.split("\n") ?? []) console.error(escapeForTerminal(line));
}

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
 * accepted and reported as `help: true` (then nothing else is checked); so is `--version`,
 * after which the command's `printHelp` prints the version line instead of the usage.
 *
 * @example parseCommand(["--apply"], { options: { apply: { type: "boolean" } } })
 */
export function parseCommand(args: string[], spec: CommandSpec): ParsedCommand {
  if (helpRequested(args)) {
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
 * the usage to stderr and gives 2; a SetupError prints its message and gives 2; any other
 * failure prints its message (printFailure) and gives 1; the body's own status otherwise.
 */
export async function runCommand(usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${escapeForTerminal(error.message)}\n\n${usage}`);
      return 2;
    }
    printFailure(error);
    return error instanceof SetupError ? 2 : 1;
  }
}

/** Whether the last command line parsed asked for `--version`. */
let versionAsked = false;

/**
 * Whether `args` ask for `--help`, `-h` or `--version` (for commands that look before they
 * parse); `printHelp` then prints what was asked for.
 */
export function helpRequested(args: readonly string[]): boolean {
  const help = args.includes("--help") || args.includes("-h");
  versionAsked = !help && args.includes("--version");
  return help || versionAsked;
}

/**
 * The project's version line: its git commit (with "+changes" when the working tree has
 * uncommitted changes) or "not a git checkout", and the Deno and tfjs versions.
 */
export function versionLine(): string {
  const git = (...args: string[]) => {
    try {
      const out = new Deno.Command("git", {
        args: ["-C", PROJECT_ROOT, ...args],
        stdout: "piped",
        stderr: "null",
      }).outputSync();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
    } catch {
      return null;
    }
  };
  const commit = git("rev-parse", "--short=12", "HEAD");
  const dirty = commit !== null && (git("status", "--porcelain") ?? "") !== "";
  const where = commit === null
    ? "not a git checkout"
    : `commit ${commit}${dirty ? "+changes" : ""}`;
  let tfjs = "unknown";
  try {
    const config = JSON.parse(Deno.readTextFileSync(`${PROJECT_ROOT}/deno.json`));
    tfjs = /@([\d.]+)$/.exec(config.imports?.["@tensorflow/tfjs"] ?? "")?.[1] ?? tfjs;
  } catch {
    // Without the project's deno.json the line says so.
  }
  return `klal ${where} (deno ${Deno.version.deno}, tfjs ${tfjs})`;
}

/** Print the usage for `--help` (the version line for `--version`) and give exit status 0. */
export function printHelp(usage: string): number {
  console.log(versionAsked ? versionLine() : usage);
  return 0;
}
