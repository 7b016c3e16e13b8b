#!/usr/bin/env bash
# bench/pki_sign.sh BUILD_DIR — CSR signing throughput (EC P-256), nhid vs cfssl.
#
#   1. the crypto ceiling of this machine: `openssl speed ecdsap256` (one core),
#      since a signing request costs one ECDSA verify (the CSR's self-signature)
#      and one ECDSA sign (the certificate): ceiling/core = 1 / (1/sign + 1/verify);
#   2. nhid: `wrk` POSTs 64 distinct CSRs in turn to /v1/pki/sign/bench over HTTPS
#      keep-alive (durable store, group commit, records + credential registry);
#   3. cfssl (Debian golang-cfssl; installed here if missing): the same CSRs to
#      `cfssl serve` /api/v1/cfssl/sign over plain HTTP (DNS SANs: that version
#      cannot write URI SANs), same connection count.
# Prints a markdown table (docs/pki.md records the figures).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NHID=$BUILD/nhid
DUR=${PKI_BENCH_SECONDS:-10}
CONNS=${PKI_BENCH_CONNS:-32}
W=$(mktemp -d "${TMPDIR:-/tmp}/nhid-pki-bench.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need cfssl; then
    echo "installing golang-cfssl (apt-get)..."
    if [[ $(id -u) == 0 ]]; then apt-get install -y golang-cfssl >/dev/null 2>&1; else sudo -n apt-get install -y golang-cfssl >/dev/null 2>&1; fi
fi
for t in wrk openssl jq curl; do need "$t" || { echo "pki_sign: $t is required (scripts/install-deps.sh all)"; exit 1; }; done
free_port() { python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

# ---- 1. ceiling -------------------------------------------------------------------
speed=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1), $NF}')
signs=$(awk '{print $1}' <<<"$speed")
verifies=$(awk '{print $2}' <<<"$speed")
ceiling=$(python3 -c "s,v=$signs,$verifies; print(int(1/(1/s+1/v)))")
ncpu=$(nproc)

# ---- CSRs ------------------------------------------------------------------------------
mkdir -p "$W/csr"
for i in $(seq 1 64); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/csr/$i.key" \
        -out "$W/csr/$i.csr" -subj "/CN=b$i.bench.local" 2>/dev/null
done
lua_bodies() { # FILE JQ_FILTER
    {
        echo 'local bodies = {}'
        for i in $(seq 1 64); do
            printf 'bodies[%d] = [==[%s]==]\n' "$i" "$(jq -c -n --rawfile c "$W/csr/$i.csr" "$2")"
        done
        cat <<'EOF'
local n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format("POST", nil, nil, bodies[n])
end
EOF
    } >"$1"
}

run_wrk() { # URL LUA [headers...] -> prints "rps p50 p99 errors"
    local url=$1 lua=$2
    shift 2
    local out
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$lua" -H 'Content-Type: application/json' "$@" "$url" 2>&1)
    echo "$out" >>"$W/wrk.log"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print int($2)}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "${rps:-0} ${p50:-?} ${p99:-?} ${non2xx:-0}"
}

# ---- 2. nhid ------------------------------------------------------------------------------
port=$(free_port)
"$NHID" server -dev -data "$W/nhid" -address "127.0.0.1:$port" >"$W/nhid.out" 2>"$W/nhid.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s $W/nhid/dev-root-token ]] && break; sleep 0.05; done
sleep 0.3
A=https://127.0.0.1:$port
TOKEN=$(cat "$W/nhid/dev-root-token")
C=(curl -s --cacert "$W/nhid/ca.pem" -H "X-Vault-Token: $TOKEN")
"${C[@]}" -X POST "$A/v1/pki/root/generate/internal" -d '{"key_type":"ec"}' >/dev/null
"${C[@]}" -X POST "$A/v1/identity/machine/bench-1" -d '{"kind":"workload","owner":"bench"}' >/dev/null
"${C[@]}" -X POST "$A/v1/pki/roles/bench" -d '{"allowed_dns_names":["*.bench.local"]}' >/dev/null
lua_bodies "$W/nhid.lua" '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/bench-1", alt_names:"a.bench.local"}'
check=$("${C[@]}" -X POST "$A/v1/pki/sign/bench" -d "$(jq -c -n --rawfile c "$W/csr/1.csr" '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/bench-1", alt_names:"a.bench.local"}')" | jq -r '.data.serial_number // .errors[0]')
echo "nhid check request: $check"
read -r n_rps n_p50 n_p99 n_err < <(run_wrk "$A/v1/pki/sign/bench" "$W/nhid.lua" -H "X-Vault-Token: $TOKEN")
certs=$("${C[@]}" "$A/v1/pki/certs?list=true" | jq '.data.keys | length')

# ---- 3. cfssl ---------------------------------------------------------------------------
cfssl_rps=0 c_p50=? c_p99=? c_err=?
if need cfssl; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=cfssl bench CA" \
        -keyout "$W/cfssl-ca-key.pem" -out "$W/cfssl-ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    cat >"$W/cfssl.json" <<'EOF'
{"signing": {"default": {"expiry": "1h", "usages": ["digital signature", "server auth", "client auth"]}}}
EOF
    cport=$(free_port)
    cfssl serve -address 127.0.0.1 -port "$cport" -ca "$W/cfssl-ca.pem" -ca-key "$W/cfssl-ca-key.pem" \
        -config "$W/cfssl.json" >"$W/cfssl.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$cport/api/v1/cfssl/scaninfo" && break; sleep 0.1; done
    lua_bodies "$W/cfssl.lua" '{certificate_request:$c, hosts:["a.bench.local"]}'
    read -r cfssl_rps c_p50 c_p99 c_err < <(run_wrk "http://127.0.0.1:$cport/api/v1/cfssl/sign" "$W/cfssl.lua")
fi

ratio=$(python3 -c "print(f'{$n_rps/$cfssl_rps:.2f}' if $cfssl_rps else 'n/a')")
frac=$(python3 -c "print(f'{100*$n_rps/($ceiling*$ncpu):.0f}%')")
cat <<EOF

### CSR signing (EC P-256) — $(date -u +%Y-%m-%dT%H:%MZ), nhid $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)

Machine: $ncpu CPUs, load average after the run $(cut -d' ' -f1-3 /proc/loadavg). wrk -t2 -c$CONNS -d${DUR}s, 64 distinct CSRs in turn; wrk, the server and the openssl speed run share the CPUs.

| | signs/s | p50 | p99 | non-2xx |
|---|---:|---:|---:|---:|
| nhid \`POST /v1/pki/sign/bench\`, HTTPS keep-alive, durable | $n_rps | $n_p50 | $n_p99 | $n_err |
| cfssl 1.2 \`/api/v1/cfssl/sign\`, plain HTTP | $cfssl_rps | $c_p50 | $c_p99 | $c_err |

| figure | value | target |
|---|---|---|
| openssl speed ecdsap256, one core | $signs signs/s, $verifies verifies/s | |
| crypto ceiling (1 verify + 1 sign per request) | $ceiling/s per core, $((ceiling * ncpu))/s on $ncpu cores | |
| nhid / ceiling | $frac | |
| nhid / cfssl | $ratio× | ≥ 4× |
| nhid rate | $n_rps/s | ≥ 15,000/s |
| certificate records listed after the run (LIST caps at 10,000) | $certs | |
EOF
