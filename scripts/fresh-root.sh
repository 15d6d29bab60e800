#!/usr/bin/env bash
# fresh-root.sh: run a command in a clean clone of this repository inside a
# fresh Debian root made with debootstrap, as root, the way a new user on a new
# machine would. A developer tool: it proves the README's two commands
# (scripts/demo.sh, scripts/test.sh) on nothing but a bare Debian system.
#
# Usage: scripts/fresh-root.sh [options] [--] [COMMAND...]
#   --format oneline|deb822  apt sources of the root: one line in
#                  /etc/apt/sources.list (what debootstrap writes; default), or
#                  /etc/apt/sources.list.d/debian.sources (deb822, what
#                  Debian's installer and images write) and no sources.list
#   --mirror URL   Debian mirror (default http://deb.debian.org/debian)
#   --security URL security archive of the deb822 sources (default
#                  http://deb.debian.org/debian-security; empty: none)
#   --ref REF      what to clone (default HEAD); only committed work is seen
#   --keep         keep the root afterwards (its path is printed)
#   --refresh      debootstrap the cached base root again
#   COMMAND        run by bash in the clone as root (default: the README's
#                  "scripts/demo.sh && scripts/test.sh")
# Environment:
#   SYNCGATE_FRESH_CACHE  the debootstrapped base root and its .deb cache
#                         (default /var/cache/syncgate-fresh-root)
#   SYNCGATE_FRESH_WORK   where each run's root is made (default /var/tmp)
#
# Each run copies the cached base (a plain `debootstrap bookworm`, made once)
# to a new directory, writes the apt sources in the chosen format, clones the
# repository into /root/syncgate, mounts /proc, /sys, /dev, /dev/pts and
# /dev/shm, and runs the command with a clean environment. The mounts and every
# process of the run live in their own mount and PID namespaces: when the
# command ends (or this script is interrupted) the processes it left behind are
# killed, everything is unmounted, and the root is deleted unless --keep.
# Exit status: the command's; 1 if it succeeded but changed the root's apt
# sources (/etc/apt/sources.list, /etc/apt/sources.list.d), which the
# project's scripts must never do.
#
# Two things differ from a bare debootstrap, both about this machine rather than
# the project: the host's /etc/resolv.conf is copied in (name resolution for
# apt and npm), and so are locally added CA certificates
# (/usr/local/share/ca-certificates, for a TLS-intercepting proxy; they join
# the root's bundle when ca-certificates is installed). A policy-rc.d keeps
# packages from starting daemons on the host's network.
set -euo pipefail

suite=bookworm
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security
format=oneline
ref=HEAD
keep=0
refresh=0
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SYNCGATE_FRESH_CACHE:-/var/cache/syncgate-fresh-root}
workdir=${SYNCGATE_FRESH_WORK:-/var/tmp}

log() { printf 'fresh-root: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Inner part: runs as PID 1 of new mount and PID namespaces (see run_inner).
# ---------------------------------------------------------------------------
if [ "${1:-}" = --inner ]; then
    root=$2
    shift 2
    mounted=()
    cleanup_inner() {
        local pid i
        # Whatever the command left running (daemons, stray test servers): in this
        # PID namespace /proc lists only the run's own processes.
        for pid in /proc/[0-9]*; do
            pid=${pid#/proc/}
            [ "$pid" = 1 ] || [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null || true
        done
        for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
            umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" ||
                log "cannot unmount ${mounted[i]}"
        done
    }
    trap cleanup_inner EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mnt() { # mount ARGS... TARGET
        mount "$@"
        mounted+=("${*: -1}")
    }
    mnt -t proc proc "$root/proc"
    mnt -t sysfs sysfs "$root/sys" 2>/dev/null || mnt --rbind /sys "$root/sys"
    mnt --bind /dev "$root/dev"
    mnt --bind /dev/pts "$root/dev/pts"
    mnt -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
    # In the background, so that a signal (the traps above) ends the wait at once.
    chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -c 'cd /root/syncgate && exec bash -c "$1"' fresh-root "$*" <&0 &
    rc=0
    wait $! || rc=$?
    exit $rc
fi

# ---------------------------------------------------------------------------
# Outer part.
# ---------------------------------------------------------------------------
while [ $# -gt 0 ]; do
    case $1 in
    --format) format=$2; shift 2 ;;
    --format=*) format=${1#*=}; shift ;;
    --mirror) mirror=$2; shift 2 ;;
    --mirror=*) mirror=${1#*=}; shift ;;
    --security) security=$2; shift 2 ;;
    --security=*) security=${1#*=}; shift ;;
    --ref) ref=$2; shift 2 ;;
    --ref=*) ref=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --refresh) refresh=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option: $1" ;;
    *) break ;;
    esac
