#!/usr/bin/env bash
# bench/foundation_http.sh [BUILD_DIR] — HTTP throughput and latency of nhid
# against an nginx baseline on the same machine, plus memory and start-up
# time. Prints every figure and records them in docs/benchmarks.md between
# the foundation_http markers (BENCH_NO_DOCS=1 to skip writing).
#
#   nginx     a ~290-byte static JSON file over TLS keep-alive (bench/nginx/)
#   health    nhid GET /v1/sys/health (dev server, no audit)
#   lookup    nhid GET /v1/auth/token/lookup-self with a token, without and then
#             with a file audit device (every reply waits for its fdatasync'd record)
#   create    nhid POST /v1/auth/token/create, durable (group commit) and audited
#
# wrk -t2 -c64 -dDURATION (BENCH_DURATION, default 10s) --latency each.
# Targets: health >= 0.8x nginx, lookup-self >= 0.5x nginx, start <= 100 ms.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NHID=$BUILD/nhid
DUR=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
for tool in wrk nginx openssl curl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "foundation_http: $tool not found; skipped"; exit 0; }
done
[[ -x $NHID ]] || { echo "foundation_http: $NHID not built"; exit 1; }

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
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# run_wrk LABEL URL [wrk args...] — sets RATE, P50, P99, NON2XX; prints a line.
run_wrk() {
    local label=$1 url=$2 f
    shift 2
    f=$W/wrk.${label//[^A-Za-z0-9]/_}
    wrk -t2 -c"$CONNS" -d"$DUR" --latency "$@" "$url" >"$f" 2>&1
    RATE=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
    P50=$(awk '$1 == "50%" {print $2}' "$f")
    P99=$(awk '$1 == "99%" {print $2}' "$f")
    NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
    ERRS=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$f")
    RATE=${RATE:-0}
    printf '%-34s %9s req/s   p50 %-9s p99 %-9s%s%s\n' "$label" "$RATE" "${P50:-?}" "${P99:-?}" \
        "${NON2XX:+   NON-2xx: $NON2XX}" "${ERRS:+   socket errors: $ERRS}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

NPROC=$(nproc)
CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
KERNEL=$(uname -r)
DATE=$(date -u +%Y-%m-%dT%H:%MZ)
REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $NPROC CPUs, $CPU, $MEM, Linux $KERNEL; nhid $REV; $DATE; load average before: $LOADAVG"
echo "load: wrk -t2 -c$CONNS -d$DUR, TLS keep-alive, loopback (wrk shares the CPUs)"
echo

# ---- nginx baseline -----------------------------------------------------------------
NG=$W/nginx
mkdir -p "$NG/html" "$NG/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -keyout "$NG/key.pem" -out "$NG/cert.pem" 2>/dev/null
NGPORT=$(free_port)
WORKERS=${BENCH_NGINX_WORKERS:-$NPROC}
sed -e "s|@PREFIX@|$NG|g" -e "s|@PORT@|$NGPORT|g" -e "s|@CERT@|$NG/cert.pem|g" \
    -e "s|@KEY@|$NG/key.pem|g" -e "s|@WORKERS@|$WORKERS|g" \
    "$SRC/bench/nginx/nginx.conf.template" >"$NG/nginx.conf"

# ---- nhid dev server --------------------------------------------------------------------
D=$W/nhid
PORT=$(free_port)
"$NHID" server -dev -data "$D" -address "127.0.0.1:$PORT" >"$W/nhid.out" 2>"$W/nhid.log" &
NPID=$!
PIDS+=("$NPID")
for _ in $(seq 1 200); do
    curl -sf -o /dev/null --cacert "$D/ca.pem" "https://127.0.0.1:$PORT/v1/sys/health" 2>/dev/null && break
    sleep 0.05
done
TOKEN=$(cat "$D/dev-root-token")
URL=https://127.0.0.1:$PORT
# Same-sized static body: nhid's health response.
curl -s --cacert "$D/ca.pem" "$URL/v1/sys/health" >"$NG/html/health.json"
# nginx workers run as an unprivileged user when started as root: let them read.
chmod 755 "$W" "$NG" "$NG/html"
chmod 644 "$NG/html/health.json"
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" -g 'daemon off;' &
PIDS+=("$!")
for _ in $(seq 1 100); do
    curl -sfk -o /dev/null "https://127.0.0.1:$NGPORT/v1/sys/health" && break
    sleep 0.05
done
curl -sfk -o /dev/null "https://127.0.0.1:$NGPORT/v1/sys/health" ||
    { echo "nginx did not start:"; cat "$NG/error.log"; exit 1; }
sleep 1
RSS_IDLE=$(rss_kb "$NPID")

run_wrk "nginx static file (baseline)" "https://127.0.0.1:$NGPORT/v1/sys/health"
NGINX_RATE=$RATE NGINX_P50=$P50 NGINX_P99=$P99
run_wrk "nhid GET sys/health" "$URL/v1/sys/health"
HEALTH_RATE=$RATE HEALTH_P50=$P50 HEALTH_P99=$P99 HEALTH_BAD=${NON2XX:-0}

run_wrk "nhid GET lookup-self (no audit)" "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $TOKEN"
LOOKUP0_RATE=$RATE LOOKUP0_P50=$P50 LOOKUP0_P99=$P99

AUDIT=$W/audit.log
curl -s --cacert "$D/ca.pem" -H "X-Vault-Token: $TOKEN" -X PUT \
    -d "{\"type\":\"file\",\"options\":{\"file_path\":\"$AUDIT\"}}" "$URL/v1/sys/audit/bench" >/dev/null
run_wrk "nhid GET lookup-self (audited)" "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $TOKEN"
LOOKUP_RATE=$RATE LOOKUP_P50=$P50 LOOKUP_P99=$P99 LOOKUP_BAD=${NON2XX:-0}
AUDIT_LINES=$(wc -l <"$AUDIT")

cat >"$W/create.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"ttl":"1h","policies":["bench"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = "$TOKEN"
EOF
run_wrk "nhid POST token/create (durable, audited)" "$URL/v1/auth/token/create" -s "$W/create.lua"
CREATE_RATE=$RATE CREATE_P50=$P50 CREATE_P99=$P99 CREATE_BAD=${NON2XX:-0}
RSS_LOAD=$(rss_kb "$NPID")
TOKENS=$(curl -s --cacert "$D/ca.pem" -H "X-Vault-Token: $TOKEN" "$URL/v1/sys/metrics" | sed -n 's/.*"tokens":\([0-9]*\).*/\1/p')
VERIFY=$("$NHID" audit verify "$AUDIT" 2>&1)

# ---- start-up time ---------------------------------------------------------------------------
# From exec to the first successful TLS health request (200), polled every
# millisecond in-process; median of 5. "restart": dev mode on an existing
# data dir (reopens SQLite, unseals, re-enables the audit device). "fresh":
# a new data dir (generates the dev CA and certificate and initialises).
kill -TERM "$NPID"
wait "$NPID" 2>/dev/null
cat >"$W/start.py" <<'PY'
import http.client, os, shutil, socket, ssl, statistics, subprocess, sys, time
nhid, data, mode = sys.argv[1], sys.argv[2], sys.argv[3]
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
times = []
for i in range(5):
    d = data if mode == "restart" else f"{data}-fresh{i}"
    p = port()
    ctx = None
    t0 = time.monotonic_ns()
    proc = subprocess.Popen([nhid, "server", "-dev", "-data", d, "-address", f"127.0.0.1:{p}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = False
    while time.monotonic_ns() - t0 < 10_000_000_000 and proc.poll() is None:
        try:
            if ctx is None:
                ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
            c = http.client.HTTPSConnection("127.0.0.1", p, timeout=1, context=ctx)
            c.request("GET", "/v1/sys/health")
            if c.getresponse().status == 200:
                ok = True
                break
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        time.sleep(0.001)
    t = (time.monotonic_ns() - t0) / 1e6
    proc.terminate(); proc.wait()
    if ok:
        times.append(t)
    if mode != "restart":
        shutil.rmtree(d, ignore_errors=True)
print("%.0f %s" % (statistics.median(times), " ".join("%.0f" % t for t in times)) if times else "n/a")
PY
read -r START_RESTART START_RESTART_ALL < <(/usr/bin/python3 "$W/start.py" "$NHID" "$D" restart)
read -r START_FRESH START_FRESH_ALL < <(/usr/bin/python3 "$W/start.py" "$NHID" "$W/fresh" fresh)

H_RATIO=$(ratio "$HEALTH_RATE" "$NGINX_RATE")
L_RATIO=$(ratio "$LOOKUP_RATE" "$NGINX_RATE")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r + 0 >= t) ? "meets" : "BELOW" }'; }
H_OK=$(verdict "$H_RATIO" 0.8)
L_OK=$(verdict "$L_RATIO" 0.5)
S_OK=$(awk -v s="${START_RESTART:-999999}" 'BEGIN { print (s + 0 <= 100) ? "meets" : "ABOVE" }')

echo
echo "health / nginx        = $H_RATIO  (target >= 0.8: $H_OK)"
echo "lookup-self / nginx   = $L_RATIO  (target >= 0.5: $L_OK)"
echo "token create          = $CREATE_RATE tokens/s durable + audited (p50 $CREATE_P50, p99 $CREATE_P99)"
echo "RSS idle / after load = $((RSS_IDLE / 1024)) MiB / $((RSS_LOAD / 1024)) MiB"
echo "start to serving      = restart ${START_RESTART} ms (runs: $START_RESTART_ALL), fresh dev ${START_FRESH} ms (runs: $START_FRESH_ALL)  (target <= 100 ms: $S_OK)"
echo "audit log             = $AUDIT_LINES lines during the lookup run+; verify: $VERIFY"
echo "live tokens           = $TOKENS"
for v in HEALTH_BAD LOOKUP_BAD CREATE_BAD; do
    [[ ${!v} != 0 ]] && echo "WARNING: $v: ${!v} non-2xx responses"
done

[[ ${BENCH_NO_DOCS:-0} == 1 ]] && exit 0
DOC=$SRC/docs/benchmarks.md
SECTION=$W/section.md
cat >"$SECTION" <<EOF
<!-- foundation_http:begin (generated by bench/foundation_http.sh; do not edit by hand) -->
### HTTP API vs nginx — $DATE, nhid $REV

Machine: $NPROC CPUs ($CPU), $MEM, Linux $KERNEL; load average before
the run: $LOADAVG (other work on the machine skews every figure). Client
and servers share the CPUs (loopback). Load: \`wrk -t2 -c$CONNS -d$DUR --latency\`, TLS
keep-alive. nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), $WORKERS workers, serving nhid's own
health response as a static file; nhid dev server, one event loop per CPU.

| workload | req/s | p50 | p99 | vs nginx | target |
|---|---:|---:|---:|---:|---|
| nginx static JSON file (baseline) | $NGINX_RATE | $NGINX_P50 | $NGINX_P99 | 1.00 | |
| nhid \`GET sys/health\` | $HEALTH_RATE | $HEALTH_P50 | $HEALTH_P99 | $H_RATIO | ≥ 0.8 ($H_OK) |
| nhid \`GET auth/token/lookup-self\`, no audit device (for comparison) | $LOOKUP0_RATE | $LOOKUP0_P50 | $LOOKUP0_P99 | $(ratio "$LOOKUP0_RATE" "$NGINX_RATE") | |
| nhid \`GET auth/token/lookup-self\`, audited to a file | $LOOKUP_RATE | $LOOKUP_P50 | $LOOKUP_P99 | $L_RATIO | ≥ 0.5 ($L_OK) |
| nhid \`POST auth/token/create\`, durable + audited | $CREATE_RATE | $CREATE_P50 | $CREATE_P99 | | |

| other | value | target |
|---|---|---|
| RSS idle (after start) | $((RSS_IDLE / 1024)) MiB ($RSS_IDLE kB) | |
| RSS after the load | $((RSS_LOAD / 1024)) MiB ($RSS_LOAD kB) | |
| start to first TLS health 200, restart (existing data dir), median of 5 | $START_RESTART ms ($START_RESTART_ALL) | ≤ 100 ms ($S_OK) |
| start to first TLS health 200, fresh dev (generates CA, initialises), median of 5 | $START_FRESH ms ($START_FRESH_ALL) | |
<!-- foundation_http:end -->
EOF
if [[ -f $DOC ]] && grep -q 'foundation_http:begin' "$DOC"; then
    /usr/bin/python3 - "$DOC" "$SECTION" <<'PY'
import re, sys
doc, sec = open(sys.argv[1]).read(), open(sys.argv[2]).read().rstrip("\n")
doc = re.sub(r"<!-- foundation_http:begin.*?<!-- foundation_http:end -->", lambda m: sec, doc, flags=re.S)
open(sys.argv[1], "w").write(doc)
PY
else
    { [[ -f $DOC ]] && echo; cat "$SECTION"; } >>"$DOC"
fi
echo "recorded in docs/benchmarks.md"
