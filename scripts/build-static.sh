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
#        scripts/build-static.sh --deps-only
#   --builddir DIR  meson build directory (default: <repo>/build-static)
#   --rootfs DIR    also assemble the image root filesystem in DIR: the stripped
#                   binary, the curl program, CA certificates, passwd/group for
#                   uid 65532, nsswitch.conf and the profiles (what the
#                   Dockerfile ships)
#   --no-install    never call apt-get install; fail if a package is missing
#   --deps-only     only install the build packages and download the source
#                   packages into the cache, build nothing (what
#                   `scripts/deps.sh test` runs, so the tests need no network)
# Environment:
#   SYNCGATE_STATIC_CACHE  cache of the sources and the built libraries
#                          (default: /var/cache/syncgate-static as root, else
#                          ${XDG_CACHE_HOME:-~/.cache}/syncgate-static)
#   JOBS                   parallel jobs (default: nproc)
#
# Outputs: DIR/syncgate (static, with symbols), DIR/syncgate-stripped and
# DIR/curl (static, stripped).
# Idempotent: a second run reuses the cache and the meson build directory.
# Non-interactive: as root it installs missing build packages with apt-get.
# Source packages come through a private apt configuration in the cache (deb-src
# entries derived from the system's Debian entries, one-line or deb822, with
# their own lists): the system's apt configuration is read, never changed.
set -euo pipefail

readonly MAX_BYTES=$((8 * 1024 * 1024))
# Bump when the recipe below changes in a way that needs a rebuild of the deps.
readonly RECIPE=2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=$repo/build-static
rootfs=
may_install=1
deps_only=0

while [ $# -gt 0 ]; do
    case $1 in
    --builddir) builddir=$2; shift 2 ;;
    --builddir=*) builddir=${1#*=}; shift ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --rootfs=*) rootfs=${1#*=}; shift ;;
    --no-install) may_install=0; shift ;;
    --deps-only) deps_only=1; shift ;;
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

# apt-get source needs deb-src entries, and the machine may have none. The
# entries are derived from the machine's own Debian entries for this release
# (same mirror, keyring and options; one-line sources.list files and deb822
# .sources files alike) into a private apt configuration in the cache, with its
# own package lists: the system's apt sources, lists and caches are never
# touched, so nothing is left behind. apt_src runs apt-get with it.
aptdir=$cache/apt
apt_src() {
    apt-get -q -o Dir::Etc::SourceList="$aptdir/sources.list" \
        -o Dir::Etc::SourceParts="$aptdir/sources.list.d" \
        -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" "$@"
}

