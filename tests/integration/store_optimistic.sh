#!/usr/bin/env bash
# store_optimistic — write routes whose handlers run on the event loops
# against a staged txn (NHID_ROUTE_OPTIMISTIC: KV writes, token create,
# AppRole login, PKI sign) stay serialisable under concurrency:
#   - concurrent writes to ONE KV secret: every write acknowledged gets its
#     own version, none is lost (conflicting staged writes are re-run in
#     the writer, counted in nhid_write_conflicts_total);
#   - a secret ID with num_uses=N used by many logins at once logs in
#     exactly N times;
#   - concurrent token creations are all distinct and usable.
source "$(dirname "$0")/lib.sh"

nhid_start_dev srv || { echo "cannot start server"; exit 1; }

# parallel_post PATH BODY COUNT TOKEN OUTDIR — COUNT POSTs at once (curl --parallel);
# each response body in OUTDIR/N, status codes in OUTDIR/codes.
parallel_post() {
    local path=$1 body=$2 count=$3 token=$4 out=$5 i
    mkdir -p "$out"
    : >"$out/curl.cfg"
    printf '%s' "$body" >"$out/body.json"
    # Options after "next" start afresh: every request carries its own.
    for i in $(seq 1 "$count"); do
        {
            echo "url = \"$NHID_ADDR/v1/$path\""
            echo "output = \"$out/$i\""
            echo "request = \"POST\""
            echo "data-binary = \"@$out/body.json\""
            echo "header = \"Content-Type: application/json\""
            [[ -n $token ]] && echo "header = \"X-Vault-Token: $token\""
            echo "cacert = \"$NHID_CACERT\""
            echo "write-out = \"%{http_code}\\n\""
            ((i < count)) && echo "next"
        } >>"$out/curl.cfg"
    done
    curl -sS --parallel --parallel-immediate --parallel-max 32 -K "$out/curl.cfg" \
        >"$out/codes" 2>"$out/errors"
}

conflicts() {
    api GET 'sys/metrics?format=prometheus'
    awk '/^nhid_write_conflicts_total / {print $2}' <<<"$BODY"
}

# ---- one KV secret, many writers ---------------------------------------------------
N=200
parallel_post secret/data/race '{"data":{"k":"v"}}' $N "$srv_TOKEN" "$T/kv"
expect_eq "all $N concurrent writes acknowledged" "$(grep -c '^200$' "$T/kv/codes")" $N
versions=$(cat "$T"/kv/[0-9]* | jq -r '.data.version' | sort -n | uniq)
expect_eq "each acknowledged write has its own version" "$(wc -l <<<"$versions")" $N
expect_eq "versions are 1..$N" "$(head -1 <<<"$versions"),$(tail -1 <<<"$versions")" "1,$N"
api GET secret/metadata/race
expect_jq "metadata current_version is $N (no lost update)" "$BODY" ".data.current_version == $N"
c=$(conflicts)
expect_cmd "conflicting staged writes were re-run in the writer (nhid_write_conflicts_total=$c)" \
    test "${c:-0}" -gt 0

# ---- a secret ID's use limit holds under concurrent logins -------------------------------
api POST identity/machine/race-1 '{"kind":"workload","owner":"team"}'
api POST auth/approle/role/race '{"identity":"race-1","token_ttl":"5m"}'
expect_eq "role created" "$STATUS" 204
api GET auth/approle/role/race/role-id
role_id=$(jq -r .data.role_id <<<"$BODY")
api POST auth/approle/role/race/secret-id '{"num_uses":5}'
secret_id=$(jq -r .data.secret_id <<<"$BODY")
parallel_post auth/approle/login "{\"role_id\":\"$role_id\",\"secret_id\":\"$secret_id\"}" 40 "" "$T/login"
expect_eq "a secret ID with num_uses=5 logs in exactly 5 times out of 40" \
    "$(grep -c '^200$' "$T/login/codes")" 5
# The failures trip the per-address login rate limit part way: 403, then 429.
expect_eq "the other 35 are refused (403, or 429 once rate limited)" \
    "$(grep -cE '^(403|429)$' "$T/login/codes")" 35

# ---- concurrent token creation ---------------------------------------------------------
parallel_post auth/token/create '{"policies":["default"],"ttl":"10m"}' 100 "$srv_TOKEN" "$T/tok"
expect_eq "100 concurrent token creations acknowledged" "$(grep -c '^200$' "$T/tok/codes")" 100
tokens=$(cat "$T"/tok/[0-9]* | jq -r '.auth.client_token' | sort -u)
expect_eq "100 distinct tokens" "$(wc -l <<<"$tokens")" 100
bad=0
for t in $(shuf -n 10 <<<"$tokens"); do
    NHID_TOKEN=$t api GET auth/token/lookup-self
    [[ $STATUS == 200 ]] || bad=$((bad + 1))
done
expect_eq "sampled tokens are usable" "$bad" 0

finish
