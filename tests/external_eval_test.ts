/** `deno task eval`: a trained arm on a folder of outside images, labels by file or by name. */
import assert from "node:assert/strict";
import { answerFromName, readLabels as readLabelRows } from "../pipeline/eval/labels.ts";

/** The labels of a file as file -> answer (what most of these tests check). */
async function readLabels(path: string): Promise<Map<string, string>> {
  return new Map([...(await readLabelRows(path))].map(([file, label]) => [file, label.answer]));
}
import { encodePng } from "../tasks/image_io.ts";
import { TASKS } from "../tasks/registry.ts";
import { runScript } from "./cli.ts";

const SPEC = `
name: external-tiny
seeds: [0]
backend: wasm
task: { name: line-intersection, image_size: 32, train: 32, test: 8, params: { max_count: 2 } }
model: { patch_size: 8, d_model: 16, layers: 1, heads: 2 }
base: { steps: 2, batch_size: 8, train: 16 }
train: { steps: 3, batch_size: 8, warmup: 1 }
arms:
  base: { finetune: false }
  ntp: { lambda: 0 }
`;

Deno.test("labels: CSV with or without header, JSON list or map", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-labels-" });
  await Deno.writeTextFile(`${dir}/a.csv`, "file,answer\nx.png,1\ny.png, 2 \n");
  assert.deepEqual([...(await readLabels(`${dir}/a.csv`))], [["x.png", "1"], ["y.png", "2"]]);
  await Deno.writeTextFile(`${dir}/b.json`, '[{"file":"x.png","answer":0}]');
  assert.deepEqual([...(await readLabels(`${dir}/b.json`))], [["x.png", "0"]]);
  await Deno.writeTextFile(`${dir}/c.json`, '{"x.png":"2"}');
  assert.deepEqual([...(await readLabels(`${dir}/c.json`))], [["x.png", "2"]]);
  await Deno.writeTextFile(`${dir}/d.csv`, "x.png\n");
  await assert.rejects(readLabels(`${dir}/d.csv`), /d\.csv:1: expected "file,answer"/);
  // Errors say where and what is wrong, never what the file says (it may be any file).
  const secret = "root:x:0:0:root:/root:/bin/bash";
  await Deno.writeTextFile(`${dir}/e.csv`, `file,answer\n${secret}\n`);
  await assert.rejects(readLabels(`${dir}/e.csv`), (e: Error) => {
    assert.equal(e.message, `${dir}/e.csv:2: expected "file,answer", found a line with no comma`);
    return true;
  });
  await Deno.writeTextFile(`${dir}/f.json`, secret);
  await assert.rejects(readLabels(`${dir}/f.json`), (e: Error) => {
    assert.equal(e.message, `${dir}/f.json: not valid JSON`);
    return true;
  });
  await Deno.writeTextFile(`${dir}/g.json`, `[{"file":"x.png","answer":0},{"secret":"${secret}"}]`);
  await assert.rejects(readLabels(`${dir}/g.json`), (e: Error) => {
    assert.ok(!e.message.includes("root:x"), e.message);
    assert.match(
      e.message,
      /g\.json row 2: expected \{file, answer\}.*, found an object with file: none, answer: none$/,
    );
    return true;
  });
  assert.equal(answerFromName("gt_2_img3.png", /gt_(\d+)_/), "2");
});

