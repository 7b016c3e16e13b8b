#!/usr/bin/env bash
# bench/pki_scale.sh BUILD_DIR — nhid's PKI at scale.
#
#   A. 1,000,000 revoked certificates (PKI_SCALE_REVOKED): rows bulk-loaded
#      into the store exactly as nhid writes them (pki/revoked/<serial> and
#      its expiry index), then: time to unseal and load them, time to serve
#      the CRL (a million entries), and the latency from `POST pki/revoke`
#      of a real certificate until both the CRL and OCSP show it.
#   B. 10,000,000 stored certificate records (PKI_SCALE_CERTS): rows of the
#      size and key shape issuance writes (pki/cert/<serial> ~1.3 KB,
#      identity/cred/<entity>/x509/<serial>, identity/cred-expiry/...)
#      bulk-loaded, then the signing rate (wrk, as bench/pki_sign.sh)
#      compared with the same server on an empty store.
# Bulk rows are written with python3's sqlite3 into the same table the
# server uses (kv: key TEXT PRIMARY KEY, value BLOB) while the server is
# stopped. The default is 1,000,000 records so that `make bench` finishes
# within its per-bench timeout; the issue's 10,000,000 needs
# PKI_SCALE_CERTS=10000000 BENCH_TIMEOUT=3600 and ~20 GB of disk.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
NHID=$BUILD/nhid
NREV=${PKI_SCALE_REVOKED:-1000000}
NCERT=${PKI_SCALE_CERTS:-1000000}
DUR=${PKI_BENCH_SECONDS:-10}
W=$(mktemp -d "${PKI_SCALE_DIR:-${TMPDIR:-/tmp}}/nhid-pki-scale.XXXXXX")
SPID=
BULK=
cleanup() {
    [[ -n $SPID ]] && kill "$SPID" 2>/dev/null
    # A bulk load still running (bench/run.sh's timeout fired) dies with us.
    [[ -n $BULK ]] && kill "$BULK" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
# Exit (running cleanup) on TERM/INT even while waiting for a bulk load.
trap 'exit 143' TERM INT
free_port() { python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port)
A=https://127.0.0.1:$PORT

start() { # DIR
    local t0=$(date +%s.%N)
    "$NHID" server -dev -data "$1" -address "127.0.0.1:$PORT" >>"$W/nhid.out" 2>>"$W/nhid.log" &
    SPID=$!
    for _ in $(seq 1 1200); do
        [[ -s $1/dev-root-token ]] &&
            [[ $(curl -s -o /dev/null -w '%{http_code}' --cacert "$1/ca.pem" "$A/v1/sys/health") == 200 ]] && break
        sleep 0.05
    done
    START_S=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
    TOKEN=$(cat "$1/dev-root-token")
    C=(curl -s --cacert "$1/ca.pem" -H "X-Vault-Token: $TOKEN")
}
stop() {
    kill "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
}
setup() {
    "${C[@]}" -X POST "$A/v1/pki/root/generate/internal" -d '{"key_type":"ec"}' >"$W/root.json"
    ISSUER=$(jq -r .data.issuer_id "$W/root.json")
    jq -r .data.certificate "$W/root.json" >"$W/ca.pem"
    "${C[@]}" -X POST "$A/v1/identity/machine/bench-1" -d '{"kind":"workload","owner":"bench"}' >"$W/id.json"
    ENTITY=$(jq -r .data.id "$W/id.json")
    "${C[@]}" -X POST "$A/v1/pki/roles/bench" -d '{"allowed_dns_names":["*.bench.local"]}' >/dev/null
}
mkcsrs() {
    mkdir -p "$W/csr"
    {
        echo 'local bodies = {}'
        for i in $(seq 1 64); do
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
                -out "$W/csr/$i.csr" -subj "/CN=b$i" 2>/dev/null
            printf 'bodies[%d] = [==[%s]==]\n' "$i" "$(jq -c -n --rawfile c "$W/csr/$i.csr" \
                '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/bench-1", alt_names:"a.bench.local"}')"
        done
        printf 'local n = 0\nrequest = function()\n  n = n %% #bodies + 1\n  return wrk.format("POST", nil, nil, bodies[n])\nend\n'
    } >"$W/sign.lua"
}
rate() { # best of two wrk runs
    local best=0 r
    for _ in 1 2; do
        r=$(wrk -t2 -c32 -d"${DUR}s" -s "$W/sign.lua" -H 'Content-Type: application/json' \
            -H "X-Vault-Token: $TOKEN" "$A/v1/pki/sign/bench" 2>&1 | awk '/Requests\/sec/ {print int($2)}')
        ((${r:-0} > best)) && best=${r:-0}
    done
    echo "$best"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
mkcsrs

# ---- A. revoked certificates --------------------------------------------------------
start "$W/a"
setup
"${C[@]}" -X POST "$A/v1/pki/sign/bench" -d "$(jq -c -n --rawfile c "$W/csr/1.csr" '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/bench-1"}')" >"$W/c1.json"
jq -r .data.certificate "$W/c1.json" >"$W/c1.pem"
SER=$(jq -r .data.serial_number "$W/c1.json")
stop
t0=$(date +%s.%N)
python3 - "$W/a/nhid.db" "$ISSUER" "$NREV" <<'EOF' &
import os, sqlite3, sys, time
db, issuer, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db)
now = int(time.time()); exp = now + 7 * 86400
def rows():
    for i in range(n):
        s = os.urandom(16).hex()
        yield ("pki/revoked/" + s, f"{issuer} {now} {exp} 1".encode())
        yield (f"pki/revoked-by-expiry/{exp:020d}/{s}", b"")
