/**
 * Child process of the backend calibration (./backend_choice.ts); prints one JSON line.
 *
 *   probe                               { real, available, description } of navigator.gpu's
 *                                       adapter (available: any, software ones included)
 *   time <webgpu|wasm> <model> <steps>  { label, samplesPerSecond } of training steps: on
 *                                       webgpu, of the whole-step trainer that training uses
 *                                       there (tfjs-webgpu with KLAL_WEBGPU_TRAINER=off)
 */
import { gpuAdapter, initBackend } from "../kernels/backend.ts";
import { type BenchModel, measureTraining, measureWebgpuTrainer } from "../train/throughput.ts";

const [mode, backend, model, steps] = Deno.args;
if (mode === "probe") {
  const a = await gpuAdapter();
  const real = a.available && !a.fallback;
  console.log(
    JSON.stringify({
      real,
      available: a.available,
      description: a.available ? a.description : a.reason,
    }),
  );
} else if (
  mode === "time" && backend === "webgpu" && Deno.env.get("KLAL_WEBGPU_TRAINER") !== "off"
) {
  // The trainer takes its initial weights from a model made on the CPU.
  await initBackend("wasm");
  const m = JSON.parse(model) as BenchModel;
  const r = await measureWebgpuTrainer("calibration", m, Number(steps));
  console.log(JSON.stringify({ label: r.backend, samplesPerSecond: r.samplesPerSecond }));
} else if (mode === "time") {
  if (backend === "webgpu") await initBackend("webgpu");
  else {
    try {
      await initBackend("wasm");
    } catch {
      await initBackend("cpu");
    }
  }
  const r = await measureTraining("calibration", JSON.parse(model) as BenchModel, Number(steps));
  console.log(JSON.stringify({ label: r.backend, samplesPerSecond: r.samplesPerSecond }));
} else {
  console.error("usage: backend_calibrate.ts probe | time <webgpu|wasm> <model json> <steps>");
  Deno.exit(2);
}
// tfjs may hold timers or a GPU device open: leave now.
Deno.exit(0);
