/**
 * The pre-registered reading of the record (docs/preregistration.md), task by task, from each
 * task report's results.json: whether the task is in the regime, the primary comparison
 * (KLAL+NTP − NTP, its p over the Bases' means, Holm-corrected over the tasks read), each
 * Base's mean gain, the verdict, the attention claim per Base, and what each control rules out.
 * Nothing here is typed by hand: every number is read or computed from the files.
 */
import { holmAdjust, mean } from "./stats.ts";

/** The regime's condition: NTP at least this many points above the larger floor ... */
export const MARGIN_ABOVE_FLOOR = 5;
/** ... and below this accuracy, so a gain can show. */
export const CEILING = 90;
/** The level of the pre-registered tests. */
export const ALPHA = 0.05;
/** The tasks of the record, in the pre-registration's order. */
export const RECORD_TASKS = [
  "line-intersection",
  "pixmo-points",
  "grid-patch",
  "refcoco",
  "line-tracing",
] as const;

interface Interval {
  estimate: number;
  low: number;
  high: number;
}

/** The parts of a report's results.json this reading needs. */
export interface RecordResults {
  experiment: string;
  bases?: { seed: number; seeds: number[] }[];
  rows: { task: string; arm: string; seed: number; metric: string; value: number }[];
  floors: Record<string, { accuracy: number; questionBlind?: { ink?: number } }>;
  table1: {
    task: string;
    label: string;
    run: boolean;
    floor: { accuracy: number; shortcut?: { rule: string; accuracy: number } | null } | null;
    ntp: { arm: string; mean: number; n: number } | null;
    klal: { arm: string; mean: number; n: number } | null;
  }[];
  statistics: {
    comparisons: {
      task: string;
      kind: "ntp" | "control";
      arms: [string, string];
      meanDiff: number | null;
      p: number | null;
      pHolm: number | null;
      bootstrap: Interval | null;
    }[];
  };
}

/** One control against KLAL+NTP: the difference, the report's Holm p, and what it shows. */
export interface ControlReading {
  arm: string;
  diff: number;
  pHolm: number | null;
  bootstrap: Interval | null;
  /** KLAL+NTP beats it at the report's Holm level. */
  rulesOut: boolean;
}

/** A task's pre-registered reading. */
export interface TaskReading {
  task: string;
  label: string;
  experiment: string;
  largerFloor: number;
  ntp: number;
  klal: number;
  inRegime: boolean;
  gain: number;
  /** Paired t p over the Bases' means (over seeds with one Base). */
  p: number | null;
  /** Holm over the primary family: the tasks read so far. */
  pHolm: number | null;
  bootstrap: Interval | null;
  /** Per Base seed, the mean over its fine-tune seeds of KLAL+NTP − NTP. */
  baseGains: { base: number; gain: number }[];
  verdict:
    | "reproduced"
    | "consistent, not confirmed"
    | "not reproduced"
    | "not a test of the claim"
    /** In the regime, the interval above 0, but a Base's gain not positive: no criterion fits. */
    | "not confirmed: the interval above 0, a Base's gain not";
  /** Per Base, KLAL+NTP's and NTP's mean first-position ratio; the question-blind baseline. */
  attention: { base: number; klal: number; ntp: number }[];
  questionBlind: number | undefined;
  attentionReproduced: boolean;
  controls: ControlReading[];
}

function perBase(r: RecordResults, arm: string, metric: string, seeds: number[]): number {
  const values = r.rows.filter((x) =>
    x.arm === arm && x.metric === metric && seeds.includes(x.seed)
  )
    .map((x) => x.value);
  return mean(values);
}

