/** base.lambda: the Base pretrains with KLAL toward the mix's own maps; 0 keeps the old keys. */
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache/store.ts";
import { buildPlan, resolvePlan } from "../pipeline/run/plan.ts";
import { runExperiment } from "../pipeline/run/runner.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { expandSweep } from "../pipeline/spec/sweep.ts";
import { TASKS } from "../tasks/registry.ts";
import { paramsOf, tinySpec } from "./cli.ts";

const ctx = { tasks: TASKS };
const yaml = (base: string) =>
  `name: t\ntask: { name: grid-patch, image_size: 64 }\nbase: { steps: 10${base} }\n` +
  `arms: { ntp: { lambda: 0 } }\n`;
const pretrainOf = (text: string) =>
  buildPlan(parseSpec(text, "t.yaml", [], ctx)).find((s) => s.id === "pretrain")!;

Deno.test("base.lambda: 0 (the default) leaves the Base's params as before; > 0 is in them", () => {
  const plain = pretrainOf(yaml(""));
  const zero = pretrainOf(yaml(", lambda: 0"));
  const kl = pretrainOf(yaml(", lambda: 0.3"));
  assert.equal(parseSpec(yaml(""), "t.yaml", [], ctx).base.lambda, 0);
  // Not even an explicit lambda: 0 key: a spec written before the key existed keeps its cache.
  assert.equal(JSON.stringify(plain.params), JSON.stringify(zero.params));
  assert.ok(!JSON.stringify(plain.params).includes("lambda"));
  assert.equal((paramsOf(kl).base as { lambda: number }).lambda, 0.3);
  assert.throws(
    () => parseSpec(yaml(", lambda: -1"), "t.yaml", [], ctx),
    /base\.lambda/,
  );
});

Deno.test("base.lambda: the pretraining loss is NTP + lambda x KL on every logged step", async () => {
  for (const lambda of [0, 0.5]) {
    const dir = await Deno.makeTempDir({ prefix: "klal-base-lambda-" });
    try {
      const text = tinySpec(`base-lambda-${lambda * 10}`, { ntp: "{ lambda: 0 }" }, {
        backend: "wasm",
        task:
          "{ name: grid-patch, image_size: 16, train: 16, test: 8, params: { grid: 2, blobs: 1 } }",
        model: "{ patch_size: 8, d_model: 8, layers: 1, heads: 2 }",
        base:
          `{ steps: 12, batch_size: 4, train: 16, lambda: ${lambda}, mix: { kinds: [color, cell] } }`,
        train: "{ steps: 1, batch_size: 4, warmup: 1 }",
        eval: null,
      });
      await Deno.writeTextFile(`${dir}/spec.yaml`, text);
      const [spec] = expandSweep(text, `${dir}/spec.yaml`, [], ctx);
      const cache = new Cache(`${dir}/cache`);
      const summary = await runExperiment(spec, {
        cache,
        reportsDir: `${dir}/reports`,
        jobs: 1,
        log: () => {},
      });
      const key = summary.stages.find((s) => s.id === "pretrain")!.key;
      const { log } = await cache.readJson<
        { log: { step: number; ntp: number; klal: number; total: number }[] }
      >(key, "log.json");
      assert.ok(log.length >= 2, `${log.length} log rows`);
      for (const row of log) {
        assert.ok(row.klal > 0, `KL at step ${row.step}: ${row.klal}`);
        const expected = row.ntp + lambda * row.klal;
        assert.ok(
          Math.abs(row.total - expected) < 1e-4 * Math.max(1, expected),
          `step ${row.step}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("cache gc: a base: block file beside the specs is planned with them, not as a spec", async () => {
  const { referencedKeys } = await import("../pipeline/commands/cache.ts");
  const dir = await Deno.makeTempDir({ prefix: "klal-gc-base-" });
  try {
    await Deno.mkdir(`${dir}/bases`);
    await Deno.writeTextFile(`${dir}/bases/b.yaml`, "steps: 7\nlambda: 0.3\n");
    await Deno.writeTextFile(
      `${dir}/spec.yaml`,
      yaml("").replace(/base: \{[^}]*\}/, "base: ./bases/../bases/b.yaml"),
    );
    const named = await referencedKeys(dir);
    assert.deepStrictEqual(named.problems, []);
    const spec = parseSpec(
      yaml(", lambda: 0.3").replace("steps: 10", "steps: 7"),
      "t.yaml",
      [],
      ctx,
    );
    // The spec's plan is the same as with the block written inline: its Base's key is kept.
    const resolved = await resolvePlan(buildPlan(spec));
    const pretrain = resolved.find((s) => s.id === "pretrain")!;
    assert.ok(named.keys.has(pretrain.key));
    assert.equal(named.keys.size, resolved.length);
    // The file on its own, named by no spec, is still planned, and fails as a spec.
    await Deno.remove(`${dir}/spec.yaml`);
    const orphan = await referencedKeys(dir);
    assert.equal(orphan.problems.length, 1);
    assert.match(orphan.problems[0], /bases\/b\.yaml/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
