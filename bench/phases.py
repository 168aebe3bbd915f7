#!/usr/bin/env python3
"""Where does airlock's build/verify time go? Times variants of the standard workload.

    bench/phases.py [--runs 3] [--attachment-mib 512]

Run bench/run.sh first: this reuses its binary, workload, keys and fetch cache under
bench/out/. Each variant is run once as a warm-up and then --runs times, round robin
over all variants (so drift hits all of them alike); the median wall time is printed.

    all         1000 documents + the big attachment (what run.sh times)
    docs        1000 documents + a 1 MiB attachment     -> per-document cost
    data        1 document (--include) + the big attachment -> attachment data path
    fixed       1 document + a 1 MiB attachment          -> start-up, keys, fsync
and for the stock tools
    peer        peers.sh build / check
    zstd-only   zstd -3 -T0 of the attachment alone (build) / zstd -d of it (verify)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
SHARED = os.environ.get("BENCH_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))


def wall(cmd, shell=False):
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--attachment-mib", type=int, default=512)
    a = ap.parse_args()
    bin_ = os.path.join(ROOT, "target", "release", "airlock-bundler")
    wl = os.path.join(OUT, f"workload-m1000-a{a.attachment_mib}")
    keys, peer_keys, cache = (os.path.join(OUT, d) for d in ("keys", "peer-keys", "cache-std"))
    work = os.path.join(OUT, "phases")
    os.makedirs(work, exist_ok=True)
    big = os.path.join(wl, "attachments", "installer.bin")
    small = os.path.join(work, "installer.bin")  # same name: 1 MiB of the big one
    with open(big, "rb") as f, open(small, "wb") as g:
        g.write(f.read(1 << 20))
    one = ["--include", "AM-BENCH-0001"]

    def build(name, att, extra=()):
        return [bin_, "-q", "build", "--cache", cache, "--key", f"{keys}/release.key",
                "--channel", "bench", "--seq", "1", "--created", "2026-11-28T00:00:00Z",
                "--expires", "3650d", "--attach", att, *extra, "--out", f"{work}/{name}.airlock"]

    def verify(name):
        return [bin_, "-q", "verify", f"{work}/{name}.airlock",
                "--release-key", f"{keys}/release.pub", "--vendor-key", f"{keys}/vendor.pub"]

    peer = os.path.join(SHARED, "peers.sh")
    builds = {
        "all": build("all", big),
        "docs": build("docs", small),
        "data": build("data", big, one),
        "fixed": build("fixed", small, one),
        "peer": [peer, "build", wl, peer_keys, f"{work}/peer.tar.zst"],
        "zstd-only": ["zstd", "-q", "-3", "-T0", "-f", big, "-o", f"{work}/att.zst"],
    }
    verifies = {
        "all": verify("all"), "docs": verify("docs"), "data": verify("data"),
        "fixed": verify("fixed"),
        "peer": [peer, "check", f"{work}/peer.tar.zst", peer_keys],
        "zstd-only": ["zstd", "-q", "-d", "-c", f"{work}/att.zst", "-o", "/dev/null"],
    }
    for title, cmds in (("build", builds), ("verify", verifies)):
        times = {k: [] for k in cmds}
        for k, c in cmds.items():
            wall(c)  # warm-up (and, for build, makes the file verify reads)
        for i in range(a.runs):
            for k, c in cmds.items():
                times[k].append(wall(c))
            print(f"-- {title} round {i + 1}/{a.runs}", file=sys.stderr, flush=True)
        print(f"{title}: median of {a.runs} (s)")
        for k, t in times.items():
            print(f"  {k:<10} {statistics.median(t):7.3f}   [{', '.join(f'{x:.3f}' for x in t)}]")
    shutil.rmtree(work)  # about 1.2 GiB of bundles
    return 0


if __name__ == "__main__":
    sys.exit(main())