done
case $format in oneline|deb822) ;; *) die "--format is oneline or deb822, not $format" ;; esac
command=${*:-scripts/demo.sh && scripts/test.sh}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
for tool in debootstrap unshare chroot git findmnt; do
    command -v $tool >/dev/null || die "$tool is not installed (apt-get install debootstrap util-linux git)"
done
git -C "$repo" rev-parse --verify -q "$ref^{commit}" >/dev/null || die "no commit $ref in $repo"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
    log "note: uncommitted changes in $repo are not part of the clone"

# The base root: one plain debootstrap, kept, copied for every run.
base=$cache/base-$suite
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ $refresh = 1 ] || [ ! -f "$base/.syncgate-complete" ]; then
    rm -rf --one-file-system "$base" "$base.tmp"
    mkdir -p "$cache/debs"
    log "debootstrap $suite $mirror (packages cached in $cache/debs)"
    t0=$(date +%s)
    debootstrap --cache-dir="$cache/debs" "$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
    touch "$base.tmp/.syncgate-complete"
    mv "$base.tmp" "$base"
    log "base root ready in $(($(date +%s) - t0))s"
fi

root=$(mktemp -d "$workdir/syncgate-fresh-root.XXXXXX")
cleanup() {
    local rc=$? left
    [ $rc = 0 ] || log "exit status $rc"
    # The mounts belong to the inner namespace, gone with it; never delete
    # through a mount point that is still there.
    left=$(findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r "/") == 1 || $0 == r')
    if [ -n "$left" ]; then
        log "still mounted, root kept: $left"
    elif [ $keep = 1 ]; then
        log "root kept: $root"
    else
        rm -rf --one-file-system "$root"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "copying the base root to $root"
cp -a "$base/." "$root/"
rm -f "$root/.syncgate-complete"
flock -u 9

case $format in
oneline)
    # What debootstrap itself writes.
    rm -f "$root/etc/apt/sources.list.d/debian.sources"
    printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
    ;;
deb822)
    rm -f "$root/etc/apt/sources.list"
    # As the debian:bookworm image has them: the release and its updates, and security.
    {
        printf '%s\n' 'Types: deb' "URIs: $mirror" "Suites: $suite $suite-updates" \
            'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
        [ -z "$security" ] || printf '%s\n' '' 'Types: deb' "URIs: $security" \
            "Suites: $suite-security" 'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
    } >"$root/etc/apt/sources.list.d/debian.sources"
    ;;
esac
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# What the apt sources are before the run: the project must not change them.
apt_sources() {
    (cd "$root/etc/apt" && find . -maxdepth 2 \( -path ./sources.list -o -path './sources.list.d/*' \) \
        -type f -print0 | sort -z | xargs -0r sha256sum)
}
sources_before=$(apt_sources)

commit=$(git -C "$repo" rev-parse --verify "$ref^{commit}")
git clone -q --no-hardlinks --no-checkout "$repo" "$root/root/syncgate"
git -C "$root/root/syncgate" checkout -q -B fresh-root "$commit"
log "clone of $ref ($(git -C "$repo" log -1 --format='%h %s' "$commit")) in /root/syncgate"
log "sources: $format; running: $command"

t0=$(date +%s)
# In the background so that a signal to this script reaches the run at once:
# unshare itself holds INT and TERM back, so they go to its child, the inner
# part, which cleans up (as it does when unshare dies: --kill-child). A
# background command starts with SIGINT ignored; env gives the run the default.
unshare --mount --pid --fork --mount-proc --propagation private --kill-child=TERM \
    env --default-signal=INT,QUIT "$(readlink -f "$0")" --inner "$root" "$command" <&0 &
inner=$!
stop_run() {
    local child
    for child in $(cat "/proc/$inner/task/$inner/children" 2>/dev/null); do
        kill -TERM "$child" 2>/dev/null || true
    done
}
trap stop_run INT TERM
rc=0
wait "$inner" || rc=$?
while kill -0 "$inner" 2>/dev/null; do # wait was cut short by a signal
    rc=0
    wait "$inner" || rc=$?
done
log "command exited with $rc after $(($(date +%s) - t0))s"
if [ "$(apt_sources)" != "$sources_before" ]; then
    log "error: the run changed the root's apt sources:"
    diff <(echo "$sources_before") <(apt_sources) >&2 || true
    [ $rc != 0 ] || rc=1
fi
exit $rc
