#!/usr/bin/env bash
# Independent oracles for the chain tests: a Python virtual environment with pinned,
# widely used libraries (eth-account signs and decodes Ethereum transactions and messages;
# embit, pure Python, builds, signs and verifies Bitcoin PSBTs; py_ecc, BLS12-381 keys and
# signatures for Ethereum validators; pyca/cryptography with OpenSSL 4 for ML-DSA-65).
# Prints the environment's python. Made once per checkout, under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${STRONGROOM_ORACLE_VENV:-$PWD/target/oracle-venv}"
stamp="$venv/.strongroom-oracle-4"
if [ ! -e "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check eth-account==0.14.0 embit==0.8.0 py_ecc==8.0.0 \
    cryptography==50.0.2 >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
