#!/usr/bin/env python3
"""Time airlock against the stock-tool pipeline, alternating, and judge the result.

Called by bench/run.sh after it has built the binary, made the workloads and keys, and
published and fetched the feeds; see that script for the user-facing options.

Like for like (shared bench README):
    airlock-bundler build ... --attach installer.bin   vs   peers.sh build
    airlock-bundler verify (checks, writes nothing)     vs   peers.sh check

Each pair gets one untimed warm-up run of each side, then --runs timed runs of each,
alternating in the same process (A B, B A, A B, ... so neither side is always first).
Every command runs under `/usr/bin/time -f %M` (GNU time, Debian package `time`):
wall time is measured around it, and peak RSS is what it reports -- the largest RSS
of the command and of every descendant it waited for (for peers.sh: the largest of
bash, tar, zstd and minisign). Without /usr/bin/time the script falls back to the
child's ru_maxrss from wait4(2), which Linux never reports below the RSS of this
Python process at fork time (about 15 MiB): the numbers are then an upper bound,
and it says so. The verdict is on the ratio of medians, airlock / peer.

Exit status: 0 if both ratios are <= 1.0 and airlock verify of the big workload stays
within 64 MiB RSS; 1 otherwise; 2 if a command failed.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CREATED = "2026-11-28T00:00:00Z"
# A fixed, far expiry: the bundle bytes stay the same from run to run, and
# `verify` (which fails on an expired bundle) keeps working for years.
EXPIRES = "3650d"
RSS_LIMIT_MIB = 64.0
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
HAVE_TIME = os.access(TIME, os.X_OK)


def run(cmd, label):
    """Runs cmd; returns (wall seconds, peak RSS MiB). Exits 2 if it fails."""
    with tempfile.NamedTemporaryFile("w+") as rss, tempfile.TemporaryFile() as err:
        full = [TIME, "-f", "%M", "-o", rss.name, *cmd] if HAVE_TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.stderr.write(f"compare.py: {label} failed (exit {p.returncode}): {' '.join(cmd)}\n")
            sys.stderr.write(err.read().decode(errors="replace"))
            sys.exit(2)
        if HAVE_TIME:
            kib = int(rss.read().split()[-1])
        else:
            kib = ru.ru_maxrss  # see the module docstring for why this overstates
    return wall, kib / 1024.0


def alternate(name, a_cmd, b_cmd, runs):
    """Warm-up of each, then `runs` alternating timed runs of each."""
    print(f"-- {name}: warm-up", file=sys.stderr, flush=True)
    run(a_cmd, f"{name} (airlock, warm-up)")
    run(b_cmd, f"{name} (peer, warm-up)")
    res = {"airlock": {"wall": [], "rss": []}, "peer": {"wall": [], "rss": []}}
    for i in range(runs):
        order = [("airlock", a_cmd), ("peer", b_cmd)]
        if i % 2:
            order.reverse()
        for side, cmd in order:
            wall, rss = run(cmd, f"{name} ({side})")
            res[side]["wall"].append(wall)
            res[side]["rss"].append(rss)
        print(f"-- {name}: run {i + 1}/{runs}: airlock {res['airlock']['wall'][-1]:.3f} s, "
              f"peer {res['peer']['wall'][-1]:.3f} s", file=sys.stderr, flush=True)
    for side in res:
        res[side]["median"] = statistics.median(res[side]["wall"])
        res[side]["peak_rss_mib"] = max(res[side]["rss"])
    res["ratio"] = res["airlock"]["median"] / res["peer"]["median"]
    return res


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="airlock-bundler binary")
    ap.add_argument("--peers", required=True, help="peers.sh")
    ap.add_argument("--keys", required=True, help="dir with vendor/release .pub/.key")
    ap.add_argument("--peer-keys", required=True, help="dir with peer.pub/peer.key")
    ap.add_argument("--workload", required=True, help="standard workload (published)")
    ap.add_argument("--cache", required=True, help="fetch cache of the standard workload")
    ap.add_argument("--big-workload", help="memory-bound workload (published)")
    ap.add_argument("--big-cache", help="fetch cache of the memory-bound workload")
    ap.add_argument("--work", required=True, help="directory for the outputs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--results", help="write the raw numbers here as JSON")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    k = a.keys

    def build_cmd(cache, workload, out):
        return [a.bin, "-q", "build", "--cache", cache, "--key", f"{k}/release.key",
                "--channel", "bench", "--seq", "1", "--created", CREATED, "--expires", EXPIRES,
                "--attach", f"{workload}/attachments/installer.bin", "--out", out]

    def verify_cmd(bundle):
        return [a.bin, "-q", "verify", bundle,
                "--release-key", f"{k}/release.pub", "--vendor-key", f"{k}/vendor.pub"]

    bundle = os.path.join(a.work, "airlock.airlock")
    peer_out = os.path.join(a.work, "peer.tar.zst")
    for p in (bundle, peer_out, peer_out + ".minisig"):
        if os.path.exists(p):
            os.remove(p)

    if not HAVE_TIME:
        print(f"compare.py: {TIME} is missing (apt-get install time): RSS figures are upper "
              "bounds (they include this Python process's own RSS at fork)", file=sys.stderr)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    build = alternate("build", build_cmd(a.cache, a.workload, bundle),
                      [a.peers, "build", a.workload, a.peer_keys, peer_out], a.runs)
    verify = alternate("verify", verify_cmd(bundle),
                       [a.peers, "check", peer_out, a.peer_keys], a.runs)

    big = None
    if a.big_workload:
        big_bundle = os.path.join(a.work, "big.airlock")
        print("-- big workload: build, then verify twice", file=sys.stderr, flush=True)
        bw, brss = run(build_cmd(a.big_cache, a.big_workload, big_bundle), "big build")
        vr = [run(verify_cmd(big_bundle), "big verify") for _ in range(2)]
        big = {
            "attachment_bytes": os.path.getsize(f"{a.big_workload}/attachments/installer.bin"),
            "bundle_bytes": os.path.getsize(big_bundle),
            "build_wall": bw, "build_rss_mib": brss,
            "verify_wall": [w for w, _ in vr], "verify_rss_mib": max(r for _, r in vr),
        }
        os.remove(big_bundle)
    load_after = os.getloadavg()

    fails = []
    if build["ratio"] > 1.0:
        fails.append(f"build ratio {build['ratio']:.3f} > 1.0")
    if verify["ratio"] > 1.0:
        fails.append(f"verify ratio {verify['ratio']:.3f} > 1.0")
    if big and big["verify_rss_mib"] > RSS_LIMIT_MIB:
        fails.append(f"verify RSS {big['verify_rss_mib']:.1f} MiB > {RSS_LIMIT_MIB:.0f} MiB")

    att = os.path.getsize(f"{a.workload}/attachments/installer.bin") >> 20
    ndocs = len([n for n in os.listdir(f"{a.workload}/feed/mitigations") if n.endswith(".xml")])
    print()
    print(f"airlock vs stock tools: {ndocs} mitigations + {att} MiB attachment, "
          f"{a.runs} alternating runs each after a warm-up")
    print(f"{started}, {os.cpu_count()} CPUs ({cpu_model()}), "
          f"load average {load_before[0]:.2f} before / {load_after[0]:.2f} after")
    print()
    rows = [("command", "airlock median", "peer median", "ratio", "airlock peak RSS", "peer peak RSS")]
    for name, peer_name, r in (("build", "peers.sh build", build), ("verify", "peers.sh check", verify)):
        rows.append((f"{name} vs {peer_name}", f"{r['airlock']['median']:.3f} s",
                     f"{r['peer']['median']:.3f} s", f"{r['ratio']:.3f}",
                     f"{r['airlock']['peak_rss_mib']:.1f} MiB", f"{r['peer']['peak_rss_mib']:.1f} MiB"))
    if big:
        rows.append((f"verify, {big['attachment_bytes'] >> 20} MiB attachment", "", "", "",
                     f"{big['verify_rss_mib']:.1f} MiB", f"(limit {RSS_LIMIT_MIB:.0f} MiB)"))
        rows.append((f"build, {big['attachment_bytes'] >> 20} MiB attachment", "", "", "",
                     f"{big['build_rss_mib']:.1f} MiB", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    if not HAVE_TIME:
        print("(RSS: /usr/bin/time missing, figures are upper bounds)")
    print()
    if fails:
        print("FAIL: " + "; ".join(fails))
    else:
        print("PASS: airlock is no slower than the stock tools, and verify stays within "
              f"{RSS_LIMIT_MIB:.0f} MiB" + ("" if big else " (big workload skipped)"))

    if a.results:
        with open(a.results, "w") as f:
            json.dump({
                "started": started, "cpus": os.cpu_count(), "cpu": cpu_model(),
                "load_before": load_before, "load_after": load_after,
                "runs": a.runs, "mitigations": ndocs, "attachment_mib": att,
                "build": build, "verify": verify, "big": big,
                "pass": not fails, "failures": fails,
            }, f, indent=2)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
