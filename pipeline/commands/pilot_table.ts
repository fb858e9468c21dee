/**
 * The tables of a Base pilot (docs/pilots/), made from the pilot reports' results.json files
 * so that no number in a pilot's write-up is typed by hand:
 *
 *   deno task pilot-table docs/pilots/results/NAME/*.json
 *
 * prints, as Markdown: what the Base learned of its own mix (held-out accuracy per kind beside
 * the kind's floor), each task's accuracy per arm and seed with the KLAL+NTP − NTP interval,
 * the task's own measures, the attention ratios beside the question-blind baselines, the
 * prompts the Base saw, the judgement of docs/pilots/base-rule.md (as amended) and the wall
 * time of each pilot.
 *
 * Exit status: 0 done; 2 bad usage or a file that is not a report's results.json.
 */
import { parseCommand, printHelp, runCommand, UsageError } from "../lib/cli.ts";
import { CEILING, MARGIN_ABOVE_FLOOR } from "../report/record.ts";

const USAGE = `usage: deno task pilot-table RESULTS.json...

  RESULTS.json   results.json of each task's pilot report (reports/NAME/results.json), all
                 from one candidate Base
  -h, --help     this text

Prints the pilot's tables as Markdown (docs/pilots/base-rule.md's judgement included).`;

// The Base rule's condition 1 (NTP MARGIN_ABOVE_FLOOR points above the larger floor and below
// CEILING) is the record's regime too: one definition, in ../report/record.ts.
export { CEILING, MARGIN_ABOVE_FLOOR };
/** Condition 2 (amended): the Base's held-out skill this many points above its kind's floor. */
export const SKILL_MARGIN = 10;
/** Ties go to the larger mean margin of NTP above its larger floor, each margin capped here. */
export const MARGIN_CAP = 40;

/** The rule's tie-break: NTP's mean margin above the larger floor, each capped at MARGIN_CAP. */
export function tieMargin(judged: readonly Judgement[]): number {
  const margins = judged.map((j) => Math.min(MARGIN_CAP, j.ntp - j.largerFloor));
  return margins.reduce((a, b) => a + b, 0) / Math.max(1, margins.length);
}

/** The rule's threshold: this many of the five tasks in the regime choose a Base. */
export const TASKS_NEEDED = 4;

/** The mix kinds that ask each task's kind of question (condition 2; none: it does not apply). */
export const SKILL_KINDS_OF: Readonly<Record<string, readonly string[]>> = {
  "grid-patch": ["where", "cell"],
  "pixmo-points": ["point", "object"],
  refcoco: ["box"],
  "line-intersection": ["count", "count-color"],
  "line-tracing": [],
};

interface Interval {
  estimate: number;
  low: number;
  high: number;
}

interface ArmCell {
  arm: string;
  mean: number;
  n: number;
  bootstrap?: Interval | null;
}

/** The parts of results.json the tables read. */
export interface PilotResults {
  experiment: string;
  spec: { task: { name: string; params: Record<string, unknown> } };
  rows: { task: string; arm: string; seed: number; metric: string; value: number }[];
  stages: { stage: string; key: string; status: string; seconds: number }[];
  baseSkills: {
    stage: string;
    skills: { kind: string; n: number; accuracy: number; floor: number }[];
  }[];
  table1: {
    task: string;
    label: string;
    run: boolean;
    floor: { accuracy: number; shortcut?: { rule: string; accuracy: number } } | null;
    base: ArmCell | null;
    ntp: ArmCell | null;
    klal: ArmCell | null;
    gain: { meanDiff: number; bootstrap: Interval | null } | null;
  }[];
  tasks: {
    task: string;
    questionBlind: Record<string, number> | null;
    promptOverlap: { distinct: number; seen: number } | null;
    arms: {
      arm: string;
      target_attention_ratio: number | null;
      target_attention_ratio_first: number | null;
      task_metrics: Record<string, number>;
    }[];
  }[];
}

/** One task's row of the judgement. */
export interface Judgement {
  task: string;
  label: string;
  largerFloor: number;
  floorWhy: string;
  ntp: number;
  condition1: boolean;
  /** The best applicable mix kind and its margin over its floor; undefined: none applies. */
  skill?: { kind: string; margin: number };
  condition2: boolean;
  inRegime: boolean;
}

const fixed = (x: number, digits = 1) => x.toFixed(digits);
const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;

/** A Markdown table from a header and rows (numbers right-aligned where `right` says). */
function table(header: string[], rows: string[][], right: boolean[]): string[] {
  const align = right.map((r) => (r ? "---:" : "---"));
  return [header, align, ...rows].map((r) => `| ${r.join(" | ")} |`);
}

/** The task's row of Table 1 in `r` (the one that ran). */
function ownRow(r: PilotResults) {
  const row = r.table1.find((x) => x.run);
  if (!row) throw new UsageError(`${r.experiment}: no task of Table 1 ran`);
  return row;
}

