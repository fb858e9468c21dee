/**
 * Stacked fine-tunes (pipeline/run/stacking.ts, pipeline/stages/finetune.ts
 * `runFinetuneGroup`): which stages stack and when a stack launches, by hand; and, on a WebGPU
 * adapter (llvmpipe here), a spec's arms and seeds trained as one stack give each cache entry
 * the weights and losses of training it alone, and a partly cached run trains only what is
 * missing.
 */
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache/store.ts";
import { gpuAdapter, initBackend } from "../pipeline/kernels/backend.ts";
import { buildPlan, type ResolvedStage, resolvePlan } from "../pipeline/run/plan.ts";
import { runExperiment } from "../pipeline/run/runner.ts";
import { launches, STACK_ENV, stackingEnabled, stackKey } from "../pipeline/run/stacking.ts";
import { loadCheckpoint } from "../pipeline/stages/_checkpoint.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { TASKS } from "../tasks/registry.ts";
import { tinySpec } from "./cli.ts";

const ctx = { tasks: TASKS };
const gpu = await gpuAdapter();
const adapterName = gpu.available ? gpu.description : gpu.reason;

const ARMS = {
  ntp: "{ lambda: 0 }",
  klal: "{ lambda: 1.5 }",
  shuffled: "{ lambda: 1.5, target: shuffled }",
  pointer: "{ lambda: 1, supervision: pointer }",
};

function specText(name: string, arms: Record<string, string> = ARMS) {
  return tinySpec(name, arms, {
    backend: "webgpu",
    seeds: "[0, 1]",
    train: "{ steps: 5, batch_size: 8, warmup: 1, log_every: 1, eval_every: 2 }",
  });
}

async function planOf(text: string): Promise<ResolvedStage[]> {
  return await resolvePlan(buildPlan(parseSpec(text, "t.yaml", [], ctx)));
}

Deno.test("stacking: a spec's attention fine-tunes share a stack; the pointer control and other stages do not", async () => {
  const plan = await planOf(specText("stack-keys"));
  const tunes = plan.filter((s) => s.kind === "finetune");
  assert.equal(tunes.length, 8);
  const keys = new Set(tunes.filter((s) => s.arm !== "pointer").map(stackKey));
  assert.equal(keys.size, 1, "ntp, klal and shuffled over both seeds: one stack");
  assert.ok(![...keys][0]!.includes("lambda"), "λ is each arm's own");
  for (const s of tunes.filter((s) => s.arm === "pointer")) assert.equal(stackKey(s), undefined);
  for (const s of plan.filter((s) => s.kind !== "finetune")) assert.equal(stackKey(s), undefined);
  // Another batch size is another stack.
  const other = await planOf(
    specText("stack-keys").replace("batch_size: 8, warmup", "batch_size: 4, warmup"),
  );
  const otherKey = stackKey(other.find((s) => s.kind === "finetune" && s.arm === "ntp")!);
  assert.notEqual(otherKey, [...keys][0]);
});

Deno.test("stacking: a stack waits for members still on their way while a worker runs", () => {
  const stage = (id: string, key?: string) => ({ id, key }) as unknown as ResolvedStage;
  const keyOf = (s: ResolvedStage) => (s as unknown as { key?: string }).key;
  const [a1, a2, a3, b1, d] = [
    stage("a1", "A"),
    stage("a2", "A"),
    stage("a3", "A"),
    stage("b1", "B"),
    stage("d"),
  ];
  const ids = (groups: ResolvedStage[][]) => groups.map((g) => g.map((s) => s.id));
  // a3 is not ready and a worker runs: stack A waits; B (complete) and d go.
  assert.deepEqual(ids(launches([a1, a2, b1, d], [a1, a2, a3, b1, d], 4, true, keyOf)), [
    ["d"],
    ["b1"],
  ]);
  // Nothing runs (and nothing else starts): A goes with what is ready, rather than never.
  assert.deepEqual(ids(launches([a1, a2], [a1, a2, a3], 4, false, keyOf)), [["a1", "a2"]]);
  // Every member ready: one launch for the stack; slots count workers, not stages.
  assert.deepEqual(ids(launches([a1, a2, a3, d], [a1, a2, a3, d], 2, false, keyOf)), [
    ["d"],
    ["a1", "a2", "a3"],
  ]);
  assert.deepEqual(ids(launches([a1, a2, a3, d], [a1, a2, a3, d], 1, false, keyOf)), [["d"]]);
  // Stacking only where the whole-step trainer runs, and not when switched off.
  assert.equal(stackingEnabled("wasm+openblas"), false);
  assert.equal(stackingEnabled("webgpu"), true);
  Deno.env.set(STACK_ENV, "off");
  try {
    assert.equal(stackingEnabled("webgpu"), false);
  } finally {
    Deno.env.delete(STACK_ENV);
  }
});

