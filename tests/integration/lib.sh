# shellcheck shell=bash
#
# tests/integration/lib.sh — shared helpers for the integration tests
# (tests/integration/*.sh). Source it, then use the functions below:
#
#   source "$(dirname "$0")/lib.sh"
#   nhid_start_dev srv                 # throwaway dev server, unsealed
#   api GET sys/health                 # -> $STATUS, $BODY, $HEADERS
#   expect_eq "health is 200" "$STATUS" 200
#   ...
#   finish                             # prints "N passed, M failed"; exits 1 on failure
#
# Environment (set by ctest, see CMakeLists.txt; defaults let you run a
# script by hand from the source tree):
#   NHID_BIN         the nhid binary      (default: $NHID_BUILD_DIR/nhid)
#   NHID_SOURCE_DIR  the source tree      (default: two levels above this file)
#   NHID_BUILD_DIR   the build directory  (default: $NHID_SOURCE_DIR/build)
#   NHID_TEST_KEEP=1 keep the temporary directory (its path is printed)
#
# Everything a test creates lives under $T (one mktemp -d directory), and
# every server started with the helpers is killed on exit (trap EXIT), so
# tests can run in parallel (ctest -j) on free random loopback ports.
#
# Servers are named: `nhid_start_dev NAME` records the pid, address, CA
# and root token in the variables NAME_PID, NAME_ADDR, NAME_CACERT,
# NAME_TOKEN, NAME_DIR and exports NHID_ADDR/NHID_CACERT/NHID_TOKEN for
# the most recently started server (what `api` and the CLI use).

set -u
set -o pipefail

NHID_SOURCE_DIR=${NHID_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NHID_BUILD_DIR=${NHID_BUILD_DIR:-$NHID_SOURCE_DIR/build}
NHID_BIN=${NHID_BIN:-$NHID_BUILD_DIR/nhid}
export NHID_SOURCE_DIR NHID_BUILD_DIR NHID_BIN

if [[ ! -x $NHID_BIN ]]; then
    echo "FATAL: nhid binary not found at $NHID_BIN (set NHID_BIN)" >&2
    exit 2
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/nhid-it.XXXXXX")
PASS=0
FAIL=0
FAILED_NAMES=()
_NHID_PIDS=()

_nhid_cleanup() {
    local pid
    for pid in "${_NHID_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_NHID_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    if [[ ${NHID_TEST_KEEP:-0} == 1 ]]; then
        echo "kept $T"
    else
        chmod -R u+w "$T" 2>/dev/null
        rm -rf "$T"
    fi
}
trap _nhid_cleanup EXIT

# ---- results --------------------------------------------------------------

ok() {
    PASS=$((PASS + 1))
    echo "ok   - $1"
}

not_ok() {
    FAIL=$((FAIL + 1))
    FAILED_NAMES+=("$1")
    echo "FAIL - $1"
    shift
    local line
    for line in "$@"; do
        echo "       $line"
    done
}

# expect_eq NAME GOT WANT
expect_eq() {
    if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1" "got:  ${2:0:600}" "want: $3"; fi
}

# expect_ne NAME GOT UNWANTED
expect_ne() {
    if [[ "$2" != "$3" ]]; then ok "$1"; else not_ok "$1" "got the unwanted value: ${2:0:600}"; fi
}

# expect_contains NAME HAYSTACK NEEDLE
expect_contains() {
    if [[ "$2" == *"$3"* ]]; then ok "$1"; else not_ok "$1" "missing: $3" "in:      ${2:0:600}"; fi
}

# expect_not_contains NAME HAYSTACK NEEDLE
expect_not_contains() {
    if [[ "$2" != *"$3"* ]]; then ok "$1"; else not_ok "$1" "unexpectedly contains: $3" "in: ${2:0:600}"; fi
}

# expect_match NAME STRING ERE
expect_match() {
    if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1" "does not match /$3/:" "${2:0:600}"; fi
}

# expect_jq NAME JSON FILTER — passes if `jq -e FILTER` is true on JSON.
expect_jq() {
    if jq -e "$3" >/dev/null 2>&1 <<<"$2"; then
        ok "$1"
    else
        not_ok "$1" "jq -e '$3' is false on:" "${2:0:600}"
    fi
}

# expect_cmd NAME CMD... — passes if the command exits 0.
expect_cmd() {
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "command failed: $*" "${out:0:600}"; fi
}

# expect_fail NAME CMD... — passes if the command exits non-zero.
expect_fail() {
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then not_ok "$name" "command unexpectedly succeeded: $*" "${out:0:600}"; else ok "$name"; fi
}

# finish — print the summary line and exit with the result.
finish() {
    echo
    if ((FAIL > 0)); then
        echo "failed checks:"
        local n
        for n in "${FAILED_NAMES[@]}"; do echo "  - $n"; done
    fi
    echo "$PASS passed, $FAIL failed"
    ((FAIL == 0)) && exit 0
    exit 1
}

# ---- ports, TLS material ----------------------------------------------------

# free_port — print a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# gen_server_tls DIR — a CA (DIR/ca.pem, ca-key.pem) and a server certificate
# for 127.0.0.1/localhost signed by it (DIR/server.pem, server-key.pem).
gen_server_tls() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=nhid test CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null || return 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null || return 1
}

