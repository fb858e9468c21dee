/**
 * The project from a clone whose path holds a space and a non-ASCII character: module URLs
 * percent-encode both, so every path must come through the standard conversion.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { pathOf, PROJECT_ROOT, projectPath } from "../pipeline/lib/paths.ts";
import { tinySpec } from "./cli.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");

/** The tiny spec of ./cli.ts, smaller still: one layer, half the data, two steps. */
const TINY_SPEC = tinySpec("paths-tiny", { base: "{ finetune: false }", ntp: "{ lambda: 0 }" }, {
  task: "{ name: grid-patch, image_size: 16, train: 32, test: 8, params: { grid: 2, blobs: 1 } }",
  model: "{ patch_size: 8, d_model: 16, layers: 1, heads: 2 }",
  base: "{ steps: 2, batch_size: 8, train: 16 }",
  train: "{ steps: 2, batch_size: 8, warmup: 1, log_every: 1 }",
});

Deno.test("paths: pathOf decodes what URL.pathname keeps encoded", () => {
  const url = new URL("file:///tmp/sp%20ace%20%C3%BC/x.ts");
  assert.equal(url.pathname, "/tmp/sp%20ace%20%C3%BC/x.ts");
  assert.equal(pathOf(url), "/tmp/sp ace ü/x.ts");
  assert.equal(PROJECT_ROOT, REPO);
  assert.equal(projectPath("experiments"), `${REPO}/experiments`);
  assert.throws(() => pathOf("https://example.com/x"), /file/i);
});

/** Copies what the pipeline runs into `dest` (node_modules linked, not copied). */
async function copyProject(dest: string) {
  await Deno.mkdir(dest, { recursive: true });
  for (const entry of ["pipeline", "tasks", "experiments"]) {
    const out = await new Deno.Command("cp", { args: ["-r", `${REPO}/${entry}`, `${dest}/`] })
      .output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
  // The example specs read the fixtures made for them.
  await Deno.mkdir(`${dest}/tests/fixtures`, { recursive: true });
  const fixtures = await new Deno.Command("cp", {
    args: ["-r", `${REPO}/tests/fixtures/own-data`, `${dest}/tests/fixtures/`],
  }).output();
  assert.equal(fixtures.code, 0, new TextDecoder().decode(fixtures.stderr));
  for (const file of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(`${REPO}/${file}`, `${dest}/${file}`);
  }
  await Deno.symlink(`${REPO}/node_modules`, `${dest}/node_modules`);
}

Deno.test({
  name: "paths: a tiny experiment runs from a clone under 'sp ace ü', and gc finds experiments/",
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "klal-paths-" });
    const clone = `${tmp}/sp ace ü/klal`;
    await copyProject(clone);
    const spec = `${clone}/experiments/paths-tiny.yaml`;
    await Deno.writeTextFile(spec, TINY_SPEC);
    const env = {
      KLAL_CACHE_DIR: `${clone}/.cache`,
      KLAL_PLAIN_PROGRESS: "1",
      NO_COLOR: "1",
    };
    const run = (script: string, args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${clone}/${script}`, ...args],
        env,
        cwd: clone,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);

    const out = await run("pipeline/commands/experiment.ts", [spec, "--jobs", "2"]);
    assert.equal(out.code, 0, text(out.stderr) + text(out.stdout));
    const results = JSON.parse(
      await Deno.readTextFile(`${clone}/reports/paths-tiny/results.json`),
    );
    const arms = results.rows
      .filter((r: { metric: string }) => r.metric === "accuracy")
      .map((r: { arm: string }) => r.arm)
      .sort();
    assert.deepEqual(arms, ["base", "ntp"]);

    // gc (dry run) plans every spec under the clone's experiments/: the entries this spec
    // uses are kept, so none of them is listed for deletion.
    const gc = await run("pipeline/commands/cache.ts", ["gc"]);
    const gcText = text(gc.stdout) + text(gc.stderr);
    assert.equal(gc.code, 0, gcText);
    assert.doesNotMatch(gcText, /would remove/);
    assert.match(gcText, /\b0 unreferenced entries/);
    await Deno.remove(tmp, { recursive: true });
  },
});
