/**
 * Sweeps, Hydra-style: `arms.klal.lambda=0.5,1,2` on the command line or a `sweep:` block
 * in the spec expands to the cartesian product of runs.
 *
 * - Axes under `arms.<arm>.` become arms of ONE experiment (klal -> klal-lambda0p5, ...),
 *   so one report compares them and every shared stage (data, Base) runs once.
 * - Any other axis (train.lr, task.params.blobs, ...) gives one experiment per point,
 *   named `<name>--<label>`; they share every unchanged stage through the cache.
 * - `task` swept over whole task blocks runs one experiment per task (Table 1 of the
 *   paper in one spec: experiments/paper/all.yaml).
 *
 * Every point is validated exactly like a plain spec with those overrides.
 */
import type { Loc, SpecContext } from "./mod.ts";
import {
  locateKey,
  overrideLoc,
  parseSpec,
  SpecError,
  sweepLimitExpected,
  sweepPoints,
} from "./mod.ts";
import type { Spec } from "./types.ts";
import { LIMITS } from "./limits.ts";
import { NAME_MAX_LENGTH, nameProblem } from "./names.ts";
import { clip } from "../lib/terminal.ts";

/** One swept path and the override texts of its values. */
export interface SweepAxis {
  path: string;
  values: string[];
}

