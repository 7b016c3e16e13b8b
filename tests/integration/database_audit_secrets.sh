#!/usr/bin/env bash
# database_audit_secrets — plant unique secret values (root password, an
# inline URL password, a static user's password) and exercise every path
# that touches them or the passwords nhid generates (config write/read,
# bad config, role write, creds, lookup, renew, revoke, rotate-root,
# static roles, static-creds, rotate-role, expiry). Every request is
# audited and decided by policy; no secret value may appear in an audit
# file or in the server's logs (debug level), only HMACs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"

pg_start || { echo "FATAL: could not start PostgreSQL"; exit 1; }
NHID_LOG_LEVEL=debug nhid_start_dev srv || { echo "FATAL: could not start nhid"; exit 1; }

AUD="$T/audit.log"
api PUT sys/audit/file "{\"type\":\"file\",\"options\":{\"file_path\":\"$AUD\"}}"
expect_eq "audit device enabled" "$STATUS" 204

PLANT="planted-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
STATIC_INIT="static-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRETS=("$PG_SUPERPASS" "$PLANT" "$STATIC_INIT")
Q="'"
CREATE="CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD ${Q}{{password}}${Q} VALID UNTIL ${Q}{{expiration}}${Q};"

# A wrong password, planted (verify fails with PostgreSQL's message).
api POST database/config/pg "{\"connection_url\":\"$PG_URL_TMPL\",\"username\":\"postgres\",\"password\":\"$PLANT\",\"allowed_roles\":\"*\"}"
expect_eq "config with a wrong (planted) password: 502" "$STATUS" 502
expect_not_contains "... the error does not echo it" "$BODY" "$PLANT"
# An inline password in the URL (planted), never verified, then read back.
api POST database/config/inline "{\"connection_url\":\"postgresql://postgres:$PLANT@127.0.0.1:$PG_PORT/postgres\",\"allowed_roles\":\"*\",\"verify_connection\":false}"
expect_eq "config with an inline URL password" "$STATUS" 204
api GET database/config/inline
expect_not_contains "config read redacts an inline URL password" "$BODY" "$PLANT"
api POST database/config/pg "{\"connection_url\":\"$PG_URL_TMPL\",\"username\":\"postgres\",\"password\":\"$PG_SUPERPASS\",\"allowed_roles\":\"*\"}"
expect_eq "config write" "$STATUS" 204
api GET database/config/pg
expect_not_contains "config read hides the root password" "$BODY" "$PG_SUPERPASS"

api POST database/roles/ro "{\"db_name\":\"pg\",\"creation_statements\":\"$CREATE\",\"default_ttl\":\"2s\",\"max_ttl\":\"1h\"}"
expect_eq "role write" "$STATUS" 204
api POST database/roles/bad "{\"db_name\":\"pg\",\"creation_statements\":\"CREAT ROLE x PASSWORD '{{password}}';\"}"
expect_eq "bad SQL refused" "$STATUS" 400

GEN=()
api GET database/creds/ro
expect_eq "creds" "$STATUS" 200
GEN+=("$(jq -r .data.password <<<"$BODY")")
L=$(jq -r .lease_id <<<"$BODY")
api PUT sys/leases/lookup "{\"lease_id\":\"$L\"}"
api PUT sys/leases/renew "{\"lease_id\":\"$L\",\"increment\":\"30m\"}"
expect_eq "renew" "$STATUS" 200
api PUT sys/leases/revoke "{\"lease_id\":\"$L\"}"
expect_eq "revoke" "$STATUS" 204
api GET database/creds/ro   # left to expire (2 s)
GEN+=("$(jq -r .data.password <<<"$BODY")")

# A non-root caller: policy decides, denial audited too.
api PUT sys/policies/cedar/reader '{"policy":"permit (principal in Role::\"reader\", action == Action::\"read\", resource in Path::\"database/static-creds/\");"}'
token_create RTOK '{"policies":["reader"]}'

pg_sql "CREATE ROLE app LOGIN PASSWORD '$STATIC_INIT'" >/dev/null
api POST database/static-roles/app '{"db_name":"pg","username":"app","rotation_period":"1h"}'
expect_eq "static role" "$STATUS" 204
NHID_TOKEN=$RTOK api GET database/static-creds/app
expect_eq "static-creds read by a policy-permitted token" "$STATUS" 200
GEN+=("$(jq -r .data.password <<<"$BODY")")
NHID_TOKEN=$RTOK api GET database/creds/ro
expect_eq "policy denies the reader dynamic creds" "$STATUS" 403
api POST database/rotate-role/app
api GET database/static-creds/app
GEN+=("$(jq -r .data.password <<<"$BODY")")
api POST database/rotate-root/pg
expect_eq "rotate-root" "$STATUS" 204
api GET database/creds/ro
GEN+=("$(jq -r .data.password <<<"$BODY")")
sleep 3.5   # the expiry job revokes the short leases

api LIST sys/leases/lookup/database/creds/ro/
expect_eq "expired leases are gone" "$STATUS" 404
for g in "${GEN[@]}"; do
    [[ ${#g} -ge 20 && $g != null ]] || not_ok "generated password captured" "$g"
done
SECRETS+=("${GEN[@]}")

# Every request above reached the audit log (secret paths included)...
n_creds=$(grep -c '"path":"database/creds/ro"' "$AUD")
expect_match "creds requests are audited" "$n_creds" '^[1-9][0-9]*$'
expect_contains "static-creds read audited" "$(cat "$AUD")" '"path":"database/static-creds/app"'
expect_contains "audit holds HMACs" "$(cat "$AUD")" 'hmac-sha256:'
# ...and no secret value is in any audit record or log line.
leaks=0
for s in "${SECRETS[@]}"; do
    if grep -rqF -- "$s" "$AUD" "$T/srv.log" "$T/srv.out"; then
        leaks=$((leaks + 1))
        echo "       leaked: ${s:0:6}... in $(grep -rlF -- "$s" "$AUD" "$T/srv.log" "$T/srv.out" | tr '\n' ' ')"
    fi
done
expect_eq "no secret value (${#SECRETS[@]} checked) in audit files or server logs" "$leaks" 0
# The audit hash of a generated password matches a record: it was audited, as an HMAC.
api PUT sys/audit-hash/file "{\"input\":\"${GEN[0]}\"}"
H=$(jq -r .data.hash <<<"$BODY")
hashes=$(jq -r 'select(.request.path == "database/creds/ro") | .response.data.password // empty' "$AUD")
expect_contains "the creds response record carries the password's HMAC" "$hashes" "$H"
finish