/** A sweep point's params that tell pilots of one task apart, e.g. "blobs 4". */
function variant(r: PilotResults, all: PilotResults[]): string {
  const same = all.filter((x) => x.spec.task.name === r.spec.task.name);
  if (same.length < 2) return "";
  const keys = new Set(same.flatMap((x) => Object.keys(x.spec.task.params)));
  const differing = [...keys].filter((k) =>
    new Set(same.map((x) => JSON.stringify(x.spec.task.params[k]))).size > 1
  );
  return differing.map((k) => `${k} ${JSON.stringify(r.spec.task.params[k])}`).join(", ");
}

/** Per-seed accuracy of `arm`, in seed order. */
function seedValues(r: PilotResults, arm: string): number[] {
  return r.rows.filter((x) => x.arm === arm && x.metric === "accuracy")
    .sort((a, b) => a.seed - b.seed).map((x) => x.value);
}

/** docs/pilots/base-rule.md (as amended) applied to one task's pilot. */
export function judge(r: PilotResults): Judgement {
  const row = ownRow(r);
  const floor = row.floor?.accuracy ?? 0;
  const shortcut = row.floor?.shortcut?.accuracy ?? -Infinity;
  const largerFloor = Math.max(floor, shortcut);
  const ntp = row.ntp?.mean ?? NaN;
  const condition1 = ntp >= largerFloor + MARGIN_ABOVE_FLOOR && ntp < CEILING;
  const kinds = SKILL_KINDS_OF[r.spec.task.name] ?? [];
  const skills = r.baseSkills[0]?.skills ?? [];
  const applicable = skills.filter((s) => kinds.includes(s.kind))
    .map((s) => ({ kind: s.kind, margin: s.accuracy - s.floor }))
    .sort((a, b) => b.margin - a.margin);
  const skill = applicable[0];
  const condition2 = kinds.length === 0 || (skill !== undefined && skill.margin >= SKILL_MARGIN);
  return {
    task: r.spec.task.name,
    label: row.label,
    largerFloor,
    floorWhy: shortcut > floor ? "shortcut" : "fixed answer",
    ntp,
    condition1,
    skill,
    condition2,
    inRegime: condition1 && condition2,
  };
}

