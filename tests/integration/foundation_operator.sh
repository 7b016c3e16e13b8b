#!/usr/bin/env bash
# foundation_operator.sh — the nhid CLI end to end against a production
# server: operator init / unseal / rotate / seal, status exit codes, token
# commands, -format=json output and -h on every command.
source "$(dirname "$0")/lib.sh"

nhid() { "$NHID_BIN" "$@"; }

# ---- -h on every command (no server needed) ------------------------------------------
COMMANDS=("status" "read" "write" "delete" "list" "patch" "login" "operator init"
    "operator unseal" "operator seal" "operator rotate" "operator key-status" "token create"
    "token lookup" "token renew" "token revoke" "audit enable" "audit disable" "audit list"
    "audit verify" "metrics" "version" "server" "policy" "operator" "token" "audit")
for cmd in "${COMMANDS[@]}"; do
    # shellcheck disable=SC2086
    out=$(NHID_ADDR=https://127.0.0.1:1 nhid $cmd -h 2>&1)
    rc=$?
    if ((rc == 0)) && [[ $out == *Usage* || $out == *usage* ]]; then
        ok "nhid $cmd -h: exit 0 with usage"
    else
        not_ok "nhid $cmd -h: exit 0 with usage" "rc=$rc" "${out:0:300}"
    fi
done
out=$(nhid -h 2>&1)
expect_eq "nhid -h: exit 0" "$?" 0
out=$(nhid help token create 2>&1)
expect_contains "nhid help token create shows the flags" "$out" "-ttl"
out=$(nhid no-such-command 2>&1)
rc=$?
expect_eq "unknown command: exit 1" "$rc" 1
out=$(nhid version -format=json 2>&1)
expect_jq "nhid version -format=json" "$out" '(.version|type) == "string"'

# ---- production server ------------------------------------------------------------------
nhid_prod_config prod
nhid_start_config prod "$prod_CONFIG" "$prod_CACERT" || { echo "FATAL: server did not start"; exit 1; }
unset NHID_TOKEN
echo "server: $NHID_ADDR (pid $prod_PID)"

out=$(nhid status 2>&1)
rc=$?
expect_eq "status while uninitialised: exit 2" "$rc" 2
expect_match "status table: Initialized false" "$out" 'Initialized +false'

out=$(nhid operator init -key-shares 5 -key-threshold 1 2>&1)
rc=$?
expect_eq "init with threshold 1 of 5 is a usage error (exit 1)" "$rc" 1
out=$(nhid operator init -key-shares 3 -key-threshold 4 2>&1)
expect_eq "init with threshold > shares: exit 1" "$?" 1

INIT=$(nhid operator init -key-shares 5 -key-threshold 3 -format=json 2>"$T/init.err")
rc=$?
expect_eq "operator init -format=json: exit 0" "$rc" 0
expect_jq "init JSON: 5 keys, 5 base64 keys, a root token" "$INIT" \
    '(.keys|length) == 5 and (.keys_base64|length) == 5 and (.root_token|startswith("nhs."))'
mapfile -t KEYS < <(jq -r '.keys_base64[]' <<<"$INIT")
mapfile -t HEXKEYS < <(jq -r '.keys[]' <<<"$INIT")
ROOT=$(jq -r .root_token <<<"$INIT")
out=$(nhid operator init -key-shares 5 -key-threshold 3 2>&1)
rc=$?
expect_eq "second init: exit 2 (server error)" "$rc" 2
expect_contains "second init: says already initialized" "$out" "already initialized"

out=$(nhid status 2>&1)
expect_eq "status while sealed: exit 2" "$?" 2
expect_match "status table: Sealed true" "$out" 'Sealed +true'
expect_match "status table: Total Shares 5, Threshold 3" "$out" 'Total Shares +5.*Threshold +3'
out=$(nhid status -format=json 2>&1)
expect_jq "status -format=json while sealed" "$out" '.sealed == true and .t == 3 and .n == 5'

out=$(nhid operator unseal "${KEYS[0]}" 2>&1)
expect_eq "unseal 1/3 (argument): exit 0" "$?" 0
expect_match "unseal 1/3: progress 1/3" "$out" 'Unseal Progress +1/3'
out=$(nhid operator unseal -format=json <<<"${HEXKEYS[2]}" 2>&1)
expect_eq "unseal 2/3 (hex key on stdin): exit 0" "$?" 0
expect_jq "unseal 2/3 -format=json: progress 2" "$out" '.progress == 2 and .sealed == true'
out=$(nhid operator unseal "${KEYS[2]}" 2>&1)
rc=$?
expect_eq "the same share twice: exit 2" "$rc" 2
out=$(nhid operator unseal -reset 2>&1)
expect_eq "unseal -reset: exit 0" "$?" 0
out=$(nhid status -format=json 2>&1)
expect_jq "after -reset: progress 0" "$out" '.progress == 0 and .sealed == true'
out=$(nhid operator unseal "not-a-key" 2>&1)
expect_eq "garbage key: exit 2" "$?" 2
for i in 1 3 4; do
    out=$(nhid operator unseal "${KEYS[$i]}" 2>&1)
    expect_eq "unseal with key $((i + 1)): exit 0" "$?" 0
done
expect_match "third share unseals (Sealed false)" "$out" 'Sealed +false'
out=$(nhid status 2>&1)
expect_eq "status while unsealed: exit 0" "$?" 0

export NHID_TOKEN=$ROOT
out=$(nhid token lookup -format=json 2>&1)
expect_jq "token lookup (root) -format=json" "$out" '.data.policies == ["root"]'
TOK_JSON=$(nhid token create -policy web -policy db -ttl 1h -use-limit 10 -metadata team=ops -format=json 2>&1)
expect_jq "token create -format=json" "$TOK_JSON" \
    '.auth.policies == ["web","db"] and .auth.metadata.team == "ops" and .auth.num_uses == 10'
TOK=$(jq -r .auth.client_token <<<"$TOK_JSON")
TOK_ACC=$(jq -r .auth.accessor <<<"$TOK_JSON")
out=$(nhid token create -policy web -ttl 1h -field token 2>&1)
expect_match "token create -field token prints just the token" "$out" '^nhs\.[A-Za-z0-9_-]+$'
TOK2=$out
out=$(nhid token create -ttl 1h 2>&1)
expect_match "token create table output" "$out" 'token +nhs\.'
out=$(nhid token lookup -accessor "$TOK_ACC" -format=json 2>&1)
expect_jq "token lookup -accessor" "$out" '.data.policies == ["web","db"]'
out=$(NHID_TOKEN=$TOK2 nhid token renew -increment 2h -format=json 2>&1)
expect_jq "token renew -increment 2h (self)" "$out" '.auth.lease_duration >= 7190'

# ---- rotate ----------------------------------------------------------------------------------
out=$(nhid operator key-status -format=json 2>&1)
expect_jq "key-status: term 1" "$out" '.data.term == 1'
out=$(nhid operator rotate 2>&1)
expect_eq "operator rotate: exit 0" "$?" 0
expect_match "operator rotate prints Key Term 2" "$out" 'Key Term +2'
out=$(nhid operator key-status -format=json 2>&1)
expect_jq "key-status after rotate: term 2" "$out" '.data.term == 2'
out=$(NHID_TOKEN=$TOK nhid token lookup -format=json 2>&1)
expect_jq "token written before the rotation still works" "$out" '.data.policies == ["web","db"]'
TOK3=$(nhid token create -ttl 1h -field token 2>&1)
nhid operator rotate >/dev/null 2>&1
out=$(nhid operator key-status -format=json 2>&1)
expect_jq "second rotate: term 3" "$out" '.data.term == 3'

# ---- audit via the CLI ---------------------------------------------------------------------
out=$(nhid audit enable file file_path="$T/cli-audit.log" 2>&1)
expect_eq "audit enable file file_path=...: exit 0" "$?" 0
out=$(nhid audit list -format=json 2>&1)
expect_jq "audit list -format=json" "$out" '.["file/"].type == "file"'
nhid token lookup >/dev/null 2>&1
out=$(nhid audit verify "$T/cli-audit.log" 2>&1)
expect_eq "audit verify: exit 0" "$?" 0
out=$(nhid metrics 2>&1)
expect_match "nhid metrics prints Prometheus text" "$out" 'nhid_tokens [0-9]+'
out=$(nhid metrics -format=json 2>&1)
expect_jq "nhid metrics -format=json" "$out" '.sealed == false and .tokens >= 3'

# ---- seal, then restart: data written under three key terms is readable -----------------------
out=$(nhid operator seal 2>&1)
expect_eq "operator seal: exit 0" "$?" 0
out=$(nhid status 2>&1)
expect_eq "status after seal: exit 2" "$?" 2
out=$(nhid token lookup 2>&1)
expect_eq "token lookup while sealed: exit 2" "$?" 2
expect_contains "token lookup while sealed: says sealed" "$out" "sealed"
nhid_stop "$prod_PID"
nhid_start_config prod "$prod_CONFIG" "$prod_CACERT" || { echo "FATAL: restart failed"; finish; }
for i in 4 0 2; do nhid operator unseal "${KEYS[$i]}" >/dev/null 2>&1; done
out=$(nhid status 2>&1)
expect_eq "restart + unseal with keys 5,1,3: exit 0" "$?" 0
out=$(nhid operator key-status -format=json 2>&1)
expect_jq "after restart: term 3" "$out" '.data.term == 3'
for v in TOK TOK2 TOK3; do
    out=$(NHID_TOKEN=${!v} nhid token lookup -format=json 2>&1)
    expect_jq "after restart: $v (written at term $([[ $v == TOK3 ]] && echo 2 || echo 1)) still works" "$out" '.data.id != null'
done
out=$(nhid token revoke -accessor "$TOK_ACC" 2>&1)
expect_eq "token revoke -accessor: exit 0" "$?" 0
out=$(NHID_TOKEN=$TOK nhid token lookup 2>&1)
expect_eq "revoked token: lookup exit 2" "$?" 2

# ---- client-side errors -----------------------------------------------------------------------
out=$(NHID_ADDR=https://127.0.0.1:1 nhid status 2>&1)
rc=$?
expect_eq "unreachable server: exit 1" "$rc" 1
expect_contains "unreachable server: names the address" "$out" "127.0.0.1:1"
out=$(NHID_CACERT=/nonexistent nhid status 2>&1)
expect_eq "missing CA file: exit 1" "$?" 1
out=$(NHID_CACERT='' nhid status 2>&1)
rc=$?
expect_eq "untrusted server certificate (no NHID_CACERT): exit 1" "$rc" 1

finish
