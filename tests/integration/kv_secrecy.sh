#!/usr/bin/env bash
# kv_secrecy — secret values never reach the audit log (HMAC only), the
# server's logs or the database file in clear. Plants unique values, drives
# every path that touches them (API, python3-hvac, the CLI, a non-root token
# decided by Cedar, errors, rotation of generated values), then greps.
source "$(dirname "$0")/lib.sh"

cat >"$T/audit.hcl" <<EOF
audit "file" "main" {
  path = "$T/audit.log"
}
limits {
  max_value_size = "64KiB"
}
EOF
nhid_start_dev s -config "$T/audit.hcl" || { echo "cannot start server"; exit 1; }

rnd() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
C1="canary1-$(rnd)"; C2="canary2-$(rnd)"; C3="canary3-$(rnd)"; C4="canary4-$(rnd)"
C5="canary5-$(rnd)"; C6="canary6-$(rnd)"; C7="canary7-$(rnd)"; C8="canary8-$(rnd)"
CANARIES=("$C1" "$C2" "$C3" "$C4" "$C5" "$C6" "$C7" "$C8")

# ---- API ----------------------------------------------------------------------
api POST secret/data/app/db "{\"data\":{\"password\":\"$C1\",\"nested\":{\"k\":\"$C2\"}}}"
expect_eq "write" "$STATUS" 200
api GET secret/data/app/db
expect_contains "read returns the value" "$BODY" "$C1"
api GET 'secret/data/app/db?version=1'
api PATCH secret/data/app/db "{\"data\":{\"api\":\"$C3\"}}" -H 'Content-Type: application/merge-patch+json'
expect_eq "patch" "$STATUS" 200
api GET secret/subkeys/app/db
expect_eq "subkeys" "$STATUS" 200
api POST secret/metadata/app/db "{\"custom_metadata\":{\"note\":\"$C4\"}}"
api GET secret/metadata/app/db
expect_contains "metadata returns custom_metadata" "$BODY" "$C4"
api LIST secret/metadata/app/
api POST secret/data/app/db "{\"data\":{\"password\":\"$C5\"},\"options\":{\"cas\":1}}"
expect_eq "CAS mismatch carrying a secret -> 400" "$STATUS" 400
big=$(head -c 70000 /dev/zero | tr '\0' x)
api POST secret/data/app/big "{\"data\":{\"password\":\"$C5\",\"pad\":\"$big\"}}"
expect_eq "oversized write carrying a secret -> 413" "$STATUS" 413
api POST secret/delete/app/db '{"versions":[1]}'
api POST secret/undelete/app/db '{"versions":[1]}'
api GET 'secret/data/app/db?version=1'
expect_contains "undeleted version readable" "$BODY" "$C1"
api DELETE secret/data/app/db
api GET secret/data/app/db
expect_eq "deleted latest -> 404" "$STATUS" 404
api POST secret/destroy/app/db '{"versions":[1]}'

# ---- a non-root token, decided by Cedar ------------------------------------------
api PUT sys/policies/cedar/reader '{"policy":"permit (principal in Role::\"reader\", action == Action::\"read\", resource in Path::\"secret/data/team/\");"}'
token_create RT '{"policies":["reader"]}'
NHID_TOKEN=$RT api POST secret/data/team/x "{\"data\":{\"v\":\"$C6\"}}"
expect_eq "reader cannot write" "$STATUS" 403
api POST secret/data/team/x "{\"data\":{\"v\":\"$C6\"}}"
NHID_TOKEN=$RT api GET secret/data/team/x
expect_contains "reader reads (policy permit)" "$BODY" "$C6"
NHID_TOKEN=$RT api GET secret/data/app/db
expect_eq "reader denied outside its folder" "$STATUS" 403