/** Every fine-tune's weights and logged losses from a run's cache. */
async function finetunes(cache: Cache, stages: { id: string; key: string }[]) {
  const out = new Map<
    string,
    { weights: Record<string, Float32Array>; log: number[]; curve: number[] }
  >();
  for (const s of stages.filter((s) => s.id.startsWith("finetune:"))) {
    const { model } = await loadCheckpoint(cache, s.key);
    const weights = Object.fromEntries(
      Object.entries(await model.getWeights()).map(([n, w]) => [n, w.data]),
    );
    model.dispose();
    const { log, learning } = await cache.readJson<
      { log: { total: number }[]; learning: { step: number; targetAttention: number }[] }
    >(s.key, "log.json");
    out.set(s.id, {
      weights,
      log: log.map((p) => p.total),
      // The validation curve (eval_every), measured on the arm's own weights mid-stack.
      curve: learning.flatMap((p) => [p.step, p.targetAttention]),
    });
  }
  return out;
}

Deno.test({
  name:
    `stacking: a spec's fine-tunes trained as one stack equal each trained alone (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    await initBackend("wasm");
    const dir = await Deno.makeTempDir({ prefix: "klal-stacking-" });
    try {
      const text = specText("stacked", { ntp: ARMS.ntp, klal: ARMS.klal });
      const spec = parseSpec(text, `${dir}/spec.yaml`, [], ctx);
      const run = async (cacheDir: string, stack: boolean) => {
        const lines: string[] = [];
        if (!stack) Deno.env.set(STACK_ENV, "off");
        try {
          const cache = new Cache(`${dir}/${cacheDir}`);
          const summary = await runExperiment(spec, {
            cache,
            reportsDir: `${dir}/reports-${cacheDir}`,
            jobs: 2,
            log: (line) => lines.push(line),
          });
          return { cache, summary, lines };
        } finally {
          Deno.env.delete(STACK_ENV);
        }
      };
      const alone = await run("alone", false);
      assert.ok(!alone.lines.some((l) => l.includes("stack of")), alone.lines.join("\n"));
      const stacked = await run("stacked", true);
      assert.ok(
        stacked.lines.some((l) => l.includes("stack of 4 fine-tunes")),
        stacked.lines.join("\n"),
      );
      // The same keys (stacking is not in them) and, per entry, the same numbers.
      assert.deepEqual(
        stacked.summary.stages.map((s) => s.key),
        alone.summary.stages.map((s) => s.key),
      );
      const a = await finetunes(alone.cache, alone.summary.stages);
      const b = await finetunes(stacked.cache, stacked.summary.stages);
      assert.equal(b.size, 4);
      for (const [id, mine] of b) {
        const theirs = a.get(id)!;
        assert.equal(mine.log.length, theirs.log.length, id);
        assert.equal(mine.curve.length, 6, `${id}: evaluated after steps 2, 4 and 5`);
        mine.curve.forEach((v, i) =>
          assert.ok(Math.abs(v - theirs.curve[i]) < 1e-4, `${id} curve`)
        );
        mine.log.forEach((v, i) =>
          assert.ok(Math.abs(v - theirs.log[i]) < 1e-4, `${id} loss ${i}`)
        );
        for (const [name, w] of Object.entries(mine.weights)) {
          let diff = 0;
          w.forEach((x, i) => diff = Math.max(diff, Math.abs(x - theirs.weights[name][i])));
          assert.ok(diff < 1e-4, `${id} ${name} off by ${diff}`);
        }
      }
      let apart = 0;
      const klal = b.get("finetune:klal:s0")!.weights;
      const ntp = b.get("finetune:ntp:s0")!.weights;
      for (const [name, w] of Object.entries(klal)) {
        w.forEach((x, i) => apart = Math.max(apart, Math.abs(x - ntp[name][i])));
      }
      assert.ok(apart > 1e-3, `the arms trained apart (${apart})`);
      // A partly cached run trains only what is missing: two entries gone, two stacked.
      const gone = stacked.summary.stages.filter((s) =>
        s.id === "finetune:klal:s1" || s.id === "finetune:ntp:s0"
      );
      for (const s of gone) await stacked.cache.evict(s.key);
      const again = await run("stacked", true);
      const ran = again.summary.stages.filter((s) => s.status === "ran").map((s) => s.id);
      assert.deepEqual(
        ran.filter((id) => id.startsWith("finetune:")).sort(),
        ["finetune:klal:s1", "finetune:ntp:s0"],
      );
      assert.ok(
        again.lines.some((l) => l.includes("stack of 2 fine-tunes")),
        again.lines.join("\n"),
      );
      const c = await finetunes(again.cache, again.summary.stages);
      for (const s of gone) {
        const w = c.get(s.id)!.weights["head.w"];
        const expected = a.get(s.id)!.weights["head.w"];
        w.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-4, `${s.id} after the rerun`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
