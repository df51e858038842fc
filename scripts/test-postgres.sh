#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL 15 cluster for Weir's tests and prints the
# environment the tests read:
#
#     eval "$(scripts/test-postgres.sh)"
#     cargo test -p weir-store -p weir-server
#
# The cluster lives in ${WEIR_TEST_PG_DIR:-/tmp/weir-test-pg}, listens on 127.0.0.1 port
# ${WEIR_TEST_PG_PORT:-55432} with trust authentication and fsync off (test data only), and
# keeps its unix socket in the data directory. Running the script again reuses a cluster
# that answers; `scripts/test-postgres.sh stop` stops it. Everything but the final export
# line goes to stderr, so `eval` sees only the export.
set -euo pipefail

PG_DIR="${WEIR_TEST_PG_DIR:-/tmp/weir-test-pg}"
PG_PORT="${WEIR_TEST_PG_PORT:-55432}"
PG_BIN="${WEIR_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/postgres.log"
URL="postgres://postgres@127.0.0.1:${PG_PORT}/postgres"

say() { echo "test-postgres: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ -x "$PG_BIN/pg_ctl" ] || PG_BIN="$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"
[ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL binaries not found (set WEIR_TEST_PG_BIN to the directory holding initdb and pg_ctl)"

# initdb and postgres refuse to run as root: run them as an unprivileged OS user.
if [ "$(id -u)" = 0 ]; then
    PG_USER="${WEIR_TEST_PG_OS_USER:-postgres}"
    if ! id "$PG_USER" >/dev/null 2>&1; then
        say "creating system user $PG_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" >&2 \
            || die "cannot create OS user $PG_USER"
    fi
    as_pg() { runuser -u "$PG_USER" -- "$@"; }
else
    PG_USER="$(id -un)"
    as_pg() { "$@"; }
fi

ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U postgres; }

if [ "${1:-}" = stop ]; then
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    exit 0
fi

if ready; then
    say "reusing the server already answering on 127.0.0.1:$PG_PORT"
else
    mkdir -p "$PG_DIR"
    chown "$PG_USER" "$PG_DIR"
    chmod 700 "$PG_DIR"
    if [ ! -s "$DATA/PG_VERSION" ]; then
        rm -rf "$DATA"
        say "initialising a new cluster in $DATA"
        as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    # After a kill -9 the old server's processes may take a moment to exit and release the
    # data directory's lock file: retry the start a few times before giving up.
    started=""
    for attempt in 1 2 3 4 5; do
        if as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o "\
            -c listen_addresses=127.0.0.1 -c port=$PG_PORT \
            -c unix_socket_directories='$DATA' \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=300 -c shared_buffers=64MB" >&2; then
            started=1
            break
        fi
        say "start attempt $attempt failed; retrying"
        sleep 2
    done
    [ -n "$started" ] || { tail -n 30 "$LOG" >&2 || true; die "pg_ctl start failed (log: $LOG)"; }
    for _ in $(seq 1 50); do ready && break; sleep 0.2; done
    ready || { tail -n 30 "$LOG" >&2 || true; die "server did not become ready (log: $LOG)"; }
    say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') running on 127.0.0.1:$PG_PORT (data: $DATA)"
fi

echo "export WEIR_TEST_POSTGRES_URL=$URL"
