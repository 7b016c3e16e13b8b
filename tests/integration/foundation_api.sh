#!/usr/bin/env bash
# foundation_api.sh — the HTTP API surface with real clients (curl, openssl):
# response shapes, status codes and error messages, request limits, token
# authentication and the auth/token endpoints, TLS versions and timeouts.
#
# One dev server is started with small limits from a config file
# (`nhid server -dev -config limits.hcl`): 4 KiB bodies, 2 s idle and read
# timeouts.
source "$(dirname "$0")/lib.sh"

cat >"$T/limits.hcl" <<'EOF'
limits {
  max_request_body = "4KiB"
  idle_timeout     = "2s"
  read_timeout     = "2s"
}
EOF
nhid_start_dev srv -config "$T/limits.hcl" || { echo "FATAL: server did not start"; exit 1; }
ROOT=$NHID_TOKEN
echo "server: $srv_ADDR (pid $srv_PID)"

# ---- shapes of the unauthenticated endpoints -----------------------------------
NHID_TOKEN='' api GET sys/health
expect_eq "sys/health: 200 when unsealed" "$STATUS" 200
expect_jq "sys/health: Vault's shape" "$BODY" \
    '(.initialized == true) and (.sealed == false) and (.standby == false) and
     (.server_time_utc|type) == "number" and (.version|type) == "string" and
     (.cluster_name|type) == "string" and (.replication_dr_mode|type) == "string"'
expect_contains "sys/health: Content-Type is JSON" "$HEADERS" "Content-Type: application/json"
expect_contains "sys/health: Cache-Control no-store" "$HEADERS" "Cache-Control: no-store"

NHID_TOKEN='' api HEAD sys/health "" -I
expect_eq "HEAD sys/health: 200" "$STATUS" 200
# RFC 9110 §9.3.2: a response to HEAD has no content (Content-Length may be sent).
head_out=$(printf 'HEAD /v1/sys/health HTTP/1.1\r\nHost: nhid\r\nConnection: close\r\n\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:$srv_PORT" -quiet -CAfile "$NHID_CACERT" 2>/dev/null | tr -d '\r'
    echo END) # the sentinel keeps $(...) from trimming the blank line that ends the head
