/**
 * The paper record (reports/paper/): collecting it from experiment reports, rendering the
 * table and README from results.json, and the committed record's consistency.
 */
import assert from "node:assert/strict";
import {
  collectPaper,
  fillTemplate,
  layerSetName,
  lookup,
  majorityShare,
  PAPER_CHARTS,
  paperCharts,
  type PaperRecord,
  regimeOf,
  renderPaperTable,
  strayNumbers,
  withStandInLabels,
} from "../pipeline/report/paper/mod.ts";
import { VEGA_LITE_SCHEMA } from "../pipeline/report/mod.ts";
import { runScript } from "./cli.ts";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function near(actual: number, expected: number, tolerance: number) {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${actual} is not within ${tolerance} of ${expected}`,
  );
}
const PAPER = `${ROOT}reports/paper`;

type Arms = Record<string, { finetune: boolean; lambda: number; layers: "all" | number[] }>;

/** A minimal experiment results.json: accuracy and ratio per (task, arm, seed). */
function results(
  name: string,
  arms: Arms,
  values: [task: string, arm: string, seed: number, accuracy: number, ratio: number][],
  extra: Record<string, unknown> = {},
) {
  const rows = values.flatMap(([task, arm, seed, accuracy, ratio]) => [
    { task, arm, seed, metric: "accuracy", value: accuracy },
    { task, arm, seed, metric: "target_attention_ratio", value: ratio },
  ]);
  return {
    experiment: name,
    createdAt: "2026-11-25T00:00:00.000Z",
    backend: "wasm",
    spec: {
      name,
      seeds: [0, 1, 2],
      task: {
        name: values[0][0],
        image_size: 32,
        train: 100,
        test: 50,
        test_seed: 1000,
        params: {},
      },
      model: { patch_size: 8, d_model: 64, layers: 2, heads: 4 },
      base: { steps: 10 },
      train: { steps: 20, batch_size: 4, lr: 0.001 },
      arms,
      ...extra,
    },
    rows,
    stages: [
      { stage: "finetune:ntp:s0", key: `${name}-a`, status: "ran", seconds: 2 },
      { stage: "finetune:klal:s0", key: "shared", status: "cached", seconds: 3 },
    ],
  };
}

const T1_ARMS: Arms = {
  base: { finetune: false, lambda: 0, layers: "all" },
  ntp: { finetune: true, lambda: 0, layers: "all" },
  klal: { finetune: true, lambda: 1, layers: "all" },
};

type Row = [task: string, arm: string, seed: number, accuracy: number, ratio: number];

/** Grid Patch's NTP (10, 20, 30) and KLAL+NTP (40, 60, 50) over seeds 0-2, ratios 1 and 5-7. */
const GRID_NTP_KLAL: Row[] = [
  ["grid-patch", "ntp", 0, 10, 1],
  ["grid-patch", "ntp", 1, 20, 1],
  ["grid-patch", "ntp", 2, 30, 1],
  ["grid-patch", "klal", 0, 40, 5],
  ["grid-patch", "klal", 1, 60, 7],
  ["grid-patch", "klal", 2, 50, 6],
];

async function writeResults(dir: string, name: string, value: unknown) {
  await Deno.mkdir(`${dir}/${name}`, { recursive: true });
  await Deno.writeTextFile(`${dir}/${name}/results.json`, JSON.stringify(value));
}

async function fixtureReports(dir: string) {
  await writeResults(
    dir,
    "t1",
    {
      ...results("t1", T1_ARMS, [
        ["grid-patch", "base", 0, 0, 1],
        ...GRID_NTP_KLAL,
        ["line-tracing", "ntp", 0, 50, 1],
        ["line-tracing", "klal", 0, 50, 2],
      ]),
      // What the eval entries' floor.json held, gathered by the experiment's report.
      floors: { "grid-patch": { answer: "1 , 1", accuracy: 25, kind: "majority" } },
    },
  );
  await writeResults(
    dir,
    "lam",
    results("lam", {
      a: { finetune: true, lambda: 0, layers: "all" },
      b: { finetune: true, lambda: 0.5, layers: "all" },
      c: { finetune: true, lambda: 2, layers: "all" },
    }, [
      ["grid-patch", "a", 0, 10, 1],
      ["grid-patch", "b", 0, 30, 3],
      ["grid-patch", "c", 0, 70, 9],
    ]),
  );
  await writeResults(
    dir,
    "lay",
    results("lay", {
      ntp: { finetune: true, lambda: 0, layers: "all" },
      k0: { finetune: true, lambda: 1, layers: [0] },
      k1: { finetune: true, lambda: 1, layers: [1] },
      kall: { finetune: true, lambda: 1, layers: "all" },
    }, [
      ["grid-patch", "ntp", 0, 5, 1],
      ["grid-patch", "k1", 0, 25, 2],
      ["grid-patch", "k0", 0, 15, 3],
      ["grid-patch", "kall", 0, 45, 4],
    ]),
  );
  const long = results("long--line-tracing", T1_ARMS, [
    ["line-tracing", "ntp", 0, 52, 1],
    ["line-tracing", "klal", 0, 58, 2],
  ]);
  Object.assign(long, {
    validation: [
      {
        arm: "klal",
        seed: 0,
        step: 100,
        accuracy: 50,
        targetAttention: 0.1,
        targetAttentionRatio: 1.5,
      },
      {
        arm: "klal",
        seed: 0,
        step: 200,
        accuracy: 58,
        targetAttention: 0.2,
        targetAttentionRatio: 2.5,
      },
    ],
  });
  await writeResults(dir, "long--line-tracing", long);
  for (const sigma of [0.35, 1.5]) {
    const r = results(`sig--s${sigma}`, { klal: T1_ARMS.klal }, [
      ["line-tracing", "klal", 0, sigma * 10, sigma],
    ]);
    (r.spec.task.params as Record<string, number>).sigma = sigma;
    await writeResults(dir, `sig--s${sigma}`, r);
  }
}

Deno.test("collectPaper: Table 1 statistics, λ points, layer sets and investigations from reports", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixtureReports(dir);
    const record = await collectPaper({
      reportsDir: dir,
      sources: {
        table1: "t1",
        table1Long: "t1",
        lambda: "lam",
        lambdaLong: "lam",
        layers: "lay",
        long: "long",
        sigma: "sig",
        confirm: "t1",
      },
    });
    // Poster order: Line Tracing before Grid Patch.
    assert.deepEqual(record.tasks, ["line-tracing", "grid-patch"]);
    const grid = record.table1["grid-patch"];
    assert.deepEqual(grid.ntp!.accuracy.mean, 20);
    assert.deepEqual(grid.klal!.accuracy.values, [40, 60, 50]);
    // 95% t-interval of 40, 60, 50: sd 10, t(2) = 0.95 sqrt(2 / (1 - 0.95^2)) = 4.3027.
    const t2 = 0.95 * Math.sqrt(2 / (1 - 0.95 * 0.95));
    near(grid.klal!.accuracy.halfWidth!, t2 * 10 / Math.sqrt(3), 1e-9);
    assert.deepEqual(grid.klal!.ratio.mean, 6);
    // Paired differences 30, 40, 20: mean 30, sd 10, t = 30 / (10 / sqrt 3) = 5.196, dof 2.
    assert.deepEqual(grid.gain!.meanDiff, 30);
    near(grid.gain!.p!, 0.0351, 5e-4);
    assert.deepEqual(grid.base!.accuracy.n, 1);
    assert.deepEqual(grid.poster, { base: 6.1, ntp: 28.6, klal: 44.9 });
    assert.deepEqual(record.table1["line-tracing"].gain!.p, null); // one seed: no test
    // NTP (20) below the floor (25): KLAL+NTP (50) is measured against the floor, one-sample.
    assert.deepEqual(grid.floor, { answer: "1 , 1", accuracy: 25, kind: "majority" });
    assert.equal(grid.reference!.against, "floor");
    near(grid.reference!.klalOverReference, 25, 1e-9);
    near(grid.reference!.ntpOverFloor, -5, 1e-9);
    assert.equal(record.table1["line-tracing"].floor, null);
    assert.equal(record.table1["line-tracing"].reference, null);
    assert.deepEqual(record.lambda["grid-patch"].values, [0, 0.5, 2]);
    assert.deepEqual(record.lambdaLong!.tasks, record.lambda);
    assert.equal(record.lambdaLong!.steps, 20);
    assert.deepEqual(record.lambda["grid-patch"].points["2"].accuracy.mean, 70);
    assert.deepEqual(record.layers!.order, ["first-half", "second-half", "all"]);
    assert.deepEqual(record.layers!.points["first-half"].accuracy.mean, 15);
    assert.deepEqual(record.layers!.ntp!.accuracy.mean, 5);
    const long = record.investigation.long!;
    assert.deepEqual(long.tasks["line-tracing"].klal!.curve, [
      { step: 100, accuracy: 50, ratio: 1.5 },
      { step: 200, accuracy: 58, ratio: 2.5 },
    ]);
    assert.deepEqual(record.investigation.sigma!.tasks["line-tracing"].values, [0.35, 1.5]);
    // Stage seconds once per cache key: t1-a 2, shared 3, lam-a 2, lay-a 2, long 2, sig x2 2
    // (t1 read twice, as Table 1 and as the long Table 1, counts once).
    assert.deepEqual(record.computeSeconds, 2 + 3 + 2 + 2 + 2 + 2 + 2);
    assert.deepEqual(record.setup.visualTokens, 16);
    // Every chart compiles to a spec object and the table names each task.
    const table = renderPaperTable(record);
    assert.ok(
      table.includes(
        "| Grid Patch | 0.0 (n=1) | 20.0 ± 24.8 (n=3) | 50.0 ± 24.8 (n=3) | +30.0 (p=0.035, Holm p=0.035) |",
      ),
      table,
    );
    assert.deepEqual(Object.keys(paperCharts(record)).sort(), [
      "attention",
      "lambda",
      "layers",
      "long_training",
      "table1",
      "table1_long",
    ]);
    assert.deepEqual(record.table1Long!.table1, record.table1);
    assert.deepEqual(record.investigation.confirm!.table1, record.table1);
    assert.equal(record.table1Long!.samplesSeen, 80);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Validation rows of one arm and seed: [step, accuracy %] pairs. */
function curve(arm: string, seed: number, points: [number, number][]) {
  return points.map(([step, accuracy]) => ({
    arm,
    seed,
    step,
    accuracy,
    targetAttention: 0,
    targetAttentionRatio: 1,
  }));
}

/** Two one-task experiments, the first with both control arms and learning curves. */
async function perTaskReports(dir: string) {
  const arms = {
    ...T1_ARMS,
    shuffled: { finetune: true, lambda: 1, layers: "all", target: "shuffled" },
    pointer: { finetune: true, lambda: 1, layers: "all", supervision: "pointer" },
  } as unknown as Arms;
  const grid = results("g64", arms, [
    ...GRID_NTP_KLAL,
    ["grid-patch", "shuffled", 0, 10, 1],
    ["grid-patch", "shuffled", 1, 25, 1],
    ["grid-patch", "shuffled", 2, 25, 1],
    ["grid-patch", "pointer", 0, 35, 1],
    ["grid-patch", "pointer", 1, 50, 1],
    ["grid-patch", "pointer", 2, 45, 1],
  ]);
  Object.assign(grid, {
    table1: [{
      task: "grid-patch",
      klal: { arm: "klal", bootstrap: { estimate: 50, low: 41, high: 59, resamples: 2000 } },
      controls: [{ arm: "shuffled", bootstrap: null }],
    }],
    validation: [
      ...curve("ntp", 0, [[100, 5], [200, 20]]),
      ...curve("ntp", 1, [[100, 10], [200, 30]]),
      ...curve("klal", 0, [[100, 30], [200, 50]]),
      ...curve("klal", 1, [[100, 20], [200, 60]]),
    ],
  });
  await writeResults(dir, "g64", grid);
  await writeResults(
    dir,
    "li64",
    results("li64", T1_ARMS, [
      ["line-intersection", "ntp", 0, 33, 1],
      ["line-intersection", "klal", 0, 60, 3],
    ]),
  );
}

Deno.test("collectPaper: Table 1 from one experiment per task, with controls, Holm p and learning curves", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await perTaskReports(dir);
    const record = await collectPaper({ reportsDir: dir, sources: { table1: ["g64", "li64"] } });
    // Poster order: Line Intersection before Grid Patch.
    assert.deepEqual(record.tasks, ["line-intersection", "grid-patch"]);
    assert.deepEqual(record.sources.map((s) => s.experiment), ["g64", "li64"]);
    const grid = record.table1["grid-patch"];
    assert.equal(grid.klal!.arm, "klal", "the control arms are not taken for KLAL+NTP");
    assert.deepEqual(grid.shuffled!.accuracy.values, [10, 25, 25]);
    assert.deepEqual(grid.pointer!.accuracy.values, [35, 50, 45]);
    assert.deepEqual(grid.klal!.bootstrap, { estimate: 50, low: 41, high: 59, resamples: 2000 });
    assert.equal(grid.shuffled!.bootstrap, null);
    const [vsNtp, vsShuffled, vsPointer] = grid.comparisons!;
    assert.deepEqual(
      [vsNtp.against, vsShuffled.against, vsPointer.against],
      ["ntp", "shuffled", "pointer"],
    );
    // Paired differences, dof 2 (two-sided p = 1 - t / sqrt(t^2 + 2)):
    // vs NTP 30, 40, 20: t = 5.196, p = 0.0351; vs shuffled 30, 35, 25: t = 10.392,
    // p = 0.00914; vs pointer 5, 10, 5: t = 4, p = 0.0572.
    near(vsNtp.p!, 1 - 5.196 / Math.sqrt(27 + 2), 5e-4);
    near(vsShuffled.meanDiff, 30, 1e-9);
    near(vsShuffled.p!, 1 - Math.sqrt(108) / Math.sqrt(110), 1e-4);
    near(vsPointer.p!, 1 - 4 / Math.sqrt(18), 1e-4);
    // Holm over the three p values (Line Intersection's one seed has none): 0.00914 x 3,
    // 0.0351 x 2, then max(0.0572, 0.0702).
    near(vsShuffled.pHolm!, 3 * vsShuffled.p!, 1e-9);
    near(vsNtp.pHolm!, 2 * vsNtp.p!, 1e-9);
    near(vsPointer.pHolm!, 2 * vsNtp.p!, 1e-9);
    const li = record.table1["line-intersection"];
    assert.equal(li.comparisons![0].p, null);
    assert.equal(li.comparisons![0].pHolm, null);
    assert.equal(li.shuffled, null);
    // Learning: NTP ends at 20 and 30 (mean 25); its mean curve (7.5, 25) reaches 25 at step
    // 200, KLAL+NTP's (25, 55) at step 100: ratio 0.5. Per seed: NTP s0 never, s1 at 200.
    const learning = record.learning!["grid-patch"];
    assert.equal(learning.threshold, 25);
    assert.deepEqual(learning.stepsToThreshold["ntp"], [null, 200]);
    assert.deepEqual(learning.stepsToThreshold["klal"], [100, 200]);
    assert.equal(learning.klalOverNtpSteps, 0.5);
    assert.deepEqual(learning.curves["klal"], [
      { step: 100, accuracy: 25, ratio: 1 },
      { step: 200, accuracy: 55, ratio: 1 },
    ]);
    assert.equal(record.learning!["line-intersection"], undefined);
    const table = renderPaperTable(record);
    assert.ok(table.includes("| Grid Patch | 25.0 | not reached, 200 | 100, 200 | 0.50 |"), table);
    assert.ok(
      table.includes("| Grid Patch | KLAL+NTP | 50.0 ± 24.8 (n=3) | [41.0, 59.0] |"),
      table,
    );
    assert.ok(table.includes("+30.0 (p=0.009, Holm p=0.027)"), table);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collectPaper: a missing experiment report names the file and the command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let message = "";
    await collectPaper({ reportsDir: dir, sources: { table1: "nope" } }).catch((e) => {
      message = e.message;
    });
    assert.ok(message.includes(`${dir}/nope/results.json not found`), message);
    assert.ok(message.includes("deno task experiment"), message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("paper template: placeholders, formats, and numbers outside placeholders", () => {
  const record = {
    table1: { "grid-patch": { gain: { meanDiff: -1.26, p: 0.0004 } } },
    a: { mean: 12.345, halfWidth: 1.05, n: 3 },
  } as unknown as PaperRecord;
  assert.deepEqual(
    fillTemplate(
      "gain {{table1/grid-patch/gain/meanDiff:signed}} ({{table1/grid-patch/gain/p:p}}), " +
        "{{a:ci}}, {{a/mean:2}}",
      record,
    ),
    "gain −1.3 (p<0.001), 12.3 ± 1.1 (n=3), 12.35",
  );
  assert.throws(
    () => fillTemplate("x {{table1/line-tracing/gain:1}}", record),
    /no "table1\/line-tracing"/,
  );
  assert.throws(() => lookup(record, "a/missing"), /no "a\/missing"/);
  assert.deepEqual(
    strayNumbers("In Table 1, Qwen 2.5-VL gets {{a/mean:1}}; run `deno task x 3`."),
    [],
  );
  assert.deepEqual(strayNumbers("KLAL wins by 42 points at {{a/mean:1}}"), ["42"]);
  assert.deepEqual(majorityShare('{"answer":"1"}\n{"answer":"2"}\n{"answer":"1"}\n'), 200 / 3);
  assert.deepEqual(layerSetName([0, 1], 4), "first-half");
  assert.deepEqual(layerSetName([2, 3], 4), "second-half");
  assert.deepEqual(layerSetName([0, 1, 2, 3], 4), "all");
  assert.deepEqual(layerSetName([1], 4), "layers-1");
});

/** Every number written in `text`, with its number of decimals. */
function numbersIn(text: string): { text: string; value: number; decimals: number }[] {
  return [...text.matchAll(/(?<![\w.])[−-]?\d+(?:\.\d+)?/g)].map((m) => {
    const t = m[0].replace("−", "-");
    return { text: m[0], value: Number(t), decimals: (t.split(".")[1] ?? "").length };
  });
}

/** Every number in a JSON value. */
function numbersOf(value: unknown, out: number[] = []): number[] {
  if (typeof value === "number") out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => numbersOf(v, out));
  else if (value && typeof value === "object") {
    Object.values(value).forEach((v) => numbersOf(v, out));
  }
  return out;
}

/** Every table's rows in the record: Table 1, the longer Table 1 and the confirmation. */
function allTable1(record: PaperRecord) {
  return [
    record.table1,
    record.table1Long?.table1 ?? {},
    record.investigation.confirm?.table1 ?? {},
  ].flatMap((t) => Object.entries(t));
}

/**
 * Names and labels whose digits are not results ("Table 1", "Qwen 2.5-VL", file names...), and
 * the floors' constant answers in quotes (strings of results.json, such as "27 , 24").
 */
function withoutNames(text: string, answers: string[] = []): string {
  for (const a of answers) text = text.replaceAll(`"${a}"`, " ");
  return text
    .replace(/`[^`]*`/g, " ")
    .replace(/\]\([^)]*\)/g, "] ")
    .replace(
      /Table [12]\b|Qwen 2\.5-VL|WACV 2026|Molmo-7B-D|GLaMM-FS-7B|GPT-4o|Gemini-2\.0|\bH100\b|fp32|TF32|#\d+/g,
      " ",
    )
    .replace(/\b[\w-]+\.(?:yaml|json|md|svg|ts)\b/g, " ")
    .replace(/\b95% |\b1 = chance\b/g, " ")
    .replace(/\bn=\d+/g, " ") // seed counts are checked through the intervals they belong to
    .replace(/\bp[=<]0?\.\d+/g, " "); // p-values: checked below with their own rounding
}

