#!/usr/bin/env bash
# Ledger appends through the store, this build against a baseline commit,
# side by side: both bench binaries are built first, then run in
# alternating rounds, and the median of each is compared.
#   bench/appends.sh BASELINE_REV [ROUNDS]     (e.g. 8257533 5)
# CUSTODY_BENCH_WRITES and CUSTODY_BENCH_POSTGRES_URL pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/appends.sh BASELINE_REV [ROUNDS]}
rounds=${2:-5}
work=/tmp/custody-bench-appends
mkdir -p "$work"
wt="$work/wt"
git worktree remove --force "$wt" 2>/dev/null || true
git worktree add --quiet --detach "$wt" "$base"
trap 'git worktree remove --force "$wt" 2>/dev/null || true' EXIT
# The baseline gets this very benchmark: it uses only the store's public
# writes, which the baseline has too.
mkdir -p "$wt/crates/custody-store/benches"
cp crates/custody-store/benches/appends.rs "$wt/crates/custody-store/benches/"
grep -q 'name = "appends"' "$wt/crates/custody-store/Cargo.toml" ||
  printf '\n[[bench]]\nname = "appends"\nharness = false\n' >>"$wt/crates/custody-store/Cargo.toml"
bin_of() { # dir target -> path of the built bench binary
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench -p custody-store --bench appends --no-run --message-format=json 2>/dev/null) |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="appends" and m.get("executable"): print(m["executable"])' | tail -n 1
}
echo "building the baseline ($base) and this build..." >&2
old=$(bin_of "$wt" "$work/target")
new=$(bin_of . "${CARGO_TARGET_DIR:-target}")
for r in $(seq "$rounds"); do
  for which in baseline this; do
    bin=$old; [ $which = this ] && bin=$new
    rate=$("$bin" | sed -n 's/.*= \([0-9]*\) entries\/s/\1/p')
    echo "$which $rate"
  done
done | python3 -c '
import sys, statistics
runs = {}
for line in sys.stdin:
    which, rate = line.split()
    runs.setdefault(which, []).append(int(rate))
    print(line.strip(), flush=True)
b, t = statistics.median(runs["baseline"]), statistics.median(runs["this"])
print(f"median entries/s: this build {t:.0f}, baseline {b:.0f}, ratio {t/b:.2f}x")
'
