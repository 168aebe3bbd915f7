#!/usr/bin/env bash
# `airlock-bundler fetch` of 1,000 mitigations over HTTP from loopback, side by side
# with what a careful admin would do with curl, minisign and sha256sum (same run).
#
#   bench/fetch.sh [--runs N]
#
#   --runs N   timed runs of each side, alternating, after one warm-up (default 7)
#
# Builds the release binaries, makes the shared standard workload once (1,000
# documents, no attachment) in bench/out/fetch-workload/, then fresh keys and a
# feed signed with them (`feed publish --expires 3650d`) in bench/out/fetch-run/,
# served by one `feed-server` for the whole run. Each run times, on a fresh
# directory: airlock's fresh fetch (2,002 requests) and its re-fetch of the
# unchanged feed (one conditional request, 304); the stock side's fresh fetch
# (stock-fresh.sh below: curl of feed.xml + signature, `minisign -V`, one curl
# of the 2,000 files with `--parallel-max 8`, `sha256sum -c` against the signed
# feed, `minisign -V` of every document on `nproc` processes) and its re-fetch
# (curl `--etag-compare` -> 304, `minisign -V` of the cached feed). The warm-up
# checks the request counts with `--json`. Prints medians, the ratios
# airlock/stock and PASS/FAIL for the budgets (fresh < 2.0 s, unchanged < 0.2 s,
# medians); writes bench/out/fetch.md and bench/out/fetch.json. Exits 1 on FAIL,
# 2 on an error (a failed step of either side, a wrong request count).
#
# BENCH_SHARED (default: ../shared/bench beside the repository) is where
# make-workload lives.
set -euo pipefail

runs=7
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$runs" in ''|*[!0-9]*) echo "fetch.sh: --runs '$runs' is not a number" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] || { echo "fetch.sh: --runs must be at least 1" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
make_workload="${BENCH_SHARED:-$root/../shared/bench}/make-workload"
[ -x "$make_workload" ] || { echo "fetch.sh: $make_workload is missing (set BENCH_SHARED)" >&2; exit 2; }
for tool in curl minisign sha256sum xargs nproc python3; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: '$tool' is not installed" >&2; exit 2; }
done
curl_help="$(curl --help all)"
for opt in --parallel-max --etag-compare --no-progress-meter; do
  case "$curl_help" in *"$opt"*) ;; *) echo "fetch.sh: this curl has no $opt (needs curl 7.68 or later)" >&2; exit 2 ;; esac
done

out="$root/bench/out"
mkdir -p "$out"
rel="$root/target/release"
log() { printf '== %s\n' "$*" >&2; }

log "building the release binaries"
cargo build --release -q -p airlock-bundler -p airlock-tests --bin airlock-bundler --bin feed-server

workload="$out/fetch-workload"
if [ -f "$workload/.complete" ]; then
  log "reusing workload $workload"
else
  log "making workload $workload (1,000 mitigations, no attachment)"
  rm -rf "$workload" "$workload.tmp"
  "$make_workload" "$workload.tmp" --mitigations 1000 --attachment-mib 0 >/dev/null
  touch "$workload.tmp/.complete"
  mv "$workload.tmp" "$workload"
fi

work="$out/fetch-run"
removed_at=""
if [ -e "$work" ]; then
  log "removing the previous run's $work"
  rm -rf "$work"
  removed_at=$SECONDS
fi
mkdir -p "$work"
log "making keys and publishing the feed"
"$rel/airlock-bundler" -q keygen --role vendor --no-password --out "$work/keys"
cp -r "$workload/feed" "$work/feed"
"$rel/airlock-bundler" -q feed publish "$work/feed" --key "$work/keys/vendor.key" --expires 3650d

# The stock side, as an admin would script it: stock-fresh.sh URL VENDOR.pub DIR
# (DIR must not exist), then stock-unchanged.sh URL VENDOR.pub DIR on the same DIR.
cat >"$work/stock-fresh.sh" <<'SH'
set -euo pipefail
url=$1 pub=$2
mkdir "$3"
cd "$3"
# The feed and its signature over one connection; the ETag is kept for next time.
curl -fsS --etag-save feed.etag -o feed.xml "${url}feed.xml" \
  --next -fsS -o feed.xml.minisig "${url}feed.xml.minisig"
minisign -Vm feed.xml -p "$pub"
# "SHA256  HREF" of every entry of the verified feed; an href must be
# mitigations/NAME.xml, so even a signed feed cannot make curl write elsewhere.
sed -n 's|^ *<entry [^>]* href="\(mitigations/[A-Za-z0-9._-]*\.xml\)" sha256="\([0-9a-f]\{64\}\)" .*|\2  \1|p' \
  feed.xml >SHA256SUMS
