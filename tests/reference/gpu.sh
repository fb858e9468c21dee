#!/usr/bin/env bash
# Our training speed and correctness on a GPU machine, beside the PyTorch reference
# (tests/reference/reference.py), in one run, and the paper-size Table 1 timed end to end in
# another. Steps, all from the repository root:
#
#   tests/reference/gpu.sh pack   on a CPU machine with network (Deno 2.9.6 via npx, the npm
#                                 packages of deno.json, apt-get): builds .scratch/gpu/
#                                 (git-ignored, < 64 MiB): deno.xz (the Deno binary),
#                                 js/*.js (deno bundles: pipeline/commands/bench.ts, gpu_tools.ts,
#                                 reference_test.ts, webgpu_trainer_test.ts), the tfjs wasm
#                                 files,
#                                 vulkan/libvulkan.so.1 (Debian's libvulkan1), and
#                                 node_modules.tar.xz (the npm files an experiment reads,
#                                 traced: see npm_files).
#   tests/reference/gpu.sh run    on the GPU machine (no network needed); results go to $OUT
#                                 (default .scratch/gpu/out).
#   tests/reference/gpu.sh table  on the GPU machine: `deno task experiment` of the paper-size
#                                 Table 1 on WebGPU, timed (see table below; ~10 minutes).
#
# `run` writes, under $OUT: gpu.txt (nvidia-smi -L), env.txt (Vulkan set-up or why not),
# torch_<device>_b<B>.json (reference.py bench, TF32 off), reference_test.txt (our losses and
# gradients vs PyTorch's, on wasm, cpu and webgpu; PyTorch on cuda), webgpu_b<B>.json (our
# paper-model training on WebGPU through tfjs), trainer_b<B>.json (the same with the whole-step
# WebGPU trainer), trainer_b<B>_before.json (the same with the kernels' earlier geometry:
# 64 x 64 tiles, one attention row a workgroup), stack_a<N>.json (N arms of batch 64 stacked
# in one trainer), arm.json (a paper-size arm on WebGPU: ARM_SPEC's KLAL arm, timed by part),
# trainer_test.txt (the trainer's losses, gradients and AdamW steps against tfjs on wasm, on
# this GPU), bench.json (deno task bench --quick --json: wasm/cpu, and the whole-step
# trainer's GPU table: one arm at batch 64/256/1,024 with today's kernels and the earlier
# geometry, 1/4/16/32 stacked arms, beside PyTorch on CUDA) and run.log. Without a GPU it
# falls back: PyTorch on cpu with few steps, no WebGPU rows.
#
# Knobs (environment): KLAL_PYTHON (python with torch; default /opt/torch/.venv/bin/python3,
# else python3), TORCH_BATCHES ("64 256 1024"), TORCH_STEPS (50), WEBGPU_BATCHES
# ("64 256 1024"), WEBGPU_STEPS (5), TRAINER_BATCHES ("64 256 1024"), TRAINER_STEPS (50),
# BEFORE_BATCHES ("256 1024"), STACK_ARMS ("1 4 16 32"),
# ARM_SPEC (experiments/paper/grid-patch.yaml; "" skips the arm), ARM_STEPS (the spec's),
# ARM_TIMEOUT (480 s),
# WEBGPU_TIMEOUT (seconds per batch size, 120),
# PROFILE_BATCHES ("64": the WebGPU step profiles, profile_b<B>.json), OVERHEAD_BATCHES ("64":
# overhead_b<B>.json, the fixed costs around the kernels), SKIP_REFERENCE (1: no step 2),
# SKIP_BENCH (1: no step 4), BENCH_ARGS ("--quick"). The batch lists may be set empty ("") to
# skip their step.
set -uo pipefail
cd "$(dirname "$0")/../.."

GPU_DIR=.scratch/gpu
DENO_VERSION=2.9.6
LIMIT_BYTES=$((64 * 1024 * 1024))

log() { echo "[gpu.sh] $*" >&2; }