# ---- servers -----------------------------------------------------------------

# _wait_listening URL CACERT PID LOG [curl args...] — poll until the TLS
# listener answers any HTTP status (the server may be sealed); 10 s at most.
_wait_listening() {
    local url=$1 ca=$2 pid=$3 log=$4 i code
    shift 4
    for i in $(seq 1 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server (pid $pid) exited during start-up; log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$ca" "$@" "$url/v1/sys/seal-status" 2>/dev/null)
        [[ $code != 000 ]] && return 0
        sleep 0.05
    done
    echo "server (pid $pid) did not answer within 10 s; log:" >&2
    tail -n 20 "$log" >&2
    return 1
}

# nhid_start_dev NAME [nhid server flags...]
#   Start `nhid server -dev` with data dir $T/NAME (reused if it exists:
#   dev mode reopens and re-unseals it) on a free port. Sets NAME_PID,
#   NAME_ADDR, NAME_CACERT, NAME_TOKEN, NAME_DIR, NAME_PORT and exports
#   NHID_ADDR/NHID_CACERT/NHID_TOKEN. Keeps NAME_PORT across restarts.
#   Log: $T/NAME.log (appended).
nhid_start_dev() {
    local name=$1
    shift
    local dir="$T/$name" portvar="${name}_PORT" attempt port pid
    for attempt in 1 2 3 4 5; do
        port=${!portvar:-}
        [[ -z $port || $attempt -gt 1 ]] && port=$(free_port)
        "$NHID_BIN" server -dev -data "$dir" -address "127.0.0.1:$port" "$@" \
            >>"$T/$name.out" 2>>"$T/$name.log" &
        pid=$!
        _NHID_PIDS+=("$pid")
        # ca.pem exists once the dev TLS material is generated.
        for _ in $(seq 1 100); do [[ -s $dir/ca.pem ]] && break; sleep 0.02; done
        if _wait_listening "https://127.0.0.1:$port" "$dir/ca.pem" "$pid" "$T/$name.log"; then
            printf -v "${name}_PID" '%s' "$pid"
            printf -v "${name}_PORT" '%s' "$port"
            printf -v "${name}_ADDR" '%s' "https://127.0.0.1:$port"
            printf -v "${name}_CACERT" '%s' "$dir/ca.pem"
            printf -v "${name}_TOKEN" '%s' "$(cat "$dir/dev-root-token")"
            printf -v "${name}_DIR" '%s' "$dir"
            export NHID_ADDR="https://127.0.0.1:$port" NHID_CACERT="$dir/ca.pem"
            export NHID_TOKEN="$(cat "$dir/dev-root-token")"
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        grep -q 'already in use' "$T/$name.log" || return 1
    done
    return 1
}

# nhid_start_config NAME CONFIG_FILE CACERT [ADDR_URL [curl args...]]
#   Start `nhid server -config CONFIG_FILE` (production mode: it may start
#   sealed and uninitialised); wait until the listener answers. Sets
#   NAME_PID, NAME_ADDR, NAME_CACERT and exports NHID_ADDR/NHID_CACERT (not
#   NHID_TOKEN). ADDR_URL ("" or absent: the listener address in the file,
#   as https://HOST:PORT). The curl args are used to probe the listener,
#   e.g. --cert c.pem --key k.pem for an mTLS listener.
nhid_start_config() {
    local name=$1 cfg=$2 ca=$3 url=${4:-}
    shift $(($# < 4 ? $# : 4))
    if [[ -z $url ]]; then
        url="https://$(sed -n 's/^[[:space:]]*address[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$cfg" | head -n1)"
    fi
    "$NHID_BIN" server -config "$cfg" >>"$T/$name.out" 2>>"$T/$name.log" &
    local pid=$!
    _NHID_PIDS+=("$pid")
    _wait_listening "$url" "$ca" "$pid" "$T/$name.log" "$@" || return 1
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_ADDR" '%s' "$url"
    printf -v "${name}_CACERT" '%s' "$ca"
    export NHID_ADDR="$url" NHID_CACERT="$ca"
}

# nhid_prod_config NAME [EXTRA_HCL]
#   Write a production config $T/NAME.hcl: a TLS listener on a free port
#   with a certificate from gen_server_tls (in $T/NAME-tls; its CA is
#   $T/NAME-tls/ca.pem), SQLite storage at $T/NAME/nhid.db, and EXTRA_HCL
#   appended verbatim (limits, audit blocks). Lines in $LISTENER_EXTRA go
#   inside the listener block (e.g. tls_client_ca_file = "..."). Sets
#   NAME_CONFIG, NAME_PORT, NAME_CACERT, NAME_DB. Then:
#     nhid_start_config NAME "$NAME_CONFIG" "$NAME_CACERT"
nhid_prod_config() {
    local name=$1 extra=${2:-} port
    [[ -s $T/$name-tls/server.pem ]] || gen_server_tls "$T/$name-tls" || return 1
    mkdir -p "$T/$name"
    port=$(free_port)
    cat >"$T/$name.hcl" <<EOF
listener "tcp" {
  address       = "127.0.0.1:$port"
  tls_cert_file = "$T/$name-tls/server.pem"
  tls_key_file  = "$T/$name-tls/server-key.pem"
${LISTENER_EXTRA:-}
}
storage "sqlite" {
  path = "$T/$name/nhid.db"
}
$extra
EOF
    printf -v "${name}_CONFIG" '%s' "$T/$name.hcl"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_CACERT" '%s' "$T/$name-tls/ca.pem"
    printf -v "${name}_DB" '%s' "$T/$name/nhid.db"
}

# nhid_stop PID — SIGTERM, wait up to 5 s, then SIGKILL. Returns the
# server's exit status (137 if it had to be killed).
nhid_stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# nhid_kill9 PID — crash the server (no shutdown code runs).
nhid_kill9() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# ---- HTTP ------------------------------------------------------------------

# api METHOD PATH [JSON_BODY] [extra curl args...]
#   Request $NHID_ADDR/v1/PATH with X-Vault-Token: $NHID_TOKEN (unless
#   NHID_TOKEN is empty). Sets STATUS (000 if no HTTP response), BODY and
#   HEADERS (raw response header block). Use "" for no body.
api() {
    local method=$1 path=$2 body=${3:-}
    shift $(($# < 3 ? $# : 3))
    local args=(-s -X "$method" --max-time 15 --cacert "$NHID_CACERT"
        -D "$T/.hdr" -o "$T/.body" -w '%{http_code}')
    [[ -n ${NHID_TOKEN:-} ]] && args+=(-H "X-Vault-Token: $NHID_TOKEN")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    : >"$T/.hdr"
    : >"$T/.body"
    STATUS=$(curl "${args[@]}" "$@" "$NHID_ADDR/v1/$path" 2>/dev/null)
    STATUS=${STATUS:-000}
    BODY=$(cat "$T/.body")
    HEADERS=$(tr -d '\r' <"$T/.hdr")
}

# token_create VAR [JSON_BODY] — POST auth/token/create with $NHID_TOKEN and
# store the new client_token in VAR (empty on failure; STATUS/BODY as api).
token_create() {
    local __var=$1 __body='{}'
    [[ $# -ge 2 ]] && __body=$2
    api POST auth/token/create "$__body"
    printf -v "$__var" '%s' "$(jq -r '.auth.client_token // empty' <<<"$BODY" 2>/dev/null)"
}
