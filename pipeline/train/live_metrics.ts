/**
 * Live metrics of a training stage: one JSON line per logged step (step, each loss part,
 * learning rate, gradient norm, samples/s) and per validation measurement (step,
 * val_accuracy, ...), appended as training goes to
 *
 *   <cache>/live/<experiment>/<stage id, ":" as "_">.jsonl
 *
 * and written whole into the stage's cache entry as `metrics.jsonl` when it ends (the live
 * file is then removed). Each line is one write of a whole line, so a reader in another
 * terminal (`tail -f`) never sees half a record; a resumed stage appends to what its earlier
 * run wrote, after dropping lines past the step it resumes from.
 */
import { dirname } from "node:path";

/** The folder under the cache root that holds the live files. */
export const LIVE_DIR = "live";

/** Where a stage's live metrics go while it trains. */
export function liveMetricsPath(cacheRoot: string, experiment: string, stageId: string): string {
  return `${cacheRoot}/${LIVE_DIR}/${experiment}/${stageId.replaceAll(":", "_")}.jsonl`;
}

/** One line of the live metrics. */
export type MetricRecord = { step: number; [measure: string]: number | string };

export class LiveMetrics {
  private file: Deno.FsFile | undefined;
  private readonly encoder = new TextEncoder();
  private readonly lines: string[] = [];

  /**
   * Open `path` for appending: a new run starts it empty; `resumeStep` keeps the lines of
   * earlier steps (a resumed run continues them).
   */
  constructor(readonly path: string, resumeStep = 0) {
    Deno.mkdirSync(dirname(path), { recursive: true });
    let kept: string[] = [];
    if (resumeStep > 0) {
      try {
        kept = Deno.readTextFileSync(path).split("\n").filter((l) => {
          if (l.trim() === "") return false;
          try {
            return (JSON.parse(l) as MetricRecord).step <= resumeStep;
          } catch {
            return false; // a line cut by a kill: dropped
          }
        });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    Deno.writeTextFileSync(path, kept.map((l) => `${l}\n`).join(""));
    this.lines.push(...kept);
    this.file = Deno.openSync(path, { append: true });
  }

  /** Append one record as a whole line (one write, at once visible to readers). */
  append(record: MetricRecord): void {
    const line = JSON.stringify(record);
    this.lines.push(line);
    if (!this.file) return;
    const bytes = this.encoder.encode(`${line}\n`);
    let written = 0;
    while (written < bytes.length) written += this.file.writeSync(bytes.subarray(written));
  }

  /** Every line so far, for the cache entry's metrics.jsonl. */
  text(): string {
    return this.lines.map((l) => `${l}\n`).join("");
  }

  /** Close the file; `remove` deletes it (its lines are in the entry by then). */
  close(remove: boolean): void {
    this.file?.close();
    this.file = undefined;
    if (remove) {
      try {
        Deno.removeSync(this.path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  }
}
