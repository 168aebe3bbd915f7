#!/bin/sh
# Builds the two Debian packages of airlock with plain `dpkg-deb --build`
# (nothing beyond Debian's essential dpkg, coreutils, findutils, grep, sed and
# gzip is needed; dpkg-shlibdeps and strip are used when present):
#
#   OUT_DIR/airlock-applier_VERSION_ARCH.deb   isolated servers: airlock-applier, airlock-ledger,
#                                              systemd units, default profile /etc/airlock/host.toml (conffile)
#   OUT_DIR/airlock-bundler_VERSION_ARCH.deb   the connected workstation: airlock-bundler
#
# each with the programs' man pages (gzipped), bash/zsh/fish completions and
# /usr/share/doc/PACKAGE (copyright, README.Debian, the operator guide). Every
# file is root:root, programs 0755, the rest 0644, dated SOURCE_DATE_EPOCH
# (default: the last commit's time), so the same binaries give the same packages.
# Prints the two package paths on stdout, one a line; progress goes to stderr.
#
# Usage: packaging/build-deb.sh [--bin-dir DIR] [--compress xz|gzip|zstd|none] OUT_DIR
#
#   --bin-dir DIR   package the binaries already built in DIR (e.g. target/debug)
#                   instead of building release binaries (cargo build --release --locked)
#   --compress C    data.tar compression (default xz, as Debian's own packages)
#
# Environment: SOURCE_DATE_EPOCH; DEB_HOST_ARCH (default `dpkg --print-architecture`:
# set it when DIR holds binaries for another architecture); AIRLOCK_DEB_NO_SHLIBDEPS=1
# computes Depends without dpkg-shlibdeps even when it is installed.
set -eu
umask 022
export LC_ALL=C

usage() {
    echo "usage: $0 [--bin-dir DIR] [--compress xz|gzip|zstd|none] OUT_DIR" >&2
    exit 2
}
die() {
    echo "$0: $*" >&2
    exit 1
}

bin=
compress=xz
while [ $# -gt 0 ]; do
    case $1 in
    --bin-dir) [ $# -ge 2 ] || usage; bin=$2; shift 2 ;;
    --bin-dir=*) bin=${1#--bin-dir=}; shift ;;
    --compress) [ $# -ge 2 ] || usage; compress=$2; shift 2 ;;
    --compress=*) compress=${1#--compress=}; shift ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || usage
case $compress in xz | gzip | zstd | none) ;; *) usage ;; esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mkdir -p "$1"
out=$(cd "$1" && pwd)

for tool in dpkg dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed: build the packages on Debian or a derivative"
done

if [ -z "$bin" ]; then
    cargo build --release --locked --manifest-path "$root/Cargo.toml" \
        -p airlock-bundler -p airlock-applier -p airlock-ledger >&2
    target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    bin=${target:-$root/target}/release
fi
bin=$(cd "$bin" && pwd) || die "--bin-dir: no such directory"

# The version is the workspace's; the binaries must say the same (stale binaries
# in --bin-dir would otherwise be packaged under a wrong version).
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
[ -n "$version" ] || die "$root/Cargo.toml: no version in [workspace.package]"
for program in airlock-applier airlock-ledger airlock-bundler; do
    [ -x "$bin/$program" ] || die "$bin/$program: not found or not executable: build it first, or leave out --bin-dir"
    said=$("$bin/$program" --version)
    [ "$said" = "$program $version" ] ||
        die "$bin/$program --version says '$said' but Cargo.toml says $version: rebuild the binaries"
done
# Cargo's pre-release dash sorts after the release in Debian; the tilde sorts before.
debversion=$(printf '%s' "$version" | tr '-' '~')
arch=${DEB_HOST_ARCH:-$(dpkg --print-architecture)}

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

sh "$here/gen-docs.sh" --bin-dir "$bin" "$work/docs" >&2

