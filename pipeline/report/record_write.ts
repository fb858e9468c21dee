/**
 * The record's write-up (docs/record/): one `record.json` computed from the task reports'
 * results.json (docs/record/results/TASK/), the validation runs' reports
 * (docs/record/validation/NAME/) and the spec runs' wall clock (docs/record/wall.json); then
 * README.md rendered from README.src.md, table.md and figures/ from record.json. Every number,
 * and every count or quantifier about the data, reaches the prose through a placeholder or a
 * phrase computed here (`countPhrase`), never typed by hand.
 */
import { formatValue, NUMBER_WORDS } from "./paper/template.ts";
import { ci95, mean, quantileSorted } from "./stats.ts";
import {
  ALPHA,
  CEILING,
  MARGIN_ABOVE_FLOOR,
  readRecord,
  type RecordResults,
  type TaskReading,
} from "./record.ts";

/** A task report's results.json, as far as the write-up reads it. */
export interface TaskResults extends RecordResults {
  spec: {
    seeds: number[];
    task: { name: string; image_size: number; test: number; test_seed?: number; train: number };
    model: { patch_size: number; d_model: number; layers: number; heads: number };
    base: { steps: number; batch_size: number; train: number; lambda?: number; seed: number[] };
    train: {
      steps: number;
      batch_size: number;
      lr: number;
      eval_every?: number;
      eval_samples?: number;
    };
    arms: Record<string, { lambda?: number; layers?: unknown; seeds?: number[] }>;
  };
  stages: { stage: string; status: string; seconds: number }[];
  tasks: {
    task: string;
    label: string;
    standIn: boolean;
    promptOverlap?: { distinct: number; seen: number };
    arms: { arm: string; task_metrics: Record<string, number> }[];
  }[];
  validation?: { arm: string; seed: number; step: number; accuracy: number }[];
  table2?: {
    quoted: { model: string; lineIntersection: number; lineTracing: number }[];
  };
  table1: (RecordResults["table1"][number] & {
    base?: ArmStats | null;
    ntp: ArmStats | null;
    klal: ArmStats | null;
    controls?: (ArmStats & { control: string })[];
    poster?: { base: number; ntp: number; klal: number } | null;
  })[];
}

interface ArmStats {
  arm: string;
  mean: number;
  halfWidth: number | null;
  n: number;
  bootstrap: { low: number; high: number } | null;
}

/** One spec's run as the driver timed it (docs/record/wall.json). */
export interface WallEntry {
  spec: string;
  seconds: number;
  maxRssKb: number;
}

/** A count as a word up to twenty, as digits above. */
export function numberWord(n: number): string {
  return Number.isInteger(n) && n >= 0 && n < NUMBER_WORDS.length ? NUMBER_WORDS[n] : String(n);
}

/**
 * "every Base" (k = n, n > 2), "both Bases" (k = n = 2), "no Base" (k = 0), else "two of
 * three Bases"; `noun` singular, `plural` its plural.
 */
export function countPhrase(k: number, n: number, noun: string, plural = `${noun}s`): string {
  if (n === 0) return `no ${noun}`;
  if (k === 0) return n === 2 ? `neither ${noun}` : `no ${noun}`;
  if (k === n) return n === 1 ? `the one ${noun}` : n === 2 ? `both ${plural}` : `every ${noun}`;
  return `${numberWord(k)} of ${numberWord(n)} ${n === 1 ? noun : plural}`;
}

/** How many times: "once", "twice", "three times"; "never" for 0. */
export function timesWord(n: number): string {
  return n === 0 ? "never" : n === 1 ? "once" : n === 2 ? "twice" : `${numberWord(n)} times`;
}

