#!/bin/bash
# @SCRIPT_PATH@: managed by odoo-hosting (DSK-01).
#
# Unlock (and on first use format) the client's LUKS2 data volume, then
# mount it at @MOUNT_POINT@. The key comes from Vault through
# @SECRET_FETCH_PATH@ and only ever travels through a pipe: never a file,
# never a command-line argument.
#
# Safety rules: format ONLY a blank device (no signature at all); open a
# LUKS device; refuse anything else. Never destroy data.
#
# Usage: odoo-hosting-data-volume [--check | --format-only | --stop]
#   (no option)    unlock, make the filesystem if the mapping is blank, mount
#   --check        report what would be done; change nothing
#   --format-only  format the device if blank; do not open it
#   --stop         unmount and close
#
# Environment (tests only; production sets none of these):
#   ODOO_HOSTING_DATA_DEVICE        device or image file instead of the Hetzner volume
#   ODOO_HOSTING_SECRET_CMD         secret fetcher instead of @SECRET_FETCH_PATH@
#   ODOO_HOSTING_TEST_FAST_PBKDF=1  cheap argon2id cost, for file images in tests
set -euo pipefail
umask 077

readonly DEVICE_GLOB='@DEVICE_GLOB@'
readonly MAPPER_NAME='@MAPPER_NAME@'
readonly MAPPER_DEVICE="/dev/mapper/${MAPPER_NAME}"
readonly MOUNT_POINT='@MOUNT_POINT@'
readonly SUBDIRS=(@SUBDIRS@)
readonly SECRET_CMD="${ODOO_HOSTING_SECRET_CMD:-@SECRET_FETCH_PATH@}"
readonly DEVICE_WAIT_SECONDS=120

