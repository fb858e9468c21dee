/**
 * `deno task report NAME`: rebuild `reports/NAME/` from the cache without training, then
 * `reports/index.html`, the list of every experiment report with its date and headline.
 *
 * Exit status: 0 done, 1 a stage's result is missing from the cache, 2 usage or unknown NAME.
 * Environment: KLAL_CACHE_DIR (the cache), KLAL_REPORTS_DIR (the reports root).
 */
import { Cache, defaultCacheDir } from "./cache.ts";
import { buildPlan, type ResolvedStage, resolvePlan } from "./plan.ts";
import { CSS, escapeHtml, NOT_RUN, POSTER_TABLE1, writeReport } from "./report.ts";
import type { Spec } from "./spec_types.ts";
import { reportInput } from "./stages.ts";
import {
  collectPaper,
  CPU_SOURCES,
  MissingReport,
  type PaperSources,
  rebuildPaper,
  recordJson,
} from "./paper.ts";
import { PROJECT_ROOT } from "./paths.ts";

const USAGE = `usage: deno task report NAME

  Rebuild reports/NAME/ (index.html, results.json, table.md, figures/) from the cache, with no
  training, and refresh reports/index.html. NAME is an experiment's name (its spec's "name").
  \`deno task report paper [--collect]\` rebuilds the committed paper record instead
  (reports/paper/; see --help there).

environment: KLAL_CACHE_DIR (default .cache/ in the repository),
             KLAL_REPORTS_DIR (default reports/ in the repository)`;

const ROOT = PROJECT_ROOT;

/** NAME is not an experiment the cache knows (exit 2). */
export class UnknownExperiment extends Error {}

/** A stage the report needs has no result in the cache (exit 1). */
export class MissingStage extends Error {}

/** Experiments the cache has refs for, sorted. */
export async function knownExperiments(cache: Cache): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${cache.root}/refs`)) {
      if (entry.isDirectory) names.push(entry.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/**
 * Each non-report stage of `spec`'s plan with a key whose entry is in the cache: the key the
 * plan resolves to now, else the key the last run recorded (code or params changed since:
 * the report shows what was run, and `notes` says so). Throws MissingStage otherwise.
 */
export async function cachedStages(
  cache: Cache,
  name: string,
  spec: Spec,
): Promise<{ stages: ResolvedStage[]; notes: string[] }> {
  const plan = await resolvePlan(buildPlan(spec));
  const stages: ResolvedStage[] = [];
  const fromLastRun: string[] = [];
  const missing: string[] = [];
  for (const stage of plan) {
    if (stage.kind === "report" || await cache.has(stage.key)) {
      stages.push(stage);
      continue;
    }
    const ref = await cache.readRef(name, stage.id);
    if (ref && await cache.has(ref.key)) {
      fromLastRun.push(stage.id);
      stages.push({ ...stage, key: ref.key, inputKeys: ref.inputs, codeVersion: ref.codeVersion });
    } else {
      missing.push(`${stage.id} (${stage.key.slice(0, 12)})`);
    }
  }
  if (missing.length > 0) {
    throw new MissingStage(
      `experiment ${name}: the cache has no result for ${missing.join(", ")}; run ` +
        "`deno task experiment` with its spec to compute it",
    );
  }
  const notes = fromLastRun.length === 0 ? [] : [
    `code or params changed since the last run of ${name} for ${fromLastRun.length} of ` +
    `${plan.length - 1} stages (${fromLastRun.slice(0, 3).join(", ")}${
      fromLastRun.length > 3 ? ", ..." : ""
    }); the report shows that run's cached results. Run \`deno task experiment\` to ` +
    "recompute them with the current code.",
  ];
  return { stages, notes };
}

/** Rebuild `<reportsDir>/<name>/` from the cache; returns the folder and any notes. */
export async function rebuildReport(
  name: string,
  options: { cache: Cache; reportsDir: string },
): Promise<{ dir: string; notes: string[] }> {
  const { cache } = options;
  const known = await knownExperiments(cache);
  if (!known.includes(name)) {
    throw new UnknownExperiment(
      `unknown experiment ${JSON.stringify(name)} in ${cache.root}; known: ${
        known.length > 0 ? known.join(", ") : "none (run `deno task experiment` first)"
      }`,
    );
  }
  const ref = await cache.readRef(name, "report");
  const spec = (ref?.params as { spec?: Spec } | undefined)?.spec;
  if (!spec) {
    throw new MissingStage(
      `experiment ${name} never reached its report stage, so the cache does not hold its ` +
        "resolved spec; run `deno task experiment` with its spec",
    );
  }
  const { stages, notes } = await cachedStages(cache, name, spec);
  const input = await reportInput(spec, stages, cache, new Map());
  const dir = `${options.reportsDir}/${name}`;
  await writeReport(dir, input);
  await writeReportsIndex(options.reportsDir);
  return { dir, notes };
}

