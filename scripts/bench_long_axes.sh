#!/usr/bin/env bash
# Planning cost of long axes (issue 10, item 4): `synthsweep plan` and `synthsweep run
# --shard` on the same number of tasks laid out as one long axis (`repeats = N`, or a
# `[grid] seed` list) and as a grid of two axes (N_A images x N_B repeats), each a score
# task (mse between two 16 px images, so running one costs little). Prints wall time and
# peak memory (max RSS) of each command; no assertion (timings belong here, not in tests).
#
#   bash scripts/bench_long_axes.sh                          # builds the release binary
#   BIN=target/debug/synthsweep bash scripts/bench_long_axes.sh
#   SIZES="32000 128000 1000000" bash scripts/bench_long_axes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES:-32000 64000 128000 1000000}"
GRID_A="${GRID_A:-1000}"
GRID_B="${GRID_B:-1000}"
SEED_LIST="${SEED_LIST:-64000}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p synthsweep
  BIN=target/release/synthsweep
fi
BIN="$(realpath "$BIN")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/imgs"
python3 - "$WORK/imgs" "$GRID_A" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(f"{d}/i{i:05d}.pgm", "wb") as f:
        f.write(b"P5\n16 16\n255\n" + bytes((k * 7 + i) % 256 for k in range(256)))
PY

row() { # label spec shard
  local spec="$2"
  /usr/bin/time -f "%e %M" "$BIN" plan "$spec" >/dev/null 2>"$WORK/plan.err" || true
  local p; p=$(tail -1 "$WORK/plan.err")
  rm -rf "$WORK/out"
  /usr/bin/time -f "%e %M" "$BIN" run "$spec" --out "$WORK/out" --shard "$3" --workers 1 >/dev/null 2>"$WORK/run.err" || true
  local r; r=$(tail -1 "$WORK/run.err")
  printf '%-34s plan %-22s run --shard %-10s %s\n' "$1" "$(fmt "$p")" "$3" "$(fmt "$r")"
}

fmt() { # "secs kb" -> "1.23 s  45.6 MB", or the error line
  if [[ "$1" =~ ^[0-9.]+\ [0-9]+$ ]]; then
    read -r s k <<<"$1"
    printf '%7.2f s %7.1f MB' "$s" "$(echo "$k / 1024" | bc -l)"
  else
    printf '(%s)' "$1"
  fi
}

echo "binary: $BIN"
for n in $SIZES; do
  { printf 'name = "rep%s"\nsynth = "score"\nrepeats = %d\n[params]\n' "$n" "$n"
    printf 'image_a = "imgs/i00001.pgm"\nimage_b = "imgs/i00000.pgm"\nmetric = "mse"\n'; } > "$WORK/rep$n.toml"
  row "repeats = $n (one axis)" "$WORK/rep$n.toml" "0/$n"
done
{ printf 'name = "seeds"\nsynth = "score"\n[params]\n'
  printf 'image_a = "imgs/i00001.pgm"\nimage_b = "imgs/i00000.pgm"\nmetric = "mse"\n[grid]\nseed = ['
  seq -s, 0 $((SEED_LIST - 1)); printf ']\n'; } > "$WORK/seeds.toml"
row "[grid] seed list of $SEED_LIST" "$WORK/seeds.toml" "0/$SEED_LIST"
total=$((GRID_A * GRID_B))
{ printf 'name = "grid"\nsynth = "score"\nrepeats = %d\n[params]\nimage_b = "imgs/i00000.pgm"\nmetric = "mse"\n' "$GRID_B"
  printf '[grid]\nimage_a = "imgs"\n'; } > "$WORK/grid.toml"
row "${GRID_A} images x repeats = $GRID_B" "$WORK/grid.toml" "0/$total"
{ printf 'name = "huge"\nsynth = "score"\nrepeats = 1073741824\n[params]\n'
  printf 'image_a = "imgs/i00001.pgm"\nimage_b = "imgs/i00000.pgm"\nmetric = "mse"\n'; } > "$WORK/huge.toml"
set +e
timeout 120 "$BIN" plan "$WORK/huge.toml" >/dev/null 2>"$WORK/huge.err"
echo "repeats = 1073741824: exit $? $(head -c 300 "$WORK/huge.err")"
