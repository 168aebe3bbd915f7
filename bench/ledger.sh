#!/usr/bin/env bash
# The ledger against raw rusqlite on the same schema, in one run (issue must-show #4).
#
#   bench/ledger.sh [--quick] [BENCH ARGS...]
#
#   --quick        100,000 entries, 2 rounds, fewer appends and queries (about 1 min)
#   BENCH ARGS     passed to the bench: --entries N, --rounds R, --verify-rounds R,
#                  --appends N, --queries N, --processes N, --cases LIST, --dir DIR,
#                  --variants (see ledger/benches/ledger.rs)
#
# Builds the release binaries, runs `cargo bench -p airlock-ledger --bench ledger`,
# prints the summary table (case | raw | ledger | ratio | goal | pass) and writes it
# to bench/out/ledger.md and the raw numbers to bench/out/ledger.json. Exits 1 if a
# goal is missed (ratio below 0.80, or `log --mitigation` at or above 5 ms), 2 on
# a usage error.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) args+=(--entries 100000 --rounds 2 --verify-rounds 3 --appends 100 --queries 100 --processes 20); shift ;;
    --results) echo "ledger.sh: --results is set by the script (bench/out/ledger.json)" >&2; exit 2 ;;
    -h|--help) usage; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/bench/out"
mkdir -p "$out"
log() { printf '== %s\n' "$*" >&2; }

log "building the release binaries and the bench"
cargo build --release -q -p airlock-ledger
cargo bench -q -p airlock-ledger --bench ledger --no-run

log "running (progress on stderr; about 7 min for 1,000,000 entries on 2 cores)"
rm -f "$out/ledger.json"
cargo bench -q -p airlock-ledger --bench ledger -- --results "$out/ledger.json" "${args[@]}" \
  | tee "$out/ledger.md"

[ -f "$out/ledger.json" ] || { echo "ledger.sh: the bench wrote no results" >&2; exit 1; }
log "results: bench/out/ledger.md, bench/out/ledger.json"
if grep -q '"verdict": "PASS"' "$out/ledger.json"; then
  exit 0
fi
exit 1