/** A camelCase key for a task name: "line-intersection" -> "lineIntersection". */
export function taskKey(task: string): string {
  return task.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The first step at which each seed's validation accuracy reaches `threshold`. */
export function stepsToThreshold(
  rows: readonly { arm: string; seed: number; step: number; accuracy: number }[],
  arm: string,
  threshold: number,
): { seed: number; step: number | null }[] {
  const seeds = [...new Set(rows.filter((r) => r.arm === arm).map((r) => r.seed))].sort((a, b) =>
    a - b
  );
  return seeds.map((seed) => {
    const curve = rows.filter((r) => r.arm === arm && r.seed === seed).sort((a, b) =>
      a.step - b.step
    );
    return { seed, step: curve.find((r) => r.accuracy >= threshold)?.step ?? null };
  });
}

function median(values: readonly number[]): number | null {
  return values.length === 0 ? null : quantileSorted([...values].sort((a, b) => a - b), 0.5);
}

const CONTROL_NAMES: Record<string, string> = {
  shuffled: "shuffled map",
  uniform: "uniform map",
  pointer: "pointer head",
};

const CONTROL_ALTERNATIVES: Record<string, string> = {
  shuffled: "any attention-shaped extra loss helps",
  uniform: "an extra regulariser on the attention helps",
  pointer: "the localisation signal alone helps, wherever it enters",
};

function perSeed(r: RecordResults, arm: string, metric = "accuracy"): Map<number, number> {
  return new Map(
    r.rows.filter((x) => x.arm === arm && x.metric === metric).map((x) => [x.seed, x.value]),
  );
}

function armMetric(r: TaskResults, task: string, arm: string, metric: string): number | null {
  const t = r.tasks.find((x) => x.task === task);
  return t?.arms.find((a) => a.arm === arm)?.task_metrics[metric] ?? null;
}

/** Everything the write-up says about one task. */
function taskWriteup(r: TaskResults, reading: TaskReading, wall: WallEntry | undefined) {
  const row = r.table1.find((t) => t.run)!;
  const info = r.tasks.find((t) => t.task === row.task);
  const nBases = reading.baseGains.length;
  const positiveBases = reading.baseGains.filter((b) => b.gain > 0).length;
  const attentionAbove =
    reading.attention.filter((a) =>
      a.klal > a.ntp && (reading.questionBlind === undefined || a.klal > reading.questionBlind)
    ).length;
  const ntpSeeds = perSeed(r, row.ntp!.arm);
  const klalSeeds = perSeed(r, row.klal!.arm);
  const half = reading.klal / 2;
  const ntpLow = [...ntpSeeds.values()].filter((v) => v < half).length;
  const klalLow = [...klalSeeds.values()].filter((v) => v < half).length;
  const seedGains = [...klalSeeds].filter(([s]) => ntpSeeds.has(s)).map(([s, v]) =>
    v - ntpSeeds.get(s)!
  );
  const controls: Record<string, unknown> = {};
  for (const c of reading.controls) {
    const stats = row.controls?.find((x) => x.arm === c.arm);
    const seeds = [...perSeed(r, c.arm).keys()];
    const ntpSame = mean(seeds.filter((x) => ntpSeeds.has(x)).map((x) => ntpSeeds.get(x)!));
    const klalSame = mean(seeds.filter((x) => klalSeeds.has(x)).map((x) => klalSeeds.get(x)!));
    const low = c.bootstrap?.low ?? null;
    const high = c.bootstrap?.high ?? null;
    const name = CONTROL_NAMES[c.arm] ?? c.arm;
    const alternative = CONTROL_ALTERNATIVES[c.arm] ?? c.arm;
    // Ruled out (KLAL+NTP ahead, report's Holm p < alpha); ahead but not after Holm (the
    // interval above 0); cannot tell (the interval includes 0); the control ahead (below 0).
    const reading = c.rulesOut
      ? `rules out "${alternative}"`
      : low !== null && low > 0
      ? `KLAL+NTP ahead (the interval above 0), not after Holm: "${alternative}" not ruled out`
      : high !== null && high < 0
      ? `the ${name} ahead of KLAL+NTP`
      : `cannot tell KLAL+NTP from the ${name} (the interval includes 0)`;
    controls[c.arm] = {
      name,
      alternative,
      mean: stats?.mean ?? null,
      n: stats?.n ?? null,
      ntpSameSeeds: ntpSame,
      klalSameSeeds: klalSame,
      diff: c.diff,
      pHolm: c.pHolm,
      low,
      high,
      rulesOut: c.rulesOut,
      reading,
      outcome: c.rulesOut
        ? `rules out its alternative ("${alternative}")`
        : low !== null && low > 0
        ? "trails KLAL+NTP, though not after Holm"
        : high !== null && high < 0
        ? "is ahead of KLAL+NTP"
        : "cannot be told from KLAL+NTP",
      vsNtp: stats
        ? stats.mean < ntpSame ? "below NTP" : stats.mean > ntpSame ? "above NTP" : "at NTP"
        : null,
    };
  }
  const learning = learningOf(r, row.ntp!.arm, row.klal!.arm);
  const confusion = confusionOf(r, row.task, row.ntp!.arm, row.klal!.arm);
  const stageSeconds = r.stages.filter((s) => s.status === "ran").reduce(
    (sum, s) => sum + s.seconds,
    0,
  );
  const iou = armMetric(r, row.task, row.ntp!.arm, "iou");
  const testStage = `data:${row.task}:test:s${r.spec.task.test_seed}`;
  const testRuns = r.stages.filter((s) => s.stage === testStage && s.status === "ran").length;
  return {
    task: row.task,
    label: row.label,
    standIn: info?.standIn ?? false,
    experiment: r.experiment,
    testItems: r.spec.task.test,
    testSetGenerated: timesWord(testRuns),
    distinctPrompts: info?.promptOverlap?.distinct ?? null,
    promptsSeenInPretraining: info?.promptOverlap?.seen ?? null,
    floor: row.floor?.accuracy ?? null,
    shortcut: row.floor?.shortcut ?? null,
    largerFloor: reading.largerFloor,
    ntpAboveFloor: reading.ntp - reading.largerFloor,
    inRegime: reading.inRegime,
    regime: reading.inRegime
      ? "in the regime"
      : reading.ntp >= 90
      ? "out of the regime (NTP at the ceiling)"
      : `out of the regime (NTP ${signedText(reading.ntp - reading.largerFloor)} points from the ` +
        `larger floor, short of the ${MARGIN_ABOVE_FLOOR}-point margin)`,
    base: row.base ?? null,
    ntp: row.ntp,
    klal: row.klal,
    bases: nBases,
    basesWord: numberWord(nBases),
    seeds: ntpSeeds.size,
    seedsWord: numberWord(ntpSeeds.size),
    seedsPerBase: nBases > 0 ? ntpSeeds.size / nBases : ntpSeeds.size,
    gain: {
      diff: reading.gain,
      p: reading.p,
      pHolm: reading.pHolm,
      pHolmReport: (row as { gain?: { pHolm?: number | null } }).gain?.pHolm ?? null,
      low: reading.bootstrap?.low ?? null,
      high: reading.bootstrap?.high ?? null,
    },
    baseGains: reading.baseGains.map((b) => b.gain),
    baseGainsText: reading.baseGains.map((b) => signedText(b.gain)).join(", "),
    positiveBases: countPhrase(positiveBases, nBases, "Base"),
    seedsGaining: countPhrase(seedGains.filter((g) => g > 0).length, seedGains.length, "seed"),
    lowRule: "below half of KLAL+NTP's mean accuracy",
    ntpSeedsLow: countPhrase(ntpLow, ntpSeeds.size, "NTP seed"),
    klalSeedsLow: countPhrase(klalLow, klalSeeds.size, "KLAL+NTP seed"),
    ntpSeedsText: [...ntpSeeds.values()].map((v) => v.toFixed(1)).join(", "),
    ntpSeedsLowPerBase: (r.bases ?? []).map((b) =>
      `${
        countPhrase(
          b.seeds.filter((x) => (ntpSeeds.get(x) ?? Infinity) < half).length,
          b.seeds.length,
          "seed",
        )
      } on Base ${b.seed}`
    ).join(", "),
    ntpSeedsInside: countPhrase(
      [...ntpSeeds.values()].filter((v) =>
        v >= reading.largerFloor + MARGIN_ABOVE_FLOOR && v < CEILING
      ).length,
      ntpSeeds.size,
      "NTP seed",
    ),
    perSeed: [...ntpSeeds.keys()].map((seed) => ({
      seed,
      base: (r.bases ?? []).find((b) => b.seeds.includes(seed))?.seed ?? null,
      ntp: ntpSeeds.get(seed)!,
      klal: klalSeeds.get(seed) ?? null,
    })),
    verdict: reading.verdict,
    attention: {
      questionBlind: reading.questionBlind ?? null,
      ntp: mean(reading.attention.map((a) => a.ntp)),
      klal: mean(reading.attention.map((a) => a.klal)),
      perBase: reading.attention.map((a) => `${a.klal.toFixed(2)} / ${a.ntp.toFixed(2)}`).join(
        ", ",
      ),
      basesAbove: countPhrase(attentionAbove, nBases, "Base"),
      basesAboveNtp: countPhrase(
        reading.attention.filter((a) => a.klal > a.ntp).length,
        nBases,
        "Base",
      ),
      basesAboveBlind: countPhrase(
        reading.attention.filter((a) =>
          reading.questionBlind === undefined || a.klal > reading.questionBlind
        ).length,
        nBases,
        "Base",
      ),
      verdict: reading.attentionReproduced ? "reproduced" : "not reproduced",
    },
    controls,
    iou: iou === null ? null : {
      ntp: iou,
      klal: armMetric(r, row.task, row.klal!.arm, "iou"),
      ntpAt30: armMetric(r, row.task, row.ntp!.arm, "accuracy_iou30"),
      klalAt30: armMetric(r, row.task, row.klal!.arm, "accuracy_iou30"),
    },
    learning,
    confusion,
    stageSeconds,
    stageHours: stageSeconds / 3600,
    wallSeconds: wall?.seconds ?? null,
    wallMinutes: wall ? wall.seconds / 60 : null,
    maxRssGb: wall ? wall.maxRssKb / 1024 / 1024 : null,
  };
}

/**
 * Per-class accuracy (% of the items of each true class answered right; rows of the report's
 * confusion matrix, summed over seeds) of NTP and KLAL+NTP, on closed-answer tasks.
 */
function confusionOf(r: TaskResults, task: string, ntpArm: string, klalArm: string) {
  const all = (r.statistics as { confusion?: ConfusionEntry[] }).confusion ?? [];
  const recall = (arm: string) => {
    const c = all.find((x) => x.task === task && x.arm === arm);
    return c?.matrix.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total === 0 ? null : (100 * row[i]) / total;
    });
  };
  /** Per true class, the most common wrong answer and its share of the class's items. */
  const confused = (arm: string) => {
    const c = all.find((x) => x.task === task && x.arm === arm);
    return c?.matrix.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      let best = -1;
      row.forEach((v, j) => {
        if (j !== i && (best < 0 || v > row[best])) best = j;
      });
      return best < 0 || total === 0
        ? null
        : { answer: c.classes[best], share: (100 * row[best]) / total };
    });
  };
  const ntp = recall(ntpArm);
  const klal = recall(klalArm);
  const classes = all.find((x) => x.task === task && x.arm === ntpArm)?.classes;
  if (!ntp || !klal || !classes) return null;
  return {
    classes: classes.slice(0, ntp.length),
    ntp,
    klal,
    ntpConfused: confused(ntpArm)!,
    klalConfused: confused(klalArm)!,
  };
}

