#!/usr/bin/env bash
# pki_basic.sh — nhid's CA end to end with real clients: a root CA, a role,
# X509-SVIDs from pki/sign and pki/issue checked field by field against the
# SPIFFE X509-SVID profile and by `openssl verify -purpose sslclient/sslserver`,
# bad input refused with messages naming the field, revocation visible in the
# CRL (`openssl verify -crl_check`) and over OCSP (`openssl ocsp`, nonce
# echoed) within a second, renewal over mTLS, the SPIFFE bundle,
# decommissioning revoking an identity's certificates, and an
# `openssl s_server` requiring client certificates from nhid's CA with its
# CRL: the handshake succeeds, then fails after revocation.
source "$(dirname "$0")/lib.sh"

W=$T/w
mkdir -p "$W"
nhid_start_dev srv || { echo "FATAL: server did not start"; exit 1; }
TD=nhid.local

# json_field FILE FILTER
jf() { jq -r "$2" "$1"; }

# ---- root CA -------------------------------------------------------------------
api POST pki/root/generate/internal '{"common_name":"nhid test root","key_type":"ec","issuer_name":"root-1"}'
expect_eq "root generate: 200" "$STATUS" 200
expect_jq "root generate: no private key returned" "$BODY" '.data | has("private_key") | not'
ROOT_ID=$(jq -r .data.issuer_id <<<"$BODY")
jq -r .data.certificate <<<"$BODY" >"$W/ca.pem"
out=$(openssl x509 -in "$W/ca.pem" -noout -ext subjectAltName,basicConstraints,keyUsage 2>&1)
expect_contains "CA carries the trust domain's SPIFFE ID" "$out" "URI:spiffe://$TD"
expect_contains "CA basicConstraints CA:TRUE" "$out" "CA:TRUE"
expect_contains "CA keyUsage keyCertSign, cRLSign" "$out" "Certificate Sign, CRL Sign"
api POST pki/root/generate/exported '{}'
expect_eq "root generate/exported refused (keys never leave)" "$STATUS" 400
for kt in '"key_type":"ec","key_bits":384' '"key_type":"ed25519"' '"key_type":"rsa","key_bits":2048'; do
    api POST pki/root/generate/internal "{$kt}"
    expect_eq "extra issuer {$kt}: 200" "$STATUS" 200
done
api POST pki/root/generate/internal '{"key_type":"dsa"}'
expect_eq "unknown key type refused" "$STATUS" 400
expect_contains "unknown key type: message names the field and the allowed values" "$BODY" 'key_type'
api GET pki/issuers?list=true
expect_jq "four issuers listed" "$BODY" '.data.keys | length == 4'
expect_jq "the first issuer is the default" "$BODY" ".data.key_info[\"$ROOT_ID\"].is_default"

# ---- identities and roles ------------------------------------------------------------
api POST identity/machine/web-1 '{"kind":"workload","owner":"team-a"}'
expect_eq "register identity web-1" "$STATUS" 200
api POST identity/machine/web-2 '{"kind":"workload","owner":"team-a"}'
SID1="spiffe://$TD/workload/web-1"
api POST pki/roles/web '{"allowed_spiffe_ids":["spiffe://nhid.local/workload/*"],"allowed_dns_names":["*.example.com","localhost"],"allowed_ip_sans":["127.0.0.0/8"],"ttl":"1h","max_ttl":"4h"}'
expect_eq "create role web" "$STATUS" 200
api POST pki/roles/web '{"ttl":"5h","max_ttl":"4h"}'
expect_eq "role with ttl > max_ttl refused" "$STATUS" 400
api POST pki/roles/strict '{"key_type":"rsa","key_bits":3072,"no_store":true}'
expect_eq "create role strict (rsa >= 3072, no_store)" "$STATUS" 200

# ---- sign ------------------------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k1.pem" \
    -out "$W/r1.csr" -subj "/CN=ignored" 2>/dev/null