const committed = await Deno.stat(`${PAPER}/results.json`).then(() => true, () => false);

Deno.test({
  name: "committed paper record: README and table numbers come from results.json",
  ignore: !committed,
  fn: async () => {
    const record = withStandInLabels(
      JSON.parse(await Deno.readTextFile(`${PAPER}/results.json`)) as PaperRecord,
    );
    const source = await Deno.readTextFile(`${PAPER}/README.src.md`);
    assert.deepEqual(strayNumbers(source), [], "README.src.md has numbers of its own");
    const readme = await Deno.readTextFile(`${PAPER}/README.md`);
    assert.deepEqual(
      readme,
      fillTemplate(source, record),
      "README.md is stale: deno task report paper",
    );
    const table = await Deno.readTextFile(`${PAPER}/table.md`);
    assert.deepEqual(table, renderPaperTable(record), "table.md is stale: deno task report paper");
    // Independently of the template: each number in the prose and tables rounds from a number
    // in results.json (or a multiple of ten that counts samples, seeds or steps).
    const known = numbersOf(record);
    const answers = allTable1(record).map(([, t]) => t.floor?.answer ?? "").filter((a) => a);
    for (const [file, text] of [["README.md", readme], ["table.md", table]]) {
      for (const n of numbersIn(withoutNames(text, answers))) {
        const tolerance = 0.5 * 10 ** -n.decimals + 1e-9;
        const found = known.some((v) => Math.abs(Math.abs(v) - Math.abs(n.value)) <= tolerance);
        assert.ok(found, `${file}: ${n.text} is not a number of results.json`);
      }
      for (const m of text.matchAll(/\bp=(0\.\d+)/g)) {
        assert.ok(
          known.some((v) => v.toFixed(3) === m[1]),
          `${file}: p=${m[1]} is not a p-value of results.json`,
        );
      }
    }
    for (const name of Object.keys(paperCharts(record))) {
      const svg = await Deno.readTextFile(`${PAPER}/figures/${name}.svg`);
      assert.ok(svg.startsWith("<svg"), `figures/${name}.svg is not an SVG`);
    }
  },
});