# ---- python3-hvac and the CLI --------------------------------------------------------
/usr/bin/python3 - "$NHID_ADDR" "$NHID_TOKEN" "$NHID_CACERT" "$C7" <<'PY' >"$T/hvac.out" 2>&1
import sys, hvac
c = hvac.Client(url=sys.argv[1], token=sys.argv[2], verify=sys.argv[3])
kv = c.secrets.kv.v2
kv.create_or_update_secret(path="hvac/s", secret={"v": sys.argv[4]})
assert kv.read_secret_version(path="hvac/s")["data"]["data"]["v"] == sys.argv[4]
kv.patch(path="hvac/s", secret={"w": sys.argv[4]})
print("hvac ok")
PY
expect_contains "hvac round trip" "$(cat "$T/hvac.out")" "hvac ok"
expect_cmd "nhid kv put" "$NHID_BIN" kv put secret/cli/s "v=$C8"
out=$("$NHID_BIN" kv get -field=v secret/cli/s 2>&1)
expect_eq "nhid kv get -field" "$out" "$C8"
expect_cmd "nhid kv patch" "$NHID_BIN" kv patch secret/cli/s "w=$C8"
expect_cmd "nhid kv get -format=json" "$NHID_BIN" kv get -format=json secret/cli/s

# ---- rotation: generated values ------------------------------------------------------
api PUT secret/rotation/rot/pw '{"interval":"2s","generator":{"type":"password","length":40},"grace_period":"30s"}'
expect_eq "password rotation policy" "$STATUS" 200
api PUT secret/rotation/rot/key '{"interval":"1h","generator":{"type":"api_key","prefix":"sk_"}}'
api PUT secret/rotation/rot/kp '{"interval":"1h","generator":{"type":"keypair","algorithm":"ed25519"}}'
expect_cmd "nhid kv rotate" "$NHID_BIN" kv rotate secret/rot/key
sleep 3.5
GEN=()
for p in rot/pw rot/key; do
    api GET "secret/metadata/$p"
    cur=$(jq -r .data.current_version <<<"$BODY")
    for v in $(seq 1 "$cur"); do
        api GET "secret/data/$p?version=$v"
        val=$(jq -r '.data.data.password // .data.data.api_key // empty' <<<"$BODY")
        [[ -n $val ]] && GEN+=("$val")
    done
done
api GET secret/data/rot/kp
# one base64 line from the middle of the private key PEM
GEN+=("$(jq -r .data.data.private_key <<<"$BODY" | sed -n 2p)")
expect_ne "generated values collected" "${#GEN[@]}" 0
api GET secret/metadata/rot/pw
expect_jq "scheduler rotated the password (>= 2 versions)" "$BODY" '.data.current_version >= 2'

# ---- the checks ------------------------------------------------------------------------
sleep 0.3
expect_cmd "audit log exists" test -s "$T/audit.log"
expect_contains "audit log has the KV requests" "$(cat "$T/audit.log")" '"path":"secret/data/app/db"'
expect_contains "audit log has scheduler rotations" "$(cat "$T/audit.log")" '"type":"rotation"'
expect_contains "values are recorded as HMACs" "$(cat "$T/audit.log")" '"password":"hmac-sha256:'
# the hash of C1 under the device key appears: the value was recorded, as an HMAC
api POST sys/audit-hash/main "{\"input\":\"$C1\"}"
h=$(jq -r '.data.hash // empty' <<<"$BODY")
expect_ne "audit-hash answers" "$h" ""
[[ -n $h ]] && expect_contains "HMAC of the planted value is in the audit log" "$(cat "$T/audit.log")" "$h"
expect_cmd "audit chain verifies" "$NHID_BIN" audit verify "$T/audit.log"

files=("$T/audit.log" "$T/s.log" "$T/s.out" "$T/hvac.out")
while IFS= read -r f; do files+=("$f"); done < <(find "$T/s" -type f)
for c in "${CANARIES[@]}" "${GEN[@]}"; do
    hits=$(grep -F -l -a -- "$c" "${files[@]}" 2>/dev/null | grep -v 'hvac.out' | tr '\n' ' ')
    expect_eq "value ${c:0:12}... appears in no audit, log or data file" "$hits" ""
done

# Known bug outside kv (http_pipeline.c): a malformed JSON body's parse error
# quotes the offending token ("invalid token near '<value>'") in
# response.errors, which the audit record keeps in clear. Reported; tracked
# here as an expected failure so the fix shows up as XPASS.
LEAK="canaryleak$(tr -dc a-z </dev/urandom | head -c 8)"
api POST secret/data/app/bad "{\"data\":{\"password\":$LEAK}}"
sleep 0.2; echo "# malformed body status: $STATUS"
if grep -F -q -a -- "$LEAK" "$T/audit.log"; then
    echo "xfail - malformed-JSON error text leaks a token into the audit log (http_pipeline bug)"
else
    echo "XPASS - malformed-JSON error no longer leaks (remove this xfail)"
fi

finish
