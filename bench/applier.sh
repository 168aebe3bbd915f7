#!/usr/bin/env bash
# The applier: `plan` + `apply` of 1,000 mitigations on a fresh host, side by side
# with what a careful admin would do with stock tools (alternating, same run).
#
#   bench/applier.sh [--runs N]
#
#   --runs N   timed runs of each side, alternating, after one warm-up (default 5)
#
# Builds the release binaries, makes the shared standard workload once (1,000
# documents, no attachment) in bench/out/applier-workload/, fresh keys, then
# publishes, fetches and builds one bundle (untimed). Each run gets a fresh host
# (root with /etc/bench/conf.d/ and an app.ini of 50 sections, profile, `init`;
# untimed) and times `plan`, `apply --yes -q`, the no-op second `apply` and
# `rollback --all`. The stock side, on its own fresh root: `minisign -Vm` of a
# signed tar of the same 1,000 conf files, `tar -x` into a staging directory, one
# `cp -p` of the 1,000 files into the root, one `sync` (and a variant that fsyncs
# each copied file and the directory instead: `sync FILE...`). The three sides
# alternate in a rotating order. Prints medians, the ratios airlock/stock and
# PASS/FAIL for the plan+apply median against 2.0 s; writes bench/out/applier.md
# and bench/out/applier.json. Exits 1 on FAIL, 2 on an error.
#
# BENCH_SHARED (default: ../shared/bench beside the repository) is where
# make-workload and peers.sh live.
set -euo pipefail

