#!/bin/bash
# build-static.sh: build a fully static syncgate on Debian bookworm.
#
# Debian ships static archives for libyaml, protobuf-c, snappy, SQLite, OpenSSL
# and zlib, but its libcurl.a drags in libraries that have no static archive
# (nghttp2, psl, ssh2, rtmp, ldap, gssapi), its libmicrohttpd.a is built with
# GnuTLS (which has none) and cJSON has none at all. So this script builds a
# minimal libcurl (HTTP and HTTPS over OpenSSL, zlib, threaded resolver), a
# libmicrohttpd without HTTPS (syncgate serve speaks plain HTTP inside the
# cluster) and cJSON from Debian's own source packages into a cache prefix,
# then links syncgate with meson against that prefix and the system archives.
# The same libcurl build also gives a static `curl` program: the image ships it
# so that `kubectl exec deployment/test-runner -- curl ...` (the seed's way of
# triggering a run) works in a container that has nothing else.
#
# Usage: scripts/build-static.sh [--builddir DIR] [--rootfs DIR] [--no-install]
#   --builddir DIR  meson build directory (default: <repo>/build-static)
#   --rootfs DIR    also assemble the image root filesystem in DIR: the stripped
#                   binary, the curl program, CA certificates, passwd/group for
#                   uid 65532, nsswitch.conf and the profiles (what the
#                   Dockerfile ships)
#   --no-install    never call apt-get install; fail if a package is missing
# Environment:
#   SYNCGATE_STATIC_CACHE  cache of the built libcurl/libmicrohttpd/cJSON (default:
#                          /var/cache/syncgate-static as root, else
#                          ${XDG_CACHE_HOME:-~/.cache}/syncgate-static)
#   JOBS                   parallel jobs (default: nproc)
#
# Outputs: DIR/syncgate (static, with symbols), DIR/syncgate-stripped and
# DIR/curl (static, stripped).
# Idempotent: a second run reuses the cache and the meson build directory.
# Non-interactive: as root it installs missing build packages with apt-get
# and enables deb-src entries derived from the existing apt sources.
set -euo pipefail

readonly MAX_BYTES=$((8 * 1024 * 1024))
# Bump when the recipe below changes in a way that needs a rebuild of the deps.
readonly RECIPE=2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=$repo/build-static
rootfs=
may_install=1

while [ $# -gt 0 ]; do
    case $1 in
    --builddir) builddir=$2; shift 2 ;;
    --builddir=*) builddir=${1#*=}; shift ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --rootfs=*) rootfs=${1#*=}; shift ;;
    --no-install) may_install=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-static: unknown argument: $1" >&2; exit 2 ;;
    esac
done

log() { printf 'build-static: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

if [ -n "${SYNCGATE_STATIC_CACHE:-}" ]; then
    cache=$SYNCGATE_STATIC_CACHE
elif is_root; then
    cache=/var/cache/syncgate-static
else
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/syncgate-static
fi
mkdir -p "$cache" || die "cannot create cache directory $cache"
cache=$(cd "$cache" && pwd)

# ---------------------------------------------------------------------------
# Build packages. Checked by name so a prepared machine never touches apt.
# ---------------------------------------------------------------------------
packages=(
    gcc g++ libc6-dev make pkg-config file binutils ca-certificates
    meson ninja-build python3 cmake dpkg-dev xz-utils patch
    libssl-dev zlib1g-dev libyaml-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev
    libsqlite3-dev
)

apt_updated=0
apt_update() {
    if [ $apt_updated = 0 ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
}

ensure_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ $may_install = 0 ] || ! is_root; then
        die "missing packages: ${missing[*]} (install them as root, or run this script as root)"
    fi
    apt_update
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# apt-get source needs deb-src entries. Derive them from the machine's own
# Debian entries (same mirror, suites and keyring) for this release only, so
# third-party repositories are left alone.
ensure_deb_src() {
    if apt-get source --print-uris curl >/dev/null 2>&1; then
        return 0
    fi
    is_root || die "no deb-src entries in the apt sources; as root this script adds them"
    local codename out
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        out=/etc/apt/sources.list.d/syncgate-deb-src.sources
        awk -v codename="$codename" '
            function flush() {
                if (stanza != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && suites ~ codename &&
                    enabled !~ /^[ \t]*no/) {
                    if (n++) print ""
                    printf "Types: deb-src\n%s", stanza
                }
                stanza = ""; types = ""; suites = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { types = substr($0, 7); next }
            /^Suites:/ { suites = substr($0, 8) }
            /^Enabled:/ { enabled = substr($0, 9) }
            { stanza = stanza $0 "\n" }
            END { flush() }
        ' /etc/apt/sources.list.d/debian.sources >"$out.tmp"
    elif [ -f /etc/apt/sources.list ]; then
        out=/etc/apt/sources.list.d/syncgate-deb-src.list
        awk -v codename="$codename" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) while ($i !~ /\]$/) i++
                if ($(i + 2) ~ "^" codename) { $1 = "deb-src"; print }
            }
        ' /etc/apt/sources.list >"$out.tmp"
    else
        die "no apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
    fi
    [ -s "$out.tmp" ] || { rm -f "$out.tmp"; die "no Debian $codename entry to derive deb-src from"; }
    mv "$out.tmp" "$out"
    log "enabled deb-src entries in $out"
    apt_updated=0
    apt_update
}

