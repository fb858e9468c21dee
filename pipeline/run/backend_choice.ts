/**
 * What `backend: auto` runs, decided once per experiment in the runner's main process and
 * passed to every worker (KLAL_AUTO_BACKEND, with the reason in KLAL_BACKEND_REASON), so all
 * stages use the same backend. Without a real GPU adapter, auto is the CPU path (wasm, with
 * OpenBLAS when present). With one, a short calibration times a training step of the spec's
 * model on WebGPU and on the CPU path, each in a fresh process (tfjs cannot switch backends
 * cleanly inside one), and the faster wins; WebGPU only when it is strictly faster. The
 * decision is cached per machine under `<cache root>/machine/`. `KLAL_BACKEND_CALIBRATION=off`
 * leaves the choice to each worker as before (WebGPU on any real adapter);
 * `KLAL_BACKEND_MEASUREMENT=<file.json>` decides from recorded samples/s instead of timing.
 * The backend never enters cache keys: stage params keep `backend: auto`.
 */
import { STAGE_PERMISSIONS } from "./executors/executor.ts";
import { writeJsonAtomic } from "../lib/atomic.ts";
import { sha256Hex } from "../lib/hash.ts";
import type { BenchModel } from "../train/throughput.ts";
import { codeVersion } from "../cache/code_version.ts";
import { projectPath } from "../lib/paths.ts";
import type { Spec } from "../spec/types.ts";

/** The two candidates: WebGPU, or the CPU path (wasm, else cpu). */
export type AutoBackend = "webgpu" | "wasm";

/** Environment variables a worker reads in initBackend("auto"). */
export const AUTO_BACKEND_ENV = "KLAL_AUTO_BACKEND";
export const BACKEND_REASON_ENV = "KLAL_BACKEND_REASON";

/** Training steps timed after the warm-up steps (../train/throughput.ts's measureTraining runs 2). */
export const CALIBRATION_STEPS = 5;

/** What the adapter probe found. */
export interface AdapterProbe {
  /** A real (not software, not fallback) GPU adapter. */
  real: boolean;
  /** Any adapter at all, software ones included (what `backend: webgpu` needs). */
  available?: boolean;
  description: string;
}

/** One timed backend: its report label ("wasm+openblas") and throughput; 0 when it failed. */
export interface Timed {
  label: string;
  samplesPerSecond: number;
  error?: string;
}

/** A calibration as cached per machine. */
export interface Calibration {
  webgpu: Timed;
  cpu: Timed;
  adapter: string;
  cpuModel: string;
  measuredAt: string;
}

/** The decision, with why. */
export interface AutoChoice {
  backend: AutoBackend;
  reason: string;
  source: "no-gpu" | "calibrated" | "cached" | "recorded";
  calibration?: Calibration;
}

/** What the decision needs from the machine (injectable for tests). */
export interface ChoiceDeps {
  probe(): Promise<AdapterProbe>;
  time(backend: AutoBackend, model: BenchModel): Promise<Timed>;
  cpuModel?: string;
  /** Version of the code that trains (the cache file changes with it). */
  codeVersion?: string;
  now?: () => Date;
  env?: Record<string, string | undefined>;
}

const fmt = (t: Timed) =>
  `${t.label} ${t.samplesPerSecond > 0 ? Math.round(t.samplesPerSecond) : "failed"}` +
  (t.samplesPerSecond > 0 ? " samples/s" : "");

/** Pure decision: WebGPU only when it trained strictly faster than the CPU path. */
export function decide(webgpu: Timed, cpu: Timed): AutoBackend {
  return webgpu.samplesPerSecond > cpu.samplesPerSecond ? "webgpu" : "wasm";
}

/** The model the calibration times: the spec's size and batch on synthetic grid images. */
export function calibrationModel(spec: Spec): BenchModel {
  const imageSize = spec.task.image_size;
  const grid = Math.max(2, Math.floor(imageSize / 8));
  return {
    imageSize: grid * 8,
    grid,
    blobs: grid >= 8 ? 4 : 2,
    dModel: spec.model.d_model,
    layers: spec.model.layers,
    heads: spec.model.heads,
    batch: spec.train.batch_size,
  };
}

/** The CPU's model name (first "model name" of /proc/cpuinfo), else the OS and arch. */
export function cpuModelName(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m);
    if (m) return `${m[1].trim()} x${navigator.hardwareConcurrency ?? 1}`;
  } catch { /* not Linux */ }
  return `${Deno.build.os}-${Deno.build.arch} x${navigator.hardwareConcurrency ?? 1}`;
}