[ "$(wc -l <SHA256SUMS)" -eq "$(grep -c '<entry ' feed.xml)" ] ||
  { echo "stock: an entry of feed.xml has an unexpected href or sha256" >&2; exit 1; }
# Every document and its signature with one curl: 8 transfers at a time on
# reused connections, as airlock's 8 jobs (-s alone does not silence the
# progress meter of curl 7.88 in --parallel mode).
awk -v u="$url" '{ for (s = 0; s < 2; s++) { f = $2 (s ? ".minisig" : "")
  printf "url = \"%s%s\"\noutput = \"%s\"\n", u, f, f } }' SHA256SUMS >docs.curl
curl -fsS --no-progress-meter --parallel --parallel-max 8 --create-dirs --config docs.curl
# Hashes against the signed feed, then each document's own signature (minisign
# without -q, so that a failure says why on stderr).
sha256sum -c --quiet --strict SHA256SUMS
cut -c67- SHA256SUMS | xargs -P "$(nproc)" -n 1 minisign -V -p "$pub" -m >/dev/null
SH
cat >"$work/stock-unchanged.sh" <<'SH'
set -euo pipefail
url=$1 pub=$2
cd "$3"
code=$(curl -fsS -w '%{http_code}' --etag-compare feed.etag --etag-save feed.etag -o feed.xml "${url}feed.xml")
[ "$code" = 304 ] || { echo "stock: feed.xml answered $code, not 304" >&2; exit 1; }
minisign -Vm feed.xml -p "$pub"
SH