/** What reports/index.html shows of one experiment (read from its results.json). */
export interface ReportEntry {
  /** Folder relative to the reports root, e.g. "quickstart" or "paper/grid-patch". */
  path: string;
  name: string;
  createdAt: string;
  backend: string;
  headline: string;
  table1: {
    task: string;
    label: string;
    run: boolean;
    cells: string[];
  }[];
}

/** Every report folder under `reportsDir` (depth 1 or 2) that has a results.json. */
export async function readReportEntries(reportsDir: string): Promise<ReportEntry[]> {
  const entries: ReportEntry[] = [];
  const visit = async (rel: string, depth: number) => {
    const dir = rel ? `${reportsDir}/${rel}` : reportsDir;
    let text: string | undefined;
    if (rel) text = await Deno.readTextFile(`${dir}/results.json`).catch(() => undefined);
    if (text !== undefined) {
      try {
        const r = JSON.parse(text);
        entries.push({
          path: rel,
          name: String(r.experiment ?? rel),
          createdAt: String(r.createdAt ?? ""),
          backend: String(r.backend ?? ""),
          headline: String(r.headline ?? ""),
          table1: Array.isArray(r.table1) ? r.table1 : [],
        });
      } catch {
        // A results.json that does not parse is not listed.
      }
      return;
    }
    if (depth >= 2) return;
    let children: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && !/\.(tmp|old)-/.test(e.name)) children.push(e.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    children = children.sort();
    for (const child of children) await visit(rel ? `${rel}/${child}` : child, depth + 1);
  };
  await visit("", 0);
  return entries.sort((a, b) =>
    b.createdAt.localeCompare(a.createdAt) || a.path.localeCompare(b.path)
  );
}

/** reports/index.html: every experiment with date, backend and headline, and Table 1 across them. */
export function renderReportsIndex(entries: ReportEntry[]): string {
  const link = (e: ReportEntry, file: string) =>
    `${e.path.split("/").map(encodeURIComponent).join("/")}/${file}`;
  const rows = entries.map((e) =>
    `<tr><td><a href="${escapeHtml(link(e, "index.html"))}">${escapeHtml(e.name)}</a>` +
    (e.path !== e.name ? ` <span class="note">(${escapeHtml(e.path)})</span>` : "") +
    `</td><td>${escapeHtml(e.createdAt.replace("T", " ").replace(/\.\d+Z$/, " UTC"))}</td>` +
    `<td>${escapeHtml(e.backend)}</td><td class="text">${escapeHtml(e.headline)}</td>` +
    `<td><a href="${escapeHtml(link(e, "results.json"))}">results.json</a> · ` +
    `<a href="${escapeHtml(link(e, "table.md"))}">table.md</a></td></tr>`
  ).join("\n");
  // Table 1 across experiments: for each poster task the newest report that ran it.
  const across = Object.values(POSTER_TABLE1).map((poster) => {
    for (const e of entries) {
      const row = e.table1.find((r) => r.run && r.label === poster.label);
      if (row) return { label: poster.label, entry: e, cells: row.cells };
    }
    return { label: poster.label, entry: undefined, cells: [] as string[] };
  });
  const acrossRows = across.map((r) => {
    if (!r.entry) {
      return `<tr><td>${escapeHtml(r.label)}</td><td class="notrun" colspan="4">${NOT_RUN}</td>` +
        `<td class="note">–</td></tr>`;
    }
    return `<tr><td>${escapeHtml(r.label)}</td>${
      r.cells.slice(1, 5).map((c) => `<td class="num">${escapeHtml(c)}</td>`).join("")
    }<td><a href="${escapeHtml(link(r.entry, "index.html"))}">${
      escapeHtml(r.entry.name)
    }</a></td></tr>`;
  }).join("\n");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>KLAL reports</title>",
    `<style>${CSS}\ntd.text { white-space: normal; text-align: left; max-width: 520px; }</style>`,
    "</head>",
    "<body>",
    "<main>",
    "<header><h1>KLAL reports</h1>",
    `<p class="meta">${entries.length} experiment report${
      entries.length === 1 ? "" : "s"
    }, newest first. Rebuild one from the cache with <code>deno task report NAME</code>.</p>`,
    "</header>",
    "<h2>Experiments</h2>",
    entries.length === 0 ? '<p class="note">No reports yet.</p>' : [
      '<div class="scroll"><table id="experiments">',
      "<thead><tr><th>Experiment</th><th>Date</th><th>Backend</th><th>Headline</th>" +
      "<th>Files</th></tr></thead>",
      `<tbody>\n${rows}\n</tbody>`,
      "</table></div>",
    ].join("\n"),
    "<h2>Table 1 across experiments</h2>",
    '<p class="note">Per task of the poster&#39;s Table 1, the newest report that ran it: ours, ' +
    "mean ± 95% CI (n seeds). The poster&#39;s numbers are in each report.</p>",
    '<div class="scroll"><table class="compact" id="table1-across">',
    '<thead><tr><th>Task</th><th class="num">Base</th><th class="num">NTP</th>' +
    '<th class="num">KLAL+NTP</th><th class="num">KLAL − NTP (paired t)</th>' +
    "<th>Report</th></tr></thead>",
    `<tbody>\n${acrossRows}\n</tbody>`,
    "</table></div>",
    "</main>",
    "</body>",
    "</html>",
  ].join("\n") + "\n";
}