log() { echo "odoo-hosting-data-volume: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_device() {
    if [[ -n "${ODOO_HOSTING_DATA_DEVICE:-}" ]]; then
        [[ -e "$ODOO_HOSTING_DATA_DEVICE" ]] || die "ODOO_HOSTING_DATA_DEVICE=$ODOO_HOSTING_DATA_DEVICE does not exist"
        echo "$ODOO_HOSTING_DATA_DEVICE"
        return
    fi
    local waited=0 devices=()
    shopt -s nullglob
    while :; do
        devices=()
        for dev in $DEVICE_GLOB; do
            [[ "$dev" == *-part* ]] || devices+=("$dev")
        done
        (( ${#devices[@]} > 0 )) && break
        (( waited >= DEVICE_WAIT_SECONDS )) && break
        (( waited % 30 == 0 )) && log "waiting for the data volume ($DEVICE_GLOB)"
        command -v udevadm >/dev/null && udevadm settle --timeout=5 || true
        sleep 2
        waited=$((waited + 2))
    done
    shopt -u nullglob
    (( ${#devices[@]} == 1 )) || die "expected exactly one data volume matching $DEVICE_GLOB, found ${#devices[@]}: ${devices[*]:-none}"
    readlink -f "${devices[0]}"
}

# blank | luks | other:<what>
probe() {
    local dev=$1 rc=0 found
    if cryptsetup isLuks "$dev" 2>/dev/null; then
        echo luks
        return
    fi
    found=$(blkid -p -o export "$dev" 2>/dev/null) || rc=$?
    if (( rc == 2 )); then
        # blkid saw nothing; wipefs must agree (it also lists partial signatures).
        found=$(wipefs --no-act --noheadings "$dev" 2>/dev/null) || die "wipefs failed on $dev"
        if [[ -z "$found" ]]; then
            echo blank
        else
            echo "other:$(echo "$found" | tr '\n' ' ')"
        fi
    elif (( rc == 0 )); then
        echo "other:$(echo "$found" | grep -E '^(TYPE|PTTYPE)=' | tr '\n' ' ')"
    else
        die "blkid could not probe $dev (exit $rc)"
    fi
}

# The key goes from the fetcher into a shell variable and from there through a
# pipe (printf is a builtin: no argv) to cryptsetup's stdin.
fetch_key() {
    local key
    key=$("$SECRET_CMD" @SECRET_NAME@) || die "could not fetch the LUKS key from Vault"
    [[ ${#key} -ge 32 ]] || die "the LUKS key from Vault is missing or too short"
    LUKS_KEY=$key
}

format_device() {
    local dev=$1 pbkdf_cost=()
    if [[ "${ODOO_HOSTING_TEST_FAST_PBKDF:-}" == 1 ]]; then
        log "TEST MODE: cheap argon2id cost"
        pbkdf_cost=(--pbkdf-force-iterations 4 --pbkdf-memory 32 --pbkdf-parallel 1)
    fi
    log "formatting blank device $dev as LUKS2"
    printf '%s' "$LUKS_KEY" | cryptsetup luksFormat --batch-mode \
        --type luks2 --cipher aes-xts-plain64 --key-size 512 --hash sha512 \
        --pbkdf argon2id "${pbkdf_cost[@]}" --label odoo-hosting-data \
        --key-file - "$dev"
}

open_device() {
    local dev=$1
    if [[ -e "$MAPPER_DEVICE" ]]; then
        log "$MAPPER_DEVICE is already open"
        return
    fi
    printf '%s' "$LUKS_KEY" | cryptsetup open --type luks2 --key-file - "$dev" "$MAPPER_NAME"
}

make_filesystem() {
    local rc=0 fstype
    fstype=$(blkid -p -o value -s TYPE "$MAPPER_DEVICE" 2>/dev/null) || rc=$?
    if (( rc == 2 )); then
        log "making an ext4 filesystem on the new $MAPPER_DEVICE"
        mkfs.ext4 -q -L odoo-data "$MAPPER_DEVICE"
    elif [[ "$fstype" != ext4 ]]; then
        die "$MAPPER_DEVICE holds '${fstype:-unknown}', not ext4: refusing to touch it"
    fi
}

mount_volume() {
    mkdir -p "$MOUNT_POINT"
    if ! mountpoint -q "$MOUNT_POINT"; then
        # While unmounted, nothing (e.g. a container bind mount) may write client
        # data to the unencrypted root disk.
        chattr +i "$MOUNT_POINT" 2>/dev/null || true
        mount -t ext4 -o nodev,nosuid "$MAPPER_DEVICE" "$MOUNT_POINT"
    fi
    chmod 0711 "$MOUNT_POINT"
    local sub
    for sub in "${SUBDIRS[@]}"; do
        mkdir -p "$MOUNT_POINT/$sub"
        chmod 0700 "$MOUNT_POINT/$sub"
    done
}

stop_volume() {
    if mountpoint -q "$MOUNT_POINT"; then
        umount "$MOUNT_POINT"
    fi
    if [[ -e "$MAPPER_DEVICE" ]]; then
        cryptsetup close "$MAPPER_NAME"
    fi
}

main() {
    local mode=${1:-setup} dev state
    case "$mode" in
        setup|--check|--format-only) ;;
        --stop) stop_volume; return ;;
        *) die "unknown option: $mode (use --check, --format-only or --stop)" ;;
    esac
    dev=$(find_device)
    state=$(probe "$dev")
    case "$state" in
        blank) action=format ;;
        luks) action=open ;;
        other:*) die "$dev is not blank and not LUKS (${state#other:}): refusing to format it; check the volume by hand" ;;
    esac
    if [[ "$mode" == --check ]]; then
        echo "device=$dev state=$state action=$action"
        return
    fi
    fetch_key
    if [[ "$action" == format ]]; then
        format_device "$dev"
    fi
    if [[ "$mode" == --format-only ]]; then
        return
    fi
    open_device "$dev"
    unset LUKS_KEY
    make_filesystem
    mount_volume
    log "client data volume mounted at $MOUNT_POINT"
}

LUKS_KEY=
main "$@"
