#!/bin/bash
# odoo-hosting-restore: bring a backup back. Managed by odoo-hosting (BKP-01).
#
#   odoo-hosting-restore --list
#   odoo-hosting-restore [--snapshot ID|latest] --target DIR [--load-database]
#
# Restores the snapshot (database dump + filestore) into DIR, an empty or new
# directory, and verifies every restored file against the repository. With
# --load-database it then loads the dump into the client database with
# RESTORE_DATABASE_COMMAND (pg_restore reading the dump on stdin). The
# filestore is left in DIR for the operator to move into place (with Odoo
# stopped), so a restore never overwrites live data by itself.
# Secrets come from Vault exactly as for @BACKUP_SCRIPT_PATH@.
set -Eeuo pipefail
umask 077

PROG=odoo-hosting-restore
# shellcheck source=/dev/null
. "${ODOO_HOSTING_BACKUP_ENV:-@BACKUP_ENV_PATH@}"
export RESTIC_REPOSITORY AWS_DEFAULT_REGION RESTIC_CACHE_DIR
read -ra SECRET_CMD <<<"$SECRET_FETCH"

die() { echo "$PROG: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $PROG --list | [--snapshot ID|latest] --target DIR [--load-database]" >&2; exit 2; }

snapshot=latest target="" list=false load=false
while [ $# -gt 0 ]; do
    case "$1" in
        --list) list=true ;;
        --snapshot) snapshot=${2:?}; shift ;;
        --target) target=${2:?}; shift ;;
        --load-database) load=true ;;
        *) usage ;;
    esac
    shift
done

AWS_ACCESS_KEY_ID=$("${SECRET_CMD[@]}" aws-access-key-id) || die "cannot read the bucket credentials from Vault"
AWS_SECRET_ACCESS_KEY=$("${SECRET_CMD[@]}" aws-secret-access-key) || die "cannot read the bucket credentials from Vault"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export RESTIC_PASSWORD_COMMAND="$SECRET_FETCH restic-password"
if ! restic cat config >/dev/null 2>&1; then
    # Rotated in Vault but not yet in the repository (no backup since): the previous one opens it.
    export RESTIC_PASSWORD_COMMAND="$SECRET_FETCH restic-password-previous"
    restic cat config >/dev/null || die "neither the current nor the previous password from Vault opens $RESTIC_REPOSITORY"
fi

if $list; then
    exec restic snapshots --host "$BACKUP_HOST" --tag odoo-hosting
fi
[ -n "$target" ] || usage
if [ -e "$target" ] && [ -n "$(ls -A "$target")" ]; then
    die "$target is not empty; restore into a new directory"
fi
mkdir -p "$target"
restic restore "$snapshot" --host "$BACKUP_HOST" --tag odoo-hosting --target "$target" --verify
dump="$target$BACKUP_STAGING/database.dump"
filestore="$target$BACKUP_FILESTORE"
[ -f "$dump" ] || die "the snapshot holds no database dump"
echo "$PROG: restored snapshot $snapshot into $target"
echo "  database dump: $dump"
echo "  filestore:     $filestore"
if $load; then
    bash -c "$RESTORE_DATABASE_COMMAND" <"$dump"
    echo "$PROG: database loaded from the dump"
fi