log "starting feed-server"
"$rel/feed-server" "$work/feed" >"$work/server.url" 2>"$work/server.log" &
server_pid=$!
stop_server() {
  local rc=$?
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  exit "$rc"
}
trap stop_server EXIT
trap 'exit 2' INT TERM
for _ in $(seq 100); do
  [ -s "$work/server.url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "fetch.sh: feed-server exited:" >&2; cat "$work/server.log" >&2; exit 2; }
  sleep 0.05
done
url="$(head -n 1 "$work/server.url")"
case "$url" in http://127.0.0.1:*/) ;; *) echo "fetch.sh: feed-server printed '$url', not its URL" >&2; exit 2 ;; esac
log "serving $url"
# This machine's ext4 has no journal: for 30 s (vm.dirty_expire_centisecs) after a
# file is deleted, creating a file skips over its inode (ext4 `recently_deleted`).
# Right after an `rm -rf` of 8,000 files, a fresh fetch took 1.5-1.75 s instead of
# 0.65 s (bench/README.md), so the timing starts 35 s after that removal.
if [ -n "$removed_at" ] && [ $((removed_at + 35 - SECONDS)) -gt 0 ]; then
  log "waiting $((removed_at + 35 - SECONDS)) s for the removed files' inodes to age"
  sleep $((removed_at + 35 - SECONDS))
fi

python3 - "$rel" "$work" "$url" "$runs" "$out" <<'PY'
"""Alternating timed runs, request-count checks, medians, ratios, verdict (see fetch.sh)."""
import json, os, statistics, subprocess, sys, time

rel, work, url, runs, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
pub = os.path.join(work, "keys", "vendor.pub")
N = 1000
BUDGET = {"fresh": 2.0, "unchanged": 0.2}  # seconds, airlock medians


def run(cmd, label, capture=False):
    """Runs cmd (stdout to /dev/null unless captured); returns (seconds, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(f"fetch.sh: {label} failed (exit {p.returncode}): {' '.join(cmd)}\n")
        sys.stderr.write(p.stderr.decode(errors="replace"))
        sys.exit(2)
    return took, (p.stdout.decode() if capture else "")


def check(ok, what):
    if not ok:
        print(f"fetch.sh: {what}", file=sys.stderr)
        sys.exit(2)


def count(d, suffix=""):
    return sum(1 for n in os.listdir(d) if n.endswith(suffix)) if os.path.isdir(d) else 0


def airlock(d, json_report=False):
    """A fresh fetch into d/cache, then the same again; seconds of each (and reports)."""
    cmd = [os.path.join(rel, "airlock-bundler"), "fetch", url, "--vendor-key", pub,
           "--cache", os.path.join(d, "cache"), "--json" if json_report else "-q"]
    fresh, r1 = run(cmd, "airlock fresh fetch", capture=json_report)
    check(count(os.path.join(d, "cache", "objects")) == 2 * N,
          f"airlock's fresh fetch left {count(os.path.join(d, 'cache', 'objects'))} objects, not {2 * N}")
    unchanged, r2 = run(cmd, "airlock re-fetch", capture=json_report)
    return {"fresh": fresh, "unchanged": unchanged}, r1, r2


def stock(d):
    """stock-fresh.sh into d/stock, then stock-unchanged.sh on it; seconds of each."""
    os.makedirs(d)
    args = [url, pub, os.path.join(d, "stock")]
    fresh, _ = run(["bash", os.path.join(work, "stock-fresh.sh")] + args, "stock fresh fetch")
    check(count(os.path.join(d, "stock", "mitigations")) == 2 * N,
          f"the stock fresh fetch left {count(os.path.join(d, 'stock', 'mitigations'))} files, not {2 * N}")
    unchanged, _ = run(["bash", os.path.join(work, "stock-unchanged.sh")] + args, "stock re-fetch")
    return {"fresh": fresh, "unchanged": unchanged}


load_before = os.getloadavg()
started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
print("-- warm-up (untimed), checking airlock's requests with --json", file=sys.stderr, flush=True)
_, r1, r2 = airlock(os.path.join(work, "warm-airlock"), json_report=True)
h1, h2 = json.loads(r1)["http"], json.loads(r2)["http"]
check(h1["requests"] == 2 + 2 * N and not h1["not_modified"],
      f"the fresh fetch made {h1['requests']} requests (not_modified {h1['not_modified']}), "
      f"not {2 + 2 * N}: {r1.strip()[:300]}")
check(h2["requests"] == 1 and h2["not_modified"],
      f"the re-fetch made {h2['requests']} requests, not_modified {h2['not_modified']}; "
      f"expected 1 and true")
stock(os.path.join(work, "warm-stock"))

res = {"airlock": [], "stock": []}
sides = [("airlock", lambda d: airlock(d)[0]), ("stock", stock)]
for i in range(runs):
    order = sides if i % 2 == 0 else sides[::-1]
    for side, fn in order:
        res[side].append(fn(os.path.join(work, f"{side}-{i}")))
    a, s = res["airlock"][-1], res["stock"][-1]
    print(f"-- run {i + 1}/{runs} ({order[0][0]} first): airlock fresh {a['fresh']:.3f} s, "
          f"unchanged {a['unchanged']:.3f} s; stock fresh {s['fresh']:.3f} s, "
          f"unchanged {s['unchanged']:.3f} s", file=sys.stderr, flush=True)
load_after = os.getloadavg()

med = {side: {k: statistics.median(r[k] for r in res[side]) for k in BUDGET} for side in res}
ok = {k: med["airlock"][k] < BUDGET[k] for k in BUDGET}


def span(side, k):
    xs = [r[k] for r in res[side]]
    return f"{min(xs):.3f}-{max(xs):.3f} s"


names = {"fresh": f"fresh fetch ({2 + 2 * N:,} requests)",
         "unchanged": "re-fetch, feed unchanged (1 request, 304)"}
table = ["| | airlock median | airlock min-max | stock median | stock min-max "
         "| ratio airlock/stock | airlock budget |",
         "|---|---:|---:|---:|---:|---:|---|"]
for k in BUDGET:
    table.append(f"| {names[k]} | {med['airlock'][k]:.3f} s | {span('airlock', k)} | "
                 f"{med['stock'][k]:.3f} s | {span('stock', k)} | "
                 f"**{med['airlock'][k] / med['stock'][k]:.2f}** | "
                 f"< {BUDGET[k]:.1f} s: {'PASS' if ok[k] else 'FAIL'} |")
verdict = ("PASS" if all(ok.values()) else "FAIL") + ": " + ", ".join(
    f"airlock {k} median {med['airlock'][k]:.3f} s {'<' if ok[k] else '>='} {BUDGET[k]:.1f} s"
    for k in BUDGET)
head = (f"airlock-bundler fetch vs curl + minisign + sha256sum: {N} mitigations over HTTP from "
        f"loopback, {runs} alternating runs each after a warm-up; {started}, {os.cpu_count()} "
        f"CPUs, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after")
text = "\n".join([head, "", *table, "", verdict]) + "\n"
print()
print(text, end="")
with open(os.path.join(out, "fetch.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "fetch.json"), "w") as f:
    json.dump({"started": started, "cpus": os.cpu_count(), "load_before": load_before,
               "load_after": load_after, "runs": runs, "mitigations": N, "url": url,
               "budgets_s": BUDGET, "warmup_http": {"fresh": h1, "unchanged": h2},
               "medians_s": med, "runs_s": res,
               "verdict": "PASS" if all(ok.values()) else "FAIL"}, f, indent=2)
    f.write("\n")
sys.exit(0 if all(ok.values()) else 1)
PY
