#!/usr/bin/env bash
# bench/identity_login.sh BUILD_DIR — AppRole login throughput over HTTPS
# with durable tokens (wrk -t2 -cCONNS, TLS keep-alive, loopback; wrk
# shares the two CPUs with the server), then a kill -9 durability check:
# every token acknowledged before the crash still works after restart.
#   BENCH_DURATION (default 10s), BENCH_CONNS (default 64; also run at twice that)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NHID=$BUILD/nhid
DUR=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-64}
for tool in wrk curl jq /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 0; }
done
W=$(mktemp -d /tmp/nhid-login-bench.XXXXXX)
PID=
cleanup() { [[ -n $PID ]] && { kill -9 "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; rm -rf "$W"; }
trap cleanup EXIT
PORT=$(/usr/bin/python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start() {
    NHID_AUTH_FAIL_BURST=100000 "$NHID" server -dev -data "$W/data" -address "127.0.0.1:$PORT" >>"$W/out" 2>>"$W/log" &
    PID=$!
    for _ in $(seq 1 200); do
        curl -sf -o /dev/null --cacert "$W/data/ca.pem" "https://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server did not start"; tail "$W/log"; exit 1
}
start
URL=https://127.0.0.1:$PORT
TOKEN=$(cat "$W/data/dev-root-token")
api() { curl -s --cacert "$W/data/ca.pem" -H "X-Vault-Token: $TOKEN" -X "$1" "$URL/v1/$2" ${3:+-d "$3"}; }
api POST identity/machine/bench-1 '{"kind":"workload","owner":"bench"}' >/dev/null
api POST auth/approle/role/bench-1 '{"token_policies":["bench"]}' >/dev/null
RID=$(api GET auth/approle/role/bench-1/role-id | jq -r .data.role_id)
SID=$(api POST auth/approle/role/bench-1/secret-id '{}' | jq -r .data.secret_id)
cat >"$W/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"role_id":"$RID","secret_id":"$SID"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# Two client counts: with CONNS clients the rate is bound by the group-commit
# cycle (each client waits for its batch's fsync); with twice as many the
# batches double and the two CPUs saturate. The figure is the peak.
run_login() { # CONNS OUT
    wrk -t2 -c"$1" -d"$DUR" --latency -s "$W/login.lua" "$URL/v1/auth/approle/login" >"$2" 2>&1
    printf '%s logins/s  p50 %s  p99 %s  non-2xx %s' "$(awk '/Requests\/sec/ {print $2}' "$2")" \
        "$(awk '$1=="50%" {print $2}' "$2")" "$(awk '$1=="99%" {print $2}' "$2")" \
        "$(awk '/Non-2xx/ {print $NF}' "$2" | grep . || echo 0)"
}
PEAK_CONNS=$((CONNS * 2))
echo "load: wrk -t2 -c$CONNS and -c$PEAK_CONNS, -d$DUR, TLS keep-alive, loopback"
printf 'approle login (durable token, no audit), %3d clients: %s\n' "$CONNS" "$(run_login "$CONNS" "$W/wrk")"
printf 'approle login (durable token, no audit), %3d clients: %s\n' "$PEAK_CONNS" "$(run_login "$PEAK_CONNS" "$W/wrk2")"
PEAK=$(awk '/Requests\/sec/ {print $2}' "$W/wrk" "$W/wrk2" | sort -g | tail -1)
printf 'approle login peak (durable token, no audit): %s logins/s (target >= 10000)\n' "$PEAK"
api PUT sys/audit/file "{\"type\":\"file\",\"options\":{\"file_path\":\"$W/audit.log\"}}" >/dev/null
printf 'approle login (durable token, audited),  %3d clients: %s\n' "$CONNS" "$(run_login "$CONNS" "$W/wrk3")"
printf 'approle login (durable token, audited),  %3d clients: %s\n' "$PEAK_CONNS" "$(run_login "$PEAK_CONNS" "$W/wrk4")"

# Durability: logins acknowledged while the server is killed with -9 must survive.
/usr/bin/python3 - "$URL" "$W/data/ca.pem" "$RID" "$SID" "$W/tokens" <<'PY' &
import json, ssl, sys, http.client, threading
url, ca, rid, sid, out = sys.argv[1:]
host, port = url.split("//")[1].split(":")
ctx = ssl.create_default_context(cafile=ca)
toks, lock = [], threading.Lock()
def worker():
    while True:
        try:
            c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=5)
            while True:
                c.request("POST", "/v1/auth/approle/login", json.dumps({"role_id": rid, "secret_id": sid}), {"Content-Type": "application/json"})
                r = c.getresponse(); body = r.read()
                if r.status == 200:
                    with lock:
                        toks.append(json.loads(body)["auth"]["client_token"])
                        with open(out, "a") as f: f.write(toks[-1] + "\n")
        except Exception:
            return
ts = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
LOADER=$!
sleep 2
kill -9 "$PID"; wait "$PID" 2>/dev/null; PID=
wait "$LOADER" 2>/dev/null
ACKED=$(wc -l <"$W/tokens")
start
# Every acknowledged token must look itself up after the restart (one keep-alive connection).
LOST=$(/usr/bin/python3 - "$URL" "$W/data/ca.pem" "$W/tokens" <<'PY'
import ssl, sys, http.client
url, ca, path = sys.argv[1:]
host, port = url.split("//")[1].split(":")
c = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=ca), timeout=10)
lost = 0
for tok in open(path).read().split():
    c.request("GET", "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok})
    r = c.getresponse(); r.read()
    lost += r.status != 200
print(lost)
PY
)
echo "kill -9 during logins: $ACKED tokens acknowledged, $LOST lost after restart"
((LOST == 0))