/** Read one task report (before the family's Holm correction, which needs every task). */
function readTask(r: RecordResults): Omit<TaskReading, "pHolm" | "verdict"> {
  const row = r.table1.find((t) => t.run);
  if (!row || !row.ntp || !row.klal) {
    throw new Error(`${r.experiment}: results.json has no task with NTP and KLAL+NTP`);
  }
  const floor = row.floor?.accuracy ?? 0;
  const largerFloor = Math.max(floor, row.floor?.shortcut?.accuracy ?? 0);
  const primary = r.statistics.comparisons.find((c) =>
    c.task === row.task && c.kind === "ntp" && c.arms[0] === row.klal!.arm
  );
  const bases = r.bases ?? [];
  const [klalArm, ntpArm] = [row.klal.arm, row.ntp.arm];
  const baseGains = bases.map(({ seed, seeds }) => ({
    base: seed,
    gain: perBase(r, klalArm, "accuracy", seeds) - perBase(r, ntpArm, "accuracy", seeds),
  }));
  const ratio = "target_attention_ratio_first";
  const attention = bases.map(({ seed, seeds }) => ({
    base: seed,
    klal: perBase(r, klalArm, ratio, seeds),
    ntp: perBase(r, ntpArm, ratio, seeds),
  }));
  const questionBlind = r.floors[row.task]?.questionBlind?.ink;
  const attentionReproduced = attention.length > 0 &&
    attention.every((a) =>
      a.klal > a.ntp && (questionBlind === undefined || a.klal > questionBlind)
    );
  const controls = r.statistics.comparisons.filter((c) =>
    c.task === row.task && c.kind === "control"
  )
    .map((c) => ({
      arm: c.arms[1],
      diff: c.meanDiff ?? NaN,
      pHolm: c.pHolm,
      bootstrap: c.bootstrap,
      rulesOut: (c.meanDiff ?? 0) > 0 && c.pHolm !== null && c.pHolm < ALPHA,
    }));
  return {
    task: row.task,
    label: row.label,
    experiment: r.experiment,
    largerFloor,
    ntp: row.ntp.mean,
    klal: row.klal.mean,
    inRegime: row.ntp.mean >= largerFloor + MARGIN_ABOVE_FLOOR && row.ntp.mean < CEILING,
    gain: primary?.meanDiff ?? NaN,
    p: primary?.p ?? null,
    bootstrap: primary?.bootstrap ?? null,
    baseGains,
    attention,
    questionBlind,
    attentionReproduced,
    controls,
  };
}

/**
 * The record read as pre-registered: every task report given, the primary family's Holm
 * correction over them (the five tasks when all are in), each task's verdict.
 */
export function readRecord(results: readonly RecordResults[]): TaskReading[] {
  const tasks = results.map(readTask);
  const holm = holmAdjust(tasks.map((t) => t.p ?? undefined));
  return tasks.map((t, i) => {
    const pHolm = holm[i] ?? null;
    const consistent = (t.bootstrap?.low ?? -Infinity) > 0 && t.baseGains.length > 0 &&
      t.baseGains.every((b) => b.gain > 0);
    const verdict: TaskReading["verdict"] = !t.inRegime
      ? "not a test of the claim"
      : t.gain > 0 && pHolm !== null && pHolm < ALPHA
      ? "reproduced"
      : consistent
      ? "consistent, not confirmed"
      : (t.bootstrap?.low ?? -Infinity) > 0
      ? "not confirmed: the interval above 0, a Base's gain not"
      : "not reproduced";
    return { ...t, pHolm, verdict };
  });
}

const f1 = (x: number) => x.toFixed(1);
const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;
const pText = (p: number | null) => p === null ? "–" : p < 0.001 ? "<0.001" : p.toFixed(3);
const interval = (b: Interval | null) => b ? `[${signed(b.low)}, ${signed(b.high)}]` : "–";

/** The reading as Markdown: the primary table, the attention claim and the controls. */
export function recordTables(readings: readonly TaskReading[]): string[] {
  const lines = [
    `Primary family: ${readings.length} of ${RECORD_TASKS.length} tasks read; Holm over those.`,
    "",
    "| task | larger floor | NTP | KLAL+NTP | in the regime | KLAL+NTP − NTP | p (Bases' means) | Holm p | bootstrap 95% | per-Base gains | verdict |",
    "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
  ];
  for (const t of readings) {
    lines.push(
      `| ${t.label} | ${f1(t.largerFloor)} | ${f1(t.ntp)} | ${f1(t.klal)} | ${
        t.inRegime ? "yes" : "no"
      } | ${signed(t.gain)} | ${pText(t.p)} | ${pText(t.pHolm)} | ${interval(t.bootstrap)} | ${
        t.baseGains.map((b) => `${b.base}: ${signed(b.gain)}`).join(", ")
      } | **${t.verdict}** |`,
    );
  }
  lines.push(
    "",
    "| task | question-blind | per Base: KLAL+NTP / NTP first-position ratio | attention claim |",
    "| --- | ---: | --- | --- |",
  );
  for (const t of readings) {
    lines.push(
      `| ${t.label} | ${t.questionBlind === undefined ? "–" : t.questionBlind.toFixed(2)} | ${
        t.attention.map((a) => `${a.base}: ${a.klal.toFixed(2)} / ${a.ntp.toFixed(2)}`).join(", ")
      } | ${t.attentionReproduced ? "reproduced" : "not reproduced"} |`,
    );
  }
  lines.push(
    "",
    "| task | control | KLAL+NTP − control | Holm p (report) | bootstrap 95% | rules it out |",
    "| --- | --- | ---: | ---: | ---: | --- |",
  );
  for (const t of readings) {
    for (const c of t.controls) {
      lines.push(
        `| ${t.label} | ${c.arm} | ${signed(c.diff)} | ${pText(c.pHolm)} | ${
          interval(c.bootstrap)
        } | ${c.rulesOut ? "yes" : "no: cannot tell"} |`,
      );
    }
  }
  return lines;
}
