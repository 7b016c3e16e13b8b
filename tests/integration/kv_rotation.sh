#!/usr/bin/env bash
# kv_rotation — automated rotation of stored secrets: generators (password
# with classes, API key, EC P-256 and Ed25519 key pairs with the public half
# readable separately), the scheduler, grace period, versions_to_keep, the
# next rotation time, `nhid kv rotate`, audit records, and a rotation missed
# while the server was down running at start-up.
source "$(dirname "$0")/lib.sh"

cat >"$T/audit.hcl" <<EOF
audit "file" "main" {
  path = "$T/audit.log"
}
EOF
nhid_start_dev r -config "$T/audit.hcl" || { echo "cannot start server"; exit 1; }

# ---- password: classes, length, first value at once -------------------------------
api PUT secret/rotation/db/pw '{"interval":"2s","generator":{"type":"password","length":24,"classes":["lower","digits"]},"versions_to_keep":10,"grace_period":"5s"}'
expect_eq "password policy accepted" "$STATUS" 200
expect_jq "policy shows next_rotation_time" "$BODY" '.data.next_rotation_time | test("Z$")'
api GET secret/data/db/pw
pw1=$(jq -r .data.data.password <<<"$BODY")
expect_match "first value generated at once (24 chars, lower+digits)" "$pw1" '^[a-z0-9]{24}$'
expect_match "has a digit" "$pw1" '[0-9]'
expect_match "has a lower-case letter" "$pw1" '[a-z]'
sleep 3
api GET secret/metadata/db/pw
expect_jq "scheduler rotated on time" "$BODY" '.data.current_version >= 2'
expect_jq "versions_to_keep=10 sets max_versions" "$BODY" '.data.max_versions == 10'
api GET 'secret/data/db/pw?version=1'
v1_status=$STATUS
api GET secret/data/db/pw
pw2=$(jq -r .data.data.password <<<"$BODY")
expect_ne "rotated value differs" "$pw2" "$pw1"
api GET secret/rotation/db/pw
expect_jq "rotation state: count, last time, last version" "$BODY" \
    '.data.rotation_count >= 2 and (.data.last_rotation_time | length) > 0 and .data.last_version >= 2'
# grace: version 1 stays readable for 5 s after rotation 2 (about 2 s in), so at ~3 s it
# is; then the grace period (not the version limit) destroys it, and that is audited
expect_eq "previous version readable during the grace period" "$v1_status" 200
sleep 9
api GET 'secret/data/db/pw?version=1'
expect_eq "previous version gone after the grace period" "$STATUS" 404
api DELETE secret/rotation/db/pw
expect_eq "policy deleted" "$STATUS" 204
api GET secret/metadata/db/pw
before=$(jq -r .data.current_version <<<"$BODY")
sleep 2.5
api GET secret/metadata/db/pw
expect_eq "no rotation after the policy is deleted" "$(jq -r .data.current_version <<<"$BODY")" "$before"

# ---- API key and rotate now (API and CLI) ------------------------------------------------
api PUT secret/rotation/svc/key '{"interval":"24h","generator":{"type":"api_key","prefix":"nhk_"}}'
api GET secret/data/svc/key
k1=$(jq -r .data.data.api_key <<<"$BODY")
expect_match "api key = prefix + 256-bit base64url" "$k1" '^nhk_[A-Za-z0-9_-]{43}$'
api POST secret/rotate/svc/key ''
expect_eq "rotate now (API)" "$STATUS" 200
expect_jq "rotate answers version 2 and no value" "$BODY" '.data.version == 2 and (.data | has("api_key") | not)'
expect_cmd "nhid kv rotate" "$NHID_BIN" kv rotate secret/svc/key
api GET secret/data/svc/key
expect_jq "now at version 3" "$BODY" '.data.metadata.version == 3'
api GET 'secret/data/svc/key?version=2'
expect_eq "grace 0: previous version destroyed at once" "$STATUS" 404

# ---- key pairs ---------------------------------------------------------------------------------
for alg in ed25519 ec-p256; do
    api PUT "secret/rotation/kp/$alg" "{\"interval\":\"24h\",\"generator\":{\"type\":\"keypair\",\"algorithm\":\"$alg\"}}"
    expect_eq "$alg policy" "$STATUS" 200
    api GET "secret/rotation-public/kp/$alg"
    expect_eq "$alg public half readable" "$STATUS" 200
    jq -r .data.public_key <<<"$BODY" >"$T/$alg.pub"
    expect_not_contains "$alg public endpoint has no private key" "$BODY" "PRIVATE KEY"
    api GET "secret/data/kp/$alg"
    jq -r .data.data.private_key <<<"$BODY" >"$T/$alg.key"
    openssl pkey -in "$T/$alg.key" -pubout -out "$T/$alg.derived.pub" 2>/dev/null
    expect_eq "$alg private key matches the published public key" \
        "$(cat "$T/$alg.derived.pub")" "$(cat "$T/$alg.pub")"
    api POST "secret/rotate/kp/$alg" ''
    api GET "secret/rotation-public/kp/$alg"
    expect_ne "$alg rotation publishes a new public key" "$(jq -r .data.public_key <<<"$BODY")" "$(cat "$T/$alg.pub")"
done
expect_contains "ec-p256 key is EC" "$(openssl pkey -in "$T/ec-p256.key" -noout -text 2>/dev/null | head -1)" "Private-Key: (256 bit"
expect_contains "ed25519 key is Ed25519" "$(openssl pkey -in "$T/ed25519.key" -noout -text 2>/dev/null | head -1)" "ED25519"

# ---- audit ----------------------------------------------------------------------------------------
sleep 0.3
expect_contains "scheduler rotations are audited" "$(cat "$T/audit.log")" '"type":"rotation"'
expect_contains "grace-period destroys are audited" "$(cat "$T/audit.log")" '"operation":"grace-destroy"'
expect_not_contains "audit never holds a generated password" "$(cat "$T/audit.log")" "$pw1"
expect_not_contains "audit never holds a generated API key" "$(cat "$T/audit.log")" "$k1"
expect_cmd "audit chain verifies" "$NHID_BIN" audit verify "$T/audit.log"

# ---- a rotation missed while down runs at start-up ---------------------------------------------------
api PUT secret/rotation/restart/pw '{"interval":"3s","generator":{"type":"password"}}'
api GET secret/rotation/restart/pw
next=$(jq -r .data.next_rotation_time <<<"$BODY")
nhid_stop "$r_PID"
sleep 5   # the rotation falls due while the server is down
nhid_start_dev r -config "$T/audit.hcl" || { echo "cannot restart server"; exit 1; }
ok_restart=0
for _ in $(seq 1 40); do
    api GET secret/metadata/restart/pw
    if jq -e '.data.current_version >= 2' >/dev/null <<<"$BODY"; then ok_restart=1; break; fi
    sleep 0.1
done
expect_eq "missed rotation ran right after restart" "$ok_restart" 1
api GET secret/rotation/restart/pw
expect_jq "next rotation moved past the missed one" "$BODY" ".data.next_rotation_time > \"$next\""

finish
