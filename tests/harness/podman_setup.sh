#!/usr/bin/env bash
# Idempotent host setup so rootful podman can boot systemd test hosts on a CI-sized sandbox machine.
#
# Usage: bash tests/harness/podman_setup.sh [--install]
#   --install   apt-get install the missing packages first (needs root and Debian's mirror).
#
# What it does and why:
#   * crun (podman's default OCI runtime when installed) fails on this sandbox's hybrid cgroup v1/v2 layout;
#     runc works, so containers.conf [engine] gets runtime = "runc".
#   * podman's default ulimits (nofile 1048576, ...) exceed the sandbox's hard limits and every `podman run` fails;
#     containers.conf [containers] gets default_ulimits = [] so containers inherit podman's own limits.
#   * Keys an administrator already set are left alone (merge-safe), so re-running never fights local choices.
#   * The storage driver is checked: overlay (native or fuse-overlayfs) or vfs; if podman cannot initialise
#     storage at all and no storage.conf exists, vfs is configured because it works on any filesystem.
set -euo pipefail

CONF_DIR=${AUXIP_CONTAINERS_CONF_DIR:-/etc/containers}
CONF="$CONF_DIR/containers.conf"
STORAGE_CONF="$CONF_DIR/storage.conf"
PACKAGES=(podman runc debootstrap uidmap slirp4netns fuse-overlayfs)

log() { printf 'podman_setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install=0
for arg in "$@"; do
    case "$arg" in
        --install) install=1 ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

missing=()
for cmd in podman runc debootstrap; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if ((${#missing[@]})); then
    if ((install)); then
        log "installing ${PACKAGES[*]} (missing: ${missing[*]})"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}" >&2
    else
        die "missing ${missing[*]}: run 'apt-get install -y ${PACKAGES[*]}' (or this script with --install)"
    fi
fi

# ensure_key FILE SECTION KEY LINE: add LINE under [SECTION] unless KEY is already set in that section.
# TOML is not parsed in full: a key counts as set when a line `KEY =` appears between [SECTION] and the next
# table header, which is how podman's own files and every hand-written override look.
ensure_key() {
    local file=$1 section=$2 key=$3 line=$4
    touch "$file"
    if awk -v sec="[$section]" -v key="$key" '
        /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); insec = ($0 == sec); next }
        insec && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { found = 1 }
        END { exit found ? 0 : 1 }' "$file"; then
        log "$file: [$section] $key already set, left as is"
        return
    fi
    local tmp
    tmp=$(mktemp "$file.XXXXXX")
    awk -v sec="[$section]" -v line="$line" '
        { print }
        /^[[:space:]]*\[/ { hdr = $0; gsub(/[[:space:]]/, "", hdr); if (hdr == sec && !done) { print line; done = 1 } }
        END { if (!done) { print ""; print sec; print line } }' "$file" >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$file"
    log "$file: [$section] $line"
}

mkdir -p "$CONF_DIR"
if [[ ! -s "$CONF" ]]; then
    printf '# Written by auxip tests/harness/podman_setup.sh; keys set here are kept on re-runs.\n' >"$CONF"
fi
ensure_key "$CONF" containers default_ulimits 'default_ulimits = []'
ensure_key "$CONF" engine runtime 'runtime = "runc"'

# Storage: podman picks overlay when the kernel allows it (native overlay diff on ext4/xfs here).
if ! driver=$(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null); then
    if [[ -e "$STORAGE_CONF" ]]; then
        die "podman cannot initialise storage with the existing $STORAGE_CONF; see 'podman info'"
    fi
    log "podman storage failed to initialise; configuring the vfs driver in $STORAGE_CONF"
    printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
        >"$STORAGE_CONF"
    driver=$(podman info --format '{{.Store.GraphDriverName}}') || die "podman info still fails with vfs storage"
fi
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
[[ "$runtime" == runc ]] || die "podman uses OCI runtime '$runtime', expected runc (check $CONF [engine] runtime)"
log "ok: podman $(podman version --format '{{.Client.Version}}'), runtime $runtime, storage $driver"
