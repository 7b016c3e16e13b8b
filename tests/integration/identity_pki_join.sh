#!/usr/bin/env bash
# identity_pki_join.sh — enrollment end to end with the PKI engine: a join
# token plus a CSR gives a token and a first X509-SVID; the SVID logs in with
# auth/cert through nhid's own CA (no cert role configured); the certificate
# is in the identity's inventory; decommission revokes tokens and the
# certificate; the SVID then cannot log in. Skipped when the server has no
# PKI engine.
source "$(dirname "$0")/lib.sh"
nhid_start_dev srv || { echo "cannot start server"; exit 1; }
api POST pki/root/generate/internal '{"common_name":"nhid test root","key_type":"ec"}'
if [[ $STATUS == 404 ]]; then
    echo "skipped: this build has no PKI engine"
    finish
fi
expect_eq "PKI root" "$STATUS" 200
api POST pki/roles/default '{}'
api POST identity/machine/edge-9 '{"kind":"device","owner":"fleet"}'
api POST identity/machine/edge-9/join-token '{"ttl":"5m"}'
JT=$(jq -r .data.join_token <<<"$BODY")
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=edge-9" \
    -keyout "$T/k.pem" -out "$T/c.csr" 2>/dev/null
SAVED=$NHID_TOKEN
NHID_TOKEN=
api POST auth/join/login "$(jq -n --arg t "$JT" --arg c "$(cat "$T/c.csr")" '{join_token:$t, csr:$c}')"
expect_eq "join login with a CSR" "$STATUS" 200
expect_jq "... returns a token for edge-9" "$BODY" '.auth.metadata.identity == "edge-9"'
expect_jq "... and a certificate" "$BODY" '.data.certificate | startswith("-----BEGIN CERTIFICATE-----")'
jq -r .data.certificate <<<"$BODY" >"$T/svid.pem"
expect_contains "the certificate carries the SPIFFE ID" \
    "$(openssl x509 -in "$T/svid.pem" -noout -ext subjectAltName 2>&1)" "spiffe://nhid.local/device/edge-9"
api POST auth/cert/login '{}' --cert "$T/svid.pem" --key "$T/k.pem"
expect_eq "the SVID logs in through nhid's own CA" "$STATUS" 200
expect_jq "... as edge-9 (implicit role nhid-pki)" "$BODY" '.auth.metadata.identity == "edge-9" and .auth.metadata.role == "nhid-pki"'
NHID_TOKEN=$SAVED
api GET identity/machine/edge-9/creds
expect_jq "inventory: the certificate is a credential" "$BODY" '[.data.credentials[] | select(.type == "x509" and .status == "active")] | length == 1'
api POST identity/machine/edge-9/decommission '{"reason":"retired"}'
expect_eq "decommission" "$STATUS" 200
api GET identity/machine/edge-9/creds
expect_jq "every credential revoked, the certificate included" "$BODY" '[.data.credentials[] | select(.status == "active")] | length == 0'
NHID_TOKEN=
api POST auth/cert/login '{}' --cert "$T/svid.pem" --key "$T/k.pem"
expect_eq "the SVID of a decommissioned identity cannot log in" "$STATUS" 403
finish