# Print "<dsc file name>" of the source package apt would fetch.
source_dsc() {
    apt-get source --print-uris "$1" 2>/dev/null |
        awk '$2 ~ /\.dsc$/ { print $2; exit }'
}

# Unpack source package $1 (dsc in $cache/src) into directory $2.
unpack_source() {
    local pkg=$1 dest=$2 dsc
    dsc=$(source_dsc "$pkg")
    [ -n "$dsc" ] || die "apt cannot find source package $pkg"
    mkdir -p "$cache/src"
    if [ ! -f "$cache/src/$dsc" ]; then
        log "apt-get source $pkg ($dsc)"
        # (as root, apt warns that _apt cannot write here: harmless)
        if ! (cd "$cache/src" && apt-get source --download-only -qq "$pkg") \
            >"$cache/src/$pkg.log" 2>&1 || [ ! -f "$cache/src/$dsc" ]; then
            cat "$cache/src/$pkg.log" >&2
            die "apt-get source $pkg did not produce $dsc"
        fi
    fi
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    dpkg-source --no-check -x "$cache/src/$dsc" "$dest" >/dev/null
}

# ---------------------------------------------------------------------------
# Minimal libcurl (and the curl program), libmicrohttpd and cJSON, cached by
# source version and recipe.
# ---------------------------------------------------------------------------
curl_configure=(
    --disable-shared --enable-static --with-pic=no
    --with-openssl --with-zlib --enable-threaded-resolver --disable-ares
    --enable-http --enable-proxy --enable-ipv6 --enable-cookies
    --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
    --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap
    --disable-smb --disable-smtp --disable-gopher --disable-mqtt
    --disable-manual --disable-ntlm --disable-ntlm-wb --disable-kerberos-auth
    --disable-negotiate-auth --disable-aws --disable-netrc --disable-alt-svc
    --disable-hsts --disable-doh --disable-websockets --disable-unix-sockets
    --without-libpsl --without-libidn2 --without-nghttp2 --without-nghttp3
    --without-ngtcp2 --without-quiche --without-msh3 --without-brotli --without-zstd
    --without-libssh --without-libssh2 --without-wolfssh --without-librtmp
    --without-gssapi --without-libgsasl --without-hyper
    --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs
)

# libmicrohttpd: plain HTTP (no GnuTLS), none of the authentication, upgrade
# and form-parsing parts syncgate serve does not use.
mhd_configure=(
    --disable-shared --enable-static --with-pic=no
    --enable-https=no --without-gnutls --disable-doc --disable-examples --disable-curl
    --disable-bauth --disable-dauth --disable-postprocessor --disable-httpupgrade --disable-nls
)

dep_dir() { # name dsc extra-key -> cache directory of that build
    local key
    key=$(printf '%s\n' "$RECIPE" "$2" "$3" | sha256sum | cut -c1-12)
    echo "$cache/$1-${2%.dsc}-$key"
}