# Write the deb-src entries derived from the system's sources into $aptdir
# (sources.list for one-line entries, sources.list.d/deb-src.sources for deb822
# ones). Only suites CODENAME, CODENAME-updates and CODENAME-security with
# component main count: third-party repositories and backports (which would
# offer newer sources than the release's) are left out.
derive_deb_src() {
    local codename=$1 SL='' SP='' f
    eval "$(apt-config shell SL Dir::Etc::SourceList/f SP Dir::Etc::SourceParts/d)"
    # Earlier versions of this script added these to the system's sources.
    for f in "$SP"syncgate-deb-src.sources "$SP"syncgate-deb-src.list; do
        if [ -f "$f" ] && is_root; then
            rm -f "$f"
            log "removed $f (left by an earlier version of this script)"
        fi
    done
    mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache"
    {
        for f in "$SL" "$SP"*.list; do
            [ -f "$f" ] || continue
            awk -v codename="$codename" '
                $1 == "deb" {
                    i = 1 # $i: the last field before the URI
                    if ($2 ~ /^\[/) for (i = 2; $i !~ /\]$/ && i < NF; ) i++
                    suite = $(i + 2)
                    if (suite != codename && suite != codename "-updates" &&
                        suite != codename "-security" && suite != codename "/updates") next
                    if ($(i + 1) ~ /^cdrom:/) next
                    main = 0
                    for (j = i + 3; j <= NF && $j !~ /^#/; j++) if ($j == "main") main = 1
                    if (!main) next
                    $1 = "deb-src"; print
                }
            ' "$f"
        done
    } >"$aptdir/sources.list.tmp"
    {
        for f in "$SP"*.sources; do
            [ -f "$f" ] || continue
            awk -v codename="$codename" '
                function flush(   n, i, s, w, keep) {
                    if (stanza != "" && types ~ /(^|[ \t])deb([ \t]|$)/ &&
                        tolower(enabled) !~ /^[ \t]*no/ && comps ~ /(^|[ \t])main([ \t]|$)/ &&
                        uris !~ /cdrom:/) {
                        n = split(suites, w, /[ \t]+/); keep = ""
                        for (i = 1; i <= n; i++)
                            if (w[i] == codename || w[i] == codename "-updates" ||
                                w[i] == codename "-security" || w[i] == codename "/updates")
                                keep = keep " " w[i]
                        if (keep != "") {
                            if (out++) print ""
                            s = stanza; sub(/@SUITES@/, keep, s)
                            printf "Types: deb-src\n%s", s
                        }
                    }
                    stanza = ""; types = ""; suites = ""; enabled = ""; comps = ""; uris = ""
                    field = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]/ { if (field != "types" && field != "suites") stanza = stanza $0 "\n"; next }
                {
                    field = tolower(substr($0, 1, index($0, ":") - 1))
                    value = substr($0, index($0, ":") + 1)
                    if (field == "types") { types = value; next }
                    if (field == "suites") { suites = value; stanza = stanza "Suites:@SUITES@\n"; next }
                    if (field == "enabled") enabled = value
                    if (field == "components") comps = value
                    if (field == "uris") uris = value
                    stanza = stanza $0 "\n"
                }
                END { flush() }
            ' "$f"
        done
    } >"$aptdir/sources.list.d/deb-src.sources.tmp"
    [ -s "$aptdir/sources.list.tmp" ] || [ -s "$aptdir/sources.list.d/deb-src.sources.tmp" ] || {
        rm -f "$aptdir/sources.list.tmp" "$aptdir/sources.list.d/deb-src.sources.tmp"
        die "no Debian $codename entry (suite $codename, component main) in the apt sources ($SL, $SP) to derive deb-src from"
    }
    mv "$aptdir/sources.list.tmp" "$aptdir/sources.list"
    mv "$aptdir/sources.list.d/deb-src.sources.tmp" "$aptdir/sources.list.d/deb-src.sources"
}

# Private lists are refreshed when the derived entries change, when they are a
# day old, and when a download fails (a stale list names a version the mirror
# no longer has).
apt_src_updated=0
apt_src_update() {
    log "apt-get update (deb-src lists in $aptdir)"
    # One unreachable entry is not fatal: whether the sources needed are found
    # is checked by name afterwards.
    if ! apt_src update -qq >"$aptdir/update.log" 2>&1; then
        log "apt-get update reported errors (see $aptdir/update.log); going on"
    fi
    sha256sum "$aptdir/sources.list" "$aptdir/sources.list.d/deb-src.sources" >"$aptdir/lists.key"
    apt_src_updated=1
}

ensure_deb_src() {
    local codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release"
    derive_deb_src "$codename"
    if ! sha256sum --status -c "$aptdir/lists.key" 2>/dev/null ||
        [ -n "$(find "$aptdir/lists.key" -mmin +1440 2>/dev/null)" ]; then
        apt_src_update
    fi
}

# Print "<dsc file name>" of the source package apt would fetch.
source_dsc() {
    { apt_src source --print-uris "$1" 2>/dev/null || true; } |
        awk '$2 ~ /\.dsc$/ { print $2; exit }'
}

# Download source package $1 into $cache/src unless there; print its dsc name.
fetch_source() {
    local pkg=$1 dsc
    dsc=$(source_dsc "$pkg")
    if [ -z "$dsc" ] && [ $apt_src_updated = 0 ]; then
        apt_src_update
        dsc=$(source_dsc "$pkg")
    fi
    [ -n "$dsc" ] || die "apt cannot find source package $pkg (deb-src entries: $aptdir)"
    mkdir -p "$cache/src"
    if [ ! -f "$cache/src/$dsc" ]; then
        log "apt-get source $pkg ($dsc)"
        # (as root, apt warns that _apt cannot write here: harmless)
        if ! (cd "$cache/src" && apt_src source --download-only -qq "$pkg") \
            >"$cache/src/$pkg.log" 2>&1 || [ ! -f "$cache/src/$dsc" ]; then
            if [ $apt_src_updated = 0 ]; then
                apt_src_update
                fetch_source "$pkg"
                return
            fi
            cat "$cache/src/$pkg.log" >&2
            die "apt-get source $pkg did not produce $dsc"
        fi
    fi
    echo "$dsc"
}

# ---------------------------------------------------------------------------
# Static libraries from Debian's source packages, cached by source version,
# recipe and options. static_sources lists them in build order; each NAME has
# a function build_NAME SRC PREFIX WORK (configure the unpacked source in SRC,
# build, install into PREFIX; WORK is scratch space) and a cache key NAME_key
# naming the options that shape the result. Adding one is those three things.
# ---------------------------------------------------------------------------
static_sources=(cjson curl libmicrohttpd)

# shellcheck disable=SC2034 # NAME_key is read through ${!key} in build_dep
cjson_key=static
build_cjson() {
    local src=$1 prefix=$2 work=$3
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
        -DBUILD_SHARED_LIBS=OFF -DBUILD_SHARED_AND_STATIC_LIBS=OFF \
        -DENABLE_CJSON_UTILS=OFF -DENABLE_CJSON_TEST=OFF -DENABLE_TARGET_EXPORT=OFF \
        >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; die "cJSON cmake failed"; }
    cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -50 "$work/build.log" >&2; die "cJSON build failed"; }
    cmake --install "$work/build" >/dev/null
    [ -f "$prefix/lib/libcjson.a" ] || die "cJSON did not install libcjson.a"
}