interface ConfusionEntry {
  task: string;
  arm: string;
  classes: string[];
  matrix: number[][];
}

/** Steps to NTP's plateau (its final validation accuracy, mean over seeds) for NTP and KLAL+NTP. */
function learningOf(r: TaskResults, ntpArm: string, klalArm: string) {
  const rows = r.validation ?? [];
  if (rows.length === 0) return null;
  const last = Math.max(...rows.map((x) => x.step));
  const finals = rows.filter((x) => x.arm === ntpArm && x.step === last).map((x) => x.accuracy);
  const threshold = mean(finals);
  const reach = (arm: string) => {
    const steps = stepsToThreshold(rows, arm, threshold);
    const reached = steps.filter((s) => s.step !== null).map((s) => s.step!);
    return {
      reached: countPhrase(reached.length, steps.length, "seed"),
      reachedCount: reached.length,
      seeds: steps.length,
      medianStep: median(reached),
      medianStepText: reached.length === 0 ? "never" : String(median(reached)),
    };
  };
  const ntp = reach(ntpArm);
  const klal = reach(klalArm);
  const curve = (arm: string) => {
    const steps = [...new Set(rows.filter((x) => x.arm === arm).map((x) => x.step))].sort((a, b) =>
      a - b
    );
    return steps.map((step) => ({
      step,
      accuracy: mean(rows.filter((x) => x.arm === arm && x.step === step).map((x) => x.accuracy)),
    }));
  };
  return {
    threshold,
    lastStep: last,
    evalEvery: r.spec.train.eval_every ?? null,
    ntp,
    klal,
    curves: { ntp: curve(ntpArm), klal: curve(klalArm) },
  };
}