head_body=${head_out#*$'\n\n'}
[[ $head_out == *$'\n\n'* ]] || head_body="(no end of header section) $head_out"
expect_eq "HEAD response carries no body (RFC 9110 9.3.2)" "$head_body" "END"
expect_match "HEAD response keeps GET's Content-Length" "$head_out" 'Content-Length: [1-9][0-9]*'

NHID_TOKEN='' api GET "sys/health?activecode=299"
expect_eq "sys/health?activecode=299 overrides the status" "$STATUS" 299

NHID_TOKEN='' api GET sys/seal-status
expect_eq "sys/seal-status: 200" "$STATUS" 200
expect_jq "sys/seal-status: Vault's shape" "$BODY" \
    '.type == "shamir" and .initialized == true and .sealed == false and
     .t == 1 and .n == 1 and .progress == 0 and (.version|type) == "string" and
     .storage_type == "sqlite"'

NHID_TOKEN='' api GET sys/init
expect_jq "sys/init GET: initialized true" "$BODY" '.initialized == true'

# ---- routing errors ----------------------------------------------------------
api GET sys/no-such-endpoint
expect_eq "unknown path: 404" "$STATUS" 404
expect_jq "unknown path: errors array names the path" "$BODY" \
    '.errors|length == 1 and (.[0]|contains("sys/no-such-endpoint"))'

STATUS=$(curl -s -o "$T/b" -w '%{http_code}' --cacert "$NHID_CACERT" "$NHID_ADDR/not-v1/sys/health")
expect_eq "path outside /v1/: 404" "$STATUS" 404

api DELETE sys/health
expect_eq "wrong method: 405" "$STATUS" 405
expect_match "405 carries an Allow header" "$HEADERS" $'Allow: GET'
expect_contains "405 message names the allowed methods" "$BODY" "allowed: GET"

api GET auth/token/lookup-accessor
expect_eq "GET on a write-only route: 405" "$STATUS" 405
expect_match "405 Allow lists the write verbs" "$HEADERS" 'Allow: [^'$'\n'']*(PUT|POST)'

api BREW sys/health
expect_match "unknown method: 405 or 501" "$STATUS" '^(405|501)$'

api GET "sys/../sys/health"
expect_match "dot-segment path is rejected or normalised (no 5xx)" "$STATUS" '^(200|400|404)$'

# ---- bodies -------------------------------------------------------------------
api POST auth/token/create '{"ttl": "1h", '
expect_eq "malformed JSON: 400" "$STATUS" 400
expect_jq "malformed JSON: message names the problem and position" "$BODY" \
    '.errors[0]|(contains("malformed JSON") and contains("line"))'

api POST auth/token/create '["a"]'
expect_eq "JSON array body: 400" "$STATUS" 400
expect_contains "JSON array body: says it must be an object" "$BODY" "object"

api POST auth/token/create '{"ttl": "1h", "no_such_field": 1}'
expect_eq "unknown field: 400" "$STATUS" 400
expect_contains "unknown field: message names it" "$BODY" "no_such_field"

api POST auth/token/create '{"ttl": "soon"}'
expect_eq "bad duration: 400" "$STATUS" 400
expect_contains "bad duration: message names the field" "$BODY" "ttl"

big=$(head -c 5000 /dev/zero | tr '\0' 'a')
api POST auth/token/create "{\"display_name\": \"$big\"}"
expect_eq "body over max_request_body (4KiB): 413" "$STATUS" 413
expect_contains "413 message names the limit" "$BODY" "4096"

printf '{"display_name": "%s"}' "$big" >"$T/big.json"
api POST auth/token/create "" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"$T/big.json"
expect_eq "chunked body over the limit: 413" "$STATUS" 413

printf '{"display_name": "chunky", "ttl": "1m"}' >"$T/small.json"
api POST auth/token/create "" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"$T/small.json"
expect_eq "chunked body under the limit: 200" "$STATUS" 200

# ---- header and URL limits ------------------------------------------------------
hdrs=()
for i in $(seq 1 100); do hdrs+=(-H "X-Filler-$i: $i"); done
api GET sys/health "" "${hdrs[@]}"
expect_eq "100 header fields (limit 64): 431" "$STATUS" 431

huge=$(head -c 20000 /dev/zero | tr '\0' 'h')
api GET sys/health "" -H "X-Huge: $huge"
expect_eq "20 KB header section (limit 16 KiB): 431" "$STATUS" 431

longpath=$(head -c 5000 /dev/zero | tr '\0' 'p')
api GET "sys/$longpath"
expect_eq "5000-byte URL (limit 4 KiB): 414" "$STATUS" 414

# ---- authentication -----------------------------------------------------------
NHID_TOKEN='' api GET auth/token/lookup-self
expect_eq "missing token: 403" "$STATUS" 403
expect_contains "missing token: message says so" "$BODY" "missing client token"

NHID_TOKEN='nhs.this-is-not-a-token' api GET auth/token/lookup-self
expect_eq "invalid token: 403" "$STATUS" 403

NHID_TOKEN='' api GET auth/token/lookup-self "" -H "Authorization: Bearer $ROOT"
expect_eq "Authorization: Bearer accepted" "$STATUS" 200
expect_jq "Bearer: lookup-self returns the root token" "$BODY" '.data.policies == ["root"]'

NHID_TOKEN='' api GET auth/token/lookup-self "" -H "X-Vault-Token: $ROOT"
expect_eq "X-Vault-Token accepted" "$STATUS" 200

NHID_TOKEN='' api GET auth/token/lookup-self "" -H "Authorization: Basic $ROOT"
expect_eq "Authorization: Basic is not a token: 403" "$STATUS" 403

token_create short '{"ttl": "2s", "policies": ["p1"]}'
expect_eq "create a 2s token: 200" "$STATUS" 200
NHID_TOKEN=$short api GET auth/token/lookup-self
expect_eq "2s token works before it expires" "$STATUS" 200
token_create revoked '{"policies": ["p1"]}'
NHID_TOKEN=$revoked api POST auth/token/revoke-self
expect_eq "revoke-self: 204" "$STATUS" 204
NHID_TOKEN=$revoked api GET auth/token/lookup-self
expect_eq "revoked token: 403" "$STATUS" 403
sleep 3
NHID_TOKEN=$short api GET auth/token/lookup-self
expect_eq "expired token (ttl 2s, after 3s): 403" "$STATUS" 403

# ---- LIST ---------------------------------------------------------------------------
token_create listed '{"policies": ["p1"]}'
acc=$(jq -r .auth.accessor <<<"$BODY")
api LIST auth/token/accessors
expect_eq "LIST verb: 200" "$STATUS" 200
if jq -e --arg a "$acc" '.data.keys|index($a) != null' >/dev/null <<<"$BODY"; then
    ok "LIST keys contain the accessor"
else
    not_ok "LIST keys contain the accessor" "$acc not in ${BODY:0:300}"
fi
api GET "auth/token/accessors?list=true"
expect_eq "GET ?list=true: 200" "$STATUS" 200
if jq -e --arg a "$acc" '.data.keys|index($a) != null' >/dev/null <<<"$BODY"; then
    ok "?list=true keys contain the accessor"
else
    not_ok "?list=true keys contain the accessor" "$acc not in ${BODY:0:300}"
fi
api GET "sys/health?list=true"
expect_eq "?list=true turns GET into LIST (405 on sys/health)" "$STATUS" 405

# ---- token create parameters -----------------------------------------------------
api POST auth/token/create '{"policies": ["web", "db"], "ttl": "1h", "explicit_max_ttl": "2h",
  "num_uses": 5, "renewable": false, "no_parent": true, "display_name": "svc",
  "meta": {"team": "infra", "env": "test"}}'
