#!/usr/bin/env bash
# bench/kv_read.sh [BUILD_DIR] — KV v2 throughput against an nginx baseline,
# same run, same machine:
#
#   nginx      a small static file over TLS keep-alive (bench/nginx/, exactly as
#              bench/foundation_http.sh sets it up)
#   kv read    GET /v1/secret/data/bench/item with a NON-root token: token auth
#              (hash + store get + decrypt), a Cedar decision (policy permits
#              role bench-reader to read secret/data/bench/), store get + decrypt
#              of metadata and data, and an audit record durable in a file
#              device before the reply.
#   kv write   POST /v1/secret/data/bench-<n> (wrk lua, 64 connections): durable
#              group-committed writes, audited.
#
# Targets (docs/kv.md): kv read >= 0.5x nginx; kv write >= 10,000/s.
# wrk -t2 -c64 -dDURATION (BENCH_DURATION, default 10s) --latency.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NHID=$BUILD/nhid
DUR=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
for tool in wrk nginx openssl curl jq /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "kv_read: $tool not found; skipped"; exit 0; }
done
[[ -x $NHID ]] || { echo "kv_read: $NHID not built"; exit 1; }

W=$(mktemp -d /tmp/nhid-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# run_wrk LABEL URL [wrk args...] — sets RATE, P50, P99, NON2XX; prints a line
# (the same helper as bench/foundation_http.sh).
run_wrk() {
    local label=$1 url=$2 f
    shift 2
    f=$W/wrk.${label//[^A-Za-z0-9]/_}
    wrk -t2 -c"$CONNS" -d"$DUR" --latency "$@" "$url" >"$f" 2>&1
    RATE=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
    P50=$(awk '$1 == "50%" {print $2}' "$f")
    P99=$(awk '$1 == "99%" {print $2}' "$f")
    NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
    RATE=${RATE:-0}
    printf '%-40s %9s req/s   p50 %-9s p99 %-9s%s\n' "$label" "$RATE" "${P50:-?}" "${P99:-?}" \
        "${NON2XX:+   NON-2xx: $NON2XX}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

NPROC=$(nproc)
echo "machine: $NPROC CPUs, $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo);" \
    "nhid $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load: wrk -t2 -c$CONNS -d$DUR, TLS keep-alive, loopback (wrk shares the CPUs)"
echo

# ---- nhid dev server with a file audit device -------------------------------------
D=$W/nhid
PORT=$(free_port)
cat >"$W/nhid.hcl" <<HCL
audit "file" "bench" {
  path = "$W/audit.log"
}
HCL
"$NHID" server -dev -data "$D" -address "127.0.0.1:$PORT" -config "$W/nhid.hcl" \
    >"$W/nhid.out" 2>"$W/nhid.log" &
PIDS+=("$!")
for _ in $(seq 1 200); do
    curl -sf -o /dev/null --cacert "$D/ca.pem" "https://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null && break
    sleep 0.05
done
ROOT=$(cat "$D/dev-root-token")
URL=https://127.0.0.1:$PORT
call() { curl -s --cacert "$D/ca.pem" -H "X-Vault-Token: $ROOT" "$@"; }
call -X PUT "$URL/v1/sys/policies/cedar/bench-reader" -d '{"policy":"permit (principal in Role::\"bench-reader\", action == Action::\"read\", resource in Path::\"secret/data/bench/\");"}' >/dev/null
READER=$(call -X POST "$URL/v1/auth/token/create" -d '{"policies":["bench-reader"],"ttl":"1h"}' | jq -r .auth.client_token)
call -X POST "$URL/v1/secret/data/bench/item" -d '{"data":{"username":"app","password":"correct-horse-battery-staple","port":"5432"}}' >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/ca.pem" -H "X-Vault-Token: $READER" "$URL/v1/secret/data/bench/item")
[[ $code == 200 ]] || { echo "kv_read: reader token cannot read ($code)"; cat "$W/nhid.log"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/ca.pem" -H "X-Vault-Token: $READER" "$URL/v1/secret/data/other")
[[ $code == 403 ]] || { echo "kv_read: policy is not evaluated ($code)"; exit 1; }

# ---- nginx baseline (as bench/foundation_http.sh) ------------------------------------
NG=$W/nginx
mkdir -p "$NG/html" "$NG/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -keyout "$NG/key.pem" -out "$NG/cert.pem" 2>/dev/null
NGPORT=$(free_port)
sed -e "s|@PREFIX@|$NG|g" -e "s|@PORT@|$NGPORT|g" -e "s|@CERT@|$NG/cert.pem|g" \
    -e "s|@KEY@|$NG/key.pem|g" -e "s|@WORKERS@|${BENCH_NGINX_WORKERS:-$NPROC}|g" \
    "$SRC/bench/nginx/nginx.conf.template" >"$NG/nginx.conf"
curl -s --cacert "$D/ca.pem" "$URL/v1/sys/health" >"$NG/html/health.json"
chmod 755 "$W" "$NG" "$NG/html"
chmod 644 "$NG/html/health.json"
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" -g 'daemon off;' &
PIDS+=("$!")
for _ in $(seq 1 100); do
    curl -sfk -o /dev/null "https://127.0.0.1:$NGPORT/v1/sys/health" && break
    sleep 0.05
done
sleep 1

run_wrk "nginx static file (baseline)" "https://127.0.0.1:$NGPORT/v1/sys/health"
NGINX_RATE=$RATE
run_wrk "kv read (token, Cedar, audited)" "$URL/v1/secret/data/bench/item" -H "X-Vault-Token: $READER"
READ_RATE=$RATE READ_BAD=${NON2XX:-0}

cat >"$W/write.lua" <<EOF
counter = 0
request = function()
   counter = counter + 1
   local path = "/v1/secret/data/bench-" .. (counter % 100000) .. "-" .. math.random(1, 1000000000)
   return wrk.format("POST", path, {["Content-Type"] = "application/json", ["X-Vault-Token"] = "$ROOT"},
                     '{"data":{"password":"p-' .. counter .. '","user":"app"}}')
end
EOF
run_wrk "kv write (durable group commit, audited)" "$URL/v1/secret/data/x" -s "$W/write.lua"
WRITE_RATE=$RATE WRITE_BAD=${NON2XX:-0}
VERIFY=$("$NHID" audit verify "$W/audit.log" 2>&1 | tail -1)

echo
echo "kv read / nginx:  $(ratio "$READ_RATE" "$NGINX_RATE")x   (target >= 0.5x)   non-2xx: $READ_BAD"
echo "kv write:         $WRITE_RATE writes/s   (target >= 10000)   non-2xx: $WRITE_BAD"
echo "audit log:        $VERIFY"
