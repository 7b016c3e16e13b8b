#!/usr/bin/env bash
# database_dynamic — dynamic PostgreSQL logins against a real throwaway cluster:
# the login works at once; revoke, expiry, revoke-prefix and identity
# decommissioning drop it; renew extends it; bad SQL is refused with
# PostgreSQL's message; an unreachable database gives 502 and no lease;
# rotate-root leaves nhid in charge; static roles rotate a real user's password.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"

pg_start || { echo "FATAL: could not start PostgreSQL"; exit 1; }
nhid_start_dev srv || { echo "FATAL: could not start nhid"; exit 1; }

Q="'"
CREATE="CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD ${Q}{{password}}${Q} VALID UNTIL ${Q}{{expiration}}${Q};"
GRANT="GRANT SELECT ON ALL TABLES IN SCHEMA public TO \\\"{{name}}\\\";"

# ---- config and roles ------------------------------------------------------------
api POST database/config/pg "{\"plugin_name\":\"postgresql-database-plugin\",\"connection_url\":\"$PG_URL_TMPL\",\"username\":\"postgres\",\"password\":\"$PG_SUPERPASS\",\"allowed_roles\":[\"ro\",\"short\",\"app\",\"idrole\"]}"
expect_eq "config write" "$STATUS" 204
api GET database/config/pg
expect_eq "config read" "$STATUS" 200
expect_not_contains "config read never returns the root password" "$BODY" "$PG_SUPERPASS"
expect_jq "config read shows the username" "$BODY" '.data.connection_details.username == "postgres"'

pg_sql "CREATE TABLE t (v int); INSERT INTO t VALUES (42);" >/dev/null
api POST database/roles/ro "{\"db_name\":\"pg\",\"creation_statements\":[\"$CREATE\",\"$GRANT\"],\"default_ttl\":\"1h\",\"max_ttl\":\"2h\"}"
expect_eq "role write" "$STATUS" 204
api GET database/roles/ro
expect_jq "role read" "$BODY" '.data.db_name == "pg" and .data.default_ttl == 3600 and (.data.creation_statements | length) == 2'

# ---- bad input ---------------------------------------------------------------------
api POST database/roles/bad '{"db_name":"pg","creation_statements":"CREAT ROLE \"{{name}}\";"}'
expect_eq "bad SQL: 400" "$STATUS" 400
expect_contains "bad SQL: PostgreSQL's message" "$BODY" 'syntax error at or near \"CREAT\"'
api POST database/roles/bad2 "{\"db_name\":\"pg\",\"creation_statements\":\"$CREATE\",\"revocation_statements\":\"DROP ROLE nosuchrole_xyz;\"}"
expect_eq "bad revocation SQL: 400" "$STATUS" 400
expect_contains "bad revocation SQL: PostgreSQL's message" "$BODY" 'role \"nosuchrole_xyz\" does not exist'
api POST database/roles/bad3 '{"db_name":"pg","creation_statements":"CREATE ROLE \"{{nom}}\";"}'
expect_eq "unknown template variable: 400" "$STATUS" 400
expect_contains "unknown template variable named" "$BODY" "{{nom}}"
api GET database/roles/bad
expect_eq "refused roles are not stored" "$STATUS" 404
api POST database/roles/nodb "{\"db_name\":\"nope\",\"creation_statements\":\"$CREATE\"}"
expect_eq "role on a missing config: 400" "$STATUS" 400

# ---- issue, use, lookup, renew, revoke ----------------------------------------------
api GET database/creds/ro
expect_eq "creds issued" "$STATUS" 200
U=$(jq -r .data.username <<<"$BODY")
P=$(jq -r .data.password <<<"$BODY")
L=$(jq -r .lease_id <<<"$BODY")
expect_match "lease id is database/creds/ro/<random>" "$L" '^database/creds/ro/[A-Za-z0-9]{24}$'
expect_jq "lease fields" "$BODY" '.renewable == true and .lease_duration == 3600'
expect_cmd "dynamic login works at once" pg_login "$U" "$P"
got=$(PGPASSWORD=$P psql -X -At -h 127.0.0.1 -p "$PG_PORT" -U "$U" -d postgres -c "SELECT v FROM t" 2>&1)
expect_eq "dynamic login has the granted privileges" "$got" 42
expect_fail "wrong password refused (SCRAM is really checked)" pg_login "$U" "wrong$P"

api PUT sys/leases/lookup "{\"lease_id\":\"$L\"}"
expect_eq "lookup 200" "$STATUS" 200
expect_jq "lookup fields" "$BODY" ".data.id == \"$L\" and .data.renewable == true and .data.ttl > 3500"
api LIST sys/leases/lookup/database/creds/
expect_jq "list folders" "$BODY" '.data.keys == ["ro/"]'
api LIST sys/leases/lookup/database/creds/ro/
expect_jq "list leases of a role" "$BODY" ".data.keys | index(\"${L##*/}\") != null"