# HTTP and HTTPS over OpenSSL, zlib, the threaded resolver; nothing else. The same
# build gives the static curl program the image ships.
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
# shellcheck disable=SC2034
curl_key="${curl_configure[*]}"
build_curl() {
    local src=$1 prefix=$2 work=$3
    # Debian's patches touch the autotools inputs; keep their timestamps older
    # than the shipped configure so make never tries to rerun autoconf.
    (cd "$src" && find . \( -name configure -o -name Makefile.in -o -name aclocal.m4 \
        -o -name curl_config.h.in \) -exec touch {} +)
    (cd "$src" && ./configure --prefix="$prefix" --libdir="$prefix/lib" \
        "${curl_configure[@]}" CFLAGS="-O2 -g0") >"$work/configure.log" 2>&1 ||
        { tail -60 "$work/configure.log" >&2; die "libcurl configure failed"; }
    make -C "$src/lib" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "libcurl build failed"; }
    make -C "$src/lib" install >/dev/null
    make -C "$src/include" install >/dev/null
    make -C "$src" install-pkgconfigDATA >/dev/null
    [ -f "$prefix/lib/libcurl.a" ] || die "libcurl did not install libcurl.a"
    grep '^  ' "$work/configure.log" | sed -n '/Protocols:/p;/SSL:/p;/Features:/p' \
        >"$prefix/../features"
    # the curl program on the same library, linked fully static (libtool's -all-static)
    make -C "$src/src" -j "$jobs" curl LDFLAGS=-all-static >>"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "curl program build failed"; }
    install -d "$prefix/bin"
    strip -o "$prefix/bin/curl" "$src/src/curl"
    case $(file -b "$prefix/bin/curl") in
    *"statically linked"*) ;;
    *) die "the curl program is not statically linked: $(file -b "$prefix/bin/curl")" ;;
    esac
}