/** Path of the cached decision for this adapter, CPU, model, batch and code. */
export async function calibrationPath(
  cacheRoot: string,
  parts: { adapter: string; cpuModel: string; model: BenchModel; codeVersion: string },
): Promise<string> {
  const hash = await sha256Hex(JSON.stringify([
    parts.adapter,
    parts.cpuModel,
    parts.model,
    parts.codeVersion,
  ]));
  return `${cacheRoot}/machine/backend-${hash.slice(0, 16)}.json`;
}

function fromCalibration(c: Calibration, source: "calibrated" | "cached"): AutoChoice {
  const backend = decide(c.webgpu, c.cpu);
  return {
    backend,
    source,
    calibration: c,
    reason: `auto: ${fmt(c.webgpu)} vs ${fmt(c.cpu)} in a calibration on this machine, ` +
      `cached ${c.measuredAt.slice(0, 10)}`,
  };
}

/**
 * Decide what `auto` runs here, or null when calibration is off (each worker then decides as
 * before). Probes the adapter; without a real one, the CPU path and no timing.
 */
export async function chooseAutoBackend(
  cacheRoot: string,
  model: BenchModel,
  deps: ChoiceDeps,
): Promise<AutoChoice | null> {
  const env = deps.env ?? Deno.env.toObject();
  if (env.KLAL_BACKEND_CALIBRATION === "off") return null;
  const recorded = env.KLAL_BACKEND_MEASUREMENT;
  if (recorded) {
    // { "webgpu": 35, "wasm+openblas": 141 }: samples/s by backend label.
    const m = JSON.parse(await Deno.readTextFile(recorded)) as Record<string, number>;
    const webgpu = { label: "webgpu", samplesPerSecond: m.webgpu ?? 0 };
    const cpuLabel = Object.keys(m).find((k) => k !== "webgpu") ?? "wasm";
    const cpu = { label: cpuLabel, samplesPerSecond: m[cpuLabel] ?? 0 };
    return {
      backend: decide(webgpu, cpu),
      source: "recorded",
      reason: `auto: ${fmt(webgpu)} vs ${fmt(cpu)} recorded in ${recorded}`,
    };
  }
  const adapter = await deps.probe();
  if (!adapter.real) return { backend: "wasm", source: "no-gpu", reason: "auto: no GPU adapter" };
  const cpuModel = deps.cpuModel ?? cpuModelName();
  const version = deps.codeVersion ?? await codeVersion(["pipeline/run/backend_calibrate.ts"]);
  const path = await calibrationPath(cacheRoot, {
    adapter: adapter.description,
    cpuModel,
    model,
    codeVersion: version,
  });
  try {
    return fromCalibration(JSON.parse(await Deno.readTextFile(path)) as Calibration, "cached");
  } catch { /* not measured yet (or unreadable): measure */ }
  // One after the other: timings taken side by side would share the cores.
  const webgpu = await deps.time("webgpu", model);
  const cpu = await deps.time("wasm", model);
  const calibration: Calibration = {
    webgpu,
    cpu,
    adapter: adapter.description,
    cpuModel,
    measuredAt: (deps.now ?? (() => new Date()))().toISOString(),
  };
  // A failed timing may be passing trouble: decide on it now, but measure again next time.
  if (webgpu.samplesPerSecond > 0 && cpu.samplesPerSecond > 0) {
    await writeJsonAtomic(path, calibration);
  }
  return fromCalibration(calibration, "calibrated");
}

/** The child process entry that probes and times (./backend_calibrate.ts). */
const CALIBRATE_PATH = projectPath("pipeline/run/backend_calibrate.ts");

async function child(args: string[], env: Record<string, string>): Promise<unknown> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...STAGE_PERMISSIONS, "--quiet", CALIBRATE_PATH, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const last = text.split("\n").at(-1) ?? "";
  if (!out.success || !last.startsWith("{")) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(`exit ${out.code}: ${err || text.slice(-200)}`);
  }
  return JSON.parse(last);
}

/** The real probe and timing: each in a fresh process with the workers' GPU environment. */
export function childDeps(workerEnv: Record<string, string>): ChoiceDeps {
  return {
    async probe() {
      try {
        return await child(["probe"], workerEnv) as AdapterProbe;
      } catch {
        return { real: false, available: false, description: "probe failed" };
      }
    },
    async time(backend, model) {
      try {
        return await child(
          ["time", backend, JSON.stringify(model), String(CALIBRATION_STEPS)],
          workerEnv,
        ) as Timed;
      } catch (e) {
        return { label: backend, samplesPerSecond: 0, error: (e as Error).message };
      }
    },
  };
}
