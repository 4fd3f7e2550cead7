"""Independent ML-DSA-65 oracle for the tests: OpenSSL (through pyca/cryptography) verifies
strongroom's signatures, signs with keys of its own for strongroom to verify, and derives a
public key from a seed. Reads one JSON request on stdin, writes one JSON answer on stdout."""
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "verify":
        pk = mldsa.MLDSA65PublicKey.from_public_bytes(bytes.fromhex(req["public_key"]))
        try:
            pk.verify(bytes.fromhex(req["signature"]), bytes.fromhex(req["message"]))
            ok = True
        except InvalidSignature:
            ok = False
        json.dump({"valid": ok}, sys.stdout)
    elif op == "sign":
        key = mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(req["seed"]))
        sig = key.sign(bytes.fromhex(req["message"]))
        pub = key.public_key().public_bytes_raw()
        json.dump({"public_key": pub.hex(), "signature": sig.hex()}, sys.stdout)
    else:
        raise SystemExit(f"unknown op {op}")


main()
