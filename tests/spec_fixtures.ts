/** Specs in tests: an arm's settings written out, and the problem lines of a bad spec. */
import assert from "node:assert/strict";
import { parseSpec, type SpecContext, SpecError } from "../pipeline/spec/mod.ts";
import type { ArmSpec } from "../pipeline/spec/types.ts";
import { expandSweep } from "../pipeline/spec/sweep.ts";
import { TASKS } from "../tasks/registry.ts";

/** The file a spec given as text is reported in. */
export const SPEC_FILE = "experiments/x.yaml";

/** The registered tasks, as validation's context. */
export const SPEC_CONTEXT: SpecContext = { tasks: TASKS };

/** The default `base.mix`, written out by hand: the original four question kinds. */
export const DEFAULT_MIX = {
  kinds: ["color", "count", "exists", "where"],
  max_shapes: 3,
  colors: ["red", "green", "blue", "yellow", "purple", "orange", "cyan", "pink"],
  point_prompt: "locate",
};

/**
 * An arm's settings: the schema's defaults, written out here by hand (so a test comparing a
 * parsed spec with them checks the parser's defaults), then `settings`.
 */
export function armSpec(settings: Partial<ArmSpec> = {}): ArmSpec {
  return {
    finetune: true,
    lambda: 0,
    layers: "all",
    target: "task",
    supervision: "attention",
    queries: "all",
    seeds: "all",
    ...settings,
  };
}

/**
 * The message lines of the SpecError that `parse` must throw, one problem a line; fails the
 * test when it throws anything else or nothing.
 */
export function problemsOf(parse: () => unknown): string[] {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof SpecError, `not a SpecError: ${error}`);
    assert.equal(error.message.split("\n").length, error.problems.length);
    return error.message.split("\n");
  }
  assert.fail("expected a SpecError");
}

/** The problem lines of a spec (text and overrides) that must not parse. */
export function parseProblems(text: string, overrides: string[] = []): string[] {
  return problemsOf(() => parseSpec(text, SPEC_FILE, overrides, SPEC_CONTEXT));
}

/** The problem lines of a spec that must not expand: each point is validated as a spec. */
export function sweepProblems(text: string, overrides: string[] = []): string[] {
  return problemsOf(() => expandSweep(text, SPEC_FILE, overrides, SPEC_CONTEXT));
}
