#!/usr/bin/env bash
# The GPU check, in two halves, for GPU nodes that hold their own PyTorch and no network.
#
#   scripts/gpu_check.sh pack TORCH_VERSION [OUT.tar.gz]      (a machine with the registries)
#   scripts/gpu_check.sh check PACK_DIR [LIBTORCH_DIR]        (the GPU node, the pack only)
#
# `pack` builds, against the libtorch the node has (e.g. 2.11.0: a binary built against
# another torch does not run on it: "incoherent element sizes in bytes"), a release
# `synthsweep` and the test binaries that exercise the device, and packs them with the
# fixtures, the sample images and a small sweep spec (well under 64 MiB). It uses the tch
# release made for that torch (TCH_FOR_TORCH below), the matching CUDA torch wheel in its
# own venv (.venv-gpu-TORCH_VERSION), and its own copy of the sources and target folder
# (target-gpu-TORCH_VERSION), so the main build is untouched. The wheel comes from PyPI
# (2.11.0 there is 2.11.0+cu130); set TORCH_INDEX for another index.
#
# `check` runs on the node with the pack and the node's own torch libraries: LIBTORCH_DIR
# (a libtorch folder or a torch package folder, holding lib/libtorch_cpu.so), else the
# torch of the node's python3. It prints one PASS/FAIL line per check and a summary, and
# exits 0 only when every check passed:
#   1. synthsweep doctor --device cuda:0: libtorch, CUDA, threads; every model and metric
#      forward and backward and a few iterations of every synthesis kind on the GPU,
#      compared with the CPU.
#   2. The device tests (crates/synth/tests/device.rs: fixture runs moved to the GPU still
#      match plenoptic; crates/synth/tests/chunked_records.rs: records read in chunks;
#      crates/synth/tests/batch.rs: several syntheses in one tensor) and the synthesis
#      parity tests (crates/synth/tests/parity_*.rs: every fixture run drawn
#      on the CPU, moved to the GPU, run there and checked within the fixtures'
#      tolerances; each asserts its results are on the GPU), with
#      SYNTHSWEEP_TEST_DEVICE set to the device checked.
#   3. A small sweep (12 MAD tasks) on the GPU, run three times: one task at a time with
#      records read every iteration (SYNTHSWEEP_RECORD_CHUNK=1) and in chunks of 16 (the
#      default), then with --batch 12 (the tasks that share a batch key, 6 per metric
#      order, in one tensor); each must finish every task, and the tasks/s are printed.
#   4. Per-task time at 64 and 256 px for metamer and MAD on the GPU (bench_synth).
# Everything is timed; the whole check takes a few minutes on a fresh GPU machine.
# GPU_CHECK_DEVICE (default cuda:0) names another device, e.g. cpu to try the script out.
set -euo pipefail

usage() {
  sed -n '2,6p' "$0" >&2
  exit 2
}

# torch version -> the tch release built for it.
tch_for_torch() {
  case "$1" in
    2.13.*) echo 0.26.0 ;;
    2.12.*) echo 0.25.0 ;;
    2.11.*) echo 0.24.0 ;;
    2.10.*) echo 0.23.0 ;;
    *) echo "gpu_check: no known tch release for torch $1 (see tch's changelog)" >&2; exit 2 ;;
  esac
}

