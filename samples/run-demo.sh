#!/usr/bin/env bash
# Runs the whole airlock flow on the shipped samples, in a temporary directory,
# printing each command: publish the sample vendor feed, fetch it over HTTP from
# loopback into a verified cache (twice: the second is one conditional request), build a signed bundle, inspect and verify it; then, on the sample lab
# server (samples/hosts/lab01 copied to a temporary host root): init, verify the
# bundle there, plan, apply, status, apply again (nothing to do), roll one
# mitigation back, then everything, and verify the ledger against a checkpoint.
# Uses the TEST-ONLY keys in samples/keys. Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --bins
bin="$PWD/target/debug"
keys="$PWD/samples/keys"
work="$(mktemp -d "${TMPDIR:-/tmp}/airlock-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r samples/feed "$work/feed"

bold='' plain=''
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain" | sed "s#$work#\$WORK#g; s#$PWD/##g"; "$@"; }

echo "working in $work (removed at exit)"
step "$bin/airlock-bundler" feed publish "$work/feed" --key "$keys/TEST-ONLY-vendor.key" --retire AM-2020-0007
# The feed is served over HTTP on loopback by feed-server, the test server standing in
# for the vendor's https:// site. The second fetch is one conditional request (304).
"$bin/feed-server" "$work/feed" > "$work/server.url" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/server.url" ] && break; sleep 0.1; done
url="$(head -n 1 "$work/server.url")"
step "$bin/airlock-bundler" fetch "$url" --vendor-key "$keys/TEST-ONLY-vendor.pub" --cache "$work/cache"
step "$bin/airlock-bundler" fetch "$url" --vendor-key "$keys/TEST-ONLY-vendor.pub" --cache "$work/cache"
kill "$server" 2>/dev/null
step "$bin/airlock-bundler" build --cache "$work/cache" --key "$keys/TEST-ONLY-release.key" --channel prod \
  --attach samples/README.md --detached-sig --out "$work/samples.airlock"
step "$bin/airlock-bundler" inspect "$work/samples.airlock"
step "$bin/airlock-bundler" verify "$work/samples.airlock" --release-key "$keys/TEST-ONLY-release.pub" \
  --vendor-key "$keys/TEST-ONLY-vendor.pub" -v
if command -v minisign >/dev/null 2>&1; then
  step minisign -V -p "$keys/TEST-ONLY-release.pub" -m "$work/samples.airlock"
fi

# The isolated server: the sample lab host (samples/profiles/lab.toml), with its
# root, state and trusted keys pointed into $work.
cp -r samples/hosts/lab01 "$work/root"
sed -e "s#^root = \"/\"#root = \"$work/root\"#" \
    -e "s#^state_dir = .*#state_dir = \"$work/state\"#" \
    -e "s#/etc/airlock/keys/release.pub#$keys/TEST-ONLY-release.pub#" \
    -e "s#/etc/airlock/keys/vendor.pub#$keys/TEST-ONLY-vendor.pub#" \
    samples/profiles/lab.toml > "$work/host.toml"
if ! command -v systemctl >/dev/null 2>&1; then
  # service-disable (AM-2024-0001, cups-browsed) needs systemd's systemctl; without it
  # the demo host does not list cups-browsed, so that mitigation is "not applicable".
  echo "(systemctl is not installed: leaving cups-browsed out of the demo host's [products])"
  sed -i.orig '/^cups-browsed = /d' "$work/host.toml"
fi
export AIRLOCK_PROFILE="$work/host.toml"
step "$bin/airlock-applier" init
step "$bin/airlock-applier" verify "$work/samples.airlock"
step "$bin/airlock-applier" plan "$work/samples.airlock" --out "$work/plan.json"
step "$bin/airlock-applier" apply "$work/samples.airlock" --yes
step "$bin/airlock-applier" status
step "$bin/airlock-applier" apply "$work/samples.airlock" --yes
step "$bin/airlock-applier" rollback AM-2022-0002
step "$bin/airlock-applier" rollback --all
step diff -r samples/hosts/lab01 "$work/root"
step "$bin/airlock-ledger" checkpoint --out "$work/checkpoint"
step "$bin/airlock-ledger" log
step "$bin/airlock-ledger" verify --checkpoint "$work/checkpoint" --key "$work/state/host.pub"
echo
echo "demo complete: the bundle verified end to end, was applied and rolled back on the lab host (its root is back to the original), and the ledger verifies against its checkpoint"