expect_eq "create with every parameter: 200" "$STATUS" 200
expect_jq "create: auth block" "$BODY" \
    '.auth.policies == ["web","db"] and .auth.renewable == false and .auth.orphan == true and
     .auth.num_uses == 5 and .auth.metadata == {"team":"infra","env":"test"} and
     (.auth.lease_duration >= 3590 and .auth.lease_duration <= 3600) and
     (.auth.client_token|startswith("nhs.")) and (.auth.accessor|length) > 0 and
     .auth.token_type == "service"'
full=$(jq -r .auth.client_token <<<"$BODY")
full_acc=$(jq -r .auth.accessor <<<"$BODY")
api POST auth/token/lookup "{\"token\": \"$full\"}"
expect_eq "lookup: 200" "$STATUS" 200
expect_jq "lookup: every parameter stored" "$BODY" \
    '.data.policies == ["web","db"] and .data.explicit_max_ttl == 7200 and
     .data.num_uses == 5 and .data.renewable == false and .data.orphan == true and
     .data.meta == {"team":"infra","env":"test"} and .data.creation_ttl == 3600 and
     (.data.ttl >= 3590 and .data.ttl <= 3600) and (.data.display_name|contains("svc"))'
expect_jq "lookup does not consume a use of the looked-up token" "$BODY" '.data.num_uses == 5'

api POST auth/token/create '{"ttl": "10h", "explicit_max_ttl": "1h"}'
expect_jq "ttl is capped by explicit_max_ttl" "$BODY" '.auth.lease_duration <= 3600'

api POST auth/token/create '{"num_uses": -1}'
expect_eq "negative num_uses: 400" "$STATUS" 400

api POST auth/token/lookup-accessor "{\"accessor\": \"$full_acc\"}"
expect_eq "lookup-accessor: 200" "$STATUS" 200
expect_jq "lookup-accessor: same token, no id" "$BODY" \
    '.data.policies == ["web","db"] and .data.id == "" and .data.accessor == "'"$full_acc"'"'
expect_not_contains "lookup-accessor does not reveal the token" "$BODY" "$full"

api POST auth/token/lookup-accessor '{"accessor": "0000000000000000"}'
expect_eq "lookup-accessor of an unknown accessor: 400" "$STATUS" 400

api POST auth/token/revoke-accessor "{\"accessor\": \"$full_acc\"}"
expect_eq "revoke-accessor: 204" "$STATUS" 204
NHID_TOKEN=$full api GET auth/token/lookup-self
expect_eq "token revoked by accessor: 403" "$STATUS" 403
api POST auth/token/lookup-accessor "{\"accessor\": \"$full_acc\"}"
expect_eq "revoked accessor no longer looks up: 400" "$STATUS" 400