# A native package's changelog (Debian policy 12.7): one entry for this build.
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || true)
{
    printf 'airlock (%s) unstable; urgency=medium\n\n' "$debversion"
    printf '  * Built from the airlock workspace%s.\n\n' "${commit:+ at commit $commit}"
    printf ' -- airlock maintainers <airlock@example.invalid>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$work/changelog"

# dpkg-shlibdeps wants a debian/control naming the packages, and the binaries
# under debian/PACKAGE/.
mkdir -p "$work/debian"
printf 'Source: airlock\n\nPackage: airlock-applier\nArchitecture: any\n\nPackage: airlock-bundler\nArchitecture: any\n' \
    >"$work/debian/control"

# depends PACKAGE PROGRAM...: the Depends field for the shared libraries the programs link.
depends() {
    pkg=$1
    shift
    if [ -z "${AIRLOCK_DEB_NO_SHLIBDEPS:-}" ] && command -v dpkg-shlibdeps >/dev/null 2>&1; then
        args=
        for p in "$@"; do args="$args -edebian/$pkg/usr/bin/$p"; done
        # shellcheck disable=SC2086 # one word per binary, no spaces in the paths
        (cd "$work" && dpkg-shlibdeps -O $args) | sed -n 's/^shlibs:Depends=//p'
        return
    fi
    # Without dpkg-dev: the minimum versions are the highest symbol versions the
    # binaries require (GLIBC_2.34 -> libc6 (>= 2.34)), read from their dynamic
    # string tables, which is what libc6's and libgcc-s1's symbols files say too.
    files=
    for p in "$@"; do files="$files $work/debian/$pkg/usr/bin/$p"; done
    # shellcheck disable=SC2086,SC2013 # file names and library names have no spaces
    for lib in $(grep -aoh 'lib[A-Za-z0-9_+-]*\.so\(\.[0-9]\+\)*' $files | sort -u); do
        case $lib in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | libgcc_s.so.1) ;;
        *) die "$lib: a shared library this script does not know: install dpkg-dev (dpkg-shlibdeps) to compute Depends" ;;
        esac
    done
    # shellcheck disable=SC2086
    glibc=$(grep -aoh 'GLIBC_[0-9][0-9.]*[0-9]' $files | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
    [ -n "$glibc" ] || die "no GLIBC_ symbol version in $files: install dpkg-dev (dpkg-shlibdeps)"
    deps="libc6 (>= $glibc)"
    # shellcheck disable=SC2086
    if grep -aq 'libgcc_s\.so\.1' $files; then
        # GCC_4.2.0 -> 4.2, as in libgcc-s1's symbols file
        gcc=$(grep -aoh 'GCC_[0-9][0-9.]*[0-9]' $files | sed 's/^GCC_//; s/^\([0-9]*\.[0-9]*\)\.0$/\1/' |
            sort -uV | tail -n 1)
        deps="$deps, libgcc-s1 (>= ${gcc:-3.0})"
    fi
    printf '%s\n' "$deps"
}