Deno.test({
  name: "committed paper record: a floor and a reference for every task, in the Floor column",
  ignore: !committed,
  fn: async () => {
    const record = JSON.parse(await Deno.readTextFile(`${PAPER}/results.json`)) as PaperRecord;
    const rows = allTable1(record);
    assert.ok(rows.length >= record.tasks.length);
    for (const task of record.tasks) assert.ok(record.table1[task], task);
    for (const [task, t] of rows) {
      assert.ok(t.floor, `${task}: floor`);
      assert.ok(Number.isFinite(t.floor.accuracy) && t.floor.answer.length > 0, task);
      assert.ok(["majority", "best-constant"].includes(t.floor.kind), task);
      // Exact-match tasks: the floor is the majority answer, the record's own majority share.
      if (t.majority !== null) assert.equal(t.floor.accuracy, t.majority, task);
      const r = t.reference!;
      const ntp = t.ntp!.accuracy.mean, klal = t.klal!.accuracy.mean;
      near(r.accuracy, Math.max(t.floor.accuracy, ntp), 1e-9);
      near(r.klalOverReference, klal - r.accuracy, 1e-9);
      near(r.ntpOverFloor, ntp - t.floor.accuracy, 1e-9);
    }
    assert.ok(record.setup.floorNote, "setup.floorNote says how the floors were computed");
    const table = await Deno.readTextFile(`${PAPER}/table.md`);
    const header = table.split("\n").find((l) => l.startsWith("| Task | Base |"))!;
    assert.ok(header.split("|").map((c) => c.trim()).includes("Floor"), header);
    for (const task of record.tasks) {
      const f = record.table1[task].floor!;
      assert.ok(table.includes(`| ${f.accuracy.toFixed(1)} ("${f.answer}") |`), task);
    }
    const readme = await Deno.readTextFile(`${PAPER}/README.md`);
    assert.ok(readme.includes("| Floor |"), "README's Table 1 has a Floor column");
    const chart = JSON.stringify(paperCharts(record).table1);
    assert.ok(chart.includes('"kind":"floor"'), "the Table 1 chart draws the floors");
  },
});

