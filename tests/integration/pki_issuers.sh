#!/usr/bin/env bash
# pki_issuers.sh — several issuers side by side: an intermediate generated in
# nhid (CSR) and signed by nhid's root, installed with set-signed; an
# external CA imported with pki/config/ca; rotation (new default, old one
# retired but still trusted and in the bundle); OCSP and CRLs per issuer;
# the CA private key never returned.
source "$(dirname "$0")/lib.sh"

W=$T/w
mkdir -p "$W"
nhid_start_dev srv || { echo "FATAL: server did not start"; exit 1; }

api POST pki/root/generate/internal '{"common_name":"root A","issuer_name":"root-a"}'
expect_eq "root A" "$STATUS" 200
jq -r .data.certificate <<<"$BODY" >"$W/rootA.pem"
api POST identity/machine/svc '{"kind":"service","owner":"ops"}'
SID=$(jq -r .data.spiffe_id <<<"$BODY")
api POST pki/roles/svc '{}'
expect_eq "role svc" "$STATUS" 200

# ---- intermediate ----------------------------------------------------------------
api POST pki/intermediate/generate/internal '{"common_name":"inter B","key_type":"ec","key_bits":384,"issuer_name":"inter-b"}'
expect_eq "intermediate CSR generated" "$STATUS" 200
expect_jq "no private key returned" "$BODY" '.data | has("private_key") | not'
jq -r .data.csr <<<"$BODY" >"$W/inter.csr"
expect_cmd "intermediate CSR verifies" openssl req -in "$W/inter.csr" -verify -noout
api POST pki/root/sign-intermediate "$(jq -n --rawfile c "$W/inter.csr" '{csr:$c, ttl:"8760h"}')"
expect_eq "root signs the intermediate" "$STATUS" 200
jq -r .data.certificate <<<"$BODY" >"$W/inter.pem"
expect_contains "intermediate is a CA" "$(openssl x509 -in "$W/inter.pem" -noout -ext basicConstraints)" "CA:TRUE"
api POST pki/intermediate/set-signed "$(jq -n --rawfile c "$W/inter.pem" '{certificate:$c}')"
expect_eq "set-signed installs the intermediate" "$STATUS" 200
INTER_ID=$(jq -r .data.issuer_id <<<"$BODY")
api POST pki/intermediate/set-signed "$(jq -n --rawfile c "$W/rootA.pem" '{certificate:$c}')"
expect_eq "set-signed with a certificate matching no pending key refused" "$STATUS" 400

# Role on the intermediate; leaf chains to root A through it.
api POST pki/roles/svc-b "{\"issuer_ref\":\"inter-b\"}"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k1.pem" -out "$W/r1.csr" -subj /CN=x 2>/dev/null
api POST pki/sign/svc-b "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID" '{csr:$c, spiffe_id:$s}')"
expect_eq "sign with the intermediate" "$STATUS" 200
jq -r .data.certificate <<<"$BODY" >"$W/leafB.pem"
jq -r '.data.ca_chain[]' <<<"$BODY" >"$W/chainB.pem"
expect_jq "ca_chain = intermediate + root" "$BODY" '.data.ca_chain | length == 2'
expect_cmd "leaf verifies through the intermediate to root A" \
    openssl verify -CAfile "$W/rootA.pem" -untrusted "$W/inter.pem" -purpose sslclient "$W/leafB.pem"
SERB=$(jq -r .data.serial_number <<<"$BODY")
api POST pki/revoke "{\"serial_number\":\"$SERB\"}"
sleep 0.2
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/issuer/$INTER_ID/crl/pem" -o "$W/crlB.pem"
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/crl/pem" -o "$W/crlA.pem"
cat "$W/crlA.pem" "$W/crlB.pem" >"$W/crls.pem"
expect_fail "intermediate's CRL revokes its leaf (-crl_check_all)" \
    openssl verify -crl_check_all -CAfile "$W/rootA.pem" -untrusted "$W/inter.pem" -CRLfile "$W/crls.pem" "$W/leafB.pem"