runs=5
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
    -h|--help) usage; exit 0 ;;
    *) echo "applier.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$runs" in ''|*[!0-9]*) echo "applier.sh: --runs '$runs' is not a number" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] || { echo "applier.sh: --runs must be at least 1" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
shared="${BENCH_SHARED:-$root/../shared/bench}"
make_workload="$shared/make-workload"
peers="$shared/peers.sh"
for f in "$make_workload" "$peers"; do
  [ -x "$f" ] || { echo "applier.sh: $f is missing (set BENCH_SHARED)" >&2; exit 2; }
done
for tool in minisign tar cp sync python3; do
  command -v "$tool" >/dev/null || { echo "applier.sh: '$tool' is not installed" >&2; exit 2; }
done

out="$root/bench/out"
mkdir -p "$out"
rel="$root/target/release"
log() { printf '== %s\n' "$*" >&2; }

log "building the release binaries"
cargo build --release -q -p airlock-bundler -p airlock-applier -p airlock-ledger

workload="$out/applier-workload"
if [ -f "$workload/.complete" ]; then
  log "reusing workload $workload"
else
  log "making workload $workload (1,000 mitigations, no attachment)"
  rm -rf "$workload" "$workload.tmp"
  "$make_workload" "$workload.tmp" --mitigations 1000 --attachment-mib 0 >/dev/null
  touch "$workload.tmp/.complete"
  mv "$workload.tmp" "$workload"
fi

work="$out/applier-run"
rm -rf "$work"
mkdir -p "$work"
log "making keys, publishing, fetching and building the bundle"
"$rel/airlock-bundler" -q keygen --role vendor --no-password --out "$work/keys"
"$rel/airlock-bundler" -q keygen --role release --no-password --out "$work/keys"
"$peers" keys "$work/peer-keys"
rm -rf "$work/feed"
cp -r "$workload/feed" "$work/feed"
"$rel/airlock-bundler" -q feed publish "$work/feed" --key "$work/keys/vendor.key"
"$rel/airlock-bundler" -q fetch "$work/feed" --vendor-key "$work/keys/vendor.pub" --cache "$work/cache"
"$rel/airlock-bundler" -q build --cache "$work/cache" --key "$work/keys/release.key" \
  --channel bench --out "$work/bench.airlock"

exec python3 - "$rel" "$work" "$runs" "$out" <<'PY'
"""Fresh hosts, alternating timed runs, medians, ratio, verdict (see applier.sh)."""
import json, os, shutil, statistics, subprocess, sys, time

rel, work, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
applier = os.path.join(rel, "airlock-applier")
bundle = os.path.join(work, "bench.airlock")
keys = os.path.join(work, "keys")
peer_keys = os.path.join(work, "peer-keys")
LIMIT = 2.0  # seconds, plan + apply median
N = 1000
INI = "; bench application\n" + "".join(f"[m{s}]\nexisting{s} = 1\n" for s in range(50))


def run(cmd, label, capture=False):
    """Runs cmd (stdout to /dev/null unless captured); returns (seconds, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(f"applier.sh: {label} failed (exit {p.returncode}): {' '.join(cmd)}\n")
        sys.stderr.write(p.stderr.decode(errors="replace"))
        sys.exit(2)
    return took, (p.stdout.decode() if capture else "")


def fresh_root(d):
    """DIR/root with /etc/bench/conf.d/ (empty) and /etc/bench/app.ini (50 sections)."""
    shutil.rmtree(d, ignore_errors=True)
    etc = os.path.join(d, "root", "etc", "bench")
    os.makedirs(os.path.join(etc, "conf.d"))
    with open(os.path.join(etc, "app.ini"), "w") as f:
        f.write(INI)
    return os.path.join(d, "root")


def fresh_host(d):
    """A fresh root, a profile like tests' Host::bench (channel bench), and `init`."""
    r = fresh_root(d)
    profile = os.path.join(d, "host.toml")
    with open(profile, "w") as f:
        f.write(f'host = "bench01"\nroot = "{r}"\nstate_dir = "{d}/state"\n\n'
                f'[products]\nbench = "1.5"\n\n[web]\nserver = "none"\n\n'
                f'[trust]\nrelease_keys = ["{keys}/release.pub"]\n'
                f'vendor_keys = ["{keys}/vendor.pub"]\n\n[policy]\nchannel = "bench"\n')
    run([applier, "--profile", profile, "init", "-q"], "init")
    return r, profile


def confs(r):
    return sorted(n for n in os.listdir(os.path.join(r, "etc/bench/conf.d")) if n.endswith(".conf"))


def airlock_side(d):
    """plan, apply, re-apply, rollback on one fresh host; seconds of each."""
    r, profile = fresh_host(d)
    a = [applier, "--profile", profile]
    t = {}
    t["verify"], _ = run(a + ["verify", bundle], "verify")
    t["plan"], _ = run(a + ["plan", bundle], "plan")
    t["apply"], _ = run(a + ["apply", bundle, "--yes", "-q"], "apply")
    if len(confs(r)) != N:
        sys.exit(f"applier.sh: apply left {len(confs(r))} conf files, not {N}")
    status = json.loads(run(a + ["status", "--json"], "status", capture=True)[1])
    if len(status["applied"]) != N or status["drift"] != 0:
        sys.exit(f"applier.sh: status after apply: {len(status['applied'])} applied, drift {status['drift']}")
    t["reapply"], _ = run(a + ["apply", bundle, "--yes", "-q"], "re-apply")
    t["rollback"], _ = run(a + ["rollback", "--all", "-q"], "rollback")
    if confs(r) or open(os.path.join(r, "etc/bench/app.ini")).read() != INI:
        sys.exit("applier.sh: rollback --all did not restore the original root")
    t["plan_apply"] = t["plan"] + t["apply"]
    return t


# The stock side's input: the 1,000 conf files airlock writes (taken from an
# untimed apply, so the bytes are the same), as a tar signed with minisign.
src_root, _ = fresh_host(os.path.join(work, "source"))
run([applier, "--profile", os.path.join(work, "source", "host.toml"), "apply", bundle, "--yes", "-q"],
    "source apply")
names = confs(src_root)
assert len(names) == N, len(names)
conf_tar = os.path.join(work, "conf.tar")
with open(os.path.join(work, "conf.list"), "w") as f:
    f.write("\n".join(names) + "\n")
run(["tar", "-C", os.path.join(src_root, "etc/bench/conf.d"), "-cf", conf_tar,
     "-T", os.path.join(work, "conf.list")], "tar")
run(["minisign", "-S", "-s", os.path.join(peer_keys, "peer.key"), "-m", conf_tar,
     "-t", "bench conf files"], "minisign -S")
# $1 peer.pub, $2 conf.tar, $3 staging dir, $4 the root's conf.d
STOCK = {
    # The pipeline as an admin types it: one `sync` of everything.
    "stock": 'set -e; minisign -V -q -p "$1" -m "$2"; mkdir "$3"; tar -C "$3" -xf "$2"; '
             'cp -p "$3"/*.conf "$4"/; sync',
    # The same, but made durable like airlock's writes: fsync of each copied file
    # and of the directory (coreutils `sync FILE...`), not of the whole machine.
    "stock_fsync": 'set -e; minisign -V -q -p "$1" -m "$2"; mkdir "$3"; tar -C "$3" -xf "$2"; '
                   'cp -p "$3"/*.conf "$4"/; sync "$4"/*.conf "$4"',
}


def stock_side(d, variant):
    """minisign -V, tar -x into staging, one cp -p of every file, sync; seconds."""
    r = fresh_root(d)
    dest = os.path.join(r, "etc/bench/conf.d")
    took, _ = run(["bash", "-c", STOCK[variant], variant, os.path.join(peer_keys, "peer.pub"),
                   conf_tar, os.path.join(d, "staging"), dest], variant)
    if len(confs(r)) != N:
        sys.exit(f"applier.sh: {variant} left {len(confs(r))} conf files")
    return {variant: took}


load_before = os.getloadavg()
started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
print("-- warm-up (untimed)", file=sys.stderr, flush=True)
airlock_side(os.path.join(work, "warm-airlock"))
for v in STOCK:
    stock_side(os.path.join(work, f"warm-{v}"), v)
sides = [("airlock", airlock_side)] + [(v, lambda d, v=v: stock_side(d, v)) for v in STOCK]
res = {side: [] for side, _ in sides}
for i in range(runs):
    # Rotate the order, so that no side always runs first (or after the same one).
    k = i % len(sides)
    order = sides[k:] + sides[:k]
    for side, fn in order:
        res[side].append(fn(os.path.join(work, f"{side}-{i}")))
    a = res["airlock"][-1]
    print(f"-- run {i + 1}/{runs} ({', '.join(s for s, _ in order)}): verify {a['verify']:.3f} s, "
          f"plan {a['plan']:.3f} s, apply {a['apply']:.3f} s, re-apply {a['reapply']:.3f} s, "
          f"rollback {a['rollback']:.3f} s; "
          + ", ".join(f"{v} {res[v][-1][v]:.3f} s" for v in STOCK),
          file=sys.stderr, flush=True)
load_after = os.getloadavg()
med = {k: statistics.median(r[k] for r in res["airlock"])
       for k in ("verify", "plan", "apply", "plan_apply", "reapply", "rollback")}
for v in STOCK:
    med[v] = statistics.median(r[v] for r in res[v])
ok = med["plan_apply"] < LIMIT

rows = [("step", "airlock median", "airlock min-max", "ratio / stock (one `sync`)",
         "ratio / stock (fsync per file)")]
def row(name, key, vs_stock):
    xs = [r[key] for r in res["airlock"]]
    rows.append((name, f"{med[key]:.3f} s", f"{min(xs):.3f}-{max(xs):.3f} s",
                 *((f"**{med[key] / med[v]:.2f}**" if vs_stock else "") for v in STOCK)))
row("`verify` (alone, for reference)", "verify", False)
row("`plan`", "plan", False)
row("`apply --yes -q`", "apply", True)
row("**`plan` + `apply`**", "plan_apply", True)
row("second `apply` (no-op)", "reapply", False)
row("`rollback --all`", "rollback", False)
for v, name in (("stock", "stock: `minisign -V`, `tar -x`, `cp -p`, `sync`"),
                ("stock_fsync", "stock, `sync FILE...` instead of `sync`")):
    xs = [r[v] for r in res[v]]
    rows.append((name, f"{med[v]:.3f} s", f"{min(xs):.3f}-{max(xs):.3f} s", "", ""))
table = ["| " + " | ".join(rows[0]) + " |", "|---|---:|---:|---:|---:|"]
table += ["| " + " | ".join(r) + " |" for r in rows[1:]]
verdict = (f"{'PASS' if ok else 'FAIL'}: plan + apply median {med['plan_apply']:.3f} s "
           f"{'<' if ok else '>='} {LIMIT:.1f} s (ratio airlock/stock: "
           f"{med['plan_apply'] / med['stock']:.2f} against one `sync`, "
           f"{med['plan_apply'] / med['stock_fsync']:.2f} against fsync per file)")
head = (f"airlock-applier vs stock tools: {N} mitigations, {runs} alternating runs each after "
        f"a warm-up; {started}, {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before / "
        f"{load_after[0]:.2f} after")
text = "\n".join([head, "", *table, "", verdict]) + "\n"
print()
print(text, end="")
with open(os.path.join(out, "applier.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "applier.json"), "w") as f:
    json.dump({"started": started, "cpus": os.cpu_count(), "load_before": load_before,
               "load_after": load_after, "runs": runs, "mitigations": N, "limit_s": LIMIT,
               "medians_s": med, "runs_s": res,
               "verdict": "PASS" if ok else "FAIL"}, f, indent=2)
    f.write("\n")
sys.exit(0 if ok else 1)
PY
