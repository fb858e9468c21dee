/**
 * Table 1 as CSV and LaTeX, and each chart's Vega-Lite spec beside its SVG and PNG: the files a
 * written report holds, checked for their content.
 */
import assert from "node:assert/strict";
import {
  latexText,
  TABLE1_CSV_COLUMNS,
  table1Csv,
  table1Latex,
} from "../pipeline/report/exports.ts";
import { type ReportInput, summarize, table1, writeReport } from "../pipeline/report/mod.ts";
import { parseCsv } from "../pipeline/lib/csv.ts";
import { sha256Hex } from "../pipeline/lib/hash.ts";
import { lmmsSample, lmmsSamplesJsonl, samplesPath } from "../pipeline/report/samples.ts";
import { reportSpec } from "./report_fixtures.ts";
import { armSpec } from "./spec_fixtures.ts";

/** Line Intersection, seeds 0 and 1: Base 10, 10; NTP 40, 50; KLAL+NTP 60, 64 (20 items). */
function input(): ReportInput {
  const spec = reportSpec({
    name: "exports",
    description: "",
    task: { name: "line-intersection" },
    arms: { base: armSpec({ finetune: false }), ntp: armSpec(), klal: armSpec({ lambda: 1 }) },
  });
  const accuracy: Record<string, number[]> = { ntp: [40, 50], klal: [60, 64] };
  const out: ReportInput = {
    spec,
    rows: [{ task: "line-intersection", arm: "base", seed: 0, metric: "accuracy", value: 10 }],
    curves: [],
    stages: [],
    backend: "wasm",
    createdAt: "2026-01-02T03:04:05.000Z",
    floors: {
      "line-intersection": {
        answer: "1",
        accuracy: 33.5,
        kind: "majority",
        shortcut: { rule: "parity of end points", accuracy: 55 },
      },
    },
  };
  for (const [arm, values] of Object.entries(accuracy)) {
    values.forEach((value, seed) =>
      out.rows.push({ task: "line-intersection", arm, seed, metric: "accuracy", value })
    );
  }
  return out;
}

Deno.test("table1.csv: one number per column, hand-checked", () => {
  const rows = table1(input(), summarize(input()));
  const records = parseCsv(table1Csv(rows));
  assert.deepEqual(records[0].fields, [...TABLE1_CSV_COLUMNS]);
  for (const r of records) {
    assert.equal(r.fields.length, TABLE1_CSV_COLUMNS.length, `line ${r.line}`);
  }
  const li = records.find((r) => r.fields[0] === "line-intersection")!;
  const field = (name: string) => li.fields[TABLE1_CSV_COLUMNS.indexOf(name as never)];
  assert.equal(field("run"), "true");
  assert.equal(field("floor"), "33.5");
  assert.equal(field("shortcut_floor"), "55");
  assert.equal(field("shortcut_rule"), "parity of end points");
  assert.equal(field("ntp_mean"), "45");
  // t_{0.975,1} = 12.706; sd of 40, 50 is 7.071; half-width 12.706 * 7.071 / sqrt(2) = 63.53.
  assert.ok(Math.abs(Number(field("ntp_ci95_half_width")) - 63.53) < 0.01);
  assert.equal(field("klal_mean"), "62");
  assert.equal(field("base_n"), "1");
  assert.equal(field("gain"), "17");
  // Differences 20 and 14: t = 17 / (4.243 / sqrt 2) = 5.667 on 1 dof.
  const p = 1 - 2 / Math.PI * Math.atan(17 / (Math.sqrt(18) / Math.SQRT2));
  assert.ok(Math.abs(Number(field("gain_p")) - p) < 1e-9, field("gain_p"));
  assert.equal(field("gain_seeds"), "2");
  assert.equal(field("gain_bases"), "");
  // No item outcomes: no bootstrap, left empty rather than invented.
  assert.equal(field("ntp_bootstrap_low"), "");
  // A task the experiment did not run: its row says so, its numbers empty.
  const notRun = records.find((r) => r.fields[0] === "grid-patch")!;
  assert.equal(notRun.fields[TABLE1_CSV_COLUMNS.indexOf("run")], "false");
  assert.equal(notRun.fields[TABLE1_CSV_COLUMNS.indexOf("ntp_mean")], "");
  assert.equal(notRun.fields[TABLE1_CSV_COLUMNS.indexOf("poster_ntp")], "28.6");
});

