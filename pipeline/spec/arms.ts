/**
 * Validation of `arms`: each arm's name (it becomes part of file names) and settings, its
 * supervised layers within the model's depth, and no fine-tuning keys on an arm that does
 * not fine-tune.
 */

import { showNode } from "./yaml_tree.ts";
import { isInt, Section } from "./section.ts";
import { NAME_MAX_LENGTH } from "./names.ts";
import { ARM_FIELDS, ARM_NAME_PATTERN, keysOf } from "./schema.ts";
import type { ArmSpec } from "./types.ts";

/**
 * Validates one arm; its layers must be below the model's depth when that is known, its seeds
 * among the spec's when those are known.
 */
function validateArm(
  arm: Section,
  depth: number | undefined,
  seeds: readonly number[] | undefined,
): ArmSpec | undefined {
  arm.checkKeys(keysOf(ARM_FIELDS));
  const { values, ok: valuesOk } = arm.readAll(ARM_FIELDS, ["layers"]);
  let ok = valuesOk;
  let layers: ArmSpec["layers"] | undefined = ARM_FIELDS.layers.default;
  const layersEntry = arm.entry("layers");
  const layersPath = arm.child("layers");
  const listExpected = depth === undefined
    ? `"all" or a non-empty list of distinct layer indices`
    : `"all" or a non-empty list of distinct layer indices in [0, ${depth})`;
  if (layersEntry) {
    const node = layersEntry.node;
    if (node.kind === "scalar" && node.value === "all") {
      layers = "all";
    } else if (node.kind !== "seq" || node.items.length === 0) {
      arm.problems.add(node.loc, layersPath, listExpected, showNode(node));
      layers = undefined;
    } else {
      const indices: number[] = [];
      node.items.forEach((item, i) => {
        const value = item.kind === "scalar" ? item.value : undefined;
        const path = `${layersPath}[${i}]`;
        if (!isInt(value) || value < 0) {
          arm.problems.add(item.loc, path, "a layer index (an integer >= 0)", showNode(item));
        } else if (depth !== undefined && value >= depth) {
          arm.problems.add(
            item.loc,
            path,
            `a layer index in [0, ${depth}) (model.layers is ${depth})`,
            String(value),
          );
        } else if (indices.includes(value)) {
          arm.problems.add(item.loc, path, "distinct layer indices", `${value} again`);
        } else {
          indices.push(value);
          return;
        }
        layers = undefined;
      });
      if (layers !== undefined) layers = indices;
    }
  }
  if (values.finetune === false) {
    // Every other key of an arm says how it fine-tunes.
    for (const key of keysOf(ARM_FIELDS).filter((k) => k !== "finetune")) {
      const entry = arm.entry(key);
      if (entry) {
        arm.problems.add(
          entry.keyLoc,
          arm.child(key),
          `no ${key} when finetune is false (it would be ignored)`,
          showNode(entry.node),
        );
        ok = false;
      }
    }
  }
  const armSeeds = values.seeds;
  if (Array.isArray(armSeeds) && seeds) {
    const node = arm.entry("seeds")!.node;
    armSeeds.forEach((seed, i) => {
      if (seeds.includes(seed as number)) return;
      const item = node.kind === "seq" ? node.items[i] : node;
      arm.problems.add(
        item.loc,
        `${arm.child("seeds")}[${i}]`,
        `one of the spec's seeds (${seeds.join(", ")})`,
        String(seed),
      );
      ok = false;
    });
  }
  if (!ok || layers === undefined) return undefined;
  return { ...values, layers } as ArmSpec;
}

/** Validates `arms`: a non-empty mapping of arm names to arm settings. */
export function validateArms(
  root: Section,
  depth: number | undefined,
  seeds?: readonly number[],
): Record<string, ArmSpec> | undefined {
  const expected = "a non-empty mapping of arm names to arm settings";
  if (!root.entry("arms")) {
    root.missing("arms", expected);
    return undefined;
  }
  const node = root.entry("arms")!.node;
  if (node.kind !== "map" || node.entries.size === 0) {
    root.problems.add(node.loc, "arms", expected, showNode(node));
    return undefined;
  }
  const section = new Section("arms", node, node.loc, root.problems);
  const arms: Record<string, ArmSpec> = {};
  let ok = true;
  for (const [name, entry] of node.entries) {
    if (name.length > NAME_MAX_LENGTH) {
      section.problems.add(
        entry.keyLoc,
        section.child(name),
        `an arm name of at most ${NAME_MAX_LENGTH} characters (it names its stages' files)`,
        `a name of ${name.length} characters`,
      );
      ok = false;
    } else if (!ARM_NAME_PATTERN.test(name)) {
      section.problems.add(
        entry.keyLoc,
        section.child(name),
        `an arm name matching ${ARM_NAME_PATTERN}`,
        JSON.stringify(name),
      );
      ok = false;
    }
    const arm = section.section(name, true);
    const spec = arm ? validateArm(arm, depth, seeds) : undefined;
    if (spec) arms[name] = spec;
    else ok = false;
  }
  return ok ? arms : undefined;
}