pack() {
  local torch="$1" out="${2:-gpu-check-$1.tar.gz}"
  local tch; tch="$(tch_for_torch "$torch")"
  # PyPI's torch wheels for Linux x86_64 are CUDA builds (2.11.0 is 2.11.0+cu130, the
  # node's build); TORCH_INDEX picks another index, e.g. https://download.pytorch.org/whl/cu128.
  local index=(); [ -n "${TORCH_INDEX:-}" ] && index=(--index-url "$TORCH_INDEX")
  cd "$(dirname "$0")/.."
  local root="$PWD" venv="$PWD/.venv-gpu-$torch" src="$PWD/target-gpu-$torch/src"
  export CARGO_TARGET_DIR="$PWD/target-gpu-$torch/target"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch')" 2>/dev/null; then
    echo "gpu_check: installing torch==$torch from ${TORCH_INDEX:-PyPI} into $venv"
    "$venv/bin/python" -m pip install --quiet "${index[@]}" "torch==$torch"
  fi
  LIBTORCH="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)"
  export LIBTORCH LIBTORCH_BYPASS_VERSION_CHECK=1
  export LD_LIBRARY_PATH="$LIBTORCH/lib:${LD_LIBRARY_PATH:-}"
  # A copy of the sources whose manifest pins that tch (the code builds with 0.24-0.26).
  rm -rf "$src"; mkdir -p "$src"
  git ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$src")
  sed -i -E "s/^tch = \".*\"/tch = \"=$tch\"/; s/^torch-sys = \".*\"/torch-sys = \"=$tch\"/" "$src/Cargo.toml"
  rm -f "$src/.cargo/config.toml"   # its LIBTORCH points at the main build's libtorch
  (cd "$src" && cargo update -q -p tch -p torch-sys)
  echo "gpu_check: building synthsweep, bench_synth and the device tests against torch $torch (tch $tch)"
  # Two commands: a target filter (--example) applies to every -p of one command.
  (cd "$src" && cargo build --release -p synthsweep --bin synthsweep &&
    cargo build --release -p synthsweep-synth --example bench_synth)
  local tests
  tests="$(cd "$src" && cargo test --release -p synthsweep-synth --test device --test chunked_records --test batch \
    --test parity_metamer --test parity_mad --test parity_geodesic --test parity_eigendistortion --no-run --message-format=json \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')"
  local stage; stage="$(mktemp -d)/gpu-check"
  mkdir -p "$stage/bin" "$stage/tests" "$stage/shared"
  cp "$CARGO_TARGET_DIR/release/synthsweep" "$CARGO_TARGET_DIR/release/examples/bench_synth" "$stage/bin/"
  for t in $tests; do cp "$t" "$stage/tests/$(basename "$t" | sed 's/-[0-9a-f]*$//')"; done
  cp -r ../shared/fixtures "$stage/shared/" 2>/dev/null || cp -r "${SYNTHSWEEP_SHARED:?set SYNTHSWEEP_SHARED to the shared/ folder}/fixtures" "$stage/shared/"
  cp -r sweeps/images "$stage/images"
  cp "$0" "$stage/gpu_check.sh"
  echo "$torch" > "$stage/TORCH_VERSION"
  strip "$stage"/bin/* "$stage"/tests/* 2>/dev/null || true
  tar -C "$(dirname "$stage")" -czf "$root/$out" gpu-check
  echo "gpu_check: packed $(du -h "$root/$out" | cut -f1) into $out; on the node: tar xzf $out && gpu-check/gpu_check.sh check gpu-check"
}

check() {
  local pack; pack="$(cd "$1" && pwd)"
  local lt="${2:-}"
  if [ -z "$lt" ]; then
    lt="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)" || {
      echo "gpu_check: no LIBTORCH_DIR given and python3 has no torch" >&2; exit 2; }
  fi
  [ -e "$lt/lib/libtorch_cpu.so" ] || { echo "gpu_check: $lt/lib/libtorch_cpu.so not found" >&2; exit 2; }
  export LD_LIBRARY_PATH="$lt/lib:${LD_LIBRARY_PATH:-}"
  export SYNTHSWEEP_SHARED="$pack/shared"
  local bin="$pack/bin/synthsweep" work; work="$(mktemp -d)"
  local dev="${GPU_CHECK_DEVICE:-cuda:0}"
  local failed=0 summary=""
  result() {  # NAME STATUS SECONDS
    summary+="$(printf '%-4s  %-52s %6ss' "$2" "$1" "$3")"$'\n'
    [ "$2" = PASS ] || failed=$((failed + 1))
  }
  step() {  # NAME COMMAND...: PASS when it exits 0
    local name="$1"; shift
    echo "== $name"
    local t0=$SECONDS
    if "$@"; then result "$name" PASS $((SECONDS - t0)); else result "$name" FAIL $((SECONDS - t0)); fi
  }
  echo "gpu_check: pack built for torch $(cat "$pack/TORCH_VERSION" 2>/dev/null || echo '?'), libraries from $lt"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
  step "doctor --device $dev" "$bin" doctor --device "$dev"
  for t in "$pack"/tests/*; do
    step "tests: $(basename "$t") on $dev" env SYNTHSWEEP_TEST_DEVICE="$dev" "$t" --test-threads 1
  done
  # The quickstart's 12 MAD tasks (3 images x 2 metric orders x min/max), 100 iterations.
  cp -r "$pack/images" "$work/images"
  cat > "$work/mad.toml" <<'EOF'
name = "gpu_check_mad"
synth = "mad"
[params]
max_iter = 100
initial_noise = 0.1
seed = 0
[grid]
image = "images/*.pgm"
optimized_metric = [{ name = "mse" }, { name = "ssim_distance" }]
reference_metric = [{ name = "mse" }, { name = "ssim_distance" }]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
EOF
  sweep() {  # CHUNK BATCH: every task must finish; prints tasks/s
    local out="$work/out-$1-$2" t0 t1
    t0=$(date +%s.%N)
    SYNTHSWEEP_RECORD_CHUNK="$1" "$bin" run "$work/mad.toml" --out "$out" --devices "$dev" --batch "$2" -q || return 1
    t1=$(date +%s.%N)
    "$bin" status "$out"
    python3 -c "import sys; t = float(sys.argv[2]) - float(sys.argv[1]); print(f'sweep, records read every {sys.argv[3]} iteration(s), --batch {sys.argv[4]}: 12 tasks in {t:.1f} s, {12 / t:.2f} tasks/s')" "$t0" "$t1" "$1" "$2"
  }
  step "sweep on $dev, records read every iteration" sweep 1 1
  step "sweep on $dev, records read every 16 iterations" sweep 16 1
  step "sweep on $dev, --batch 12 (several tasks in one tensor)" sweep 16 12
  bench() {
    local ok=0
    for size in 64 256; do
      local img="$pack/images/einstein_64.pgm"
      if [ "$size" = 256 ]; then
        python3 - "$img" "$work/einstein_256.pgm" <<'EOF' || return 1
import sys
data = open(sys.argv[1], "rb").read()
parts = data.split(maxsplit=4)
w, h, body = int(parts[1]), int(parts[2]), parts[4]
body = bytes(body[(y // 4) * w + x // 4] for y in range(h * 4) for x in range(w * 4))
open(sys.argv[2], "wb").write(b"P5 %d %d 255\n" % (w * 4, h * 4) + body)
EOF
        img="$work/einstein_256.pgm"
      fi
      for case in metamer_lgc mad_mse_ssim; do
        "$pack/bin/bench_synth" "$case" "$img" 100 3 --device "$dev" || ok=1
      done
    done
    return $ok
  }
  step "per-task time at 64 and 256 px (bench_synth)" bench
  echo
  echo "== gpu_check summary"
  printf '%s' "$summary"
  if [ "$failed" = 0 ]; then echo "PASS: every check passed"; else echo "FAIL: $failed check(s) failed"; fi
  rm -rf "$work"
  [ "$failed" = 0 ]
}

case "${1:-}" in
  pack) [ $# -ge 2 ] || usage; shift; pack "$@" ;;
  check) [ $# -ge 2 ] || usage; shift; check "$@" ;;
  *) usage ;;
esac