api PUT sys/leases/renew "{\"lease_id\":\"$L\",\"increment\":\"90m\"}"
expect_eq "renew 200" "$STATUS" 200
expect_jq "renew counts the increment from now" "$BODY" '.lease_duration == 5400 and .renewable == true'
vu=$(pg_sql "SELECT extract(epoch FROM rolvaliduntil - now())::int FROM pg_roles WHERE rolname = '$U'")
expect_match "renew moved VALID UNTIL in PostgreSQL (~5400 s)" "$vu" '^5[34][0-9][0-9]$'
api PUT sys/leases/renew "{\"lease_id\":\"$L\",\"increment\":\"10h\"}"
expect_jq "renew is capped by max_ttl (2h from issue)" "$BODY" '.lease_duration <= 7200 and .lease_duration > 7100 and (.warnings | length) == 1'

api PUT sys/leases/revoke "{\"lease_id\":\"$L\"}"
expect_eq "revoke 204" "$STATUS" 204
expect_fail "after revoke the login fails" pg_login "$U" "$P"
if pg_role_exists "$U"; then not_ok "after revoke the role is gone"; else ok "after revoke the role is gone"; fi
api PUT sys/leases/lookup "{\"lease_id\":\"$L\"}"
expect_eq "revoked lease is gone" "$STATUS" 400
api PUT "sys/leases/revoke/$L"
expect_eq "revoking again is idempotent" "$STATUS" 204
api PUT sys/leases/lookup '{"lease_id":"../../etc"}'
expect_eq "bad lease id: 400" "$STATUS" 400

# ---- expiry ---------------------------------------------------------------------------
api POST database/roles/short "{\"db_name\":\"pg\",\"creation_statements\":\"$CREATE\",\"default_ttl\":\"2s\",\"max_ttl\":\"2s\"}"
expect_eq "short role" "$STATUS" 204
api GET database/creds/short
U2=$(jq -r .data.username <<<"$BODY")
P2=$(jq -r .data.password <<<"$BODY")
expect_cmd "short login works" pg_login "$U2" "$P2"
gone=0
for _ in $(seq 1 40); do
    pg_role_exists "$U2" || { gone=1; break; }
    sleep 0.25
done
expect_eq "expiry: the job dropped the role within ~4 s" "$gone" 1
expect_fail "expiry: the login fails" pg_login "$U2" "$P2"
api LIST sys/leases/lookup/database/creds/short/
expect_eq "expiry: the lease is gone" "$STATUS" 404

# ---- revoke-prefix --------------------------------------------------------------------
users=()
for _ in 1 2 3; do
    api GET database/creds/ro
    users+=("$(jq -r .data.username <<<"$BODY")")
done
api PUT sys/leases/revoke-prefix/database/creds/ro
expect_eq "revoke-prefix 204" "$STATUS" 204
left=0
for u in "${users[@]}"; do pg_role_exists "$u" && left=$((left + 1)); done
expect_eq "revoke-prefix dropped all three roles" "$left" 0

# ---- unreachable database -----------------------------------------------------------
dead=$(free_port)
api POST database/config/dead "{\"connection_url\":\"postgresql://{{username}}:{{password}}@127.0.0.1:$dead/postgres?sslmode=disable\",\"username\":\"postgres\",\"password\":\"x\",\"allowed_roles\":\"*\"}"
expect_eq "config with verify on an unreachable database: 502" "$STATUS" 502
expect_contains "... clear message" "$BODY" "cannot connect"
api POST database/config/dead "{\"connection_url\":\"postgresql://{{username}}:{{password}}@127.0.0.1:$dead/postgres?sslmode=disable\",\"username\":\"postgres\",\"password\":\"x\",\"allowed_roles\":\"*\",\"verify_connection\":false}"
expect_eq "config without verify" "$STATUS" 204
api POST database/roles/deadrole "{\"db_name\":\"dead\",\"creation_statements\":\"$CREATE\"}"
expect_eq "role on it (not validated without verify_connection)" "$STATUS" 204
api GET database/creds/deadrole
expect_eq "creds on an unreachable database: 502" "$STATUS" 502
expect_contains "... says it cannot connect" "$BODY" 'cannot connect to database \"dead\"'
expect_contains "... and that nothing was issued" "$BODY" "no credential was issued"
api LIST sys/leases/lookup/database/creds/deadrole/
expect_eq "... no lease created" "$STATUS" 404