/** A signed difference as the write-up shows it (+1.2, −0.3, 0.0). */
function signedText(v: number): string {
  return formatValue(v, "signed");
}

/** A validation run (λ sweep or layer ablation point): per arm, accuracy and first-position ratio. */
export interface SweepArm {
  arm: string;
  lambda: number;
  layers: string;
  accuracy: { mean: number; halfWidth: number | null; n: number };
  ratio: number;
  /** Mean over seeds of the arm's accuracy − NTP's on the same seed. */
  gain: number | null;
  /** Per fine-tune seed, the accuracy. */
  seeds: Record<string, number>;
}

/** Read a validation report: its arms with their λ, layers, accuracy and attention ratio. */
export function readSweep(r: TaskResults): { task: string; label: string; arms: SweepArm[] } {
  const row = r.table1.find((t) => t.run)!;
  const ntpArm = Object.entries(r.spec.arms).find(([, a]) => (a.lambda ?? 0) === 0)?.[0];
  const ntp = ntpArm ? perSeed(r, ntpArm) : new Map<number, number>();
  const arms = Object.entries(r.spec.arms).map(([arm, a]) => {
    const acc = perSeed(r, arm);
    const c = ci95([...acc.values()]);
    const ratio = mean([...perSeed(r, arm, "target_attention_ratio_first").values()]);
    const diffs = [...acc].filter(([s]) => ntp.has(s)).map(([s, v]) => v - ntp.get(s)!);
    return {
      arm,
      lambda: a.lambda ?? 0,
      layers: (a.lambda ?? 0) === 0
        ? "none"
        : Array.isArray(a.layers)
        ? `layer ${a.layers.join(", ")}`
        : String(a.layers ?? "all"),
      accuracy: { mean: c.mean, halfWidth: c.halfWidth ?? null, n: c.n },
      ratio,
      gain: arm === ntpArm || diffs.length === 0 ? null : mean(diffs),
      seeds: Object.fromEntries(acc),
    };
  });
  return { task: row.task, label: row.label, arms };
}