# ---- num_uses ---------------------------------------------------------------------------
token_create uses2 '{"num_uses": 2}'
NHID_TOKEN=$uses2 api GET auth/token/lookup-self
expect_eq "num_uses=2: first use 200" "$STATUS" 200
expect_jq "num_uses=2: lookup-self reports 1 use left, counting this request (as Vault)" "$BODY" '.data.num_uses == 1'
NHID_TOKEN=$uses2 api GET auth/token/lookup-self
expect_eq "num_uses=2: second use 200" "$STATUS" 200
NHID_TOKEN=$uses2 api GET auth/token/lookup-self
expect_eq "num_uses=2: third use 403 (exhausted)" "$STATUS" 403
api POST auth/token/lookup "{\"token\": \"$uses2\"}"
expect_eq "exhausted token is gone (lookup 403)" "$STATUS" 403

# ---- revocation tree ----------------------------------------------------------------------
token_create parent '{"policies": ["root"], "ttl": "1h"}'
NHID_TOKEN=$parent token_create child '{"policies": ["root"], "ttl": "1h"}'
expect_eq "parent creates a child: 200" "$STATUS" 200
NHID_TOKEN=$child token_create grandchild '{"ttl": "1h"}'
expect_eq "child creates a grandchild: 200" "$STATUS" 200
NHID_TOKEN=$parent token_create orphan '{"ttl": "1h", "no_parent": true}'
expect_eq "parent (root policy) creates an orphan: 200" "$STATUS" 200
NHID_TOKEN=$grandchild api GET auth/token/lookup-self
expect_jq "grandchild is not an orphan" "$BODY" '.data.orphan == false'
api POST auth/token/revoke "{\"token\": \"$parent\"}"
expect_eq "revoke parent: 204" "$STATUS" 204
for t in parent child grandchild; do
    NHID_TOKEN=${!t} api GET auth/token/lookup-self
    expect_eq "after revoking the parent, $t is revoked (403)" "$STATUS" 403
done
NHID_TOKEN=$orphan api GET auth/token/lookup-self
expect_eq "an orphan created by the parent survives (200)" "$STATUS" 200

api POST auth/token/create-orphan '{"ttl": "1h"}'
expect_jq "create-orphan: orphan true" "$BODY" '.auth.orphan == true'

# ---- renewal ------------------------------------------------------------------------------
token_create renew '{"ttl": "60s"}'
NHID_TOKEN=$renew api POST auth/token/renew-self '{"increment": "1h"}'
expect_eq "renew-self: 200" "$STATUS" 200
expect_jq "renew-self: lease extended to ~1h" "$BODY" '.auth.lease_duration >= 3590 and .auth.lease_duration <= 3600'
NHID_TOKEN=$renew api GET auth/token/lookup-self
expect_jq "renew-self: lookup ttl is ~1h" "$BODY" '.data.ttl >= 3590'

token_create capped '{"ttl": "60s", "explicit_max_ttl": "120s"}'
NHID_TOKEN=$capped api POST auth/token/renew-self '{"increment": "1h"}'
expect_jq "renew-self beyond explicit_max_ttl is capped" "$BODY" '.auth.lease_duration <= 120'

token_create fixed '{"ttl": "60s", "renewable": false}'
NHID_TOKEN=$fixed api POST auth/token/renew-self '{"increment": "1h"}'
expect_eq "non-renewable token refuses renew-self: 400" "$STATUS" 400
expect_contains "non-renewable: message says so" "$BODY" "not renewable"

api POST auth/token/renew "{\"token\": \"$renew\", \"increment\": \"2h\"}"
expect_eq "renew (by token): 200" "$STATUS" 200
expect_jq "renew: lease ~2h" "$BODY" '.auth.lease_duration >= 7190'

# ---- TLS versions ------------------------------------------------------------------------
hostport="127.0.0.1:$srv_PORT"
tls_failures() {
    api GET "sys/metrics?format=prometheus"
    sed -n 's/^nhid_tls_handshake_failures_total \([0-9]*\)$/\1/p' <<<"$BODY"
}
before=$(tls_failures)
# SECLEVEL=0 lets the client really offer TLS 1.1, so the refusal is the server's.
out=$(openssl s_client -connect "$hostport" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1)
rc=$?
if ((rc != 0)) && grep -q 'Cipher is (NONE)' <<<"$out"; then
    ok "TLS 1.1 handshake refused"
else
    not_ok "TLS 1.1 handshake refused" "openssl rc=$rc" "${out:0:400}"
fi
after=$(tls_failures)
expect_cmd "TLS 1.1 attempt counted in nhid_tls_handshake_failures_total ($before -> $after)" \
    test "${after:-0}" -gt "${before:-0}"

