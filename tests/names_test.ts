/** One rule for names that become paths: spec names, sweep points, arms, eval labels. */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import {
  experimentNameProblem,
  NAME_MAX_LENGTH,
  nameProblem,
  pathInside,
  RESERVED_NAMES,
} from "../pipeline/spec/names.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { runScript } from "./cli.ts";
import { SPEC_CONTEXT, SPEC_FILE, sweepProblems as problems } from "./spec_fixtures.ts";

const spec = (name: string) =>
  `name: ${name}
task: { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 2, heads: 2 }
arms:
  ntp: { lambda: 0 }
  klal: { lambda: 1 }
`;

Deno.test("nameProblem: one segment of letters, digits, '.', '_', '-', at most 100 characters", () => {
  for (const ok of ["quickstart", "Paper-2", "lr0p001", "a.b_c-d", "x".repeat(NAME_MAX_LENGTH)]) {
    assert.equal(nameProblem(ok), undefined, ok);
  }
  const bad = [
    "./../../../deno",
    "../deno",
    "..",
    ".",
    "",
    "a/b",
    "a\\b",
    "/etc",
    "-rf",
    ".hidden",
    "a b",
    "a..b",
    "x".repeat(NAME_MAX_LENGTH + 1),
    "report.tmp-1234",
    "report.old-1234",
    "con",
    "NUL.txt",
    "a\x1bb",
  ];
  for (const name of bad) assert.ok(nameProblem(name), `${JSON.stringify(name)} passed`);
  assert.deepEqual(nameProblem("x".repeat(300)), {
    expected: "a name of at most 100 characters",
    found: "a name of 300 characters",
  });
});