# ---- identity decommission drops the identity's logins ---------------------------------
api POST identity/machine/app-1 '{"kind":"service","owner":"team-a"}'
expect_eq "identity created" "$STATUS" 200
api PUT sys/policies/cedar/dbuser '{"policy":"permit (principal in Role::\"dbuser\", action == Action::\"read\", resource == Path::\"database/creds/idrole\");"}'
expect_match "policy stored" "$STATUS" '^20[04]$'
api POST database/roles/idrole "{\"db_name\":\"pg\",\"creation_statements\":\"$CREATE\"}"
api POST auth/approle/role/app-1 '{"token_policies":["dbuser"]}'
api GET auth/approle/role/app-1/role-id
RID=$(jq -r .data.role_id <<<"$BODY")
api POST auth/approle/role/app-1/secret-id '{}'
SID=$(jq -r .data.secret_id <<<"$BODY")
ROOT=$NHID_TOKEN
NHID_TOKEN="" api POST auth/approle/login "{\"role_id\":\"$RID\",\"secret_id\":\"$SID\"}"
APPTOK=$(jq -r .auth.client_token <<<"$BODY")
NHID_TOKEN=$APPTOK api GET database/creds/idrole
expect_eq "identity's token issues creds (policy permits)" "$STATUS" 200
U3=$(jq -r .data.username <<<"$BODY")
P3=$(jq -r .data.password <<<"$BODY")
L3=$(jq -r .lease_id <<<"$BODY")
NHID_TOKEN=$APPTOK api GET database/creds/ro
expect_eq "policy denies another role: 403" "$STATUS" 403
expect_cmd "identity's login works" pg_login "$U3" "$P3"
api GET identity/machine/app-1/creds
expect_contains "the login is one of the identity's credentials" "$BODY" "db-login"
api PUT sys/leases/lookup "{\"lease_id\":\"$L3\"}"
expect_jq "lease records the identity" "$BODY" '.data.identity == "app-1"'
api POST identity/machine/app-1/decommission '{"reason":"retired"}'
expect_eq "decommission" "$STATUS" 200
gone=0
for _ in $(seq 1 40); do
    pg_role_exists "$U3" || { gone=1; break; }
    sleep 0.1
done
expect_eq "decommission dropped the identity's PostgreSQL login" "$gone" 1
expect_fail "... and it cannot log in" pg_login "$U3" "$P3"

# ---- rotate-root ------------------------------------------------------------------------
api POST database/rotate-root/pg
expect_eq "rotate-root 204" "$STATUS" 204
expect_fail "the old root password no longer works" pg_login postgres "$PG_SUPERPASS"
api GET database/creds/ro
expect_eq "nhid still issues creds after rotate-root" "$STATUS" 200
U4=$(jq -r .data.username <<<"$BODY")
P4=$(jq -r .data.password <<<"$BODY")
L4=$(jq -r .lease_id <<<"$BODY")
expect_cmd "... and they work" pg_login "$U4" "$P4"
api PUT sys/leases/revoke "{\"lease_id\":\"$L4\"}"
expect_eq "nhid still revokes after rotate-root" "$STATUS" 204
if pg_role_exists "$U4"; then not_ok "... the role is gone"; else ok "... the role is gone"; fi

# ---- static roles -------------------------------------------------------------------------
pg_sql "CREATE ROLE app LOGIN PASSWORD 'initial-pw-1'" >/dev/null
expect_cmd "static user logs in with its initial password" pg_login app initial-pw-1
api POST database/static-roles/app '{"db_name":"pg","username":"app","rotation_period":"6s"}'
expect_eq "static role created (rotated at once)" "$STATUS" 204
expect_fail "the initial password stopped working" pg_login app initial-pw-1
api GET database/static-creds/app
expect_eq "static-creds 200" "$STATUS" 200
SP1=$(jq -r .data.password <<<"$BODY")
expect_jq "static-creds fields" "$BODY" '.data.username == "app" and .data.rotation_period == 6 and .data.ttl <= 6'
expect_cmd "the static password works" pg_login app "$SP1"
api POST database/rotate-role/app
expect_eq "rotate-role 204" "$STATUS" 204
api GET database/static-creds/app
SP2=$(jq -r .data.password <<<"$BODY")
expect_ne "rotate-role changed the password" "$SP2" "$SP1"
expect_fail "the old static password stops working" pg_login app "$SP1"
expect_cmd "the new one works" pg_login app "$SP2"
sleep 7.5
api GET database/static-creds/app
SP3=$(jq -r .data.password <<<"$BODY")
expect_ne "the schedule rotated it (6 s period)" "$SP3" "$SP2"
expect_fail "... the previous password stops working" pg_login app "$SP2"
expect_cmd "... the scheduled one works" pg_login app "$SP3"
api POST database/static-roles/ghost '{"db_name":"pg","username":"nobody_here","rotation_period":"1h"}'
expect_eq "static role for a missing user: 400" "$STATUS" 400
api GET database/static-roles/app
expect_not_contains "static role read has no password" "$BODY" "$SP3"

# ---- restart: leases and schedules survive ----------------------------------------------
api GET database/creds/ro
U5=$(jq -r .data.username <<<"$BODY")
L5=$(jq -r .lease_id <<<"$BODY")
nhid_stop "$srv_PID"
nhid_start_dev srv || { echo "FATAL: restart"; finish; }
api PUT sys/leases/lookup "{\"lease_id\":\"$L5\"}"
expect_eq "lease survives a restart" "$STATUS" 200
api PUT sys/leases/revoke "{\"lease_id\":\"$L5\"}"
if pg_role_exists "$U5"; then not_ok "revoke after restart drops the role"; else ok "revoke after restart drops the role"; fi

if grep -q -- "$SP3\|$P4\|$PG_SUPERPASS" "$T/srv.log" "$T/srv.out" 2>/dev/null; then
    not_ok "no password in the server log"
else
    ok "no password in the server log"
fi
finish
