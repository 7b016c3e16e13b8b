#!/usr/bin/env bash
# Installs the Debian packages nhid needs to build, test and benchmark.
# Silent when everything is present; runs `apt-get update` only when
# something is missing. Usage: scripts/install-deps.sh [build|test|bench|all]
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libssl-dev libevent-dev
            libsqlite3-dev libjansson-dev libcurl4-openssl-dev libgfshare-dev
            libpq-dev)
test_pkgs=(libcmocka-dev curl openssl python3 python3-hvac postgresql
           clang libclang-rt-14-dev nodejs sqlite3 jq)
bench_pkgs=(wrk nginx golang-cfssl)

case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test)  want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all)   want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
