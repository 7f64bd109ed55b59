#!/bin/bash
# odoo-hosting-backup run|check|notify-failure UNIT: managed by odoo-hosting (BKP-01, BKP-03, INC-01).
#
#   run             dump the database, back up dump + filestore with restic, apply the
#                   retention policy (forget --prune); first moves the repository to the
#                   current password if Vault rotated it (restic key add / key remove)
#   check           verify the repository (restic check, plus a share of the data)
#   notify-failure  report a failed unit to the client's incident channel (systemd OnFailure=)
#
# Secrets come from Vault at run time and never touch the disk or a command line:
# restic reads its password through RESTIC_PASSWORD_COMMAND (the Vault fetcher's
# stdout), the bucket key sits only in the environment of this process tree.
# Configuration (no secrets): @BACKUP_ENV_PATH@ (ODOO_HOSTING_BACKUP_ENV overrides, tests only).
set -Eeuo pipefail
umask 077

PROG=odoo-hosting-backup
# shellcheck source=/dev/null
. "${ODOO_HOSTING_BACKUP_ENV:-@BACKUP_ENV_PATH@}"
export RESTIC_REPOSITORY AWS_DEFAULT_REGION RESTIC_CACHE_DIR
STATE_DIR=${BACKUP_STATE_DIR:-/run/odoo-hosting}
read -ra SECRET_CMD <<<"$SECRET_FETCH"
CURRENT_PASSWORD_COMMAND="$SECRET_FETCH restic-password"
PREVIOUS_PASSWORD_COMMAND="$SECRET_FETCH restic-password-previous"
COMMAND=${1:-}
STEP=starting

log() { echo "$PROG: $*" >&2; }

secret() { "${SECRET_CMD[@]}" "$1"; }

notify() {  # notify SUBJECT (body on stdin)
    local subject=$1
    if ! "$NOTIFY_COMMAND" --kind backup-failure "$subject"; then
        log "could not reach the incident channel; the failure is only in the journal"
        logger -p user.crit -t "$PROG" "$subject" 2>/dev/null || true
        return 1
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT
    if [ "$rc" -ne 0 ] && [ "$COMMAND" != notify-failure ]; then
        log "FAILED during: $STEP (exit $rc)"
        # systemd's OnFailure= hook sees this marker and does not report twice.
        if [ -n "${INVOCATION_ID:-}" ]; then
            mkdir -p "$STATE_DIR" && : >"$STATE_DIR/backup-notified-$INVOCATION_ID" || true
        fi
        notify "odoo-hosting $BACKUP_HOST: backup $COMMAND FAILED" <<EOF || true
The backup agent on $BACKUP_HOST failed.
Command: $COMMAND
Step: $STEP
Exit status: $rc
Repository: $RESTIC_REPOSITORY
Time (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)
See: journalctl -u odoo-hosting-backup.service on the host.
EOF
    fi
    exit "$rc"
}
trap on_exit EXIT

take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/backup.lock"
    STEP="waiting for the backup lock"
    flock 9
}

load_credentials() {
    STEP="reading the bucket credentials from Vault"
    AWS_ACCESS_KEY_ID=$(secret aws-access-key-id)
    AWS_SECRET_ACCESS_KEY=$(secret aws-secret-access-key)
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export RESTIC_PASSWORD_COMMAND=$CURRENT_PASSWORD_COMMAND
}

current_key_id() {  # the id of the repository key the password command opens
    restic key list --json | python3 -c 'import json, sys; print(next(k["id"] for k in json.load(sys.stdin) if k["current"]))'
}

rotate_password() {
    STEP="rotating the repository password"
    local old_id
    old_id=$(RESTIC_PASSWORD_COMMAND=$PREVIOUS_PASSWORD_COMMAND current_key_id)
    # The new password flows through a pipe (/dev/fd/N), never a file or argv.
    RESTIC_PASSWORD_COMMAND=$PREVIOUS_PASSWORD_COMMAND restic key add --quiet \
        --new-password-file <(secret restic-password)
    restic key remove "$old_id"
    log "repository moved to the current password; previous key $old_id removed"
}

open_repository() {
    STEP="opening the repository"
    local out
    if out=$(restic cat config 2>&1 >/dev/null); then
        # A run killed mid-way (outage, timeout) leaves its lock behind; this host holds
        # the backup lock, so locks of its dead processes are stale: remove those only.
        restic unlock --quiet
        return 0
    fi
    if grep -q "wrong password" <<<"$out"; then
        if RESTIC_PASSWORD_COMMAND=$PREVIOUS_PASSWORD_COMMAND restic cat config >/dev/null 2>&1; then
            rotate_password
            return 0
        fi
        log "ERROR: wrong password: neither the current nor the previous restic password from Vault opens $RESTIC_REPOSITORY"
        return 1
    fi
    if grep -q "The specified key does not exist" <<<"$out"; then
        STEP="initialising the repository"
        restic init
        return 0
    fi
    log "ERROR: cannot open $RESTIC_REPOSITORY: $out"
    return 1
}

cmd_run() {
    take_lock
    load_credentials
    open_repository
    STEP="dumping the database"
    mkdir -p "$BACKUP_STAGING"
    local dump="$BACKUP_STAGING/database.dump"
    rm -f "$dump"
    bash -c "$BACKUP_DUMP_COMMAND" >"$dump.partial"
    mv "$dump.partial" "$dump"
    STEP="backing up to $RESTIC_REPOSITORY"
    restic backup --quiet --host "$BACKUP_HOST" --tag odoo-hosting "$dump" "$BACKUP_FILESTORE"
    rm -f "$dump"
    STEP="applying the retention policy"
    restic forget --quiet --host "$BACKUP_HOST" --tag odoo-hosting --prune \
        --keep-daily "$BACKUP_KEEP_DAILY" --keep-weekly "$BACKUP_KEEP_WEEKLY" --keep-monthly "$BACKUP_KEEP_MONTHLY"
    STEP=done
    log "backup done"
}

cmd_check() {
    take_lock
    load_credentials
    open_repository
    STEP="checking the repository"
    restic check --read-data-subset="$BACKUP_CHECK_READ_DATA_SUBSET"
    STEP=done
}

cmd_notify_failure() {
    local unit=${1:-unknown unit}
    if [ -n "${MONITOR_INVOCATION_ID:-}" ] && [ -e "$STATE_DIR/backup-notified-$MONITOR_INVOCATION_ID" ]; then
        rm -f "$STATE_DIR/backup-notified-$MONITOR_INVOCATION_ID"
        exit 0  # the script already reported its own failure
    fi
    notify "odoo-hosting $BACKUP_HOST: $unit FAILED" <<EOF
The unit $unit failed on $BACKUP_HOST (killed, timed out or could not start).
Time (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)
See: journalctl -u $unit on the host.
EOF
}

case "$COMMAND" in
    run) cmd_run ;;
    check) cmd_check ;;
    notify-failure) shift; cmd_notify_failure "$@" ;;
    *) echo "usage: $PROG run|check|notify-failure UNIT" >&2; exit 2 ;;
esac
