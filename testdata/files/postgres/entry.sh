#!/bin/sh
# Entrypoint of the `postgres` test image: as root, prepare $PGDATA, run initdb as
# `postgres` once, then exec the server as `postgres` on 127.0.0.1. Extra
# arguments go to the server (e.g. `-p 15432` to pick another port).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --no-sync --encoding=UTF8 --locale=C.UTF-8 >&2
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 "$@"
