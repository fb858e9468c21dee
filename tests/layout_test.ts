/**
 * The layout stays what docs/ARCHITECTURE.md says it is: the folders of its map, in its order
 * from top to bottom; no import from a lower folder up to a higher one; no import circle
 * anywhere (type-only imports count: they tie files together as much for a reader); a handful
 * of files at most at the root of pipeline/; and no module but pipeline/lib/paths.ts that
 * finds project files through a URL relative to itself.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { scanImports } from "../pipeline/cache/code_version.ts";
import { ROOT } from "./cli.ts";

/**
 * The folders of ARCHITECTURE.md's map, top to bottom: the lines `    FOLDER/  what it holds`
 * of the first indented block under "## The folders" ("pipeline/commands", ..., "tasks").
 */
async function documentedLayers(): Promise<string[]> {
  const text = await Deno.readTextFile(`${ROOT}docs/ARCHITECTURE.md`);
  const section = text.split(/^## The folders$/m)[1];
  assert.ok(section, "docs/ARCHITECTURE.md has no section '## The folders'");
  const block = /\n((?: {4}.*\n)+)/.exec(section);
  assert.ok(block, "the section '## The folders' has no indented map");
  return [...block[1].matchAll(/^ {4}([\w/]+)\/ /gm)].map((m) => m[1]);
}

/** Every .ts file under `folder` (root-relative paths). */
function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(`${ROOT}${folder}`)) {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** file -> the project files it imports (static, re-exports, literal dynamic; types too). */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = scanImports(Deno.readTextFileSync(`${ROOT}${file}`))
      .map((i) => i.specifier)
      .filter((s) => s.startsWith("."))
      .map((s) => normalize(join(dirname(file), s)));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** The layer a file belongs to: the longest documented folder that holds it. */
function layerOf(file: string, layers: string[]): number {
  let best = -1;
  for (const [i, layer] of layers.entries()) {
    if (file.startsWith(`${layer}/`) && (best < 0 || layer.length > layers[best].length)) best = i;
  }
  return best;
}

/** Strongly connected components with more than one file (Tarjan), or a file importing itself. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("layout: the documented folders, no import circle, no import that runs back up", async () => {
  const layers = await documentedLayers();
  assert.ok(layers.length >= 8, `the folder map lists ${layers.length} folders`);
  const files = [...sourceFiles("pipeline"), ...sourceFiles("tasks")];
  const graph = importGraph(files);

  const outside = files.filter((f) => layerOf(f, layers) < 0);
  const rootFiles = outside.filter((f) => dirname(f) === "pipeline");
  assert.ok(rootFiles.length <= 5, `pipeline/ holds ${rootFiles.length} files at its root`);
  assert.deepEqual(
    outside.filter((f) => dirname(f) !== "pipeline"),
    [],
    "every folder with code is in ARCHITECTURE.md's map",
  );

  const upward: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = layerOf(from, layers);
      const b = layerOf(to, layers);
      if (a >= 0 && b >= 0 && b < a) upward.push(`${from} -> ${to}`);
    }
  }
  const found = circles(graph);
  const imports = [...graph.values()].reduce((a, t) => a + t.length, 0);
  console.log(
    `${files.length} files in ${layers.length} folders, ${imports} imports: ` +
      `${found.length} circles, ${upward.length} imports that run back up`,
  );
  assert.deepEqual(upward, [], `imports from a lower folder up to a higher one`);
  assert.deepEqual(found, [], "import circles");
});

Deno.test("layout: only pipeline/lib/paths.ts finds project files relative to itself", () => {
  const offenders = [...sourceFiles("pipeline"), ...sourceFiles("tasks")].filter((f) =>
    f !== "pipeline/lib/paths.ts" && /import\.meta\.(url|dirname|filename)/.test(
      // Comments may name it; code may not.
      Deno.readTextFileSync(`${ROOT}${f}`).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ""),
    )
  );
  assert.deepEqual(offenders, []);
});

Deno.test("layout: the import-graph reader sees circles and upward imports", () => {
  const graph = new Map([
    ["pipeline/a/x.ts", ["pipeline/b/y.ts"]],
    ["pipeline/b/y.ts", ["pipeline/a/x.ts", "pipeline/b/z.ts"]],
    ["pipeline/b/z.ts", []],
  ]);
  assert.deepEqual(circles(graph), [["pipeline/a/x.ts", "pipeline/b/y.ts"]]);
  const layers = ["pipeline/a", "pipeline/b"];
  assert.equal(layerOf("pipeline/b/z.ts", layers), 1);
  assert.equal(layerOf("pipeline/a/x.ts", layers), 0);
  assert.equal(layerOf("pipeline/c/w.ts", layers), -1);
});
