#!/usr/bin/env bash
# `custody audit verify` of a synthetic bundle of N entries (without blobs),
# side by side with the cheapest thing any verifier must do with it —
# decompress it (`gzip -dc > /dev/null`) — in alternating rounds; medians
# of wall time and the verifier's peak RSS.
#   bench/audit-verify.sh [N] [ROUNDS]        (default 100000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
rounds=${2:-5}
work=/tmp/custody-bench-audit
mkdir -p "$work"
cargo build --release -q -p custody -p custody-audit --example synthetic_bundle
target=${CARGO_TARGET_DIR:-target}
"$target/release/examples/synthetic_bundle" "$n" "$work/bundle.tar.gz" "$work/key"
cat "$work/bundle.tar.gz" >/dev/null
for r in $(seq "$rounds"); do
  /usr/bin/time -f "verify %e %M" "$target/release/custody" audit verify "$work/bundle.tar.gz" \
    --public-key "$work/key" --output json 2>&1 >"$work/out.json" | grep '^verify'
  grep -q '"verified": *true' "$work/out.json" || { echo "the bundle did not verify" >&2; exit 1; }
  /usr/bin/time -f "gunzip %e %M" sh -c "gzip -dc '$work/bundle.tar.gz' >/dev/null" 2>&1 | grep '^gunzip'
done | python3 -c '
import sys, statistics
t, m = {}, {}
for line in sys.stdin:
    k, s, kb = line.split()
    t.setdefault(k, []).append(float(s)); m.setdefault(k, []).append(int(kb))
v, g = statistics.median(t["verify"]), statistics.median(t["gunzip"])
rounds, rss = len(t["verify"]), max(m["verify"]) / 1024
print(f"verify: {v:.2f} s (median of {rounds}), peak RSS {rss:.1f} MiB")
print(f"gunzip: {g:.2f} s")
print(f"ratio verify/gunzip: {v/g:.2f}x")
'
ls -l "$work/bundle.tar.gz" | awk '{print "bundle: " $5 " bytes"}'
