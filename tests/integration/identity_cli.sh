#!/usr/bin/env bash
# identity_cli.sh — `nhid identity ...`, `nhid group ...` and the machine
# login commands against a dev server: create/read/update/list, lifecycle,
# creds, join tokens, AppRole login, the report and its -fail-on exit code,
# -h on each command and -format=json.
source "$(dirname "$0")/lib.sh"

nhid_start_dev srv || { echo "cannot start server"; exit 1; }
N=$NHID_BIN

out=$("$N" identity create web-1 -kind=workload -owner=payments -label env=prod 2>&1)
expect_contains "identity create prints the record" "$out" "spiffe://nhid.local/workload/web-1"
out=$("$N" identity create web-1 -kind=workload -owner=payments 2>&1); rc=$?
expect_eq "duplicate create exits 2" "$rc" 2
expect_contains "... with the server's message" "$out" "already exists"
out=$("$N" identity create bad -kind=robot 2>&1); rc=$?
expect_eq "bad kind exits 2" "$rc" 2
expect_contains "... naming the field" "$out" 'field "kind"'
out=$("$N" identity create nokind 2>&1); rc=$?
expect_eq "missing -kind is a usage error (1)" "$rc" 1
"$N" identity create dev-1 -kind=device >/dev/null 2>&1
"$N" identity create dev-2 -kind=device -owner=fleet >/dev/null 2>&1

out=$("$N" identity read web-1 -format=json)
expect_jq "identity read -format=json" "$out" '.data.state == "pending" and .data.labels.env == "prod"'
out=$("$N" identity update web-1 -owner=platform -format=json)
expect_jq "identity update" "$out" '.data.owner == "platform"'
out=$("$N" identity list -kind=device)
expect_contains "identity list table" "$out" "dev-1"
expect_contains "... shows orphans' owner as (none)" "$out" "(none)"
out=$("$N" identity list -kind=device -limit=1 -format=json)
expect_jq "identity list paging" "$out" '.keys == ["dev-1"] and .next_after == "dev-1"'
out=$("$N" identity list -label env=prod -format=json)
expect_jq "identity list -label" "$out" '.keys == ["web-1"]'

# join token and join login
jt=$("$N" identity join-token dev-2 -ttl=5m -format=json | jq -r .data.join_token)
expect_match "identity join-token" "$jt" '^njt\.'
out=$(NHID_TOKEN= "$N" join login "$jt" -format=json)
expect_jq "join login returns a token for dev-2" "$out" '.auth.metadata.identity == "dev-2"'
out=$(NHID_TOKEN= "$N" join login "$jt" 2>&1); rc=$?
expect_eq "second join login fails (exit 2)" "$rc" 2
expect_contains "... with 403" "$out" "403"

# approle login through the CLI
"$N" write auth/approle/role/web-1 token_policies=web >/dev/null
rid=$("$N" read -format=json auth/approle/role/web-1/role-id | jq -r .data.role_id)
sid=$("$N" write -format=json -f auth/approle/role/web-1/secret-id 2>/dev/null | jq -r .data.secret_id)
[[ -z $sid || $sid == null ]] && sid=$(curl -s --cacert "$NHID_CACERT" -H "X-Vault-Token: $NHID_TOKEN" -X POST "$NHID_ADDR/v1/auth/approle/role/web-1/secret-id" | jq -r .data.secret_id)
out=$(echo "$sid" | NHID_TOKEN= "$N" approle login -role-id="$rid" -secret-id=- -format=json)
expect_jq "approle login (secret from stdin)" "$out" '.auth.metadata.identity == "web-1" and .auth.lease_duration == 900'

# a credential used from two networks shows in the report (127.0.0.0/24 and 127.0.1.0/24)
wtok=$(jq -r .auth.client_token <<<"$out")
for src in 127.0.0.1 127.0.1.1; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --interface "$src" --cacert "$NHID_CACERT" \
        -H "X-Vault-Token: $wtok" "$NHID_ADDR/v1/auth/token/lookup-self")
    expect_eq "token use from $src" "$code" 200
done
sleep 2.5 # usage counters are flushed every 2 s
out2=$("$N" identity report -format=json)
expect_jq "report: token used from two networks" "$out2" '[.multi_network[] | select(.identity == "web-1" and .type == "token")] | length == 1'
out2=$("$N" identity read web-1 -format=json)
expect_jq "last_seen and success count recorded" "$out2" '.data.last_seen != null and .data.auth_success_count >= 1 and .data.last_auth_method == "approle"'

# lifecycle
out=$("$N" identity suspend web-1 -reason="key leaked")
expect_contains "identity suspend" "$out" "now suspended"
out=$("$N" identity suspend web-1 -reason=again 2>&1); rc=$?
expect_eq "suspend twice exits 2" "$rc" 2
expect_contains "... 409 naming allowed transitions" "$out" "resume, decommission"
out=$("$N" identity resume web-1)
expect_contains "identity resume" "$out" "now active"
out=$("$N" identity creds web-1)
expect_contains "identity creds lists the secret ID" "$out" "approle-secret-id"
expect_contains "... and the token" "$out" "token"

# groups
out=$("$N" group write fleet -member dev-1 -member dev-2 -format=json)
expect_jq "group write" "$out" '.data.member_identities == ["dev-1","dev-2"]'
out=$("$N" group list)
expect_contains "group list" "$out" "fleet"

# report
out=$("$N" identity report)
expect_contains "report lists orphans" "$out" "dev-1"
"$N" identity report -fail-on=orphan >/dev/null 2>&1; rc=$?
expect_eq "report -fail-on=orphan exits 2 with an orphan" "$rc" 2
"$N" identity report -fail-on=suspended >/dev/null 2>&1; rc=$?
expect_eq "report -fail-on=suspended exits 0 with none" "$rc" 0
"$N" identity report -fail-on=bogus >/dev/null 2>&1; rc=$?
expect_eq "report -fail-on with an unknown check is a usage error" "$rc" 1
out=$("$N" identity report -format=json)
expect_jq "report -format=json" "$out" '.counts.orphans >= 1'

out=$("$N" identity decommission dev-2 -reason=retired)
expect_contains "identity decommission reports revoked credentials" "$out" "credentials revoked"
out=$("$N" identity delete dev-2 2>&1); rc=$?
expect_eq "identity delete after decommission" "$rc" 0

for c in "identity create" "identity read" "identity update" "identity list" "identity delete" \
    "identity suspend" "identity resume" "identity decommission" "identity creds" \
    "identity report" "identity join-token" "group write" "group list" "approle login" \
    "cert login" "join login"; do
    # shellcheck disable=SC2086
    out=$("$N" $c -h 2>&1); rc=$?
    expect_eq "$c -h exits 0" "$rc" 0
done

finish