# stage PACKAGE PROGRAM...: the package's tree in $work/debian/PACKAGE, without DEBIAN/control.
stage() {
    pkg=$1
    shift
    d=$work/debian/$pkg
    install -d "$d/DEBIAN" "$d/usr/bin" "$d/usr/share/man/man1" "$d/usr/share/doc/$pkg" \
        "$d/usr/share/bash-completion/completions" "$d/usr/share/zsh/vendor-completions" \
        "$d/usr/share/fish/vendor_completions.d"
    for p in "$@"; do
        install -m 0755 "$bin/$p" "$d/usr/bin/$p"
        # Stripped as dh_strip does (Debian policy 10.1; a release binary loses
        # its symbol table, 13%, a debug build nine tenths of its size).
        if command -v strip >/dev/null 2>&1; then
            strip --strip-unneeded --remove-section=.comment --remove-section=.note "$d/usr/bin/$p"
        else
            echo "$0: strip (binutils) is not installed: $p is packaged unstripped" >&2
        fi
        for page in "$work/docs/man/man1/$p.1" "$work/docs/man/man1/$p"-*.1; do
            [ -f "$page" ] || continue
            gzip -9n <"$page" >"$d/usr/share/man/man1/${page##*/}.gz"
        done
        install -m 0644 "$work/docs/completions/bash/$p" "$d/usr/share/bash-completion/completions/$p"
        install -m 0644 "$work/docs/completions/zsh/_$p" "$d/usr/share/zsh/vendor-completions/_$p"
        install -m 0644 "$work/docs/completions/fish/$p.fish" "$d/usr/share/fish/vendor_completions.d/$p.fish"
    done
    install -m 0644 "$here/debian/copyright" "$d/usr/share/doc/$pkg/copyright"
    install -m 0644 "$here/debian/$pkg.README.Debian" "$d/usr/share/doc/$pkg/README.Debian"
    gzip -9n <"$root/docs/operator-guide.md" >"$d/usr/share/doc/$pkg/operator-guide.md.gz"
    gzip -9n <"$work/changelog" >"$d/usr/share/doc/$pkg/changelog.gz"
}

# build PACKAGE PROGRAM...: control, md5sums, dates; then dpkg-deb.
build() {
    pkg=$1
    d=$work/debian/$pkg
    # Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per directory.
    size=$(find "$d" -mindepth 1 \( -path "$d/DEBIAN" -prune \) -o \( -type f -printf '%s\n' \) -o -printf '1\n' |
        {
            kib=0
            while read -r bytes; do kib=$((kib + (bytes + 1023) / 1024)); done
            echo "$kib"
        })
    deps=$(depends "$@")
    [ -n "$deps" ] || die "$pkg: could not compute Depends"
    sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
        -e "s/@DEPENDS@/$deps/" "$here/debian/$pkg.control" >"$d/DEBIAN/control"
    if grep -q '@[A-Z_]*@' "$d/DEBIAN/control"; then
        die "$here/debian/$pkg.control: a placeholder was left unfilled"
    fi
    # md5sums of every file but the conffiles (dpkg keeps those in its status), as dh_md5sums.
    if [ -f "$d/DEBIAN/conffiles" ]; then
        sed 's|^/||' "$d/DEBIAN/conffiles" >"$work/$pkg.conffiles"
    else
        : >"$work/$pkg.conffiles"
    fi
    (
        cd "$d"
        find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
            grep -vxF -f "$work/$pkg.conffiles" | xargs -r md5sum
    ) >"$d/DEBIAN/md5sums"
    chmod 0644 "$d/DEBIAN/control" "$d/DEBIAN/md5sums"
    find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    deb=$out/${pkg}_${debversion}_$arch.deb
    dpkg-deb --root-owner-group -Z"$compress" --build "$d" "$deb" >&2
    echo "$deb"
}

stage airlock-applier airlock-applier airlock-ledger
a=$work/debian/airlock-applier
install -d "$a/etc/airlock/keys" "$a/usr/lib/systemd/system"
install -m 0644 "$here/debian/host.toml" "$a/etc/airlock/host.toml"
install -m 0644 "$root"/packaging/systemd/*.service "$root"/packaging/systemd/*.timer \
    "$root"/packaging/systemd/*.path "$a/usr/lib/systemd/system/"
gzip -9n <"$here/README.md" >"$a/usr/share/doc/airlock-applier/packaging.md.gz"
install -d "$a/usr/share/lintian/overrides"
install -m 0644 "$here/debian/airlock-applier.lintian-overrides" "$a/usr/share/lintian/overrides/airlock-applier"
install -m 0644 "$here/debian/airlock-applier.conffiles" "$a/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$here/debian/airlock-applier.$script" "$a/DEBIAN/$script"
done
build airlock-applier airlock-applier airlock-ledger

stage airlock-bundler airlock-bundler
build airlock-bundler airlock-bundler
