#!/usr/bin/env bash
# lease_cli — `nhid lease lookup|renew|revoke` against dynamic PostgreSQL logins.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"
pg_start || { echo "FATAL: could not start PostgreSQL"; exit 1; }
nhid_start_dev srv || { echo "FATAL: could not start nhid"; exit 1; }
Q="'"
api POST database/config/pg "{\"connection_url\":\"$PG_URL_TMPL\",\"username\":\"postgres\",\"password\":\"$PG_SUPERPASS\",\"allowed_roles\":\"*\"}"
api POST database/roles/ro "{\"db_name\":\"pg\",\"creation_statements\":\"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD ${Q}{{password}}${Q} VALID UNTIL ${Q}{{expiration}}${Q};\",\"default_ttl\":\"10m\"}"
expect_eq "role" "$STATUS" 204
out=$("$NHID_BIN" read -format=json database/creds/ro 2>&1)
L=$(jq -r .lease_id <<<"$out")
U=$(jq -r .data.username <<<"$out")
expect_match "nhid read database/creds/ro issues a lease" "$L" '^database/creds/ro/'
out=$("$NHID_BIN" lease lookup "$L" 2>&1)
expect_contains "lease lookup (table)" "$out" "$L"
out=$("$NHID_BIN" lease lookup -format=json "$L" 2>&1)
expect_jq "lease lookup -format=json" "$out" '.data.ttl > 500'
out=$("$NHID_BIN" lease renew -format=json -increment 20m "$L" 2>&1)
expect_jq "lease renew -increment 20m" "$out" '.lease_duration == 1200'
expect_fail "lease lookup of an unknown lease fails" "$NHID_BIN" lease lookup database/creds/ro/nope
expect_fail "-force without -prefix is a usage error" "$NHID_BIN" lease revoke -force "$L"
out=$("$NHID_BIN" lease revoke "$L" 2>&1)
expect_contains "lease revoke" "$out" "Success!"
if pg_role_exists "$U"; then not_ok "revoked login is dropped"; else ok "revoked login is dropped"; fi
"$NHID_BIN" read database/creds/ro >/dev/null 2>&1
"$NHID_BIN" read database/creds/ro >/dev/null 2>&1
out=$("$NHID_BIN" lease revoke -prefix database/creds/ro 2>&1)
expect_contains "lease revoke -prefix" "$out" "Success!"
n=$(pg_sql "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-ro-%'")
expect_eq "revoke -prefix dropped every login" "$n" 0
finish