# A real request over each version (waiting for the reply avoids racing s_client's exit).
for v in 1.2 1.3; do
    out=$(printf 'GET /v1/sys/health HTTP/1.1\r\nHost: nhid\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -brief -ign_eof -connect "$hostport" "-tls1_${v#1.}" -CAfile "$NHID_CACERT" 2>&1)
    expect_match "TLS $v handshake succeeds, verifies and serves a request" "$out" \
        "Protocol version: TLSv$v.*Verification: OK.*HTTP/1.1 200"
done
out=$(openssl s_client -connect "$hostport" -tls1_2 -cipher 'AES128-SHA' </dev/null 2>&1)
expect_fail "TLS 1.2 with a non-forward-secret CBC suite is refused" grep -q 'Cipher is AES128-SHA' <<<"$out"

# ---- timeouts ------------------------------------------------------------------------------
# timed_client NAME PAYLOAD — open a TLS connection, send PAYLOAD, keep the
# connection open; print the milliseconds until the server closed it (or
# "timeout" after 8 s). The server's output is left in $T/NAME.out.
timed_client() {
    local name=$1 payload=$2 spid start end i
    rm -f "$T/$name.fifo"
    mkfifo "$T/$name.fifo"
    openssl s_client -connect "$hostport" -quiet -CAfile "$NHID_CACERT" <"$T/$name.fifo" >"$T/$name.out" 2>&1 &
    spid=$!
    exec 7>"$T/$name.fifo"
    start=$(date +%s%N)
    printf '%b' "$payload" >&7
    for i in $(seq 1 80); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    end=$(date +%s%N)
    if kill -0 "$spid" 2>/dev/null; then
        kill "$spid" 2>/dev/null
        echo timeout
    else
        echo $(((end - start) / 1000000))
    fi
    exec 7>&-
    wait "$spid" 2>/dev/null
}

ms=$(timed_client idle 'GET /v1/sys/health HTTP/1.1\r\nHost: nhid\r\n\r\n')
expect_contains "idle keep-alive connection: the request was served" "$(cat "$T/idle.out")" "HTTP/1.1 200 OK"
if [[ $ms != timeout ]] && ((ms >= 1500 && ms < 5000)); then
    ok "idle keep-alive connection closed after idle_timeout=2s (${ms} ms)"
else
    not_ok "idle keep-alive connection closed after idle_timeout=2s" "closed after: $ms ms"
fi

ms=$(timed_client slow 'GET /v1/sys/health HTTP/1.1\r\nHost: nhid\r\n')
if [[ $ms != timeout ]] && ((ms >= 1500 && ms < 5000)); then
    ok "slow client (incomplete head) cut off after read_timeout=2s (${ms} ms)"
else
    not_ok "slow client (incomplete head) cut off after read_timeout=2s" "closed after: $ms ms"
fi
expect_contains "slow client gets 408" "$(cat "$T/slow.out")" "408"

ms=$(timed_client slowbody 'POST /v1/auth/token/lookup HTTP/1.1\r\nHost: nhid\r\nContent-Length: 100\r\n\r\n{"tok')
if [[ $ms != timeout ]] && ((ms < 6000)); then
    ok "slow client (incomplete body) cut off (${ms} ms)"
else
    not_ok "slow client (incomplete body) cut off within read_timeout" "closed after: $ms ms"
fi

# Pipelined requests on one connection are answered in order.
ms=$(timed_client pipe 'GET /v1/sys/health HTTP/1.1\r\nHost: nhid\r\n\r\nGET /v1/sys/seal-status HTTP/1.1\r\nHost: nhid\r\nConnection: close\r\n\r\n')
pipe_out=$(tr -d '\r' <"$T/pipe.out")
if [[ $pipe_out =~ \"initialized\".*\"standby\".*\"type\":\"shamir\" ]]; then
    ok "two pipelined requests answered in order"
else
    not_ok "two pipelined requests answered in order" "${pipe_out:0:500}"
fi
if [[ $ms != timeout ]] && ((ms < 1500)); then
    ok "Connection: close closes at once (${ms} ms)"
else
    not_ok "Connection: close closes at once" "closed after: $ms ms"
fi

# ---- the server survived all of it -------------------------------------------------------
NHID_TOKEN='' api GET sys/health
expect_eq "server still healthy at the end" "$STATUS" 200
expect_cmd "server process still running" kill -0 "$srv_PID"

finish
