#!/usr/bin/env bash
# airlock vs the stock-tool pipeline (tar | zstd + minisign), side by side.
#
#   bench/run.sh [--runs N] [--attachment-mib M] [--rss-mib R] [--rss-mitigations K]
#
#   --runs N             timed runs of each command, alternating with its peer (default 5)
#   --attachment-mib M   attachment size of the standard workload (default 512)
#   --rss-mib R          attachment size of the memory-bound workload (default 2048; 0 skips it)
#   --rss-mitigations K  documents in the memory-bound workload (default 10)
#
# Run from anywhere; paths are relative to the repository root. Everything it makes
# goes under bench/out/ (ignored by git). Workloads are made once with the shared
# make-workload and reused; keys, the published feed and the fetch cache are made
# fresh on every run. The timing, alternation, RSS and the verdict are in
# bench/compare.py, which exits non-zero if airlock is slower than its peer (ratio of
# medians > 1.0) for build or verify, or if `verify` of the big workload peaks above
# 64 MiB RSS.
#
# BENCH_SHARED (default: ../shared/bench beside the repository) is where make-workload
# and peers.sh live.
set -euo pipefail

runs=5
att_mib=512
rss_mib=2048
rss_mitigations=10
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --attachment-mib) att_mib="$2"; shift 2 ;;
    --rss-mib) rss_mib="$2"; shift 2 ;;
    --rss-mitigations) rss_mitigations="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$runs" "$att_mib" "$rss_mib" "$rss_mitigations"; do
  case "$v" in ''|*[!0-9]*) echo "run.sh: '$v' is not a non-negative integer" >&2; exit 2 ;; esac
done
[ "$runs" -ge 1 ] || { echo "run.sh: --runs must be at least 1" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
shared="${BENCH_SHARED:-$root/../shared/bench}"
make_workload="$shared/make-workload"
peers="$shared/peers.sh"
for f in "$make_workload" "$peers"; do
  [ -x "$f" ] || { echo "run.sh: $f is missing (set BENCH_SHARED)" >&2; exit 2; }
done
for tool in minisign zstd tar python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is not installed" >&2; exit 2; }
done

out="$root/bench/out"
mkdir -p "$out"
bin="$root/target/release/airlock-bundler"
log() { printf '== %s\n' "$*" >&2; }

log "building the release binary"
cargo build --release -q -p airlock-bundler

# ensure_workload DIR MITIGATIONS MIB: made once, reused while DIR/.complete exists.
ensure_workload() {
  local dir="$1" n="$2" mib="$3"
  if [ -f "$dir/.complete" ]; then
    log "reusing workload $dir"
    return
  fi
  log "making workload $dir ($n mitigations, $mib MiB attachment)"
  rm -rf "$dir" "$dir.tmp"
  "$make_workload" "$dir.tmp" --mitigations "$n" --attachment-mib "$mib" >/dev/null
  touch "$dir.tmp/.complete"
  mv "$dir.tmp" "$dir"
}

std="$out/workload-m1000-a${att_mib}"
ensure_workload "$std" 1000 "$att_mib"
big=""
if [ "$rss_mib" -gt 0 ]; then
  big="$out/workload-m${rss_mitigations}-a${rss_mib}"
  ensure_workload "$big" "$rss_mitigations" "$rss_mib"
fi

log "making keys"
rm -rf "$out/keys" "$out/peer-keys"
"$bin" -q keygen --role vendor --out "$out/keys" --no-password
"$bin" -q keygen --role release --out "$out/keys" --no-password
"$peers" keys "$out/peer-keys"

# publish_fetch WORKLOAD CACHE: sign the workload's feed and fetch it into a fresh cache.
publish_fetch() {
  log "publishing and fetching $1"
  rm -rf "$2"
  "$bin" -q feed publish "$1/feed" --key "$out/keys/vendor.key"
  "$bin" -q fetch "$1/feed" --vendor-key "$out/keys/vendor.pub" --cache "$2"
}
publish_fetch "$std" "$out/cache-std"
if [ -n "$big" ]; then
  publish_fetch "$big" "$out/cache-big"
fi

args=(--bin "$bin" --peers "$peers" --keys "$out/keys" --peer-keys "$out/peer-keys"
      --workload "$std" --cache "$out/cache-std" --work "$out/run" --runs "$runs"
      --results "$out/results.json")
if [ -n "$big" ]; then
  args+=(--big-workload "$big" --big-cache "$out/cache-big")
fi
exec python3 "$root/bench/compare.py" "${args[@]}"