Deno.test("labels CSV: quoted commas, BOM, CRLF; extra columns and conflicting rows refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-labels-csv-" });
  const read = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return [...(await readLabels(`${dir}/${name}`))];
  };
  // Grid Patch and PixMo answers hold commas; their spacing is kept as written.
  assert.deepEqual(
    await read("a.csv", '\uFEFFfile,answer\r\n"a, b.png","2 , 2"\r\nc.png, "1 , 0"\r\n'),
    [["a, b.png", "2 , 2"], ["c.png", "1 , 0"]],
  );
  assert.deepEqual(await read("b.csv", 'x.png,"say ""yes"""\nx.png,"say ""yes"""\n'), [
    ["x.png", 'say "yes"'],
  ]);
  await assert.rejects(read("c.csv", "file,answer\nx.png,2 , 2\n"), (e: Error) => {
    assert.equal(
      e.message,
      `${dir}/c.csv:2: expected "file,answer", found 3 columns (quote an answer that holds a ` +
        'comma: "2 , 2")',
    );
    return true;
  });
  await assert.rejects(read("d.csv", "file,answer\nx.png,1\ny.png,0\nx.png,2\n"), (e: Error) => {
    assert.equal(
      e.message,
      `${dir}/d.csv:4: a second, different answer for x.png (first given at line 2)`,
    );
    return true;
  });
  await assert.rejects(
    read("e.csv", 'file,answer\nx.png,"2 , 2\n'),
    new RegExp(`e\\.csv:2:7: a quoted field is never closed$`),
  );
  await assert.rejects(
    read("f.json", '[{"file":"x.png","answer":1},{"file":"x.png","answer":"2"}]'),
    /f\.json row 2: a second, different answer for x\.png \(first given at row 1\)$/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("answers from file names", () => {
  assert.equal(answerFromName("gt_2_img3.png", /gt_(\d+)_/), "2");
  assert.equal(answerFromName("img3-n1.png", /-n(?<answer>\d)/), "1");
  assert.equal(answerFromName("img.png", /gt_(\d+)/), undefined);
});

Deno.test("deno task eval: accuracy with its interval, recorded; clear errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-external-" });
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  await Deno.writeTextFile(`${dir}/spec.yaml`, SPEC);
  // Outside images at another size (48 px), the count in the file name, BlindTest-style.
  await Deno.mkdir(`${dir}/images`);
  const samples = TASKS["line-intersection"].generate!(77, 6, {
    imageSize: 48,
    patchSize: 8,
    params: { ...TASKS["line-intersection"].defaultParams, max_count: 2 },
  });
  for (const [i, s] of samples.entries()) {
    await Deno.writeFile(`${dir}/images/img${i}_gt${s.answer}.png`, await encodePng(s.image));
  }
  const evalArgs = [
    `${dir}/spec.yaml`,
    "--arm",
    "ntp",
    "--images",
    `${dir}/images`,
    "--regex",
    "_gt(\\d+)\\.png$",
  ];
  const untrained = await runScript("pipeline/commands/eval.ts", evalArgs, env);
  assert.equal(untrained.code, 1);
  assert.match(untrained.stderr, /finetune:ntp:s0 of external-tiny is not in the cache/);

  const trained = await runScript("pipeline/commands/experiment.ts", [`${dir}/spec.yaml`], env);
  assert.equal(trained.code, 0, trained.stderr);
  const run = await runScript("pipeline/commands/eval.ts", evalArgs, env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /finetune:ntp:s0 on images: accuracy \d+\.\d% \(\d\/6; 95% CI/);
  const record = JSON.parse(
    await Deno.readTextFile(`${dir}/reports/external-tiny/external/images.json`),
  );
  assert.equal(record.n, 6);
  assert.equal(record.prompt, "how many times do the lines intersect ?");
  assert.deepEqual(
    record.predictions.map((p: { answer: string }) => p.answer),
    samples.map((s) => s.answer),
  );
  assert.equal(
    record.correct,
    record.predictions.filter((p: { correct: boolean }) => p.correct).length,
  );

  const bad = await runScript("pipeline/commands/eval.ts", [
    ...evalArgs.slice(0, -1),
    "_count(\\d+)",
  ], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /6 image\(s\) have no answer matching --regex/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("labels: prompts per image, points and boxes in percent; bad ones named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-labels-rich-" });
  const read = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return await readLabelRows(`${dir}/${name}`);
  };
  const csv = await read("a.csv", 'file,answer,prompt\nx.png,"2 , 2",where is the red patch ?\n');
  assert.deepEqual(csv.get("x.png"), { answer: "2 , 2", prompt: "where is the red patch ?" });
  await assert.rejects(
    read("b.csv", "file,answer,prompt\nx.png,1\n"),
    /b\.csv:2: expected "file,answer,prompt", found 2 columns/,
  );
  await assert.rejects(
    read("c.csv", "file,answer,colour\nx.png,1,red\n"),
    /c\.csv:1: expected the header "file,answer" or "file,answer,prompt", found 3 columns/,
  );
  const json = await read(
    "d.json",
    JSON.stringify([
      {
        file: "p.png",
        answer: "40 , 60",
        prompt: "point to the cat",
        points: [[40, 60], [70, 20]],
      },
      { file: "b.png", answer: "10 20 30 40", box: [10, 20, 30, 40] },
    ]),
  );
  assert.deepEqual(json.get("p.png"), {
    answer: "40 , 60",
    prompt: "point to the cat",
    points: [[40, 60], [70, 20]],
  });
  assert.deepEqual(json.get("b.png")!.box, [10, 20, 30, 40]);
  await assert.rejects(
    read("e.json", JSON.stringify([{ file: "p.png", answer: "1", points: [[40, 160]] }])),
    /e\.json row 1: expected points to be a non-empty list of \[x, y\] in percent \(0-100\)$/,
  );
  await assert.rejects(
    read("f.json", JSON.stringify([{ file: "b.png", answer: "1", box: [30, 20, 10, 40] }])),
    /f\.json row 1: expected box to be \[x1, y1, x2, y2\] in percent, x1 < x2 and y1 < y2$/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task eval on points: the task's scorer, a prompt per image, attention on the target", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-external-points-" });
  const env = { KLAL_CACHE_DIR: `${dir}/cache`, KLAL_REPORTS_DIR: `${dir}/reports` };
  await Deno.writeTextFile(
    `${dir}/spec.yaml`,
    SPEC.replace("name: external-tiny", "name: external-points")
      .replace(
        "{ name: line-intersection, image_size: 32, train: 32, test: 8, params: { max_count: 2 } }",
        "{ name: pixmo-points, image_size: 32, train: 32, test: 8 }",
      ),
  );
  const trained = await runScript("pipeline/commands/experiment.ts", [`${dir}/spec.yaml`], env);
  assert.equal(trained.code, 0, trained.stderr);
  // Outside images: the stand-in's own scenes, each with its prompt and its points.
  const task = TASKS["pixmo-points"];
  const config = { imageSize: 48, patchSize: 8, params: { ...task.defaultParams } };
  const samples = await task.load!(await task.writeStandIn!(`${dir}/src`, 5, 6, config), config);
  await Deno.mkdir(`${dir}/images`);
  const rows: { file: string; answer: string; prompt: string; points: number[][] }[] = [];
  for (const [i, s] of samples.entries()) {
    await Deno.writeFile(`${dir}/images/p${i}.png`, await encodePng(s.image));
    const points = (s.meta.points as { x: number; y: number }[]).map((p) => [p.x, p.y]);
    rows.push({ file: `p${i}.png`, answer: s.answer, prompt: s.prompt, points });
  }
  await Deno.writeTextFile(`${dir}/labels.json`, JSON.stringify(rows));
  const run = await runScript("pipeline/commands/eval.ts", [
    `${dir}/spec.yaml`,
    "--arm",
    "ntp",
    "--images",
    `${dir}/images`,
    "--labels",
    `${dir}/labels.json`,
  ], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    /attention on the target: ratio \d+\.\d{3} at the first answer position/,
  );
  const record = JSON.parse(
    await Deno.readTextFile(`${dir}/reports/external-points/external/images.json`),
  );
  assert.equal(record.n, 6);
  assert.equal(record.prompt, null, "no one prompt: each image has its own");
  assert.deepEqual(
    record.predictions.map((p: { prompt: string }) => p.prompt),
    samples.map((s) => s.prompt),
  );
  assert.ok(record.attention.targetAttentionRatio > 0);
  // Scored as the task scores: a prediction counts when it hits one of the points.
  for (const [i, p] of record.predictions.entries()) {
    assert.equal(
      p.correct,
      task.score(p.prediction, { ...samples[i], meta: { ...samples[i].meta } }),
    );
  }
  assert.deepEqual(record.unknownWords, {
    words: record.unknownWords.words,
    unknown: 0,
    distinct: [],
  });
  // Prompts with words the checkpoint never saw: counted and named; above the rate, refused.
  const evalWith = async (rewrite: (p: string) => string, extra: string[] = []) => {
    const reworded = rows.map((r) => ({ ...r, prompt: rewrite(r.prompt) }));
    await Deno.writeTextFile(`${dir}/labels2.json`, JSON.stringify(reworded));
    return await runScript("pipeline/commands/eval.ts", [
      `${dir}/spec.yaml`,
      ...["--arm", "ntp", "--images", `${dir}/images`, "--labels", `${dir}/labels2.json`],
      ...extra,
    ], env);
  };
  const words = rows.reduce((n, r) => n + r.prompt.trim().split(/\s+/).length, 0);
  const refused = await evalWith((p) => `${p} zebra`);
  assert.equal(refused.code, 2, refused.stderr);
  const pct = (100 * 6 / (words + 6)).toFixed(1);
  assert.match(
    refused.stderr,
    new RegExp(
      `labels2\\.json: 6 of the prompts' ${words + 6} words \\(${pct}%\\) are not in the ` +
        `vocabulary of finetune:ntp:s0, expected at most 5\\.0% \\(--max-unknown\\): zebra \\(6\\)`,
    ),
  );
  const allowed = await evalWith((p) => `${p} zebra`, ["--max-unknown", "0.5", "--name", "z"]);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(
    allowed.stderr,
    /note: 6 of the prompts' \d+ words are unknown to finetune:ntp:s0 and read as <unk>: zebra \(6\)/,
  );
  const z = JSON.parse(await Deno.readTextFile(`${dir}/reports/external-points/external/z.json`));
  assert.deepEqual(z.unknownWords.distinct, [{ word: "zebra", count: 6 }]);
  const bad = await evalWith((p) => p, ["--max-unknown", "2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-unknown expects a share from 0 to 1, found 2/);
  await Deno.remove(dir, { recursive: true });
});