build_cjson() {
    local dsc dir work
    dsc=$(source_dsc cjson)
    [ -n "$dsc" ] || die "apt cannot find source package cjson"
    dir=$(dep_dir cjson "$dsc" "static")
    if [ -f "$dir/done" ]; then
        cjson_prefix=$dir/prefix
        return 0
    fi
    log "building cJSON from $dsc into $dir"
    work=$cache/work/cjson
    rm -rf "$dir" "$cache/work/cjson"
    mkdir -p "$cache/work"
    unpack_source cjson "$work/src"
    cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$dir/prefix" -DCMAKE_INSTALL_LIBDIR=lib \
        -DBUILD_SHARED_LIBS=OFF -DBUILD_SHARED_AND_STATIC_LIBS=OFF \
        -DENABLE_CJSON_UTILS=OFF -DENABLE_CJSON_TEST=OFF -DENABLE_TARGET_EXPORT=OFF \
        >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; die "cJSON cmake failed"; }
    cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -50 "$work/build.log" >&2; die "cJSON build failed"; }
    cmake --install "$work/build" >/dev/null
    [ -f "$dir/prefix/lib/libcjson.a" ] || die "cJSON did not install libcjson.a"
    touch "$dir/done"
    rm -rf "$work"
    cjson_prefix=$dir/prefix
}

build_mhd() {
    local dsc dir work
    dsc=$(source_dsc libmicrohttpd)
    [ -n "$dsc" ] || die "apt cannot find source package libmicrohttpd"
    dir=$(dep_dir libmicrohttpd "$dsc" "${mhd_configure[*]}")
    if [ -f "$dir/done" ]; then
        mhd_prefix=$dir/prefix
        return 0
    fi
    log "building libmicrohttpd from $dsc into $dir"
    work=$cache/work/libmicrohttpd
    rm -rf "$dir" "$work"
    mkdir -p "$cache/work"
    unpack_source libmicrohttpd "$work/src"
    # as for curl: never rerun autotools over the shipped configure
    (cd "$work/src" && find . \( -name configure -o -name Makefile.in -o -name aclocal.m4 \
        -o -name MHD_config.h.in \) -exec touch {} +)
    (cd "$work/src" && ./configure --prefix="$dir/prefix" --libdir="$dir/prefix/lib" \
        "${mhd_configure[@]}" CFLAGS="-O2 -g0") >"$work/configure.log" 2>&1 ||
        { tail -60 "$work/configure.log" >&2; die "libmicrohttpd configure failed"; }
    grep -q 'HTTPS support: *no' "$work/configure.log" ||
        die "libmicrohttpd configure did not disable HTTPS"
    make -C "$work/src/src/microhttpd" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "libmicrohttpd build failed"; }
    make -C "$work/src/src/microhttpd" install >/dev/null
    make -C "$work/src/src/include" install >/dev/null
    make -C "$work/src" install-pkgconfigDATA >/dev/null
    [ -f "$dir/prefix/lib/libmicrohttpd.a" ] || die "libmicrohttpd did not install its archive"
    touch "$dir/done"
    rm -rf "$work"
    mhd_prefix=$dir/prefix
}

build_curl() {
    local dsc dir work
    dsc=$(source_dsc curl)
    [ -n "$dsc" ] || die "apt cannot find source package curl"
    dir=$(dep_dir curl "$dsc" "${curl_configure[*]}")
    if [ -f "$dir/done" ]; then
        curl_prefix=$dir/prefix
        return 0
    fi
    log "building libcurl from $dsc into $dir"
    work=$cache/work/curl
    rm -rf "$dir" "$work"
    mkdir -p "$cache/work"
    unpack_source curl "$work/src"
    # Debian's patches touch the autotools inputs; keep their timestamps older
    # than the shipped configure so make never tries to rerun autoconf.
    (cd "$work/src" && find . \( -name configure -o -name Makefile.in -o -name aclocal.m4 \
        -o -name curl_config.h.in \) -exec touch {} +)
    (cd "$work/src" && ./configure --prefix="$dir/prefix" --libdir="$dir/prefix/lib" \
        "${curl_configure[@]}" CFLAGS="-O2 -g0") >"$work/configure.log" 2>&1 ||
        { tail -60 "$work/configure.log" >&2; die "libcurl configure failed"; }
    make -C "$work/src/lib" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "libcurl build failed"; }
    make -C "$work/src/lib" install >/dev/null
    make -C "$work/src/include" install >/dev/null
    make -C "$work/src" install-pkgconfigDATA >/dev/null
    [ -f "$dir/prefix/lib/libcurl.a" ] || die "libcurl did not install libcurl.a"
    # the curl program on the same library, linked fully static (libtool's -all-static)
    make -C "$work/src/src" -j "$jobs" curl LDFLAGS=-all-static >>"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "curl program build failed"; }
    install -d "$dir/prefix/bin"
    strip -o "$dir/prefix/bin/curl" "$work/src/src/curl"
    case $(file -b "$dir/prefix/bin/curl") in
    *"statically linked"*) ;;
    *) die "the curl program is not statically linked: $(file -b "$dir/prefix/bin/curl")" ;;
    esac
    grep '^  ' "$work/configure.log" | sed -n '/Protocols:/p;/SSL:/p;/Features:/p' >"$dir/features"
    touch "$dir/done"
    rm -rf "$work"
    curl_prefix=$dir/prefix
}

