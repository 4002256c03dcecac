#!/usr/bin/env bash
# Benchmark of `synthsweep report` on a 10 000-task root (issue: "reports in under a minute
# on 2 cores with memory bounded independently of the number of tasks"). Writes a synthetic
# root of N metamer-like tasks (crates/report/examples/fake_root.rs: 200 loss rows and four
# 32x32 images each), then times a full report, a re-run with nothing new (incremental) and,
# for the memory comparison, a full report of a root a tenth the size. Peak memory from
# /usr/bin/time (installed with `apt-get install time` when missing). The `synthsweep`
# binary loads libtorch, about 500 MiB resident before any work: the report alone is also
# measured, through crates/report/examples/report_root.rs (no libtorch), with its peak live
# heap (heaptrack, when installed), and on BIG (default 100 000) score tasks (cheap to write).
# Usage: [BIG=100000] bash scripts/bench_report.sh [N=10000] [WORKDIR=/tmp/bench_report]
# (PROFILE=debug uses the dev build already there instead of building a release one.)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
W="${2:-/tmp/bench_report}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet -p synthsweep -p synthsweep-report --example fake_root --example report_root
else
  cargo build --quiet -p synthsweep -p synthsweep-report --example fake_root --example report_root
fi
B="target/$PROFILE/synthsweep"
rm -rf "$W" && mkdir -p "$W"
[ -x /usr/bin/time ] || { echo "bench_report: needs /usr/bin/time (apt-get install time)"; exit 2; }
measure() { # label, command...
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" >"$W/out" 2>"$W/err"
  read -r secs kb <"$W/time"
  printf '%-44s %8.2f s  peak RSS %6.1f MiB   %s\n' "$label" "$secs" "$(echo "$kb/1024" | bc -l)" "$(tail -1 "$W/out")"
}
heap() { # label, command...: peak live heap (heaptrack), when heaptrack is installed
  local label="$1"; shift
  command -v heaptrack >/dev/null || return 0
  rm -f "$W"/ht.*
  heaptrack -o "$W/ht" "$@" >/dev/null 2>&1
  printf '%-44s %s\n' "$label" "$(heaptrack_print "$W"/ht.* 2>/dev/null | grep -m1 'peak heap memory consumption')"
}
alone="target/$PROFILE/examples/report_root"
for n in "$((N / 10))" "$N"; do
  "target/$PROFILE/examples/fake_root" "$W/root$n" "$n" >/dev/null
  measure "report, $n tasks (all drawn)" "$B" -q report "$W/root$n" --out "$W/report$n"
  measure "report again, $n tasks (nothing new)" "$B" -q report "$W/root$n" --out "$W/report$n"
  measure "report crate alone, $n tasks (all drawn)" "$alone" "$W/root$n" "$W/alone$n"
  measure "report crate alone again, $n tasks" "$alone" "$W/root$n" "$W/alone$n"
  rm -rf "$W/alone$n"
  heap "live heap, $n tasks (all drawn)" "$alone" "$W/root$n" "$W/alone$n"
  heap "live heap, $n tasks again" "$alone" "$W/root$n" "$W/alone$n"
  rm -rf "$W/alone$n"
  [ "$n" = "$N" ] || rm -rf "$W/root$n" "$W/report$n"
done
# A bigger count of cheap tasks (score: one value each, no images), the report crate alone:
# BIG=100000 by default, BIG=0 to skip.
BIG="${BIG:-100000}"
if [ "$BIG" -gt 0 ]; then
  "target/$PROFILE/examples/fake_root" "$W/score$BIG" "$BIG" score >/dev/null
  measure "report crate alone, $BIG score tasks" "$alone" "$W/score$BIG" "$W/sreport$BIG"
  measure "report crate alone again, $BIG score tasks" "$alone" "$W/score$BIG" "$W/sreport$BIG"
  rm -rf "$W/sreport$BIG"
  heap "live heap, $BIG score tasks (all drawn)" "$alone" "$W/score$BIG" "$W/sreport$BIG"
  heap "live heap, $BIG score tasks again" "$alone" "$W/score$BIG" "$W/sreport$BIG"
  du -sh "$W/sreport$BIG" | sed "s/^/report size, $BIG score tasks: /"
  rm -rf "$W/score$BIG" "$W/sreport$BIG"
fi
measure "synthsweep --version (libtorch loaded, no work)" "$B" --version
uptime | sed 's/^/load: /'
du -sh --apparent-size "$W/report$N" | sed 's/^/report size (apparent): /'
echo "per task: $(( $(du -s --apparent-size -k "$W/report$N" | cut -f1) / N )) KiB apparent, $(( $(du -s -k "$W/report$N" | cut -f1) / N )) KiB on disk"
du -sh "$W/report$N" | sed 's/^/report size: /'