out=$(openssl ocsp -issuer "$W/inter.pem" -cert "$W/leafB.pem" -url "$NHID_ADDR/v1/pki/ocsp" \
    -CAfile "$W/rootA.pem" -verify_other "$W/inter.pem" 2>&1)
expect_contains "OCSP signed by the intermediate: revoked" "$out" "leafB.pem: revoked"
expect_contains "OCSP response from the intermediate verifies" "$out" "Response verify OK"

# ---- import an external CA -----------------------------------------------------------
openssl req -x509 -newkey rsa:3072 -nodes -days 30 -subj "/CN=external CA" \
    -keyout "$W/ext.key" -out "$W/ext.pem" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
api POST pki/config/ca "$(jq -n --rawfile k "$W/ext.key" --rawfile c "$W/ext.pem" '{pem_bundle:($c+$k), issuer_name:"ext"}')"
expect_eq "import an RSA CA (PEM bundle)" "$STATUS" 200
EXT_ID=$(jq -r .data.issuer_id <<<"$BODY")
api POST pki/config/ca "$(jq -n --rawfile c "$W/ext.pem" '{pem_bundle:$c}')"
expect_eq "import without a key refused" "$STATUS" 400
expect_contains "import without a key: names the field" "$BODY" 'pem_bundle'
api GET "pki/issuer/$EXT_ID"
expect_jq "issuer read shows no key" "$BODY" '(.data | has("private_key") | not) and .data.key_type == "rsa-3072"'
expect_not_contains "issuer read never contains key material" "$BODY" "PRIVATE KEY"
api POST pki/roles/svc-ext '{"issuer_ref":"ext"}'
api POST pki/sign/svc-ext "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID" '{csr:$c, spiffe_id:$s}')"
expect_eq "sign with the imported CA" "$STATUS" 200
jq -r .data.certificate <<<"$BODY" >"$W/leafE.pem"
expect_cmd "leaf verifies against the imported CA" openssl verify -CAfile "$W/ext.pem" "$W/leafE.pem"

# ---- rotation: new root, make it the default, retire the old one ----------------------
NHID_TOKEN= api GET spiffe/bundle
seq0=$(jq .spiffe_sequence <<<"$BODY")
api POST pki/root/generate/internal '{"common_name":"root C","issuer_name":"root-c"}'
ROOTC=$(jq -r .data.issuer_id <<<"$BODY")
jq -r .data.certificate <<<"$BODY" >"$W/rootC.pem"
api POST pki/issuer/root-a '{"retired":true}'
expect_eq "the default issuer cannot be retired" "$STATUS" 409
api POST pki/config/issuers "{\"default\":\"$ROOTC\"}"
expect_eq "root C becomes the default" "$STATUS" 200
api POST pki/issuer/root-a '{"retired":true}'
expect_eq "root A retired" "$STATUS" 200
api POST pki/sign/svc "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID" '{csr:$c, spiffe_id:$s}')"
expect_eq "the default role now signs with root C" "$STATUS" 200
jq -r .data.certificate <<<"$BODY" >"$W/leafC.pem"
expect_cmd "new leaf verifies against root C" openssl verify -CAfile "$W/rootC.pem" "$W/leafC.pem"
api POST pki/roles/svc-a '{"issuer_ref":"root-a"}'
api POST pki/sign/svc-a "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID" '{csr:$c, spiffe_id:$s}')"
expect_eq "a retired issuer signs nothing new" "$STATUS" 400
expect_contains "retired: the message says so" "$BODY" "retired"
NHID_TOKEN= api GET spiffe/bundle
expect_jq "bundle keeps the retired root (overlap) and adds root C" "$BODY" '.keys | length == 4'
expect_cmd "bundle sequence increased with each change" test "$(jq .spiffe_sequence <<<"$BODY")" -ge $((seq0 + 3))
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/ca/pem" -o "$W/ca-default.pem"
expect_eq "pki/ca/pem is the new default" "$(openssl x509 -in "$W/ca-default.pem" -noout -subject)" "subject=CN = root C"
NHID_TOKEN= api GET pki/issuers?list=true
expect_eq "issuer list needs a token" "$STATUS" 403

finish