/** The pilot's tables, as Markdown lines. */
export function pilotTables(results: PilotResults[]): string[] {
  const out: string[] = [];
  const bases = new Set(
    results.map((r) => r.stages.find((s) => s.stage === "pretrain")?.key ?? "none"),
  );
  const skills = results[0].baseSkills[0]?.skills ?? [];
  out.push("### What the Base learned of its own mix", "");
  if (bases.size > 1) {
    out.push(
      `Note: these reports come from ${bases.size} different Bases; the first one's skills.`,
    );
    out.push("");
  }
  out.push(
    ...table(
      ["kind", "held-out items", "Base %", "floor %", "above the floor by"],
      skills.map((s) => [
        s.kind,
        String(s.n),
        fixed(s.accuracy),
        fixed(s.floor),
        signed(s.accuracy - s.floor),
      ]),
      [false, true, true, true, true],
    ),
    "",
  );

  out.push("### The tasks", "");
  const taskRows = results.map((r) => {
    const row = ownRow(r);
    const v = variant(r, results);
    const j = judge(r);
    const seeds = (arm: string) => seedValues(r, arm).map((x) => fixed(x)).join(", ");
    const gain = row.gain;
    const boot = gain?.bootstrap;
    return [
      v ? `${row.label} (${v})` : row.label,
      `${fixed(j.largerFloor)}${j.floorWhy === "shortcut" ? " (shortcut)" : ""}`,
      row.base ? fixed(row.base.mean) : "–",
      row.ntp ? `${fixed(row.ntp.mean)} (${seeds("ntp")})` : "–",
      row.klal ? `${fixed(row.klal.mean)} (${seeds("klal")})` : "–",
      gain
        ? `${signed(gain.meanDiff)}${boot ? ` [${signed(boot.low)}, ${signed(boot.high)}]` : ""}`
        : "–",
    ];
  });
  out.push(
    ...table(
      ["task", "larger floor", "Base", "NTP (seeds)", "KLAL+NTP (seeds)", "KLAL+NTP − NTP [95%]"],
      taskRows,
      [false, true, true, true, true, true],
    ),
    "",
  );

  const measured = results.filter((r) =>
    r.tasks[0]?.arms.some((a) => Object.keys(a.task_metrics).length > 0)
  );
  if (measured.length > 0) {
    out.push("### The tasks' own measures (mean over seeds)", "");
    for (const r of measured) {
      const arms = r.tasks[0].arms;
      const names = [...new Set(arms.flatMap((a) => Object.keys(a.task_metrics)))].sort();
      out.push(
        `${ownRow(r).label}:`,
        "",
        ...table(
          ["arm", ...names],
          arms.map((a) => [
            a.arm,
            ...names.map((
              n,
            ) => (a.task_metrics[n] === undefined ? "–" : fixed(a.task_metrics[n], 3))),
          ]),
          [false, ...names.map(() => true)],
        ),
        "",
      );
    }
  }

  out.push("### Attention on the target (ratio to its share; first answer position)", "");
  out.push(
    ...table(
      ["task", "question-blind", "Base", "NTP", "KLAL+NTP"],
      results.map((r) => {
        const t = r.tasks[0];
        const v = variant(r, results);
        const ratio = (arm: string) => {
          const a = t.arms.find((x) => x.arm === arm);
          if (!a || a.target_attention_ratio === null) return "–";
          const all = fixed(a.target_attention_ratio, 2);
          const first = a.target_attention_ratio_first;
          return first === null ? all : `${all} (${fixed(first, 2)})`;
        };
        const blind = Object.entries(t.questionBlind ?? {})
          .map(([k, x]) => `${fixed(x, 2)} (${k})`).join(", ");
        return [
          v ? `${ownRow(r).label} (${v})` : ownRow(r).label,
          blind || "–",
          ratio("base"),
          ratio("ntp"),
          ratio("klal"),
        ];
      }),
      [false, true, true, true, true],
    ),
    "",
  );

  out.push("### What the Base saw of the test prompts", "");
  out.push(
    results.map((r) => {
      const o = r.tasks[0].promptOverlap;
      return `${ownRow(r).label}: ${o ? `${o.seen} of ${o.distinct}` : "not measured"}`;
    }).join("; ") + " distinct test prompts occur word for word among its pretraining prompts.",
    "",
  );

  out.push("### Against the rule (docs/pilots/base-rule.md, as amended)", "");
  const judged = new Map<string, Judgement>();
  for (const r of results) {
    const j = judge(r);
    // A task piloted in several variants counts once: its best variant's judgement.
    const seen = judged.get(j.task);
    if (!seen || (j.inRegime && !seen.inRegime)) judged.set(j.task, j);
  }
  out.push(
    ...table(
      [
        "task",
        `condition 1 (NTP ≥ floor + ${MARGIN_ABOVE_FLOOR}, < ${CEILING})`,
        `condition 2 (Base's own kind ≥ floor + ${SKILL_MARGIN})`,
        "in the regime",
      ],
      [...judged.values()].map((j) => [
        j.label,
        `${j.condition1 ? "yes" : "no"}: ${fixed(j.ntp)} against ${fixed(j.largerFloor)}`,
        j.skill
          ? `${j.condition2 ? "yes" : "no"}: ${j.skill.kind} ${signed(j.skill.margin)}`
          : SKILL_KINDS_OF[j.task]?.length === 0
          ? "(no kind applies)"
          : "no: the Base has no such kind",
        j.inRegime ? "**yes**" : "no",
      ]),
      [false, false, false, false],
    ),
    "",
  );
  const regime = [...judged.values()].filter((j) => j.inRegime);
  const inRegime = regime.length;
  out.push(
    `${inRegime} of ${judged.size} tasks in the regime: ${
      inRegime >= TASKS_NEEDED && judged.size >= 5
        ? "a candidate the rule can choose"
        : `fewer than ${TASKS_NEEDED} of 5, so the rule cannot choose this candidate`
    }.${
      inRegime > 0
        ? ` Tie-break: NTP's mean margin above the larger floor over those tasks, each capped at ${MARGIN_CAP}, is ${
          fixed(tieMargin(regime))
        } points.`
        : ""
    }`,
    "",
  );

  out.push("### Wall time", "");
  out.push(
    ...table(
      ["pilot", "stages run", "their seconds", "of which the Base"],
      results.map((r) => {
        const ran = r.stages.filter((s) => s.status === "ran");
        const base = ran.find((s) => s.stage === "pretrain");
        return [
          r.experiment,
          String(ran.length),
          fixed(ran.reduce((t, s) => t + s.seconds, 0), 0),
          base ? fixed(base.seconds, 0) : "cached",
        ];
      }),
      [false, true, true, true],
    ),
  );
  return out;
}

/** Read and check one results.json. */
async function readResults(path: string): Promise<PilotResults> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new UsageError(
      `${path}: ${e instanceof SyntaxError ? "not valid JSON" : (e as Error).message}`,
    );
  }
  const r = parsed as Partial<PilotResults>;
  for (const key of ["experiment", "spec", "rows", "stages", "table1", "tasks"] as const) {
    if (r?.[key] === undefined) {
      throw new UsageError(`${path}: expected a report's results.json (no "${key}")`);
    }
  }
  return { baseSkills: [], ...r } as PilotResults;
}

export function main(args: string[]): Promise<number> {
  return runCommand(USAGE, async () => {
    const parsed = parseCommand(args, { options: {}, positionals: { min: 1, max: Infinity } });
    if (parsed.help) return printHelp(USAGE);
    const results = await Promise.all(parsed.positionals.map(readResults));
    console.log(pilotTables(results).join("\n"));
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
