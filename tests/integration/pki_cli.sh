#!/usr/bin/env bash
# pki_cli.sh — `nhid pki issue|sign|renew|revoke|list` against a dev server:
# files written with the right modes, renewal over mTLS without a token,
# revocation visible to OCSP, listing filters, errors naming the problem.
source "$(dirname "$0")/lib.sh"

W=$T/w
mkdir -p "$W"
nhid_start_dev srv || { echo "FATAL: server did not start"; exit 1; }
N=$NHID_BIN
api POST pki/root/generate/internal '{}'
jq -r .data.certificate <<<"$BODY" >"$W/ca.pem"
api POST identity/machine/web-1 '{"kind":"workload","owner":"a"}'
api POST identity/machine/db-1 '{"kind":"service","owner":"a"}'
api POST pki/roles/web '{"allowed_dns_names":"localhost","ttl":"1h","max_ttl":"48h"}'

expect_cmd "pki issue -out DIR" "$N" pki issue web -spiffe-id spiffe://nhid.local/workload/web-1 -alt-names localhost -out "$W/tls"
expect_eq "key.pem is mode 0600" "$(stat -c %a "$W/tls/key.pem")" 600
expect_cmd "cert.pem verifies with chain.pem" openssl verify -CAfile "$W/tls/chain.pem" "$W/tls/cert.pem"
expect_cmd "key matches the certificate" bash -c "diff <(openssl x509 -in '$W/tls/cert.pem' -noout -pubkey) <(openssl pkey -in '$W/tls/key.pem' -pubout)"
out=$("$N" pki issue web -spiffe-id spiffe://nhid.local/workload/web-1 2>&1)
expect_contains "pki issue without -out refused" "$out" "-out DIR is required"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" -out "$W/r.csr" -subj /CN=x 2>/dev/null
"$N" pki sign web -csr "$W/r.csr" -spiffe-id spiffe://nhid.local/service/db-1 -ttl 24h >"$W/db.pem"
expect_cmd "pki sign prints the certificate" openssl verify -CAfile "$W/ca.pem" "$W/db.pem"
out=$("$N" pki sign web -csr "$W/r.csr" -spiffe-id spiffe://nhid.local/service/db-1 -ttl 72h 2>&1)
expect_contains "pki sign: TTL beyond max_ttl refused with the field named" "$out" 'field "ttl"'
old_serial=$(openssl x509 -in "$W/tls/cert.pem" -noout -serial)
expect_cmd "pki renew (no token, mTLS)" env NHID_TOKEN= "$N" pki renew -cert "$W/tls/cert.pem" -key "$W/tls/key.pem"
expect_ne "renewed: new serial" "$(openssl x509 -in "$W/tls/cert.pem" -noout -serial)" "$old_serial"
expect_eq "renewed key still 0600" "$(stat -c %a "$W/tls/key.pem")" 600
expect_cmd "renewed key matches the new certificate" bash -c "diff <(openssl x509 -in '$W/tls/cert.pem' -noout -pubkey) <(openssl pkey -in '$W/tls/key.pem' -pubout)"
out=$("$N" pki list -identity web-1 -format=json)
expect_jq "pki list -identity web-1: two certificates" "$out" '.data.keys | length == 2'
out=$("$N" pki list -expiring=2h -format=json)
expect_jq "pki list -expiring=2h: the two 1 h certificates" "$out" '.data.keys | length == 2'
out=$("$N" pki list -expiring=30h)
expect_contains "pki list table" "$out" "spiffe://nhid.local/service/db-1"
serial=$(openssl x509 -in "$W/db.pem" -noout -serial | cut -d= -f2)
expect_cmd "pki revoke SERIAL" "$N" pki revoke "$serial" -reason superseded
sleep 0.2
out=$(openssl ocsp -issuer "$W/ca.pem" -cert "$W/db.pem" -url "$NHID_ADDR/v1/pki/ocsp" -CAfile "$W/ca.pem" 2>&1)
expect_contains "revoked through the CLI: OCSP says revoked" "$out" "db.pem: revoked"
out=$("$N" pki revoke not-hex 2>&1)
expect_contains "pki revoke with a bad serial: message names the field" "$out" 'serial_number'
out=$("$N" pki list -identity 'a/b' 2>&1)
expect_contains "pki list -identity with a bad name refused" "$out" "not an identity name"
finish
