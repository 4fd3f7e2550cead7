"""Independent Ethereum oracle for the tests: eth-account signs the same transactions and
messages with the key it derives itself from the mnemonic, and recovers senders of raw
transactions. Reads one JSON request on stdin, writes one JSON answer on stdout."""
import json
import sys

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

QUANTITIES = {"nonce", "gas", "gasPrice", "value", "maxFeePerGas", "maxPriorityFeePerGas", "chainId", "type"}


def hex0x(b):
    h = b.hex()
    return h if h.startswith("0x") else "0x" + h


def to_py(tx):
    out = {}
    for k, v in tx.items():
        if k in QUANTITIES:
            out[k] = int(v, 16)
        elif k == "accessList":
            out[k] = [{"address": i["address"], "storageKeys": i["storageKeys"]} for i in v]
        else:
            out[k] = v
    return out


def main():
    req = json.load(sys.stdin)
    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(req["mnemonic"], account_path=req["path"])
    out = {
        "address": acct.address,
        "raw": [hex0x(acct.sign_transaction(to_py(tx)).raw_transaction) for tx in req.get("txs", [])],
        "signatures": [hex0x(acct.sign_message(encode_defunct(text=m)).signature) for m in req.get("messages", [])],
        "typed_signatures": [hex0x(acct.sign_typed_data(full_message=d).signature) for d in req.get("typed", [])],
        "senders": [Account.recover_transaction(r) for r in req.get("recover", [])],
        "hashes": [hex0x(keccak(hexstr=r)) for r in req.get("recover", [])],
    }
    json.dump(out, sys.stdout)


main()
