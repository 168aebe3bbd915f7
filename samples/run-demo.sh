#!/usr/bin/env bash
# Runs the whole airlock flow on the shipped samples, in a temporary directory,
# printing each command: publish the sample vendor feed, fetch it into a verified
# cache, build a signed bundle, inspect and verify it; then, on a host in the same
# temporary directory: init, verify the bundle there (recorded in the ledger),
# sign a checkpoint, and verify the ledger against it.
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
step "$bin/airlock-bundler" fetch "$work/feed" --vendor-key "$keys/TEST-ONLY-vendor.pub" --cache "$work/cache"
step "$bin/airlock-bundler" build --cache "$work/cache" --key "$keys/TEST-ONLY-release.key" --channel prod \
  --attach samples/README.md --detached-sig --out "$work/samples.airlock"
step "$bin/airlock-bundler" inspect "$work/samples.airlock"
step "$bin/airlock-bundler" verify "$work/samples.airlock" --release-key "$keys/TEST-ONLY-release.pub" \
  --vendor-key "$keys/TEST-ONLY-vendor.pub" -v
if command -v minisign >/dev/null 2>&1; then
  step minisign -V -p "$keys/TEST-ONLY-release.pub" -m "$work/samples.airlock"
fi

# The isolated server: a profile trusting the TEST-ONLY keys, its state in $work.
cat > "$work/host.toml" <<TOML
host = "demo-host"
state_dir = "$work/state"

[trust]
release_keys = ["$keys/TEST-ONLY-release.pub"]
vendor_keys = ["$keys/TEST-ONLY-vendor.pub"]

[policy]
channel = "prod"
TOML
step "$bin/airlock-applier" --profile "$work/host.toml" init
step "$bin/airlock-applier" --profile "$work/host.toml" verify "$work/samples.airlock"
step "$bin/airlock-ledger" --profile "$work/host.toml" checkpoint --out "$work/checkpoint"
step "$bin/airlock-ledger" --profile "$work/host.toml" log
step "$bin/airlock-ledger" --profile "$work/host.toml" verify --checkpoint "$work/checkpoint" \
  --key "$work/state/host.pub"
echo
echo "demo complete: the bundle verified end to end, and the host's ledger verifies against its checkpoint"