# The npm files an experiment reads, for `table` (which runs the sources): a tiny quickstart
# on WebGPU (a software adapter will do) traced with strace, every file it opens or looks up
# under node_modules (not the musl build of the canvas), with node_modules' links, every
# package's package.json and Deno's set-up files, into $GPU_DIR/node_modules.tar.xz.
npm_files() {
  local deno_bin=$1 tmp
  tmp=$(mktemp -d)
  command -v strace >/dev/null 2>&1 || apt-get install -y -qq strace >/dev/null
  KLAL_CACHE_DIR="$tmp/cache" KLAL_REPORTS_DIR="$tmp/reports" \
    strace -f -qq -e trace=openat,statx,newfstatat -o "$tmp/trace" \
    "$deno_bin" task experiment experiments/quickstart.yaml backend=webgpu base.steps=5 \
    base.train=200 train.steps=10 train.warmup=2 train.eval_every=5 task.train=200 \
    task.test=50 >"$tmp/log" 2>&1 || {
    log "error: the traced experiment failed: $(tail -3 "$tmp/log")"
    return 1
  }
  python3 - "$tmp/trace" "$tmp/files" <<'PY'
import os, re, sys
trace, out = sys.argv[1], sys.argv[2]
root = os.getcwd()
nm = os.path.join(root, "node_modules")
keep = set()
for line in open(trace, errors="replace"):
    for path in re.findall(r'"([^"]+)"', line):
        path = os.path.join(root, path)
        if not path.startswith(nm + "/"):
            continue
        real = os.path.realpath(path)
        if real.startswith(nm + "/") and os.path.isfile(real) and "musl" not in real:
            keep.add(os.path.relpath(real, root))
for dirpath, dirs, files in os.walk(nm):
    for name in dirs + files:
        full = os.path.join(dirpath, name)
        if os.path.islink(full) or name == "package.json" or (
            dirpath == os.path.join(nm, ".deno") and os.path.isfile(full)
        ):
            keep.add(os.path.relpath(full, root))
open(out, "w").write("\n".join(sorted(keep)) + "\n")
PY
  tar -cf - -T "$tmp/files" | xz -T0 -6 >"$GPU_DIR/node_modules.tar.xz.tmp"
  mv "$GPU_DIR/node_modules.tar.xz.tmp" "$GPU_DIR/node_modules.tar.xz"
  log "node_modules.tar.xz: $(wc -l <"$tmp/files") paths"
  rm -rf "$tmp"
}

pack() {
  set -e
  local deno_bin
  deno_bin=$(npx --yes "deno@${DENO_VERSION}" eval 'console.log(Deno.execPath())')
  rm -rf "${GPU_DIR:?}/js" "$GPU_DIR/node_modules" "$GPU_DIR/vulkan"
  mkdir -p "$GPU_DIR/js" "$GPU_DIR/vulkan"

  if [ ! -f "$GPU_DIR/deno.xz" ] || [ "$deno_bin" -nt "$GPU_DIR/deno.xz" ]; then
    log "compressing $deno_bin (xz -6, a minute or two)"
    xz -T0 -6 -c "$deno_bin" >"$GPU_DIR/deno.xz.tmp"
    mv "$GPU_DIR/deno.xz.tmp" "$GPU_DIR/deno.xz"
  fi

  # The bundles cannot carry @napi-rs/canvas (a native addon); nothing they run draws with it.
  python3 - "$GPU_DIR/import_map.json" <<'PY'
import json, sys
imports = dict(json.load(open("deno.json"))["imports"])
imports["@napi-rs/canvas"] = "../../tests/reference/canvas_stub.ts"
json.dump({"imports": imports}, open(sys.argv[1], "w"), indent=1)
PY
  for entry in pipeline/commands/bench.ts tests/reference/gpu_tools.ts tests/reference_test.ts \
    tests/webgpu_trainer_test.ts; do
    npx --yes "deno@${DENO_VERSION}" bundle --quiet --platform deno \
      --import-map "$GPU_DIR/import_map.json" \
      -o "$GPU_DIR/js/$(basename "$entry" .ts).js" "$entry"
    # tfjs-backend-wasm's Emscripten loader reads the CommonJS global __dirname, which npm
    # modules have under Deno but an ES-module bundle does not.
    sed -i '1i globalThis.__dirname ??= new URL(".", import.meta.url).pathname;' \
      "$GPU_DIR/js/$(basename "$entry" .ts).js"
  done
  # backend.ts loads the wasm kernels from ../node_modules/... relative to the (bundled) module.
  local wasm_dir="$GPU_DIR/node_modules/@tensorflow/tfjs-backend-wasm/dist"
  mkdir -p "$wasm_dir"
  cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "$wasm_dir/"

  # The Vulkan loader (docs/ARCHITECTURE.md, "Adding a backend": the NVIDIA machine has none).
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download libvulkan1 >/dev/null 2>&1); then
    dpkg-deb -x "$tmp"/libvulkan1_*.deb "$tmp/x"
    cp -L "$(find "$tmp/x" -name 'libvulkan.so.1' | head -1)" "$GPU_DIR/vulkan/libvulkan.so.1"
  elif [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ]; then
    cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$GPU_DIR/vulkan/"
  else
    log "warning: could not get libvulkan1 (apt-get download failed): no WebGPU on the GPU"
  fi
  rm -rf "$tmp"

  npm_files "$deno_bin"

  rm -rf "$GPU_DIR/out"
  (cd "$GPU_DIR" && find . -type f -printf '%s\t%p\n' | sort -k2 |
    awk -F'\t' '{ printf "%10.1f MiB  %s\n", $1 / 1048576, $2 }')
  local total
  total=$(find "$GPU_DIR" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
  log "total $(awk -v t="$total" 'BEGIN { printf "%.1f", t / 1048576 }') MiB (carry limit 64 MiB)"
  if [ "$total" -gt "$LIMIT_BYTES" ]; then
    log "error: $GPU_DIR is over the 64 MiB carry limit"
    return 1
  fi
}

