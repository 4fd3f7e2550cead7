#!/usr/bin/env bash
# strongroom's one test command: installs what the tests need on a fresh Debian machine, then
# runs formatting, lint and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the integration tests drive: OpenSSL (the independent signature verifier),
# curl (raw HTTP), age (share decryption), libfaketime (clock jumps) and PostgreSQL.
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
# PostgreSQL: the storage conformance suite and the multi-node tests start throwaway servers
# (scripts/pg.sh).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
# age (the reference implementation) decrypts shares encrypted to custodians' keys.
command -v age >/dev/null || need+=(age)
# libfaketime moves a running node's clock in the clock-jump test.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need+=(faketime)
command -v cc >/dev/null || need+=(gcc libc6-dev)
# SoftHSM2 is the PKCS#11 token the seal tests create; OpenSC's pkcs11-tool inspects it.
[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
# chrony: real NTP servers with symmetric keys for the trusted-time tests.
[ -x /usr/sbin/chronyd ] || need+=(chrony)
# Python with venv and pip for the oracles (scripts/oracle.sh).
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3 python3-venv)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# Python oracles (eth-account) that the chain tests cross-check signatures against.
STRONGROOM_ORACLE_PYTHON="$(./scripts/oracle.sh)"
export STRONGROOM_ORACLE_PYTHON

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