/** Split `a=x,y` (commas outside brackets and quotes) into its values; one value: not a sweep. */
export function splitValues(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

/** Separate plain overrides from sweep axes (`path=v1,v2,...`). */
export function splitSweepOverrides(overrides: string[]): { plain: string[]; axes: SweepAxis[] } {
  const plain: string[] = [];
  const axes: SweepAxis[] = [];
  for (const raw of overrides) {
    const eq = raw.indexOf("=");
    const values = eq < 0 ? [] : splitValues(raw.slice(eq + 1));
    if (values.length > 1 && values.every((v) => v.length > 0)) {
      axes.push({ path: raw.slice(0, eq).trim(), values });
    } else plain.push(raw);
  }
  return { plain, axes };
}

/** A short, folder-safe label for one value of an axis: lambda 0.5 -> "lambda0p5". */
export function axisLabel(path: string, value: string): string {
  if (path === "task") {
    // A whole task block: label it by the task's name.
    const name = value.match(/"?name"?\s*:\s*"?([a-z0-9-]+)/)?.[1];
    if (name) return name;
  }
  const key = path.split(".").pop()!;
  const v = value.toLowerCase().replaceAll(".", "p").replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `${key.replaceAll("_", "")}${v}`;
}

function product<T>(lists: T[][]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((a) => list.map((x) => [...a, x])), [[]]);
}

/**
 * Every experiment of a sweep (one when there is no non-arm axis). Throws SpecError for
 * the first point that does not validate. A sweep larger than LIMITS.sweepPoints is refused
 * before any point is built, and so is one whose experiment or arm names would not make
 * valid, distinct folder and file names (pipeline/spec/names.ts).
 */
export function expandSweep(
  text: string,
  file: string,
  overrides: string[],
  ctx: SpecContext,
): Spec[] {
  const { plain, axes: cliAxes } = splitSweepOverrides(overrides);
  // Where an axis is reported: its override, or its key under `sweep:` in the spec.
  const locOf = (axis: SweepAxis): Loc => {
    const index = cliAxes.includes(axis)
      ? overrides.findIndex((raw) => {
        const eq = raw.indexOf("=");
        return raw.slice(0, eq).trim() === axis.path && splitValues(raw.slice(eq + 1)).length > 1;
      })
      : -1;
    if (index >= 0) return overrideLoc(index, overrides[index]);
    return locateKey(text, file, ["sweep", axis.path]);
  };
  const pathOf = (axis: SweepAxis) => cliAxes.includes(axis) ? axis.path : `sweep.${axis.path}`;
  const fail = (axis: SweepAxis, expected: string, found: string): never => {
    throw new SpecError([{ ...locOf(axis), path: pathOf(axis), expected, found }]);
  };
  const checkSize = (axes: SweepAxis[]) => {
    const points = sweepPoints(axes.map((a) => a.values.length));
    if (points > LIMITS.sweepPoints.max) {
      const sizes = axes.map((a) => a.values.length).join(" x ");
      fail(axes[0], sweepLimitExpected(), `${points} points (${sizes})`);
    }
  };
  if (cliAxes.length > 0) checkSize(cliAxes);
  const base = parseSpec(
    text,
    file,
    [...plain, ...cliAxes.map((a) => `${a.path}=${a.values[0]}`)],
    ctx,
  );
  const specAxes: SweepAxis[] = Object.entries(base.sweep ?? {})
    .filter(([path]) => !cliAxes.some((a) => a.path === path))
    .map(([path, values]) => ({ path, values: values.map((v) => JSON.stringify(v)) }));
  const axes = [...cliAxes, ...specAxes];
  if (axes.length === 0) return [base];
  checkSize(axes);
  const isArmAxis = (a: SweepAxis) => /^arms\.[^.]+\.[^.]+$/.test(a.path);
  const armAxes = axes.filter(isArmAxis);
  const otherAxes = axes.filter((a) => !isArmAxis(a));
  const points = product(otherAxes.map((a) => a.values.map((v) => ({ axis: a, value: v }))));

  // Names first, before any point is validated: each becomes a folder under reports/.
  const labels = points.map((point) => point.map((p) => axisLabel(p.axis.path, p.value)).join("-"));
  const seen = new Map<string, number>();
  points.forEach((point, i) => {
    if (point.length === 0) return;
    const name = `${base.name}--${labels[i]}`;
    const problem = nameProblem(name, "each point of a sweep names its report folder");
    if (problem) fail(point[0].axis, problem.expected, problem.found);
    const first = seen.get(name);
    if (first !== undefined) {
      const values = (k: number) => points[k].map((p) => p.value).join(", ");
      fail(
        point[0].axis,
        "values whose labels differ (each point names its report folder)",
        `${JSON.stringify(values(first))} and ${JSON.stringify(values(i))}, both ${
          JSON.stringify(name)
        }`,
      );
    }
    seen.set(name, i);
  });

  // Arms of arm axes: NAME-LABEL, each a valid file name part and unlike every other arm.
  const armNames = [...new Set(armAxes.map((a) => a.path.split(".")[1]))];
  const armCombos = new Map(armNames.map((name) => {
    const own = armAxes.filter((a) => a.path.split(".")[1] === name);
    const combos = product(own.map((a) => a.values.map((v) => ({ axis: a, value: v }))));
    return [
      name,
      combos.map((combo) => ({
        combo,
        name: `${name}-${combo.map((c) => axisLabel(c.axis.path, c.value)).join("-")}`,
      })),
    ];
  }));
  const taken = new Set(Object.keys(base.arms).filter((name) => !armNames.includes(name)));
  for (const { combo, name } of [...armCombos.values()].flat()) {
    if (name.length > NAME_MAX_LENGTH) {
      fail(
        combo[0].axis,
        `arm names of at most ${NAME_MAX_LENGTH} characters (they name their stages' files)`,
        `${JSON.stringify(clip(name, 60))} (${name.length} characters)`,
      );
    }
    if (taken.has(name)) {
      fail(
        combo[0].axis,
        "values whose labels differ, giving arms unlike every other arm",
        `a second arm named ${JSON.stringify(name)}`,
      );
    }
    taken.add(name);
  }

  const specs = points.map((point, i) => {
    // A whole block (`task`) first, then the paths inside it (`task.params.sigma`): the more
    // specific override wins, whatever order the axes were written in.
    const pointOverrides = [...point]
      .sort((a, b) => a.axis.path.split(".").length - b.axis.path.split(".").length)
      .map((p) => `${p.axis.path}=${p.value}`);
    const spec = parseSpec(text, file, [...plain, ...pointOverrides], ctx);
    if (point.length > 0) spec.name = `${spec.name}--${labels[i]}`;
    const arms: Spec["arms"] = {};
    for (const [name, arm] of Object.entries(spec.arms)) {
      if (!armNames.includes(name)) {
        arms[name] = arm;
        continue;
      }
      for (const { combo, name: armName } of armCombos.get(name) ?? []) {
        const swept = parseSpec(text, file, [
          ...plain,
          ...pointOverrides,
          ...combo.map((c) => `${c.axis.path}=${c.value}`),
        ], ctx);
        arms[armName] = swept.arms[name];
      }
    }
    spec.arms = arms;
    delete spec.sweep;
    return spec;
  });
  return specs;
}