find_python() {
  local p
  for p in "${KLAL_PYTHON:-}" /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
    [ -n "$p" ] && "$p" -c 'import torch' >/dev/null 2>&1 && { echo "$p"; return 0; }
  done
  return 1
}

# One measurement of gpu_tools.ts into a JSON file: `tool_json FILE ARGS...` runs
# `gpu_tools.ts ARGS...` (an error object in FILE when it fails or runs past WEBGPU_TIMEOUT).
tool_json() {
  local file=$1 rc
  shift
  timeout "${WEBGPU_TIMEOUT:-120}" "$deno" run -A "$GPU_DIR/js/gpu_tools.js" "$@" >"$file"
  rc=$?
  if [ "$rc" = 0 ]; then
    log "$*: $(cat "$file")"
  else
    log "$*: failed or timed out (exit $rc)"
    echo "{\"args\": \"$*\", \"error\": \"exit $rc (124: over ${WEBGPU_TIMEOUT:-120} s)\"}" >"$file"
  fi
}

# Paper-model training throughput, one JSON file per batch size: `gpu_tools.ts MODE B STEPS`
# into $out/MODE_bB.json.
throughput() {
  local mode=$1 steps=$2 b
  shift 2
  for b in "$@"; do
    tool_json "$out/${mode}_b$b.json" "$mode" "$b" "$steps"
  done
}

# The set-up `run` and `table` share, in the caller's shell: $deno (the packed binary, else
# npx's), $cuda (1 with an NVIDIA GPU), Vulkan for Deno's WebGPU exported. Needs $work, $out.
setup() {
  # Deno: the packed binary, else whatever npx gives (a CPU machine with network).
  if [ -f "$GPU_DIR/deno.xz" ]; then
    if command -v xz >/dev/null 2>&1; then
      xz -dc "$GPU_DIR/deno.xz" >"$work/deno"
    else
      python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' \
        "$GPU_DIR/deno.xz" >"$work/deno"
    fi
    chmod +x "$work/deno"
    deno="$work/deno"
  else
    log "no $GPU_DIR/deno.xz (run 'gpu.sh pack' first); using npx deno@$DENO_VERSION"
    deno=$(npx --yes "deno@${DENO_VERSION}" eval 'console.log(Deno.execPath())')
  fi
  if [ ! -f "$GPU_DIR/js/bench.js" ]; then
    log "error: no bundles in $GPU_DIR/js: run 'gpu.sh pack' first"
    return 2
  fi
  export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 DENO_DIR="$work/deno_dir"
  log "deno: $("$deno" --version | head -1)"

  cuda=0
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >"$out/gpu.txt" 2>&1; then
    cuda=1
    log "gpu: $(head -1 "$out/gpu.txt")"
  else
    echo "no GPU (nvidia-smi missing or failing)" >"$out/gpu.txt"
    log "no GPU: falling back to CPU figures"
  fi

  # Vulkan for Deno's WebGPU: pipeline/kernels/gpu_env.ts's set-up, exported into this shell.
  if KLAL_VULKAN_DIR="$PWD/$GPU_DIR/vulkan" "$deno" run -A "$GPU_DIR/js/gpu_tools.js" env \
    "$work/vulkan" >"$work/env.sh" 2>"$out/env.txt"; then
    # shellcheck disable=SC1091
    source "$work/env.sh"
    cat "$work/env.sh" >>"$out/env.txt"
    log "vulkan: $(tr '\n' ' ' <"$work/env.sh")"
  else
    log "vulkan: not set up: $(cat "$out/env.txt")"
  fi
}

