#!/usr/bin/env bash
# bench/database_cycle.sh — dynamic PostgreSQL credential issue + revoke
# cycles per second against a throwaway cluster (tests/integration/pg_lib.sh)
# and a dev server (durable SQLite store, audit device enabled).
#
#   NHID_BIN=build/nhid bench/database_cycle.sh [SECONDS] [CLIENTS (32)]
#   bench/database_cycle.sh BUILD_DIR [SECONDS] [CLIENTS]   (as bench/run.sh calls it)
#
# Each client (a keep-alive HTTPS connection) loops: GET database/creds/ro
# (CREATE ROLE + durable lease) then PUT sys/leases/revoke (DROP ROLE +
# durable delete). Prints cycles/s and latency percentiles. Target: ≥ 200/s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NHID_SOURCE_DIR=${NHID_SOURCE_DIR:-$(cd "$HERE/.." && pwd)}
source "$NHID_SOURCE_DIR/tests/integration/lib.sh"
source "$NHID_SOURCE_DIR/tests/integration/pg_lib.sh"
# bench/run.sh passes the build directory first.
if [[ -d ${1:-} ]]; then
    export NHID_BIN=${NHID_BIN:-$(cd "$1" && pwd)/nhid}
    shift
fi
SECS=${1:-10}
CLIENTS=${2:-32}

pg_start || exit 1
# The server runs with its default event loops (one per core); blocking
# database calls run on its worker pool.
nhid_start_dev bench ${NHID_BENCH_THREADS:+-threads "$NHID_BENCH_THREADS"} || exit 1
api PUT sys/audit/file "{\"type\":\"file\",\"options\":{\"file_path\":\"$T/audit.log\"}}"
[[ $STATUS == 204 ]] || { echo "audit enable failed: $BODY"; exit 1; }
Q="'"
api POST database/config/pg "{\"connection_url\":\"$PG_URL_TMPL\",\"username\":\"postgres\",\"password\":\"$PG_SUPERPASS\",\"allowed_roles\":\"*\"}"
[[ $STATUS == 204 ]] || { echo "config failed: $BODY"; exit 1; }
api POST database/roles/ro "{\"db_name\":\"pg\",\"creation_statements\":\"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD ${Q}{{password}}${Q} VALID UNTIL ${Q}{{expiration}}${Q};\"}"
[[ $STATUS == 204 ]] || { echo "role failed: $BODY"; exit 1; }

/usr/bin/python3 - "$NHID_ADDR" "$NHID_CACERT" "$NHID_TOKEN" "$SECS" "$CLIENTS" <<'EOF'
import http.client, json, ssl, sys, threading, time
addr, ca, tok, secs, clients = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
host, port = addr.split("//")[1].split(":")
ctx = ssl.create_default_context(cafile=ca)
lat, errors, lock = [], [0], threading.Lock()
stop = time.monotonic() + secs

def worker():
    c = http.client.HTTPSConnection(host, int(port), context=ctx)
    h = {"X-Vault-Token": tok}
    mine = []
    while time.monotonic() < stop:
      try:
        t0 = time.monotonic()
        c.request("GET", "/v1/database/creds/ro", headers=h)
        r = c.getresponse(); b = r.read()
        if r.status != 200:
            errors[0] += 1
            if errors[0] == 1:
                print("first error:", r.status, b[:300], file=sys.stderr)
            continue
        lid = json.loads(b)["lease_id"]
        c.request("PUT", "/v1/sys/leases/revoke", body=json.dumps({"lease_id": lid}),
                  headers=dict(h, **{"Content-Type": "application/json"}))
        r = c.getresponse(); r.read()
        if r.status != 204:
            errors[0] += 1; continue
        mine.append(time.monotonic() - t0)
      except Exception as e:  # count, report once, reconnect
        with lock:
            errors[0] += 1
            if errors[0] == 1:
                print("first error:", repr(e), file=sys.stderr)
        c = http.client.HTTPSConnection(host, int(port), context=ctx)
    with lock:
        lat.extend(mine)

t0 = time.monotonic()
ths = [threading.Thread(target=worker) for _ in range(clients)]
for t in ths: t.start()
for t in ths: t.join()
el = time.monotonic() - t0
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0
print(f"database issue+revoke cycles: {len(lat)} in {el:.1f} s with {clients} clients = "
      f"{len(lat)/el:.0f} cycles/s (errors {errors[0]}); cycle latency p50 {pct(.5):.1f} ms, "
      f"p99 {pct(.99):.1f} ms")
EOF
left=$(pg_sql "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")
echo "dynamic roles left in PostgreSQL after the run: $left"