# ---------------------------------------------------------------------------
# syncgate itself
# ---------------------------------------------------------------------------
build_syncgate() {
    local pcpath=$curl_prefix/lib/pkgconfig:$cjson_prefix/lib/pkgconfig:$mhd_prefix/lib/pkgconfig
    local opts=(-Dstatic_link=true -Dprefer_static=true -Ddefault_library=static
        -Dtests=false -Dbuildtype=release "-Dpkg_config_path=$pcpath")
    if [ -f "$builddir/build.ninja" ]; then
        meson configure "$builddir" "${opts[@]}" >/dev/null
    else
        log "meson setup $builddir"
        meson setup "$builddir" "$repo" "${opts[@]}" >"$cache/meson-setup.log" 2>&1 ||
            { cat "$cache/meson-setup.log" >&2; die "meson setup failed"; }
    fi
    log "meson compile -C $builddir"
    meson compile -C "$builddir" -j "$jobs" syncgate:executable >&2
    strip -o "$builddir/syncgate-stripped.tmp" "$builddir/syncgate"
    mv "$builddir/syncgate-stripped.tmp" "$builddir/syncgate-stripped"
    install -m 0755 "$curl_prefix/bin/curl" "$builddir/curl"
}

check_binary() {
    local f size desc
    for f in "$builddir/syncgate" "$builddir/syncgate-stripped" "$builddir/curl"; do
        desc=$(file -b "$f")
        case $desc in
        *"statically linked"*) ;;
        *) die "$f is not statically linked: $desc" ;;
        esac
    done
    size=$(stat -c %s "$builddir/syncgate-stripped")
    [ "$size" -le $MAX_BYTES ] || die "stripped binary is $size bytes, over $MAX_BYTES"
    log "$builddir/syncgate: $(file -b "$builddir/syncgate" | cut -d, -f1-5)"
    log "stripped: $size bytes ($(stat -c %s "$builddir/syncgate") unstripped)"
}

# The image's root filesystem. Files are only added or replaced, never removed.
assemble_rootfs() {
    local dir=$1 f
    mkdir -p "$dir"
    install -d -m 0755 "$dir/usr/local/bin" "$dir/etc/ssl/certs" "$dir/etc/syncgate/profiles"
    install -d -m 1777 "$dir/tmp"
    install -m 0755 "$builddir/syncgate-stripped" "$dir/usr/local/bin/syncgate"
    install -m 0755 "$builddir/curl" "$dir/usr/local/bin/curl"
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'syncgate:x:65532:65532:syncgate:/nonexistent:/sbin/nologin' >"$dir/etc/passwd"
    printf '%s\n' 'root:x:0:' 'syncgate:x:65532:' >"$dir/etc/group"
    # A static glibc still reads nsswitch.conf: /etc/hosts first, then DNS.
    printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$dir/etc/nsswitch.conf"
    chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/nsswitch.conf"
    for f in "$repo"/profiles/*.yaml; do
        [ -e "$f" ] || continue
        install -m 0644 "$f" "$dir/etc/syncgate/profiles/"
    done
    log "root filesystem in $dir"
}

main() {
    local t0 t1
    t0=$(date +%s)
    # One builder at a time per cache (CI jobs, the test suite, a person).
    exec 9>"$cache/.lock"
    flock 9
    ensure_deb_src
    ensure_packages
    [ -f /etc/ssl/certs/ca-certificates.crt ] || die "no /etc/ssl/certs/ca-certificates.crt"
    build_cjson
    build_curl
    build_mhd
    t1=$(date +%s)
    log "dependencies ready in $((t1 - t0))s (libcurl: $curl_prefix)"
    build_syncgate
    flock -u 9
    check_binary
    [ -z "$rootfs" ] || assemble_rootfs "$rootfs"
    log "done in $(($(date +%s) - t0))s"
}

main
