#!/usr/bin/env bash
# foundation_crash.sh — durability under kill -9. Four concurrent clients
# create tokens (and revoke some) as fast as the server accepts them; the
# server is SIGKILLed mid-load, restarted on the same storage (dev mode
# reopens and re-unseals its data dir) and EVERY acknowledged token must
# still work, every acknowledged revocation must still hold. Three cycles;
# each restart re-checks everything acknowledged in all earlier cycles.
source "$(dirname "$0")/lib.sh"

CYCLES=${CRASH_CYCLES:-3}
CLIENTS=4

# The load generator: CLIENTS threads, one keep-alive TLS connection each.
# Writes created tokens to $dir/created.N and acknowledged revocations to
# $dir/revoked.N, one line each, flushed as soon as the 2xx arrives. A
# token whose revocation was sent but not acknowledged goes to
# $dir/revoke_unacked.N (its state after the crash may be either).
cat >"$T/load.py" <<'PY'
import http.client, json, os, ssl, sys, threading, time
port, ca, token, outdir, seconds, nclients = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
ctx = ssl.create_default_context(cafile=ca)
stop_at = time.monotonic() + seconds
errors = []

def worker(n):
    created = open(f"{outdir}/created.{n}", "a", buffering=1)
    revoked = open(f"{outdir}/revoked.{n}", "a", buffering=1)
    unacked = open(f"{outdir}/revoke_unacked.{n}", "a", buffering=1)
    conn, i = None, 0
    while time.monotonic() < stop_at:
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", int(port), timeout=5, context=ctx)
            conn.request("POST", "/v1/auth/token/create", body=json.dumps({"ttl": "1h", "meta": {"c": str(n)}}),
                         headers={"X-Vault-Token": token, "Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append(f"create: {r.status} {body[:200]!r}")
                continue
            tok = json.loads(body)["auth"]["client_token"]
            created.write(tok + "\n")
            i += 1
            if i % 5 == 0:
                unacked.write(tok + "\n")
                conn.request("POST", "/v1/auth/token/revoke-self", headers={"X-Vault-Token": tok})
                r = conn.getresponse()
                r.read()
                if r.status == 204:
                    revoked.write(tok + "\n")
        except (OSError, http.client.HTTPException, ValueError):
            conn = None
            time.sleep(0.02)

threads = [threading.Thread(target=worker, args=(n,)) for n in range(nclients)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print(f"{len(errors)} unexpected non-200 responses, first: {errors[0]}")
PY

# The checker: prints "OK live N revoked M" or the first problems.
cat >"$T/check.py" <<'PY'
import glob, http.client, ssl, sys
port, ca, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
def read(pattern):
    s = set()
    for f in glob.glob(f"{outdir}/{pattern}"):
        s |= {l.strip() for l in open(f) if l.strip()}
    return s
created, revoked, unacked = read("created.*"), read("revoked.*"), read("revoke_unacked.*")
live = created - unacked
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("127.0.0.1", int(port), timeout=10, context=ctx)
bad = []
def status(tok):
    global conn
    for attempt in range(3):
        try:
            conn.request("GET", "/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok})
            r = conn.getresponse(); r.read()
            return r.status
        except (OSError, http.client.HTTPException):
            conn = http.client.HTTPSConnection("127.0.0.1", int(port), timeout=10, context=ctx)
    return 0
for tok in sorted(live):
    st = status(tok)
    if st != 200:
        bad.append(f"acknowledged token {tok[:12]}... lookup-self -> {st} (want 200)")
for tok in sorted(revoked):
    st = status(tok)
    if st != 403:
        bad.append(f"acknowledged revocation {tok[:12]}... lookup-self -> {st} (want 403)")
if bad:
    print(f"LOST {len(bad)} of {len(live) + len(revoked)}")
    for b in bad[:10]: print("  " + b)
    sys.exit(1)
print(f"OK live {len(live)} revoked {len(revoked)}")
PY

mkdir -p "$T/acks"
nhid_start_dev srv || { echo "FATAL: server did not start"; exit 1; }
ROOT=$NHID_TOKEN
prev_total=0
for cycle in $(seq 1 "$CYCLES"); do
    echo "--- cycle $cycle: load on pid $srv_PID ($srv_ADDR)"
    /usr/bin/python3 "$T/load.py" "$srv_PORT" "$srv_CACERT" "$ROOT" "$T/acks" 4 "$CLIENTS" >"$T/load.$cycle.out" 2>&1 &
    loader=$!
    # Kill somewhere between 1.0 and 2.5 s into the load.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1.0 + (r % 150) / 100 }')"
    nhid_kill9 "$srv_PID"
    wait "$loader"
    total=$(cat "$T"/acks/created.* | wc -l)
    expect_cmd "cycle $cycle: tokens were acknowledged before the crash ($((total - prev_total)) new)" \
        test "$total" -gt "$prev_total"
    prev_total=$total
    [[ -s $T/load.$cycle.out ]] && echo "    loader: $(head -c 300 "$T/load.$cycle.out")"
    if command -v sqlite3 >/dev/null; then
        # A copy: sqlite3 would otherwise checkpoint the WAL itself.
        mkdir -p "$T/copy.$cycle"
        cp "$srv_DIR"/nhid.db* "$T/copy.$cycle/"
        ic=$(sqlite3 "$T/copy.$cycle/nhid.db" 'PRAGMA integrity_check' 2>&1)
        expect_eq "cycle $cycle: SQLite integrity_check after kill -9" "$ic" "ok"
    fi
    start=$(date +%s%N)
    if ! nhid_start_dev srv; then
        not_ok "cycle $cycle: restart on the same data dir" "$(tail -n 20 "$T/srv.log")"
        finish
    fi
    ok "cycle $cycle: restarted and unsealed in $((($(date +%s%N) - start) / 1000000)) ms"
    expect_eq "cycle $cycle: same root token after restart" "$NHID_TOKEN" "$ROOT"
    out=$(/usr/bin/python3 "$T/check.py" "$srv_PORT" "$srv_CACERT" "$T/acks" 2>&1)
    rc=$?
    if ((rc == 0)); then ok "cycle $cycle: every acknowledged write survived ($out)"; else not_ok "cycle $cycle: every acknowledged write survived" "$out"; fi
done

api GET "sys/metrics?format=json"
tokens=$(jq -r .tokens <<<"$BODY")
live=$(sort -u "$T"/acks/created.* | wc -l)
expect_cmd "metrics: live token count ($tokens) >= acknowledged tokens not revoked" \
    test "${tokens:-0}" -ge "$((live - $(cat "$T"/acks/revoke_unacked.* | wc -l)))"
token_create after '{"ttl": "1h"}'
expect_eq "the server still creates tokens after $CYCLES crashes" "$STATUS" 200

finish
