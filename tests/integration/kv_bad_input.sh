#!/usr/bin/env bash
# kv_bad_input — KV v2 refuses bad input with the right status and a clear
# message: version not found (404), CAS mismatch (Vault's 400 message),
# paths with "..", "." or empty segments or control characters (400, also
# percent-encoded), folders used as secrets, value size limit (413, set in
# the config file and the 1 MiB default), malformed bodies, wrong methods,
# missing credentials.
source "$(dirname "$0")/lib.sh"

cat >"$T/limits.hcl" <<'EOF'
limits {
  max_value_size = "4KiB"
}
EOF
nhid_start_dev lim -config "$T/limits.hcl" || { echo "cannot start server"; exit 1; }

# ---- value size -------------------------------------------------------------
big=$(head -c 5000 /dev/zero | tr '\0' x)
api POST secret/data/size "{\"data\":{\"v\":\"$big\"}}"
expect_eq "value over limits.max_value_size -> 413" "$STATUS" 413
expect_contains "413 names the limit" "$BODY" "max_value_size"
small=$(head -c 3000 /dev/zero | tr '\0' x)
api POST secret/data/size "{\"data\":{\"v\":\"$small\"}}"
expect_eq "value under the limit -> 200" "$STATUS" 200
api PATCH secret/data/size "{\"data\":{\"w\":\"$small\"}}" -H 'Content-Type: application/merge-patch+json'
expect_eq "PATCH growing past the limit -> 413" "$STATUS" 413

# ---- versions and CAS ---------------------------------------------------------
api POST secret/data/v '{"data":{"a":"1"}}'
api GET 'secret/data/v?version=7'
expect_eq "version not found -> 404" "$STATUS" 404
api GET 'secret/data/v?version=abc'
expect_eq "non-numeric version -> 400" "$STATUS" 400
api GET secret/data/never-written
expect_eq "missing secret -> 404" "$STATUS" 404
api GET secret/metadata/never-written
expect_eq "missing metadata -> 404" "$STATUS" 404
api POST secret/data/v '{"data":{"a":"2"},"options":{"cas":0}}'
expect_eq "CAS mismatch -> 400" "$STATUS" 400
expect_jq "CAS mismatch: Vault's message" "$BODY" \
    '.errors[0] == "check-and-set parameter did not match the current version"'
api POST secret/data/v '{"data":{"a":"2"},"options":{"cas":"x"}}'
expect_eq "non-numeric cas -> 400" "$STATUS" 400
api POST secret/data/v '{"data":{"a":"2"},"options":{"cas":1}}'
expect_eq "matching CAS -> 200" "$STATUS" 200

# ---- bodies ---------------------------------------------------------------------
api POST secret/data/v '{"nodata":1}'
expect_eq "unknown top-level field -> 400" "$STATUS" 400
api POST secret/data/v '{}'
expect_eq "no data -> 400" "$STATUS" 400
api POST secret/data/v '{"data":"string"}'
expect_eq "data not an object -> 400" "$STATUS" 400
api POST secret/data/v '{"data":{"a":'
expect_eq "malformed JSON -> 400" "$STATUS" 400
api POST secret/delete/v '{"versions":"x"}'
expect_eq "versions not a list -> 400" "$STATUS" 400
api POST secret/destroy/v '{"versions":[0]}'
expect_eq "version 0 -> 400" "$STATUS" 400
api POST secret/metadata/v '{"custom_metadata":{"k":1}}'
expect_eq "custom_metadata value not a string -> 400" "$STATUS" 400
api POST secret/metadata/v '{"delete_version_after":"10x"}'
expect_eq "bad duration -> 400" "$STATUS" 400
expect_contains "bad duration names the field" "$BODY" "delete_version_after"
api POST secret/rotation/v '{"interval":"1h","generator":{"type":"nope"}}'
expect_eq "unknown generator -> 400" "$STATUS" 400
api POST secret/rotation/v '{"interval":"1h","generator":{"type":"password","length":4}}'
expect_eq "password too short -> 400" "$STATUS" 400
api POST secret/rotation/v '{"generator":{"type":"password"}}'
expect_eq "rotation without interval -> 400" "$STATUS" 400

# ---- paths ----------------------------------------------------------------------
for p in 'a/../b' '../b' 'a/./b' 'a//b' 'a/%2e%2e/b' 'a/%2E/b' 'a%2Fb' 'a%00b' 'a%01b' \
         'a%0ab' 'a%0db' 'a%7fb' 'a%1bb'; do
    for m in GET POST; do
        body=''
        [[ $m == POST ]] && body='{"data":{"a":"1"}}'
        api "$m" "secret/data/$p" "$body" --path-as-is
        expect_eq "$m secret/data/$p -> 400" "$STATUS" 400
    done
    api GET "secret/metadata/$p" "" --path-as-is
    expect_eq "GET secret/metadata/$p -> 400" "$STATUS" 400
done
api POST secret/data/folder/ '{"data":{"a":"1"}}'
expect_eq "writing a folder (trailing /) -> 400" "$STATUS" 400
api GET secret/data/folder/
expect_eq "reading a folder -> 400" "$STATUS" 400
long=$(head -c 900 /dev/zero | tr '\0' a)
api POST "secret/data/$long" '{"data":{"a":"1"}}'
expect_eq "path over 768 bytes -> 400" "$STATUS" 400
api LIST secret/metadata/a/../ "" --path-as-is
expect_eq "LIST with .. -> 400" "$STATUS" 400

# ---- methods and credentials -------------------------------------------------------
api LIST secret/data/v
expect_eq "LIST on data/ -> 405" "$STATUS" 405
api GET secret/delete/v
expect_eq "GET on delete/ -> 405" "$STATUS" 405
NHID_TOKEN='' api GET secret/data/v
expect_eq "no token -> 403" "$STATUS" 403
NHID_TOKEN='nhs.not-a-token' api GET secret/data/v
expect_eq "bad token -> 403" "$STATUS" 403
api POST secret/rotate/v ''
expect_eq "rotate without a policy -> 404" "$STATUS" 404

# ---- the 1 MiB default ----------------------------------------------------------------
nhid_start_dev def || { echo "cannot start server"; exit 1; }
/usr/bin/python3 -c 'import json; print(json.dumps({"data": {"v": "x" * (1024 * 1024 + 10)}}))' >"$T/big.json"
api POST secret/data/big "@$T/big.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$NHID_CACERT" -H "X-Vault-Token: $NHID_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$T/big.json" "$NHID_ADDR/v1/secret/data/big")
expect_eq "value over the 1 MiB default -> 413" "$code" 413
/usr/bin/python3 -c 'import json; print(json.dumps({"data": {"v": "x" * (1000 * 1000)}}))' >"$T/ok.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$NHID_CACERT" -H "X-Vault-Token: $NHID_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$T/ok.json" "$NHID_ADDR/v1/secret/data/big")
expect_eq "a 1,000,000-byte value is accepted" "$code" 200
api GET secret/data/big
expect_jq "and reads back whole" "$BODY" '.data.data.v | length == 1000000'

finish