body=$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s, alt_names:"localhost", ip_sans:"127.0.0.1"}')
api POST pki/sign/web "$body"
expect_eq "sign: 200" "$STATUS" 200
for f in certificate issuing_ca ca_chain serial_number expiration; do
    expect_jq "sign response has $f" "$BODY" ".data | has(\"$f\")"
done
jq -r .data.certificate <<<"$BODY" >"$W/c1.pem"
SER1=$(jq -r .data.serial_number <<<"$BODY")
EXP1=$(jq -r .data.expiration <<<"$BODY")
now=$(date +%s)
expect_cmd "default TTL is 1 h" test $((EXP1 - now)) -ge 3500 -a $((EXP1 - now)) -le 3700
expect_cmd "openssl verify -purpose sslclient" openssl verify -CAfile "$W/ca.pem" -purpose sslclient "$W/c1.pem"
expect_cmd "openssl verify -purpose sslserver" openssl verify -CAfile "$W/ca.pem" -purpose sslserver "$W/c1.pem"
txt=$(openssl x509 -in "$W/c1.pem" -noout -text)
expect_eq "exactly one URI SAN" "$(openssl x509 -in "$W/c1.pem" -noout -ext subjectAltName | grep -o 'URI:' | wc -l)" 1
expect_contains "URI SAN is the SPIFFE ID" "$txt" "URI:$SID1"
expect_contains "DNS and IP SANs" "$txt" "DNS:localhost, IP Address:127.0.0.1"
expect_match "keyUsage critical digitalSignature only (EC)" "$txt" 'Key Usage: critical[[:space:]]+Digital Signature[[:space:]]'
expect_contains "EKU serverAuth + clientAuth" "$txt" "TLS Web Server Authentication, TLS Web Client Authentication"
expect_match "basicConstraints critical CA:FALSE" "$txt" 'Basic Constraints: critical[[:space:]]+CA:FALSE'
expect_contains "SKI present" "$txt" "Subject Key Identifier"
expect_contains "AKI present" "$txt" "Authority Key Identifier"
expect_contains "CRL distribution point at nhid" "$txt" "URI:$NHID_ADDR/v1/pki/issuer/$ROOT_ID/crl"
expect_contains "OCSP AIA at nhid" "$txt" "OCSP - URI:$NHID_ADDR/v1/pki/ocsp"
hex=$(openssl x509 -in "$W/c1.pem" -noout -serial | cut -d= -f2)
expect_cmd "serial has >= 64 bits (16 octets)" test ${#hex} -ge 16
api GET "pki/cert/$SER1"
expect_jq "certificate record stored, tied to the identity" "$BODY" '.data.identity == "web-1" and (.data.certificate | length > 100)'
api GET identity/machine/web-1/creds
expect_contains "certificate recorded as a credential of web-1" "$BODY" "$(tr -d : <<<"$SER1")"

# SANs from the CSR itself (use_csr_sans) and the issue endpoint.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$W/k2.pem" -out "$W/r2.csr" \
    -subj "/CN=x" -addext "subjectAltName=URI:spiffe://$TD/workload/web-1,DNS:a.example.com" 2>/dev/null
api POST pki/sign/web "$(jq -n --rawfile c "$W/r2.csr" '{csr:$c}')"
expect_eq "sign with SANs from the CSR (P-384 key)" "$STATUS" 200
api POST pki/issue/web "{\"spiffe_id\":\"$SID1\",\"alt_names\":\"localhost\",\"ip_sans\":\"127.0.0.1\",\"ttl\":\"2h\"}"
expect_eq "issue: 200" "$STATUS" 200
expect_jq "issue returns the private key once (ec)" "$BODY" '.data.private_key_type == "ec" and (.data.private_key | startswith("-----BEGIN PRIVATE KEY"))'
jq -r .data.certificate <<<"$BODY" >"$W/c3.pem"
jq -r .data.private_key <<<"$BODY" >"$W/k3.pem"
SER3=$(jq -r .data.serial_number <<<"$BODY")
# pki/sign writes an EC CSR's certificate with nhid's DER writer, pki/issue through
# OpenSSL's objects: same request, same ASN.1 shape (values that must differ stripped).
shape() {
    openssl asn1parse -in "$1" | sed -E 's/^ *[0-9]+:d= *([0-9]+) +hl= *[0-9]+ +l= *[0-9]+ /\1 /;
        s/(INTEGER|UTCTIME|BIT STRING|\[HEX DUMP\]) *:.*/\1/'
}
expect_eq "sign (DER writer) and issue (OpenSSL objects): one certificate shape" \
    "$(shape "$W/c1.pem")" "$(shape "$W/c3.pem")"
api GET "pki/cert/$SER3"
expect_not_contains "the private key is not stored" "$BODY" "PRIVATE KEY"
api POST pki/issue/web "{\"spiffe_id\":\"$SID1\",\"key_type\":\"rsa\",\"key_bits\":2048}"
jq -r .data.certificate <<<"$BODY" >"$W/rsa.pem"
expect_contains "RSA SVID: keyEncipherment" "$(openssl x509 -in "$W/rsa.pem" -noout -ext keyUsage)" "Key Encipherment"

# ---- bad input ----------------------------------------------------------------------------
bad() { # NAME ROLE BODY WANT_STATUS NEEDLE
    api POST "pki/sign/$2" "$3"
    expect_eq "$1: status $4" "$STATUS" "$4"
    expect_contains "$1: message names $5" "$BODY" "$5"
}
bad "malformed CSR" web '{"csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}' 400 'field \"csr\"'
big=$(head -c 20000 /dev/zero | tr '\0' A)
bad "oversized CSR" web "{\"csr\":\"$big\"}" 413 'maximum'
openssl req -in "$W/r1.csr" -outform DER -out "$W/r1.der" 2>/dev/null
python3 - "$W/r1.der" "$W/badsig.csr" <<'EOF'
import sys, base64
d = bytearray(open(sys.argv[1], 'rb').read()); d[-5] ^= 0x55
open(sys.argv[2], 'w').write("-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(d)).decode() + "-----END CERTIFICATE REQUEST-----\n")
EOF
bad "CSR whose signature does not verify" web "$(jq -n --rawfile c "$W/badsig.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')" 400 'signature does not verify'
bad "DNS SAN outside the role" web "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s, alt_names:"evil.com"}')" 400 'allowed: *.example.com, localhost'
bad "IP SAN outside the role" web "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s, ip_sans:"10.1.2.3"}')" 400 'field \"ip_sans\"'
bad "SPIFFE ID outside the role" web "$(jq -n --rawfile c "$W/r1.csr" '{csr:$c, spiffe_id:"spiffe://other.org/x"}')" 400 'field \"spiffe_id\"'
bad "two URI SANs" web "$(jq -n --rawfile c "$W/r1.csr" '{csr:$c, uri_sans:["spiffe://nhid.local/workload/web-1","spiffe://nhid.local/workload/web-2"]}')" 400 'exactly one URI SAN'
bad "TTL beyond max_ttl" web "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s, ttl:"5h"}')" 400 'max_ttl'
openssl req -new -newkey rsa:1024 -nodes -keyout "$W/weak.key" -out "$W/weak.csr" -subj /CN=w 2>/dev/null
bad "RSA 1024 refused" web "$(jq -n --rawfile c "$W/weak.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')" 400 'minimum 2048'
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:secp256k1 -nodes -keyout "$W/k1.key" -out "$W/k1.csr" -subj /CN=w 2>/dev/null
bad "secp256k1 refused" web "$(jq -n --rawfile c "$W/k1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')" 400 'use P-256 or P-384'
bad "EC key for an rsa-only role" strict "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')" 400 'allowed: rsa'
bad "unknown role" nope "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')" 400 'unknown role'
bad "unregistered identity" web "$(jq -n --rawfile c "$W/r1.csr" '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/ghost"}')" 400 'no identity'
bad "unknown field" web '{"csr":"x","colour":"red"}' 400 'colour'

# ---- revocation: CRL and OCSP --------------------------------------------------------------
code=$(curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/crl" -o "$W/crl0.der" -w '%{http_code}')
expect_eq "CRL served without a token" "$code" 200
n0=$(openssl crl -inform DER -in "$W/crl0.der" -noout -crlnumber | cut -d= -f2)
openssl crl -inform DER -in "$W/crl0.der" -out "$W/crl0.pem"
expect_cmd "openssl verify -crl_check: good before revocation" openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl0.pem" "$W/c3.pem"
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/c3.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" -verify_other "$NHID_CACERT" 2>&1)
expect_contains "OCSP: good" "$out" "c3.pem: good"
expect_contains "OCSP: response verifies (signed by the issuer)" "$out" "Response verify OK"
expect_not_contains "OCSP: nonce echoed" "$out" "WARNING: no nonce"

# mTLS server requiring nhid client certs, checking nhid's CRL.
SP=$(free_port)
start_s_server() {
    openssl s_server -accept "$SP" -cert "$W/c3.pem" -key "$W/k3.pem" -CAfile "$W/ca.pem" \
        -Verify 1 -verify_return_error -crl_check -CRL "$1" -www -quiet >"$T/s_server.log" 2>&1 &
    SPID=$!
    for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/$SP) 2>/dev/null && break; sleep 0.1; done
}
start_s_server "$W/crl0.pem"
out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$W/ca.pem" --cert "$W/c1.pem" --key "$W/k1.pem" "https://127.0.0.1:$SP/")
expect_eq "curl with the nhid client cert through s_server (CRL checked): handshake OK" "$out" 200

t0=$(date +%s.%N)
api POST pki/revoke "{\"serial_number\":\"$SER1\",\"reason\":\"key_compromise\"}"
expect_eq "revoke: 200" "$STATUS" 200
revoked=no
for _ in $(seq 1 20); do
    curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/crl" -o "$W/crl1.der"
    if openssl crl -inform DER -in "$W/crl1.der" -noout -text | grep -qi "$(tr -d : <<<"$SER1")"; then revoked=yes; break; fi
    sleep 0.05
done
t1=$(date +%s.%N)
expect_eq "revocation in the CRL" "$revoked" yes
expect_cmd "... within 1 s" python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 1.0 else 1)"
n1=$(openssl crl -inform DER -in "$W/crl1.der" -noout -crlnumber | cut -d= -f2)
expect_cmd "CRL number increased" python3 -c "import sys; sys.exit(0 if int('$n1',16) > int('$n0',16) else 1)"
openssl crl -inform DER -in "$W/crl1.der" -out "$W/crl1.pem"
expect_cmd "CRL signature verifies" openssl crl -in "$W/crl1.pem" -CAfile "$W/ca.pem" -noout
expect_contains "CRL has nextUpdate" "$(openssl crl -in "$W/crl1.pem" -noout -nextupdate)" "nextUpdate="
expect_fail "openssl verify -crl_check: revoked cert fails" openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl1.pem" "$W/c1.pem"
expect_cmd "openssl verify -crl_check: other cert still OK" openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl1.pem" "$W/c3.pem"
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/c1.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP: revoked" "$out" "c1.pem: revoked"
expect_contains "OCSP: reason" "$out" "Reason: keyCompromise"
expect_contains "OCSP: revocation time" "$out" "Revocation Time:"
# GET form (RFC 6960 §A.1): the URL-encoded base64 of the request. Its "/"
# arrives as %2F (the OCSP route alone accepts it), or raw.
openssl ocsp -issuer "$W/ca.pem" -cert "$W/c1.pem" -reqout "$W/oreq.der" -no_nonce >/dev/null 2>&1
b=$(base64 -w0 "$W/oreq.der" | sed 's/+/%2B/g; s/=/%3D/g')
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/ocsp/$b" -o "$W/oresp.der"
out=$(openssl ocsp -respin "$W/oresp.der" -issuer "$W/ca.pem" -cert "$W/c1.pem" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP GET: revoked" "$out" "c1.pem: revoked"
# A request whose base64 holds a "/" (loop over nonces until one does), fully URL-encoded.
for _ in $(seq 1 64); do
    openssl ocsp -issuer "$W/ca.pem" -cert "$W/c1.pem" -reqout "$W/oreq2.der" >/dev/null 2>&1
    base64 -w0 "$W/oreq2.der" | grep -q / && break
done
b=$(base64 -w0 "$W/oreq2.der" | sed 's|/|%2F|g; s/+/%2B/g; s/=/%3D/g')
expect_contains "the encoded request carries %2F" "$b" "%2F"
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/ocsp/$b" -o "$W/oresp2.der"
out=$(openssl ocsp -respin "$W/oresp2.der" -resp_text -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP GET with %2F-encoded base64: revoked" "$out" "Cert Status: revoked"
# Unknown serial: a certificate from another CA with the same issuer name is not ours.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=nhid test root" \
    -keyout "$W/fake-ca.key" -out "$W/fake-ca.pem" -days 1 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/forged.key" \
    -out "$W/forged.csr" -subj /CN=forged 2>/dev/null
openssl x509 -req -in "$W/forged.csr" -CA "$W/fake-ca.pem" -CAkey "$W/fake-ca.key" -set_serial 12345 \
    -days 1 -out "$W/forged.pem" 2>/dev/null
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/forged.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP: unknown serial" "$out" "forged.pem: unknown"
printf 'garbage' >"$W/garbage.der"
code=$(curl -s -o "$W/mal.der" -w '%{http_code}' --cacert "$NHID_CACERT" -H 'Content-Type: application/ocsp-request' --data-binary @"$W/garbage.der" "$NHID_ADDR/v1/pki/ocsp")
expect_eq "OCSP: malformed request answered with malformedRequest" "$(xxd -p "$W/mal.der")" 30030a0101

kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
SP=$(free_port)
start_s_server "$W/crl1.pem"
out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$W/ca.pem" --cert "$W/c1.pem" --key "$W/k1.pem" "https://127.0.0.1:$SP/")
expect_ne "s_server with the new CRL: revoked client cert refused" "$out" 200
out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$W/ca.pem" --cert "$W/rsa.pem" --key "$W/k3.pem" "https://127.0.0.1:$SP/" 2>/dev/null)
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null

# ---- renewal over mTLS ---------------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k5.pem" -out "$W/r5.csr" -subj /CN=x 2>/dev/null
rb=$(jq -n --rawfile c "$W/r5.csr" '{csr:$c}')
NHID_TOKEN= api POST pki/renew "$rb" --cert "$W/c3.pem" --key "$W/k3.pem"
expect_eq "renew with the current certificate (no token): 200" "$STATUS" 200
expect_jq "renewed for the same identity" "$BODY" ".data.spiffe_id == \"$SID1\""
jq -r .data.certificate <<<"$BODY" >"$W/c5.pem"
expect_cmd "renewed certificate verifies" openssl verify -CAfile "$W/ca.pem" "$W/c5.pem"
expect_contains "renewed certificate keeps the SANs" "$(openssl x509 -in "$W/c5.pem" -noout -ext subjectAltName)" "DNS:localhost"
NHID_TOKEN= api POST pki/renew "$rb"
expect_eq "renew without a client certificate: 403" "$STATUS" 403
NHID_TOKEN= api POST pki/renew "$rb" --cert "$W/c1.pem" --key "$W/k1.pem"
expect_eq "renew with a revoked certificate: 403" "$STATUS" 403
NHID_TOKEN= api POST pki/renew "$rb" --cert "$W/forged.pem" --key "$W/forged.key"
expect_eq "renew with a certificate nhid did not issue: 403" "$STATUS" 403
NHID_TOKEN= api POST pki/renew "$(jq -n --rawfile c "$W/r5.csr" '{csr:$c}')" --cert "$W/c5.pem" --key "$W/k5.pem"
expect_eq "renew reusing the same key refused" "$STATUS" 400

# ---- SPIFFE bundle ------------------------------------------------------------------------------
NHID_TOKEN= api GET spiffe/bundle
expect_eq "bundle: 200 without a token" "$STATUS" 200
expect_jq "bundle: x509-svid keys with x5c" "$BODY" '(.keys | length == 4) and all(.keys[]; .use == "x509-svid" and (.x5c | length == 1))'
expect_jq "bundle: spiffe_refresh_hint" "$BODY" '.spiffe_refresh_hint > 0'
seq1=$(jq .spiffe_sequence <<<"$BODY")
jq -r '.keys[] | select(.kid == "'"$ROOT_ID"'") | .x5c[0]' <<<"$BODY" | base64 -d >"$W/bundle-ca.der"
expect_eq "bundle x5c is the CA certificate" "$(openssl x509 -inform DER -in "$W/bundle-ca.der" -noout -fingerprint)" "$(openssl x509 -in "$W/ca.pem" -noout -fingerprint)"
api POST pki/root/generate/internal '{"common_name":"rotation root"}'
NHID_TOKEN= api GET spiffe/bundle
expect_cmd "bundle: spiffe_sequence increases on change" test "$(jq .spiffe_sequence <<<"$BODY")" -gt "$seq1"

# ---- lifecycle: suspension puts certificates on hold (OCSP), resume lifts it --------------------
api POST pki/issue/web '{"spiffe_id":"spiffe://nhid.local/workload/web-2"}'
jq -r .data.certificate <<<"$BODY" >"$W/w2.pem"
api POST identity/machine/web-2/suspend '{"reason":"anomaly"}'
expect_eq "suspend web-2" "$STATUS" 200
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/w2.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP: suspended identity's certificate revoked" "$out" "w2.pem: revoked"
expect_contains "OCSP: reason certificateHold" "$out" "certificateHold"
api POST identity/machine/web-2/resume '{"reason":"cleared"}'
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/w2.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP: good again after resume" "$out" "w2.pem: good"

# ---- lifecycle: decommission revokes the identity's certificates -------------------------------
api POST identity/machine/web-1/decommission '{"reason":"test"}'
expect_eq "decommission web-1" "$STATUS" 200
expect_jq "decommission revoked the live certificates" "$BODY" '.data.credentials_revoked >= 3'
sleep 0.3
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/c5.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "OCSP: renewed cert revoked by decommission" "$out" "c5.pem: revoked"
expect_contains "OCSP: reason cessationOfOperation" "$out" "cessationOfOperation"
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/crl/pem" -o "$W/crl2.pem"
expect_fail "CRL: decommissioned identity's cert fails -crl_check" openssl verify -crl_check -CAfile "$W/ca.pem" -CRLfile "$W/crl2.pem" "$W/c3.pem"
api POST pki/sign/web "$(jq -n --rawfile c "$W/r1.csr" --arg s "$SID1" '{csr:$c, spiffe_id:$s}')"
expect_eq "no certificate for a decommissioned identity" "$STATUS" 403

# ---- restart: issuers and revocations survive ----------------------------------------------------
nhid_stop "$srv_PID"
nhid_start_dev srv || { echo "FATAL: restart failed"; finish; }
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/c1.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "after restart: OCSP still revoked" "$out" "c1.pem: revoked"
curl -s --cacert "$NHID_CACERT" "$NHID_ADDR/v1/pki/crl" -o "$W/crl3.der"
n3=$(openssl crl -inform DER -in "$W/crl3.der" -noout -crlnumber | cut -d= -f2)
expect_cmd "after restart: CRL number still increasing" python3 -c "import sys; sys.exit(0 if int('$n3',16) > int('$n1',16) else 1)"
api POST pki/sign/web "$(jq -n --rawfile c "$W/r1.csr" '{csr:$c, spiffe_id:"spiffe://nhid.local/workload/web-2"}')"
expect_eq "after restart: signing works" "$STATUS" 200
if grep -q -- "$(sed -n 2p "$W/k1.pem")" "$srv_DIR/nhid.db" 2>/dev/null; then
    not_ok "no CA key material in plaintext in SQLite"
else
    ok "no key material in plaintext in SQLite"
fi

finish