/** Everything the write-up reads, computed from the files; what `record.json` holds. */
export function buildRecord(
  reports: readonly TaskResults[],
  validation: { lambda: readonly TaskResults[]; layers: readonly TaskResults[] },
  wall: readonly WallEntry[],
) {
  const readings = readRecord(reports);
  const tasks: Record<string, ReturnType<typeof taskWriteup>> = {};
  reports.forEach((r, i) => {
    const key = taskKey(readings[i].task);
    tasks[key] = taskWriteup(r, readings[i], wall.find((w) => w.spec === readings[i].task));
  });
  const list = Object.values(tasks);
  const n = list.length;
  const inRegime = list.filter((t) => t.inRegime);
  const by = (v: string) => list.filter((t) => t.verdict === v);
  const first = reports[0];
  const spec = first.spec;
  const count = (k: number, noun = "task") => countPhrase(k, n, noun);
  const lambdaSets = validation.lambda.map(readSweep);
  const layerSets = validation.layers.map(readSweep);
  const recordLambda = spec.arms.klal?.lambda ?? 0;
  /** The best KLAL arm on validation, and its paired difference from the record's setting. */
  const best = (set: ReturnType<typeof readSweep>) => {
    const top = set.arms.filter((a) => a.lambda > 0).reduce((a, b) =>
      b.accuracy.mean > a.accuracy.mean ? b : a
    );
    const chosen = set.arms.find((a) => a.lambda === recordLambda && a.layers === "all");
    const diffs = chosen
      ? Object.entries(top.seeds).filter(([s]) => s in chosen.seeds).map(([s, v]) =>
        v - chosen.seeds[s]
      )
      : [];
    const c = ci95(diffs);
    const separated = top !== chosen && c.low !== undefined && (c.low > 0 || c.high! < 0);
    return {
      ...top,
      vsRecord: {
        diff: top === chosen ? 0 : c.mean,
        low: c.low ?? null,
        high: c.high ?? null,
        reading: top === chosen
          ? "the record's own setting"
          : `${
            signedText(c.mean)
          } points from the record's setting (paired 95% interval over seeds [${
            signedText(c.low ?? NaN)
          }, ${signedText(c.high ?? NaN)}], ${
            separated ? "excluding" : "including"
          } no difference)`,
      },
    };
  };
  const stageSeconds = list.reduce((s, t) => s + t.stageSeconds, 0);
  const taskNames = new Set(list.map((t) => t.task));
  const wallSeconds = wall.filter((w) => taskNames.has(w.spec)).reduce((s, w) => s + w.seconds, 0);
  const validationWall = wall.filter((w) => !taskNames.has(w.spec));
  const validationSeconds = validationWall.reduce((s, w) => s + w.seconds, 0);
  const table2 = first.table2?.quoted ?? [];
  return {
    design: {
      testSeed: spec.task.test_seed ?? null,
      validationSeed: (spec.task.test_seed ?? 0) + 1,
      testItems: spec.task.test,
      trainSamples: spec.task.train,
      imageSize: spec.task.image_size,
      patchSize: spec.model.patch_size,
      visualTokens: (spec.task.image_size / spec.model.patch_size) ** 2,
      dModel: spec.model.d_model,
      layers: spec.model.layers,
      heads: spec.model.heads,
      steps: spec.train.steps,
      optimizer: (spec.train as { optimizer?: string }).optimizer ?? null,
      warmup: (spec.train as { warmup?: number }).warmup ?? null,
      queries: (spec.arms.klal as { queries?: string } | undefined)?.queries ?? null,
      batch: spec.train.batch_size,
      lr: spec.train.lr,
      lambda: spec.arms.klal?.lambda ?? null,
      evalEvery: spec.train.eval_every ?? null,
      evalSamples: spec.train.eval_samples ?? null,
      baseSteps: spec.base.steps,
      baseTrain: spec.base.train,
      baseLambda: spec.base.lambda ?? null,
      alpha: ALPHA,
      regimeMargin: MARGIN_ABOVE_FLOOR,
      ceiling: CEILING,
      cores: (first as { run?: { cores?: number } }).run?.cores ?? null,
      controlSeeds: numberWord(spec.arms.shuffled?.seeds?.length ?? 0),
      tasks: numberWord(n),
    },
    counts: {
      tasks: n,
      inRegime: count(inRegime.length),
      inRegimeWord: numberWord(inRegime.length),
      ntpAboveUniform: count(list.filter((t) => t.attention.ntp > 1).length),
      reproduced: count(by("reproduced").length),
      consistent: count(by("consistent, not confirmed").length),
      notReproduced: count(by("not reproduced").length),
      notATest: count(by("not a test of the claim").length),
      attention: countPhrase(
        inRegime.filter((t) => t.attention.verdict === "reproduced").length,
        inRegime.length,
        "task in the regime",
        "tasks in the regime",
      ),
      testSetGenerated: [...new Set(list.map((t) => t.testSetGenerated))].length === 1
        ? `${list[0].testSetGenerated} per task`
        : list.map((t) => `${t.label} ${t.testSetGenerated}`).join(", "),
      basesMax: numberWord(Math.max(...list.map((t) => t.bases))),
      basesMin: numberWord(Math.min(...list.map((t) => t.bases))),
      dofMax: numberWord(Math.max(...list.map((t) => t.bases)) - 1),
      dofMin: numberWord(Math.min(...list.map((t) => t.bases)) - 1),
    },
    tasks,
    lambda: Object.fromEntries(
      lambdaSets.map((s) => [taskKey(s.task), {
        ...s,
        values: s.arms.map((a) => a.lambda).join(", "),
        best: best(s),
      }]),
    ),
    layers: Object.fromEntries(
      layerSets.map((s) => [taskKey(s.task), { ...s, best: best(s) }]),
    ),
    validationSeed: validation.lambda[0]?.spec.task.test_seed ?? null,
    validationItems: validation.lambda[0]?.spec.task.test ?? null,
    validationSeeds: numberWord(validation.lambda[0]?.spec.seeds.length ?? 0),
    table2: {
      quoted: table2,
      ours: {
        lineIntersection: tasks.lineIntersection?.klal?.mean ?? null,
        lineTracing: tasks.lineTracing?.klal?.mean ?? null,
      },
    },
    time: {
      stageSeconds,
      stageHours: stageSeconds / 3600,
      wallSeconds,
      wallHours: wallSeconds / 3600,
      wallMinutes: wallSeconds / 60,
      validation: validationWall.map((w) => ({
        spec: w.spec,
        wallMinutes: w.seconds / 60,
        maxRssGb: w.maxRssKb / 1024 / 1024,
      })),
      validationHours: validationSeconds / 3600,
      allHours: (wallSeconds + validationSeconds) / 3600,
    },
  };
}

export type RecordWriteup = ReturnType<typeof buildRecord>;
