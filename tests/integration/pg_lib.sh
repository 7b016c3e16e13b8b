# shellcheck shell=bash
#
# tests/integration/pg_lib.sh — a throwaway PostgreSQL cluster for the
# database engine tests (tests/integration/database_*.sh) and benches
# (bench/database_*.sh). Source it after lib.sh (or on its own), then:
#
#   pg_start                 # initdb + start on a free loopback port
#   pg_sql "SELECT 1"        # run SQL as the cluster superuser (no password: unix socket)
#   pg_login USER PASS       # exit 0 if USER/PASS can log in over TCP with SCRAM
#   pg_role_exists USER      # exit 0 if the role exists
#   pg_stop                  # also done automatically on EXIT
#
# Variables set by pg_start:
#   PG_PORT        the TCP port (127.0.0.1)
#   PG_DIR         the cluster's directory (data in $PG_DIR/data, socket in $PG_DIR)
#   PG_SUPERUSER   "postgres"
#   PG_SUPERPASS   the superuser's random password (TCP logins need it)
#   PG_URL_TMPL    a Vault-style connection_url with {{username}}/{{password}}
#
# Works as an ordinary user and as root (CI runs tests as root with no TTY):
# PostgreSQL refuses to run as root, so then the cluster is owned by and
# run as the `postgres` system user through runuser(1). TCP logins use
# scram-sha-256 (so a wrong password really fails); the unix socket in
# $PG_DIR trusts the OS user that owns the cluster, which is how the
# test checks roles without going through nhid.

PG_BINDIR=${PG_BINDIR:-}
if [[ -z $PG_BINDIR ]]; then
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] && PG_BINDIR=$d
    done
fi
PG_PORT=""
PG_DIR=""
PG_SUPERUSER=postgres
PG_SUPERPASS=""
PG_URL_TMPL=""
_PG_RUNAS=()

_pg_free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pg_start [extra postgres -c settings...] — returns non-zero if the cluster did not start.
pg_start() {
    if [[ -z $PG_BINDIR || ! -x $PG_BINDIR/initdb ]]; then
        echo "pg_lib: PostgreSQL server binaries not found (install postgresql)" >&2
        return 1
    fi
    # Outside $T: the cluster user must be able to traverse the path.
    PG_DIR=$(mktemp -d /tmp/nhid-pg.XXXXXX) || return 1
    chmod 755 "$PG_DIR"
    if [[ $(id -u) == 0 ]]; then
        chown postgres: "$PG_DIR" || return 1
        _PG_RUNAS=(runuser -u postgres --)
    fi
    PG_SUPERPASS=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
    printf '%s\n' "$PG_SUPERPASS" >"$PG_DIR/pw"
    chmod 644 "$PG_DIR/pw"
    if ! "${_PG_RUNAS[@]}" "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U "$PG_SUPERUSER" \
        --pwfile="$PG_DIR/pw" --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 </dev/null; then
        echo "pg_lib: initdb failed:" >&2
        tail -n 20 "$PG_DIR/initdb.log" >&2
        return 1
    fi
    rm -f "$PG_DIR/pw"
    local attempt
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(_pg_free_port)
        if "${_PG_RUNAS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $*" \
            start >/dev/null 2>&1 </dev/null; then
            PG_URL_TMPL="postgresql://{{username}}:{{password}}@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
            return 0
        fi
        grep -q 'already in use' "$PG_DIR/pg.log" 2>/dev/null || break
    done
    echo "pg_lib: PostgreSQL did not start:" >&2
    tail -n 20 "$PG_DIR/pg.log" >&2
    return 1
}

# pg_stop — stop the cluster (immediate) and delete it. Safe to call twice.
pg_stop() {
    [[ -n $PG_DIR && -d $PG_DIR ]] || return 0
    if [[ -f $PG_DIR/data/postmaster.pid ]]; then
        "${_PG_RUNAS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 10 stop \
            >/dev/null 2>&1 </dev/null
    fi
    rm -rf "$PG_DIR"
    PG_DIR=""
}

# pg_sql SQL — run SQL as the superuser over the unix socket; prints unaligned tuples.
pg_sql() {
    "${_PG_RUNAS[@]}" psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
        -U "$PG_SUPERUSER" -d postgres -c "$1" </dev/null
}

# pg_login USER PASS — exit 0 if USER can log in over TCP (scram-sha-256) with PASS.
pg_login() {
    PGPASSWORD=$2 PGCONNECT_TIMEOUT=5 psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U "$1" \
        -d postgres -c "SELECT 1" </dev/null >/dev/null 2>&1
}

# pg_role_exists USER — exit 0 if the role exists.
pg_role_exists() {
    local n
    n=$(pg_sql "SELECT count(*) FROM pg_roles WHERE rolname = '${1//\'/\'\'}'") || return 2
    [[ $n == 1 ]]
}

# Stop the cluster on exit, before lib.sh's own cleanup (if sourced after it).
if declare -F _nhid_cleanup >/dev/null; then
    trap 'pg_stop; _nhid_cleanup' EXIT
else
    trap 'pg_stop' EXIT
fi
