#!/usr/bin/env bash
# foundation_mtls.sh — a listener with tls_client_ca_file requires a client
# certificate that chains to that CA: no certificate, a self-signed one, one
# from another CA, or an expired one fail the TLS handshake; the right one
# works with openssl s_client, curl and the nhid CLI.
source "$(dirname "$0")/lib.sh"

C=$T/clients
mkdir -p "$C"
# mkcert NAME ISSUER_CERT ISSUER_KEY [openssl x509 args...] — EC client cert.
mkcert() {
    local n=$1 ca=$2 cakey=$3
    shift 3
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" \
        -keyout "$C/$n-key.pem" -out "$C/$n.csr" 2>/dev/null &&
        printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$C/client.ext" &&
        openssl x509 -req -in "$C/$n.csr" -CA "$ca" -CAkey "$cakey" -CAcreateserial \
            -extfile "$C/client.ext" "$@" -out "$C/$n.pem" 2>/dev/null
}
mkca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$1" -keyout "$C/$1-key.pem" -out "$C/$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
}

expect_cmd "generate the client CA" mkca client-ca
expect_cmd "generate another CA (not trusted by the server)" mkca other-ca
expect_cmd "client cert signed by the trusted CA" mkcert good "$C/client-ca.pem" "$C/client-ca-key.pem" -days 2
expect_cmd "client cert signed by the other CA" mkcert foreign "$C/other-ca.pem" "$C/other-ca-key.pem" -days 2
# Same subject as the good one, self-signed.
expect_cmd "self-signed client cert" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -days 2 -subj "/CN=good" -keyout "$C/self-key.pem" -out "$C/self.pem"
# A trusted-CA cert whose validity ended in the past.
if openssl x509 -help 2>&1 | grep -q -- '-not_before'; then
    expect_cmd "expired client cert" mkcert expired "$C/client-ca.pem" "$C/client-ca-key.pem" \
        -not_before 20200101000000Z -not_after 20200102000000Z
else
    # Older openssl: -days 0 gives a certificate that is no longer valid a second later.
    expect_cmd "expired client cert" mkcert expired "$C/client-ca.pem" "$C/client-ca-key.pem" -days 0
    sleep 1
fi
expect_cmd "good cert verifies against the client CA (sanity)" \
    openssl verify -CAfile "$C/client-ca.pem" "$C/good.pem"

LISTENER_EXTRA="  tls_client_ca_file = \"$C/client-ca.pem\"" nhid_prod_config srv
nhid_start_config srv "$srv_CONFIG" "$srv_CACERT" "" --cert "$C/good.pem" --key "$C/good-key.pem" ||
    { echo "FATAL: mTLS server did not start"; exit 1; }
HP=127.0.0.1:$srv_PORT
echo "server: $srv_ADDR (pid $srv_PID)"

# handshake [s_client args...] — prints "OK" if an HTTP request completed
# over the connection, the s_client output otherwise.
handshake() {
    local out
    out=$(printf 'GET /v1/sys/seal-status HTTP/1.1\r\nHost: nhid\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -connect "$HP" -CAfile "$srv_CACERT" -quiet "$@" 2>&1)
    if [[ $out == *"HTTP/1.1 200"* ]]; then echo OK; else echo "$out"; fi
}

for v in -tls1_2 -tls1_3; do
    out=$(handshake "$v")
    expect_ne "no client certificate ($v): handshake fails" "$out" OK
    out=$(handshake "$v" -cert "$C/self.pem" -key "$C/self-key.pem")
    expect_ne "self-signed client certificate ($v): handshake fails" "$out" OK
    out=$(handshake "$v" -cert "$C/foreign.pem" -key "$C/foreign-key.pem")
    expect_ne "certificate from an untrusted CA ($v): handshake fails" "$out" OK
    out=$(handshake "$v" -cert "$C/expired.pem" -key "$C/expired-key.pem")
    expect_ne "expired certificate from the trusted CA ($v): handshake fails" "$out" OK
    out=$(handshake "$v" -cert "$C/good.pem" -key "$C/good-key.pem")
    expect_eq "certificate from the trusted CA ($v): request served" "$out" OK
    # Key that does not match the certificate: s_client refuses locally or the server does.
    out=$(handshake "$v" -cert "$C/good.pem" -key "$C/self-key.pem")
    expect_ne "good certificate with the wrong private key ($v): fails" "$out" OK
done

# The server advertises the client CA in its CertificateRequest.
out=$(openssl s_client -connect "$HP" -CAfile "$srv_CACERT" -tls1_2 </dev/null 2>&1)
expect_contains "server asks for a certificate from the client CA" "$out" "CN = client-ca"

# curl
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$srv_CACERT" "$srv_ADDR/v1/sys/seal-status")
expect_eq "curl without --cert: no HTTP response" "$code" 000
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$srv_CACERT" \
    --cert "$C/self.pem" --key "$C/self-key.pem" "$srv_ADDR/v1/sys/seal-status")
expect_eq "curl with a self-signed cert: no HTTP response" "$code" 000
CURL_MTLS=(--cert "$C/good.pem" --key "$C/good-key.pem")
api GET sys/seal-status "" "${CURL_MTLS[@]}"
expect_eq "curl --cert/--key: seal-status 200" "$STATUS" 200
expect_jq "curl --cert/--key: server is uninitialised" "$BODY" '.initialized == false and .sealed == true'

# The whole production bootstrap over mTLS.
NHID_TOKEN='' api PUT sys/init '{"secret_shares": 1, "secret_threshold": 1}' "${CURL_MTLS[@]}"
expect_eq "sys/init over mTLS: 200" "$STATUS" 200
key=$(jq -r '.keys_base64[0]' <<<"$BODY")
root=$(jq -r '.root_token' <<<"$BODY")
NHID_TOKEN='' api PUT sys/unseal "{\"key\": \"$key\"}" "${CURL_MTLS[@]}"
expect_jq "sys/unseal over mTLS: unsealed" "$BODY" '.sealed == false'
NHID_TOKEN=$root api GET auth/token/lookup-self "" "${CURL_MTLS[@]}"
expect_eq "lookup-self over mTLS with the root token: 200" "$STATUS" 200
# A certificate alone is not a credential (no cert auth method is mounted).
NHID_TOKEN='' api GET auth/token/lookup-self "" "${CURL_MTLS[@]}"
expect_eq "client certificate without a token: 403" "$STATUS" 403

# The nhid CLI with NHID_CLIENT_CERT/NHID_CLIENT_KEY.
out=$(NHID_TOKEN=$root NHID_CLIENT_CERT=$C/good.pem NHID_CLIENT_KEY=$C/good-key.pem \
    "$NHID_BIN" status -format=json 2>&1)
expect_jq "nhid status with a client certificate" "$out" '.sealed == false'
out=$(NHID_TOKEN=$root "$NHID_BIN" status 2>&1)
rc=$?
expect_eq "nhid status without a client certificate exits 1" "$rc" 1

# Failed handshakes are counted.
NHID_TOKEN=$root api GET "sys/metrics?format=prometheus" "" "${CURL_MTLS[@]}"
fails=$(sed -n 's/^nhid_tls_handshake_failures_total \([0-9]*\)$/\1/p' <<<"$BODY")
expect_cmd "nhid_tls_handshake_failures_total counts the refused handshakes ($fails)" test "${fails:-0}" -ge 8

NHID_TOKEN='' api GET sys/health "" "${CURL_MTLS[@]}"
expect_eq "server healthy at the end" "$STATUS" 200
finish
