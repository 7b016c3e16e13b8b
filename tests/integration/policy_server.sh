#!/usr/bin/env bash
# Cedar policies deciding every request on a running server: storage and
# validation of policies, the baseline, default deny, forbid overriding
# permit, folder hierarchy of Path resources, denial hiding internals,
# the audit record carrying the determining policies, atomic replacement
# under load, and the worked examples of docs/policy.md.
source "$(dirname "$0")/lib.sh"

nhid_start_dev srv
ROOT=$NHID_TOKEN
api PUT sys/audit/main "{\"type\":\"file\",\"options\":{\"file_path\":\"$T/audit.log\"}}"
expect_eq "audit device enabled" "$STATUS" 204

# A token whose only policy (role) is "ci".
token_create CI '{"policies":["ci"],"ttl":"1h"}'
expect_ne "ci token created" "$CI" ""

as_ci() { NHID_TOKEN=$CI api "$@"; }

as_ci GET auth/token/lookup-self
expect_eq "baseline: a token may look itself up" "$STATUS" 200
as_ci LIST auth/token/accessors
expect_eq "default deny: listing accessors" "$STATUS" 403
expect_eq "a denial reveals no policy internals" "$(jq -c .errors <<<"$BODY")" '["permission denied"]'

# Invalid policies are refused with line:col.
api PUT sys/policies/cedar/broken '{"policy":"permit(principal, action, resource) when { nope };"}'
expect_eq "syntax error refused" "$STATUS" 400
expect_match "error names line and column" "$BODY" 'broken:1:[0-9]+:'
api PUT sys/policies/cedar/bad%20name '{"policy":"permit(principal, action, resource);"}'
expect_eq "bad policy name refused" "$STATUS" 400
api PUT sys/policies/cedar/x '{"policy":"permit(principal, action, resource);","extra":1}'
expect_eq "unknown field refused" "$STATUS" 400
expect_contains "unknown field named" "$BODY" 'unknown field \"extra\"'

# A permit for role ci, on loopback only.
POLICY='@id(\"ci-list-accessors\")\npermit (principal in Role::\"ci\", action == Action::\"list\", resource == Path::\"auth/token/accessors\") when { context.ip.isLoopback() };'
api PUT sys/policies/cedar/ci "{\"policy\":\"$POLICY\"}"
expect_eq "policy stored" "$STATUS" 204
api GET sys/policies/cedar/ci
expect_eq "policy read back" "$(jq -r .data.name <<<"$BODY")" "ci"
api LIST sys/policies/cedar
expect_jq "policy listed" "$BODY" '.data.keys | index("ci") != null'
as_ci LIST auth/token/accessors
expect_eq "permit takes effect at once" "$STATUS" 200

# Folder hierarchy: resource in Path::"auth/token/" covers auth/token/*.
api PUT sys/policies/cedar/ci-lookup '{"policy":"permit (principal in Role::\"ci\", action == Action::\"read\", resource in Path::\"auth/token/\");"}'
expect_eq "folder policy stored" "$STATUS" 204
token_create OTHER '{"policies":["other"],"ttl":"1h"}'
as_ci POST auth/token/lookup "{\"token\":\"$OTHER\"}"
expect_eq "resource in a folder: permitted" "$STATUS" 200

# forbid overrides permit (and the baseline).
api PUT sys/policies/cedar/lockdown '{"policy":"@id(\"lockdown\")\nforbid (principal in Role::\"ci\", action, resource);"}'
expect_eq "forbid stored" "$STATUS" 204
as_ci LIST auth/token/accessors
expect_eq "forbid overrides permit" "$STATUS" 403
as_ci GET auth/token/lookup-self
expect_eq "forbid overrides the baseline" "$STATUS" 403
api GET auth/token/lookup-self
expect_eq "the root token bypasses policy" "$STATUS" 200
api DELETE sys/policies/cedar/lockdown
expect_eq "policy deleted" "$STATUS" 204
as_ci LIST auth/token/accessors
expect_eq "deleting the forbid restores access" "$STATUS" 200

# The audit record carries the decision and the determining policies.
sleep 0.2
expect_cmd "audit has the determining policy" grep -q '"policies":\["ci-list-accessors"\]' "$T/audit.log"
expect_cmd "audit has a default-deny decision" grep -q '"reason":"default deny"' "$T/audit.log"
expect_cmd "audit has a forbid decision" grep -q '"policies":\["lockdown"\]' "$T/audit.log"
expect_cmd "audit chain verifies" "$NHID_BIN" audit verify "$T/audit.log"

# Atomic replacement: while policies are replaced in a loop, every request
# is decided by a whole set (200 or 403, never a 5xx).
(
    for i in $(seq 1 40); do
        NHID_TOKEN=$ROOT curl -s -o /dev/null --cacert "$NHID_CACERT" -H "X-Vault-Token: $ROOT" \
            -X PUT --data "{\"policy\":\"permit (principal in Role::\\\"ci\\\", action == Action::\\\"list\\\", resource) when { $i > 0 };\"}" \
            "$NHID_ADDR/v1/sys/policies/cedar/churn"
    done
) &
CHURN=$!
codes=$(for i in $(seq 1 200); do
    curl -s -o /dev/null -w '%{http_code}\n' --cacert "$NHID_CACERT" -H "X-Vault-Token: $CI" \
        -X LIST "$NHID_ADDR/v1/auth/token/accessors"
done | sort | uniq -c)
wait $CHURN
expect_not_contains "no 5xx while the policy set is replaced" "$codes" " 5"

# The worked examples in docs/policy.md validate and pass their unit tests.
EX=$NHID_SOURCE_DIR/docs/examples/policy
expect_cmd "examples validate against the schema" "$NHID_BIN" policy check -schema "$EX/nhid.cedarschema" "$EX/machine-policies.cedar"
expect_cmd "examples pass their policy tests" "$NHID_BIN" policy test -root "$EX" "$EX/machine-policies.test.json"

# A schema refuses policies that do not validate.
SCHEMA=$(jq -Rs . <"$EX/nhid.cedarschema")
api PUT sys/policies/cedar-schema "{\"schema\":$SCHEMA}"
expect_eq "schema stored" "$STATUS" 204
api PUT sys/policies/cedar/typo '{"policy":"permit (principal, action == Action::\"read\", resource) when { principal.knd == \"x\" };"}'
expect_eq "a policy failing validation is refused" "$STATUS" 400
expect_contains "validation error is explained" "$BODY" "knd"

finish
