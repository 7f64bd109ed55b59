#!/bin/sh
# TEST IMAGE ONLY: the part of the official postgres image's docker-entrypoint.sh that the
# recorded container relies on. As root (its CHOWN/DAC_OVERRIDE/FOWNER/SETGID/SETUID
# capabilities): read POSTGRES_PASSWORD_FILE (owned by the Odoo user: DAC_OVERRIDE),
# chown the data directory, step down to postgres (uid 999). As postgres: initdb with
# POSTGRES_INITDB_ARGS on first start, scram-sha-256 for network clients, create POSTGRES_DB.
set -eu
if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    export POSTGRES_PASSWORD
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    # shellcheck disable=SC2086
    initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$POSTGRES_DB\""
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
unset POSTGRES_PASSWORD
if [ "${1:-}" = postgres ]; then
    shift
    exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
fi
exec "$@"