con.execute("BEGIN")
con.executemany("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", rows())
con.commit()
con.close()
EOF
BULK=$!
wait "$BULK" || { echo "bulk load failed"; exit 1; }
BULK=
load_s=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
start "$W/a"
unseal_s=$START_S
crl_times=()
for _ in 1 2 3; do
    crl_times+=("$("${C[@]}" -o "$W/crl.der" -w '%{time_total}' "$A/v1/pki/crl")")
done
crl_bytes=$(stat -c %s "$W/crl.der")
crl_entries=$(openssl crl -inform DER -in "$W/crl.der" -noout -text 2>/dev/null | grep -c 'Serial Number')
crl_ok=$(openssl crl -inform DER -in "$W/crl.der" -CAfile "$W/ca.pem" -noout 2>&1 | head -1)
hex=$(tr -d : <<<"$SER" | tr a-f A-F)
# Sequential and sharp: revoke, then one OCSP request and one CRL download;
# each figure is from before the revoke request to the end of that response.
openssl ocsp -issuer "$W/ca.pem" -cert "$W/c1.pem" -reqout "$W/oreq.der" -no_nonce >/dev/null 2>&1
t0=$(date +%s.%N)
"${C[@]}" -X POST "$A/v1/pki/revoke" -d "{\"serial_number\":\"$SER\"}" >/dev/null
"${C[@]}" -H 'Content-Type: application/ocsp-request' --data-binary @"$W/oreq.der" -o "$W/oresp.der" "$A/v1/pki/ocsp"
t1=$(date +%s.%N)
"${C[@]}" -o "$W/crl2.der" "$A/v1/pki/crl"
t2=$(date +%s.%N)
in_ocsp=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
in_crl=$(python3 -c "print(f'{$t2 - $t0:.3f} (revoke + OCSP + CRL download)')")
openssl ocsp -respin "$W/oresp.der" -issuer "$W/ca.pem" -cert "$W/c1.pem" -CAfile "$W/ca.pem" 2>/dev/null |
    grep -q ': revoked' || in_ocsp="NOT revoked in the first response ($in_ocsp)"
python3 -c "import sys; sys.exit(0 if bytes.fromhex('$hex') in open('$W/crl2.der','rb').read() else 1)" ||
    in_crl="NOT in the first CRL ($in_crl)"
stop

# ---- B. certificate records --------------------------------------------------------------
start "$W/b"
setup
r0=$(rate)
stop
t0=$(date +%s.%N)
python3 - "$W/b/nhid.db" "$ENTITY" "$NCERT" <<'EOF' &
import os, sqlite3, sys, time
db, entity, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db)
con.execute("PRAGMA synchronous = OFF")
now = int(time.time())
cert = os.urandom(1340)   # an encrypted certificate record's size
cred = os.urandom(230)    # an encrypted credential record's size
batch = 200000
done = 0
while done < n:
    k = min(batch, n - done)
    serials = sorted(os.urandom(16).hex() for _ in range(k))
    con.execute("BEGIN")
    con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", (("pki/cert/" + s, cert) for s in serials))
    con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                    ((f"identity/cred/{entity}/x509/{s}", cred) for s in serials))
    con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                    ((f"identity/cred-expiry/{now + 3600 + (done + i) % 86400:020d}/{entity}/x509/{s}", b"")
                     for i, s in enumerate(serials)))
    con.commit()
    done += k
con.close()
EOF
BULK=$!
wait "$BULK" || { echo "bulk load failed"; exit 1; }
BULK=
bulk_s=$(python3 -c "import time; print(f'{time.time() - $t0:.0f}')")
db_gb=$(python3 -c "import os; print(f'{os.path.getsize(\"$W/b/nhid.db\") / 2**30:.1f}')")
start "$W/b"
r1=$(rate)
stop
ratio=$(python3 -c "print(f'{100 * $r1 / $r0:.0f}%' if $r0 else 'n/a')")

cat <<EOF

### PKI at scale — $(date -u +%Y-%m-%dT%H:%MZ), nhid $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)

Machine: $(nproc) CPUs, load average after the run $(cut -d' ' -f1-3 /proc/loadavg).

| figure | value | target |
|---|---|---|
| revoked certificates loaded | $NREV (bulk load ${load_s} s) | 1,000,000 |
| start + unseal + load of the revoked set | ${unseal_s} s | |
| CRL size / entries / signature | $crl_bytes bytes / $crl_entries / $crl_ok | |
| CRL served (curl time_total, 3 runs; the first re-signs) | ${crl_times[*]} s | ≤ 1 s |
| revocation → visible in OCSP | ${in_ocsp:-not seen} s | ≤ 1 s |
| revocation → visible in the CRL | ${in_crl:-not seen} s | ≤ 1 s |
| stored certificate records | $NCERT (bulk load ${bulk_s} s, database ${db_gb} GiB) | 10,000,000 |
| signing rate, empty store | $r0/s | |
| signing rate, with the records | $r1/s ($ratio of empty) | ≥ 90% |
EOF