# libmicrohttpd: plain HTTP (no GnuTLS), none of the authentication, upgrade
# and form-parsing parts syncgate serve does not use.
mhd_configure=(
    --disable-shared --enable-static --with-pic=no
    --enable-https=no --without-gnutls --disable-doc --disable-examples --disable-curl
    --disable-bauth --disable-dauth --disable-postprocessor --disable-httpupgrade --disable-nls
)
# shellcheck disable=SC2034
libmicrohttpd_key="${mhd_configure[*]}"
build_libmicrohttpd() {
    local src=$1 prefix=$2 work=$3
    # as for curl: never rerun autotools over the shipped configure
    (cd "$src" && find . \( -name configure -o -name Makefile.in -o -name aclocal.m4 \
        -o -name MHD_config.h.in \) -exec touch {} +)
    (cd "$src" && ./configure --prefix="$prefix" --libdir="$prefix/lib" \
        "${mhd_configure[@]}" CFLAGS="-O2 -g0") >"$work/configure.log" 2>&1 ||
        { tail -60 "$work/configure.log" >&2; die "libmicrohttpd configure failed"; }
    grep -q 'HTTPS support: *no' "$work/configure.log" ||
        die "libmicrohttpd configure did not disable HTTPS"
    make -C "$src/src/microhttpd" -j "$jobs" >"$work/build.log" 2>&1 ||
        { tail -60 "$work/build.log" >&2; die "libmicrohttpd build failed"; }
    make -C "$src/src/microhttpd" install >/dev/null
    make -C "$src/src/include" install >/dev/null
    make -C "$src" install-pkgconfigDATA >/dev/null
    [ -f "$prefix/lib/libmicrohttpd.a" ] || die "libmicrohttpd did not install its archive"
}

dep_dir() { # name dsc key -> cache directory of that build
    local key
    key=$(printf '%s\n' "$RECIPE" "$2" "$3" | sha256sum | cut -c1-12)
    echo "$cache/$1-${2%.dsc}-$key"
}

# Build static library NAME unless the cache has it; add its pkg-config
# directory to pcpath and set NAME_prefix (- as _) to its prefix.
pcpath=
curl_prefix=
build_dep() {
    local name=$1 key dsc dir work
    key=${name//-/_}_key
    dsc=$(fetch_source "$name")
    dir=$(dep_dir "$name" "$dsc" "${!key}")
    if [ ! -f "$dir/done" ]; then
        log "building $name from $dsc into $dir"
        work=$cache/work/$name
        rm -rf "$dir" "$work"
        mkdir -p "$work"
        dpkg-source --no-check -x "$cache/src/$dsc" "$work/src" >/dev/null
        "build_${name//-/_}" "$work/src" "$dir/prefix" "$work"
        touch "$dir/done"
        rm -rf "$work"
    fi
    pcpath+=${pcpath:+:}$dir/prefix/lib/pkgconfig
    printf -v "${name//-/_}_prefix" '%s' "$dir/prefix"
    log "$name: $dir/prefix"
}

# ---------------------------------------------------------------------------
# syncgate itself
# ---------------------------------------------------------------------------
build_syncgate() {
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
    local t0 name
    t0=$(date +%s)
    # One builder at a time per cache (CI jobs, the test suite, a person).
    exec 9>"$cache/.lock"
    flock 9
    ensure_packages
    ensure_deb_src
    if [ $deps_only = 1 ]; then
        for name in "${static_sources[@]}"; do
            fetch_source "$name" >/dev/null
        done
        log "build packages and sources ready in $(($(date +%s) - t0))s"
        return 0
    fi
    [ -f /etc/ssl/certs/ca-certificates.crt ] || die "no /etc/ssl/certs/ca-certificates.crt"
    for name in "${static_sources[@]}"; do
        build_dep "$name"
    done
    log "dependencies ready in $(($(date +%s) - t0))s"
    build_syncgate
    flock -u 9
    check_binary
    [ -z "$rootfs" ] || assemble_rootfs "$rootfs"
    log "done in $(($(date +%s) - t0))s"
}

main