Deno.test("nameProblem: every fixed entry of reports/ is reserved, in any case", () => {
  assert.deepEqual(Object.keys(RESERVED_NAMES).sort(), [
    "figures",
    "index.html",
    "paper",
    "preview",
  ]);
  for (const name of ["index.html", "INDEX.HTML", "paper", "Paper", "preview", "figures"]) {
    const problem = nameProblem(name);
    assert.ok(problem, name);
    assert.match(problem.expected, /^a name other than "[a-z.]+" \(/);
  }
  assert.match(experimentNameProblem("paper--x")!.expected, /without "--"/);
  assert.equal(experimentNameProblem("paper-x"), undefined);
});

Deno.test("pathInside: the joined path must lie inside the root", () => {
  assert.equal(pathInside("/r/reports", "quick", "external"), "/r/reports/quick/external");
  for (const segments of [["../deno.json"], ["a", "../../x"], ["/etc/passwd"], ["."], [""]]) {
    assert.throws(() => pathInside("/r/reports", ...segments), /does not lie inside/);
  }
  assert.equal(pathInside("reports", "q"), resolve("reports/q"));
});

Deno.test("spec name: a reserved, climbing, too long or sweep-like name is located and refused", () => {
  assert.deepEqual(problems(spec("index.html")), [
    `${SPEC_FILE}:1:7 name: expected a name other than "index.html" (reports/index.html is the list ` +
    `of every report), found "index.html"`,
  ]);
  assert.deepEqual(problems(spec("Preview")), [
    `${SPEC_FILE}:1:7 name: expected a name other than "preview" (reports/preview/ holds the contact ` +
    'sheets of `deno task preview`), found "Preview"',
  ]);
  assert.deepEqual(problems(spec("x".repeat(300))), [
    `${SPEC_FILE}:1:7 name: expected a name of at most 100 characters (it names the report folder), ` +
    "found a name of 300 characters",
  ]);
  assert.deepEqual(problems(spec('"a..b"')), [
    `${SPEC_FILE}:1:7 name: expected a name without ".." (it names the report folder), found "a..b"`,
  ]);
  assert.deepEqual(problems(spec("paper--lr1")), [
    `${SPEC_FILE}:1:7 name: expected a name without "--" (a sweep names its points NAME--LABEL), ` +
    `found "paper--lr1"`,
  ]);
  assert.deepEqual(problems(spec("quick"), ["name=../../deno"]), [
    `<override 1: name=../../deno> name: expected a string matching /^[A-Za-z0-9][A-Za-z0-9._-]*$/ ` +
    `(it names the report folder), found "../../deno"`,
  ]);
  assert.equal(parseSpec(spec("Quick-2"), SPEC_FILE, [], SPEC_CONTEXT).name, "Quick-2");
});

Deno.test("sweep: point and arm names follow the rule and never collide", () => {
  // 95 characters of name + "--steps1" is over 100: refused before any point is built.
  const long = "n".repeat(95);
  assert.deepEqual(problems(spec(long), ["train.steps=1,2"]), [
    `<override 1: train.steps=1,2> train.steps: expected a name of at most 100 characters ` +
    `(each point of a sweep names its report folder), found a name of 103 characters`,
  ]);
  // 0.5 and "0.5" are two values with one label: they would share one folder.
  assert.deepEqual(problems(spec("quick") + "sweep:\n  train.lr: [0.5, '0.5']\n"), [
    `${SPEC_FILE}:8:3 sweep.train.lr: expected values whose labels differ (each point names its ` +
    `report folder), found "0.5" and "\\"0.5\\"", both "quick--lr0p5"`,
  ]);
  // A swept arm must not take the name of another arm.
  assert.deepEqual(
    problems(spec("quick") + "  klal-lambda2: { lambda: 3 }\n", [
      "arms.klal.lambda=1,2",
    ]),
    [
      `<override 1: arms.klal.lambda=1,2> arms.klal.lambda: expected values whose labels differ, ` +
      `giving arms unlike every other arm, found a second arm named "klal-lambda2"`,
    ],
  );
  const value = "a".repeat(120);
  const [line] = problems(spec("quick"), [`arms.klal.layers=all,${value}`]);
  assert.match(
    line,
    /^<override 1: arms\.klal\.layers=all,a+\.\.\.> arms\.klal\.layers: expected arm names of at most 100 characters/,
  );
});

Deno.test("deno task eval: --name or the images' folder must be a valid name, before the cache", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-names-" });
  try {
    await Deno.writeTextFile(`${dir}/spec.yaml`, spec("names-eval"));
    await Deno.mkdir(`${dir}/images`);
    await Deno.mkdir(`${dir}/my images`);
    const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
    const args = (images: string, ...extra: string[]) => [
      `${dir}/spec.yaml`,
      "--arm",
      "ntp",
      "--images",
      images,
      "--regex",
      "_gt(\\d+)",
      ...extra,
    ];
    const climbing = await runScript(
      "pipeline/commands/eval.ts",
      args(`${dir}/images`, "--name", "./../../../deno"),
      env,
    );
    assert.equal(climbing.code, 2, climbing.stderr);
    assert.match(
      climbing.stderr,
      /^error: --name: expected a string matching \/\^\[A-Za-z0-9\]\[A-Za-z0-9\._-\]\*\$\/ \(it names the record, reports\/<name>\/external\/<label>\.json\), found "\.\/\.\.\/\.\.\/\.\.\/deno"/,
    );
    assert.doesNotMatch(climbing.stderr, /not in the cache/);
    const reserved = await runScript(
      "pipeline/commands/eval.ts",
      args(`${dir}/images`, "--name", "x".repeat(101)),
      env,
    );
    assert.equal(reserved.code, 2);
    assert.match(reserved.stderr, /--name: expected a name of at most 100 characters/);
    const folder = await runScript("pipeline/commands/eval.ts", args(`${dir}/my images/`), env);
    assert.equal(folder.code, 2);
    assert.match(folder.stderr, /its folder name cannot label the record .*; give --name LABEL/);
    // A valid label gets as far as the cache (nothing is trained here): exit 1.
    const valid = await runScript(
      "pipeline/commands/eval.ts",
      args(`${dir}/my images`, "--name", "blind"),
      env,
    );
    assert.equal(valid.code, 1, valid.stderr);
    assert.match(valid.stderr, /not in the cache/);
    // Nothing was written outside the temporary folder.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "images",
      "my images",
      "spec.yaml",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
