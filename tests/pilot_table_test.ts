/** `deno task pilot-table`: a Base pilot's tables from its reports, and the Base rule's judgement. */
import assert from "node:assert/strict";
import {
  judge,
  type PilotResults,
  pilotTables,
  tieMargin,
} from "../pipeline/commands/pilot_table.ts";
import { runScript } from "./cli.ts";

const DIR = "docs/pilots/results/base-letters";
const TASKS = ["grid-patch", "line-intersection", "line-tracing", "pixmo-points", "refcoco"];

async function letters(): Promise<PilotResults[]> {
  return await Promise.all(
    TASKS.map(async (t) => JSON.parse(await Deno.readTextFile(`${DIR}/${t}.json`))),
  );
}

Deno.test("pilot-table: the letters pilot's committed reports give its write-up's numbers and verdict", async () => {
  const lines = pilotTables(await letters());
  const text = lines.join("\n");
  // docs/pilots/base-letters.md's rows, read from the same files.
  assert.ok(lines.includes("| letter | 87 | 10.3 | 13.8 | −3.4 |"), text);
  assert.ok(
    lines.includes(
      "| Line Intersection | 61.2 (shortcut) | 0.0 | 72.1 (70.0, 74.2) | 76.0 (76.4, 75.6) | +3.9 [−1.0, +9.2] |",
    ),
    text,
  );
  assert.match(
    text,
    /\| RefCOCO stand-in \(synthetic scenes\) \| yes: 13\.7 against 6\.8 \| no: box \+4\.8 \| no \|/,
  );
  assert.match(text, /\| Grid Patch \| no: 4\.3 against 3\.0 \| yes: where \+64\.4 \| no \|/);
  assert.match(text, /\| Line Tracing \| no: 49\.9 against 50\.0 \| \(no kind applies\) \| no \|/);
  assert.match(text, /^2 of 5 tasks in the regime: fewer than 4 of 5/m);
  // By hand: Line Intersection 72.1 - 61.2 = 10.9, PixMo 34.6 - 12.4 = 22.2; mean 16.55
  // (printed to one decimal from its binary value, 16.549...).
  const results = await letters();
  const inRegime = results.map(judge).filter((j) => j.inRegime);
  assert.ok(Math.abs(tieMargin(inRegime) - 16.55) < 1e-9);
  assert.match(text, /capped at 40, is 16\.5 points\./);
  assert.match(text, /\| pilot-letters-line-tracing \| 15 \| 568 \| 289 \|/);
});

Deno.test("pilot-table: the rule's boundaries, computed by hand", async () => {
  const [, li] = await letters();
  const at = (ntp: number, count: number, countFloor: number) => {
    const r = structuredClone(li);
    r.table1.find((x) => x.run)!.ntp!.mean = ntp;
    r.baseSkills[0].skills = [{ kind: "count", n: 100, accuracy: count, floor: countFloor }];
    return judge(r);
  };
  // The larger floor is the parity shortcut's 61.2: NTP must reach 66.2 and stay below 90.
  assert.equal(at(66.2, 60, 40).condition1, true);
  assert.equal(at(66.1, 60, 40).condition1, false);
  assert.equal(at(89.9, 60, 40).condition1, true);
  assert.equal(at(90, 60, 40).condition1, false);
  // Condition 2: the Base's count skill at least 10 points above its kind's floor.
  assert.equal(at(70, 50, 40).condition2, true);
  assert.equal(at(70, 49.9, 40).condition2, false);
  assert.equal(at(70, 49.9, 40).inRegime, false);
  assert.deepEqual(at(70, 55, 40).skill, { kind: "count", margin: 15 });
  assert.equal(at(70, 55, 40).floorWhy, "shortcut");
  // The tie-break caps each margin at 40: 70 - 61.2 = 8.8 and 150 - 61.2 -> 40; mean 24.4.
  assert.ok(Math.abs(tieMargin([at(70, 55, 40), at(150, 55, 40)]) - 24.4) < 1e-9);
});

Deno.test("pilot-table: a file that is not a report's results.json is refused (exit 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-pilot-table-" });
  await Deno.writeTextFile(`${dir}/x.json`, '{"rows": []}');
  const run = await runScript("pipeline/commands/pilot_table.ts", [`${dir}/x.json`]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /x\.json: expected a report's results\.json \(no "experiment"\)/);
  const none = await runScript("pipeline/commands/pilot_table.ts", []);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /expected 1 argument/);
  await Deno.remove(dir, { recursive: true });
});
