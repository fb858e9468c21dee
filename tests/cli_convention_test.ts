/**
 * Every command shares one convention: `--help` prints the usage on stdout and exits 0
 * (`--version`: the version line); an
 * unknown option prints "error: unknown option ...", a blank line and the usage on stderr,
 * and exits 2. Also the shared parser on its own.
 */
import assert from "node:assert/strict";
import { integerOption, parseCommand, UsageError } from "../pipeline/lib/cli.ts";
import { runScript } from "./cli.ts";

const COMMANDS: [string, string[]][] = [
  ["pipeline/commands/experiment.ts", []],
  ["pipeline/commands/eval.ts", []],
  ["pipeline/commands/report.ts", []],
  ["pipeline/commands/report.ts", ["paper"]],
  ["pipeline/commands/cache.ts", ["gc"]],
  ["pipeline/commands/preview.ts", ["grid-patch"]],
  ["pipeline/commands/bench.ts", []],
  ["pipeline/commands/pilot_table.ts", []],
];

Deno.test("parseCommand: flags, values, repeats, positionals, and usage errors", () => {
  const spec = {
    options: {
      apply: { type: "boolean" as const },
      force: { type: "string" as const, multiple: true },
      jobs: { type: "string" as const },
    },
    positionals: { max: 1 },
  };
  const parsed = parseCommand(["x.yaml", "--apply", "--force", "a", "--force=b", "--jobs=3"], spec);
  assert.deepEqual(parsed.positionals, ["x.yaml"]);
  assert.equal(parsed.values.apply, true);
  assert.deepEqual(parsed.values.force, ["a", "b"]);
  assert.equal(parsed.values.jobs, "3");
  assert.equal(parseCommand(["--apply", "-h"], spec).help, true);
  assert.throws(
    () => parseCommand(["--frob"], spec),
    (e) => e instanceof UsageError && e.message === "unknown option --frob",
  );
  assert.throws(
    () => parseCommand(["--jobs"], spec),
    (e) => e instanceof UsageError && e.message === "--jobs expects a value",
  );
  assert.throws(() => parseCommand(["--apply=1"], spec), /--apply takes no value/);
  assert.throws(() => parseCommand(["a", "b"], spec), /unexpected argument b/);
  assert.throws(
    () => parseCommand([], { options: {}, positionals: { min: 1, max: 1 } }),
    /expected 1 argument/,
  );
  assert.equal(integerOption("n", "12"), 12);
  assert.throws(() => integerOption("n", "1.5"), /--n expects an integer >= 0, found 1.5/);
  assert.throws(() => integerOption("jobs", "0", 1), /--jobs expects an integer >= 1, found 0/);
});

for (const [script, prefix] of COMMANDS) {
  const name = [script, ...prefix].join(" ");
  Deno.test(`${name}: --help exits 0 with the usage, --version with the version line; an unknown option exits 2`, async () => {
    const help = await runScript(script, [...prefix, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: deno task /m);
    const version = await runScript(script, [...prefix, "--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      version.stdout,
      /^klal (commit [0-9a-f]{12}(\+changes)?|not a git checkout) \(deno \d+\.\d+\.\d+, tfjs \d+\.\d+\.\d+\)\n$/,
    );
    const bad = await runScript(script, [...prefix, "--frob"]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /^error: unknown option --frob\n\nusage: deno task /m);
  });
}