Deno.test("table1.tex: the table's cells, LaTeX's special characters escaped", () => {
  assert.equal(
    latexText("KLAL − NTP & 5% of a_b ± 1 {x}"),
    "KLAL $-$ NTP \\& 5\\% of a\\_b $\\pm$ 1 \\{x\\}",
  );
  const rows = table1(input(), summarize(input()));
  const tex = table1Latex(rows, "Table 1 of exports");
  assert.match(tex, /\\begin\{tabular\}\{lrrrrrrrrrr\}/);
  assert.match(tex, /\\caption\{Table 1 of exports\}/);
  const lines = tex.split("\n");
  const header = lines[lines.indexOf("\\toprule") + 1];
  assert.ok(header.startsWith("Task & Floor (fixed answer) & Base (ours) & NTP (ours)"), header);
  const li = lines.find((l) => l.startsWith("Line Intersection"))!;
  assert.equal(li.split(" & ").length, 11, li);
  assert.match(li, /45\.0 \$\\pm\$ 63\.5/);
  assert.ok(li.endsWith(" \\\\"), li);
  assert.ok(!/[^\\]%/.test(li), `an unescaped % in ${li}`);
});

Deno.test("a written report holds table1.csv, table1.tex and each chart's Vega-Lite spec", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeReport(`${root}/r`, input());
    const csv = await Deno.readTextFile(`${root}/r/table1.csv`);
    assert.ok(csv.startsWith("task,label,run,floor,"), csv.slice(0, 40));
    assert.match(await Deno.readTextFile(`${root}/r/table1.tex`), /\\begin\{tabular\}/);
    const figures = [...Deno.readDirSync(`${root}/r/figures`)].map((e) => e.name).sort();
    const specs = figures.filter((f) => f.endsWith(".vl.json"));
    assert.ok(specs.length > 0, figures.join(" "));
    for (const file of specs) {
      const name = file.slice(0, -".vl.json".length);
      assert.ok(figures.includes(`${name}.svg`) && figures.includes(`${name}.png`), name);
      const spec = JSON.parse(await Deno.readTextFile(`${root}/r/figures/${file}`));
      assert.match(spec.$schema, /vega-lite/, file);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lmms-eval samples: every field of one line, the hashes by known digests", async () => {
  const line = await lmmsSample(
    { index: 7, prompt: "abc", answer: "3", prediction: "2", correct: false, difficulty: 4 },
    { task: "line-intersection", arm: "klal", seed: 2 },
  );
  const doc = { task: "line-intersection", prompt: "abc", answer: "3", difficulty: 4 };
  assert.deepEqual(line, {
    doc_id: 7,
    doc,
    target: "3",
    arguments: [["abc", { do_sample: false, temperature: 0 }]],
    resps: [["2"]],
    filtered_resps: ["2"],
    doc_hash: await sha256Hex(JSON.stringify(doc)),
    // SHA-256 of "abc" (FIPS 180-2's example) and of "3".
    prompt_hash: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    target_hash: "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce",
    exact_match: 0,
    arm: "klal",
    seed: 2,
  });
  assert.equal(
    samplesPath({ task: "refcoco", arm: "ntp", seed: 3 }),
    "samples/refcoco/samples_ntp_s3.jsonl",
  );
  assert.equal(
    samplesPath({ task: "refcoco", arm: "ntp", seed: 3 }, "val"),
    "samples/refcoco_val/samples_ntp_s3.jsonl",
  );
  const text = '{"index":0,"prompt":"p","answer":"a","prediction":"a","correct":true}\n\n';
  const jsonl = await lmmsSamplesJsonl(text, { task: "t", arm: "a", seed: 0 });
  assert.equal(jsonl.split("\n").length, 2);
  assert.equal(JSON.parse(jsonl).exact_match, 1);
});
