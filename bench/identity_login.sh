#!/usr/bin/env bash
# bench/identity_login.sh BUILD_DIR — AppRole login throughput over HTTPS
# with durable tokens (wrk -t2 -cCONNS, TLS keep-alive, loopback; wrk
# shares the two CPUs with the server), then a kill -9 durability check:
# every token acknowledged before the crash still works after restart.
#   BENCH_DURATION (default 10s), BENCH_CONNS (default 64)
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
echo "load: wrk -t2 -c$CONNS -d$DUR, TLS keep-alive, loopback; no audit device"
wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$W/login.lua" "$URL/v1/auth/approle/login" >"$W/wrk" 2>&1
RATE=$(awk '/Requests\/sec/ {print $2}' "$W/wrk")
P50=$(awk '$1=="50%" {print $2}' "$W/wrk")
P99=$(awk '$1=="99%" {print $2}' "$W/wrk")
NON2XX=$(awk '/Non-2xx/ {print $NF}' "$W/wrk")
printf 'approle login (durable token, no audit): %s logins/s  p50 %s  p99 %s  non-2xx %s\n' "$RATE" "$P50" "$P99" "${NON2XX:-0}"
api PUT sys/audit/file "{\"type\":\"file\",\"options\":{\"file_path\":\"$W/audit.log\"}}" >/dev/null
wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$W/login.lua" "$URL/v1/auth/approle/login" >"$W/wrk2" 2>&1
printf 'approle login (durable token, audited):  %s logins/s  p50 %s  p99 %s\n' \
    "$(awk '/Requests\/sec/ {print $2}' "$W/wrk2")" "$(awk '$1=="50%" {print $2}' "$W/wrk2")" "$(awk '$1=="99%" {print $2}' "$W/wrk2")"

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
LOST=0
while read -r tok; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/data/ca.pem" -H "X-Vault-Token: $tok" "$URL/v1/auth/token/lookup-self")
    [[ $code == 200 ]] || LOST=$((LOST + 1))
done <"$W/tokens"
echo "kill -9 during logins: $ACKED tokens acknowledged, $LOST lost after restart"
((LOST == 0))