/** Write `<reportsDir>/index.html` from the reports there (atomic replace). */
export async function writeReportsIndex(reportsDir: string): Promise<void> {
  await Deno.mkdir(reportsDir, { recursive: true });
  const html = renderReportsIndex(await readReportEntries(reportsDir));
  const temp = `${reportsDir}/.index-${crypto.randomUUID().slice(0, 8)}.html`;
  await Deno.writeTextFile(temp, html);
  await Deno.rename(temp, `${reportsDir}/index.html`);
}

const PAPER_USAGE = `usage: deno task report paper [--collect [--table1 NAME] [--table1-long NAME]
                                  [--lambda NAME] [--lambda-long NAME] [--layers NAME]
                                  [--long NAME] [--sigma NAME]
                                  [--confirm NAME] [--gpu TEXT]]

  Rebuild reports/paper/ (table.md, README.md from README.src.md, figures/*.svg) from its
  committed results.json. With --collect, first gather results.json from the experiments'
  reports: Table 1 and the lambda sweep (each also with longer training), the layer ablation and
  the investigations (longer training, ground-truth sharpness, a confirmation on the test seed)
  (defaults: ${Object.values(CPU_SOURCES).join(", ")}; "none" leaves a part out).
  --gpu names the GPU the runs used (the record says "no GPU" otherwise).`;

/** \`deno task report paper ...\`: the committed paper record (see paper.ts). */
async function paperMain(args: string[]): Promise<number> {
  const sources: PaperSources = { ...CPU_SOURCES };
  let collect = false;
  let gpu: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("-")) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === "--collect") collect = true;
    else if (flag === "--table1") sources.table1 = value();
    else if (flag === "--table1-long") sources.table1Long = optional(value());
    else if (flag === "--lambda") sources.lambda = optional(value());
    else if (flag === "--lambda-long") sources.lambdaLong = optional(value());
    else if (flag === "--layers") sources.layers = optional(value());
    else if (flag === "--long") sources.long = optional(value());
    else if (flag === "--sigma") sources.sigma = optional(value());
    else if (flag === "--confirm") sources.confirm = optional(value());
    else if (flag === "--gpu") gpu = value();
    else if (flag === "-h" || flag === "--help") {
      console.log(PAPER_USAGE);
      return 0;
    } else throw new UsageError(`unexpected argument ${flag}`);
  }
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  const dir = `${reportsDir}/paper`;
  try {
    if (collect) {
      const record = await collectPaper({
        reportsDir,
        sources,
        cache: new Cache(defaultCacheDir()),
        gpu,
      });
      await Deno.mkdir(dir, { recursive: true });
      const temp = `${dir}/results.json.tmp-${crypto.randomUUID().slice(0, 8)}`;
      await Deno.writeTextFile(temp, recordJson(record));
      await Deno.rename(temp, `${dir}/results.json`);
      console.log(`collected: ${dir}/results.json`);
    }
    const written = await rebuildPaper(dir);
    console.log(`paper record: ${dir}/ (${written.join(", ")})`);
    return 0;
  } catch (e) {
    if (e instanceof MissingReport) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(`error: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

/** A source name, or undefined for "none" (leave that part out of the record). */
function optional(name: string): string | undefined {
  return name === "none" ? undefined : name;
}

/** A bad command line (exit 2). */
class UsageError extends Error {}

/** The command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  if (args[0] === "paper") return await paperMain(args.slice(1));
  const names = args.filter((a) => !a.startsWith("-"));
  const unknown = args.filter((a) => a.startsWith("-"));
  if (unknown.length > 0 || names.length !== 1) {
    console.error(
      `error: expected one experiment NAME${
        unknown.length > 0 ? `, found option ${unknown.join(" ")}` : `, found ${names.length}`
      }\n\n${USAGE}`,
    );
    return 2;
  }
  const cache = new Cache(defaultCacheDir());
  const reportsDir = Deno.env.get("KLAL_REPORTS_DIR") ?? `${ROOT}/reports`;
  try {
    const started = performance.now();
    const { dir, notes } = await rebuildReport(names[0], { cache, reportsDir });
    for (const note of notes) console.log(`note: ${note}`);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`report: ${dir}/index.html  (${seconds} s)`);
    console.log(`index:  ${reportsDir}/index.html`);
    return 0;
  } catch (e) {
    if (e instanceof UnknownExperiment) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof MissingStage) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${PAPER_USAGE}`);
    Deno.exit(2);
  }
}