run() {
  local out="${OUT:-$GPU_DIR/out}"
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  exec > >(tee -a "$out/run.log") 2>&1
  local work deno python cuda=0
  work=$(mktemp -d)
  setup || return $?

  # 1. PyTorch reference throughput (TF32 off).
  if python=$(find_python); then
    log "python: $python ($("$python" -c 'import torch; print(torch.__version__)'))"
    local device=cpu batches="8" steps=3 warmup=1
    if [ "$cuda" = 1 ] &&
      "$python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
      device=cuda batches="${TORCH_BATCHES:-64 256 1024}" steps="${TORCH_STEPS:-50}" warmup=5
    fi
    for b in $batches; do
      "$python" tests/reference/reference.py bench --device "$device" --batch "$b" \
        --steps "$steps" --warmup "$warmup" --json >"$out/torch_${device}_b$b.json"
    done
  else
    log "no python with torch: skipping the PyTorch figures (apt-get install python3-torch)"
    python=""
  fi

  # 2. Our losses and gradients vs PyTorch's (tiny model; webgpu too on a real GPU).
  if [ -n "$python" ] && [ "${SKIP_REFERENCE:-0}" != 1 ]; then
    local ref_device=cpu
    [ "$cuda" = 1 ] && ref_device=cuda
    KLAL_PYTHON="$python" KLAL_REFERENCE_DEVICE="$ref_device" \
      KLAL_REFERENCE_SCRIPT="$PWD/tests/reference/reference.py" \
      "$deno" test -A --no-config "$GPU_DIR/js/reference_test.js" >"$out/reference_test.txt" 2>&1
    log "reference test (PyTorch on $ref_device):" \
      "$(grep -E 'passed|failed' "$out/reference_test.txt" | tail -1)"
  fi

  # 3. Our paper-model training on WebGPU, when there is a real GPU adapter: through tfjs, and
  # (3a) the whole-step trainer, first its equality tests on this GPU.
  if [ -n "${VK_ICD_FILENAMES:-}" ]; then
    # shellcheck disable=SC2086
    throughput webgpu "${WEBGPU_STEPS:-5}" ${WEBGPU_BATCHES-64 256 1024}
    "$deno" test -A --no-config "$GPU_DIR/js/webgpu_trainer_test.js" >"$out/trainer_test.txt" 2>&1
    log "trainer test: $(grep -E 'passed|failed' "$out/trainer_test.txt" | tail -1)"
    # shellcheck disable=SC2086
    throughput trainer "${TRAINER_STEPS:-50}" ${TRAINER_BATCHES-64 256 1024}
    # The kernels' earlier geometry (64 x 64 tiles, one attention row a workgroup) at the same
    # batches, and stacks of arms of batch 64 in one trainer.
    for b in ${BEFORE_BATCHES-256 1024}; do
      tool_json "$out/trainer_b${b}_before.json" trainer "$b" "${TRAINER_STEPS:-50}" 1 64 1
    done
    for a in ${STACK_ARMS-1 4 16 32}; do
      tool_json "$out/stack_a$a.json" trainer 64 "${TRAINER_STEPS:-50}" "$a"
    done
  fi

  # 3b. A paper-size arm through the training loop, its validation curve and the test set.
  if [ -n "${VK_ICD_FILENAMES:-}" ] && [ -n "${ARM_SPEC-experiments/paper/grid-patch.yaml}" ]; then
    # shellcheck disable=SC2086
    timeout "${ARM_TIMEOUT:-480}" "$deno" run -A "$GPU_DIR/js/gpu_tools.js" arm \
      "${ARM_SPEC-experiments/paper/grid-patch.yaml}" ${ARM_STEPS:-} >"$out/arm.json" 2>"$out/arm.log"
    log "arm (exit $?): $(cat "$out/arm.json")"
  fi

  # 3c. Where a WebGPU step's time goes (kernels, phases, matmuls at the step's shapes).
  if [ -n "${VK_ICD_FILENAMES:-}" ]; then
    for b in ${PROFILE_BATCHES-64}; do
      timeout "${WEBGPU_TIMEOUT:-120}" "$deno" run -A "$GPU_DIR/js/gpu_tools.js" profile "$b" \
        >"$out/profile_b$b.json" || log "profile b$b: failed or timed out"
    done
    for b in ${OVERHEAD_BATCHES-64}; do
      timeout "${WEBGPU_TIMEOUT:-120}" "$deno" run -A "$GPU_DIR/js/gpu_tools.js" overhead "$b" \
        >"$out/overhead_b$b.json" || log "overhead b$b: failed or timed out"
    done
  fi

  # 4. The CPU backends of `deno task bench` on this machine. The bundle cannot find
  # reference.py next to itself: name it (and the python) for the PyTorch one-thread row.
  if [ "${SKIP_BENCH:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    KLAL_PYTHON="${python:-python3}" KLAL_REFERENCE_SCRIPT="$PWD/tests/reference/reference.py" \
      "$deno" run -A "$GPU_DIR/js/bench.js" ${BENCH_ARGS:---quick} --json >"$out/bench.json" &&
      "$deno" eval '
        const r = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
        for (const t of r.training) {
          console.error(`[gpu.sh] bench ${t.backend} ${t.model} b${t.batch}: ` +
            `${t.samplesPerSecond.toFixed(0)} samples/s, ${t.gflopsPerSecond.toFixed(1)} GFLOP/s`);
        }' "$out/bench.json"
  fi
  rm -rf "$work"
  log "results in $out: $(cd "$out" && ls | tr '\n' ' ')"
}

# The paper-size Table 1 end to end on this machine through the project's own command,
# `deno task experiment TABLE_SPEC backend=webgpu` (default experiments/paper/all.yaml): data,
# the Base, every fine-tune (stacked on the whole-step trainer) and evaluation, and the report,
# timed. Writes, under $OUT: table.json (spec, seconds, exit status), table.log (the run's
# output), reports/ (the HTML report and results.json), gpu.txt, env.txt, table_run.log. It
# runs the sources, not a bundle: the npm packages come from pack's node_modules.tar.xz, which
# Deno reads as they lie (nodeModulesDir "manual" for the run: no install, no network).
# TABLE_TIMEOUT (560 s) bounds the run, TABLE_ARGS adds spec overrides (key.path=value ...);
# KLAL_ALLOW_SOFTWARE_GPU=1 runs it without a Vulkan GPU (to try it on a CPU machine, small).
table() {
  local out="${OUT:-$GPU_DIR/out}"
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  exec > >(tee -a "$out/table_run.log") 2>&1
  local work deno cuda=0 spec="${TABLE_SPEC:-experiments/paper/all.yaml}"
  work=$(mktemp -d)
  setup || return $?
  if [ -z "${VK_ICD_FILENAMES:-}" ] && [ "${KLAL_ALLOW_SOFTWARE_GPU:-0}" != 1 ]; then
    log "error: no Vulkan GPU set up for WebGPU: no table"
    return 3
  fi
  if [ ! -d node_modules/.deno ]; then
    if [ ! -f "$GPU_DIR/node_modules.tar.xz" ]; then
      log "error: no node_modules and no $GPU_DIR/node_modules.tar.xz: run 'gpu.sh pack' first"
      return 2
    fi
    if command -v xz >/dev/null 2>&1; then
      xz -dc "$GPU_DIR/node_modules.tar.xz" | tar -xf -
    else
      python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' \
        "$GPU_DIR/node_modules.tar.xz" | tar -xf -
    fi
  fi
  cp deno.json "$work/deno.json"
  sed -i 's/"nodeModulesDir": "auto"/"nodeModulesDir": "manual"/' deno.json
  local started ended rc
  started=$(date +%s.%N)
  # shellcheck disable=SC2086
  KLAL_CACHE_DIR="$work/cache" KLAL_REPORTS_DIR="$out/reports" \
    timeout "${TABLE_TIMEOUT:-560}" "$deno" task experiment "$spec" backend=webgpu \
    ${TABLE_ARGS:-} >"$out/table.log" 2>&1
  rc=$?
  ended=$(date +%s.%N)
  cp "$work/deno.json" deno.json
  python3 -c 'import json, sys
print(json.dumps({"spec": sys.argv[1], "seconds": round(float(sys.argv[3]) - float(sys.argv[2]), 1),
                  "exit": int(sys.argv[4])}))' "$spec" "$started" "$ended" "$rc" >"$out/table.json"
  log "table: $(cat "$out/table.json")"
  tail -3 "$out/table.log"
  rm -rf "$work"
}

case "${1:-}" in
pack) pack ;;
run) run ;;
table) table ;;
*)
  echo "usage: tests/reference/gpu.sh pack|run|table (see the top of this file)" >&2
  exit 2
  ;;
esac
