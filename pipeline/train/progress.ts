/** One-line progress bar on stderr: stage, step/total, loss parts, samples/s, ETA. */

const encoder = new TextEncoder();

/** Progress of a long loop. Redraws in place on a terminal; prints every 10% otherwise. */
export class Progress {
  private readonly started = performance.now();
  private readonly tty: boolean;
  private lastDraw = 0;
  private lastDecile = -1;
  private samples = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly first = 0,
  ) {
    this.tty = Deno.stderr.isTerminal() && !Deno.env.get("KLAL_PLAIN_PROGRESS");
  }

  /** Record that `step` of `total` is done, with the current loss parts. */
  update(step: number, losses: Record<string, number>, batchSize: number): void {
    this.samples += batchSize;
    const now = performance.now();
    const decile = Math.floor((10 * step) / this.total);
    const due = this.tty
      ? now - this.lastDraw > 200 || step === this.total
      : decile > this.lastDecile;
    if (!due) return;
    this.lastDraw = now;
    this.lastDecile = decile;
    const seconds = (now - this.started) / 1000;
    const rate = this.samples / Math.max(seconds, 1e-9);
    const eta = (this.total - step) * (seconds / Math.max(step - this.first, 1));
    const parts = Object.entries(losses).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(" ");
    const width = 20;
    const filled = Math.round((width * step) / this.total);
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    const line = `${this.label} [${bar}] ${step}/${this.total} ${parts} | ` +
      `${rate.toFixed(0)} samples/s | ETA ${formatDuration(eta)}`;
    Deno.stderr.writeSync(encoder.encode(this.tty ? `\r\x1b[K${line}` : `${line}\n`));
  }

  /** End the line. */
  done(): void {
    if (this.tty && this.lastDraw > 0) Deno.stderr.writeSync(encoder.encode("\n"));
  }
}

/** `m:ss` (or `h:mm:ss`) for a number of seconds. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}