Deno.test({
  name: "deno task report paper rebuilds the same table, README and figures from results.json",
  ignore: !committed,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/paper`);
      for (const f of ["results.json", "README.src.md"]) {
        await Deno.copyFile(`${PAPER}/${f}`, `${dir}/paper/${f}`);
      }
      const r = await runScript("pipeline/commands/report.ts", ["paper"], {
        KLAL_REPORTS_DIR: dir,
      });
      assert.deepEqual(r.code, 0, r.stderr);
      for (const f of ["table.md", "README.md"]) {
        assert.deepEqual(
          await Deno.readTextFile(`${dir}/paper/${f}`),
          await Deno.readTextFile(`${PAPER}/${f}`),
          `${f} differs`,
        );
      }
      const record = JSON.parse(await Deno.readTextFile(`${PAPER}/results.json`)) as PaperRecord;
      for (const name of Object.keys(paperCharts(record))) {
        assert.deepEqual(
          await Deno.readTextFile(`${dir}/paper/figures/${name}.svg`),
          await Deno.readTextFile(`${PAPER}/figures/${name}.svg`),
          `figures/${name}.svg differs`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno task report paper: bad flags exit 2 with the usage; a missing record exits 1", async () => {
  const bad = await runScript("pipeline/commands/report.ts", ["paper", "--colect"]);
  assert.deepEqual(bad.code, 2);
  assert.ok(bad.stderr.includes("unknown option --colect"), bad.stderr);
  assert.ok(bad.stderr.includes("usage: deno task report paper"), bad.stderr);
  const dir = await Deno.makeTempDir();
  try {
    const missing = await runScript("pipeline/commands/report.ts", ["paper"], {
      KLAL_REPORTS_DIR: dir,
    });
    assert.deepEqual(missing.code, 1, missing.stderr);
    assert.ok(missing.stderr.includes("results.json"), missing.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("paper figures: one registry entry each, with its own caption and the installed schema", async () => {
  const keys = PAPER_CHARTS.map((e) => e.key);
  assert.equal(new Set(keys).size, keys.length, `unique keys: ${keys}`);
  const captions = PAPER_CHARTS.map((e) => e.caption);
  for (const [i, caption] of captions.entries()) {
    assert.ok(caption.trim().length > 20, `${keys[i]}: a caption that says something`);
  }
  assert.equal(new Set(captions).size, captions.length, "no two figures share a caption");
  const dir = await Deno.makeTempDir();
  try {
    await fixtureReports(dir);
    await perTaskReports(dir);
    const record = await collectPaper({
      reportsDir: dir,
      sources: {
        table1: ["g64", "li64"],
        table1Long: "t1",
        lambda: "lam",
        layers: "lay",
        long: "long",
      },
    });
    const charts = paperCharts(record);
    assert.deepEqual(Object.keys(charts), keys, "every figure, in registry order");
    for (const [key, spec] of Object.entries(charts)) {
      assert.equal((spec as { $schema?: string }).$schema, VEGA_LITE_SCHEMA, `${key}: $schema`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("regimeOf: the Base above the floor by its interval's low end, NTP by 5 points", () => {
  const stats = (mean: number) => ({ mean, halfWidth: 1, n: 5, seeds: [0], values: [mean] });
  const arm = (mean: number, low?: number) =>
    ({
      arm: "x",
      lambda: 0,
      layers: [],
      accuracy: stats(mean),
      ratio: stats(1),
      bootstrap: low === undefined ? null : { estimate: mean, low, high: mean + 1 },
    }) as never;
  const row = (floor: number, base: unknown, ntp: unknown) =>
    ({ floor: { answer: "a", accuracy: floor }, base, ntp }) as never;
  const regime = regimeOf(["a", "b", "c", "d"], {
    // Base mean above, interval low end above: counts; NTP 5.0 points above: counts.
    a: row(3.2, arm(8.2, 6.0), arm(8.2)),
    // Base mean above but its interval reaches the floor: does not; NTP 4.9 above: does not.
    b: row(3.2, arm(3.8, 2.2), arm(8.1)),
    // No interval: the mean decides (above); NTP below the floor.
    c: row(50, arm(50.4), arm(49.9)),
    // No floor: neither is known.
    d: { floor: null, base: arm(10, 9), ntp: arm(90) } as never,
  });
  assert.deepStrictEqual(regime.baseAbove, ["a", "c"]);
  assert.deepStrictEqual(regime.ntpAbove, ["a"]);
  assert.equal(regime.baseAboveCount, 2);
  assert.equal(regime.ntpAboveCount, 1);
  assert.ok(Math.abs(regime.perTask.a.ntpOverFloor! - 5) < 1e-9);
  assert.ok(Math.abs(regime.perTask.b.baseOverFloor! - 0.6) < 1e-9);
  assert.ok(Math.abs(regime.perTask.c.ntpOverFloor! + 0.1) < 1e-9);
  assert.deepStrictEqual(regime.perTask.d, {
    baseOverFloor: null,
    baseAbove: false,
    ntpOverFloor: null,
    ntpAbove: false,
  });
  assert.equal(regime.ntpMargin, 5);
});
