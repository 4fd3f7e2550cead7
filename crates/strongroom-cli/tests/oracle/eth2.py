"""Independent Ethereum validator-key oracle for the tests: BIP-39 seeds (hashlib PBKDF2),
EIP-2333 derivation written here from the EIP's text (hashlib, hmac), and BLS12-381 public
keys and signature checks by py_ecc. Reads one JSON request on stdin, writes one JSON answer
on stdout."""
import hashlib
import hmac
import json
import sys
import unicodedata

from py_ecc.bls import G2ProofOfPossession as bls

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def hkdf_mod_r(ikm, key_info=b""):
    salt, sk = b"BLS-SIG-KEYGEN-SALT-", 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hkdf_extract(salt, ikm + b"\x00")
        okm = hkdf_expand(prk, key_info + (48).to_bytes(2, "big"), 48)
        sk = int.from_bytes(okm, "big") % R
    return sk


def ikm_to_lamport_sk(ikm, salt):
    okm = hkdf_expand(hkdf_extract(salt, ikm), b"", 32 * 255)
    return [okm[i * 32:(i + 1) * 32] for i in range(255)]


def parent_sk_to_lamport_pk(parent_sk, index):
    salt = index.to_bytes(4, "big")
    ikm = parent_sk.to_bytes(32, "big")
    lamport = ikm_to_lamport_sk(ikm, salt) + ikm_to_lamport_sk(bytes(b ^ 0xFF for b in ikm), salt)
    return hashlib.sha256(b"".join(hashlib.sha256(x).digest() for x in lamport)).digest()


def derive(seed, path):
    sk = hkdf_mod_r(seed)
    for index in path:
        sk = hkdf_mod_r(parent_sk_to_lamport_pk(sk, index))
    return sk


def bip39_seed(mnemonic, passphrase=""):
    norm = lambda s: unicodedata.normalize("NFKD", s).encode()
    return hashlib.pbkdf2_hmac("sha512", norm(mnemonic), norm("mnemonic" + passphrase), 2048)


def main():
    req = json.load(sys.stdin)
    out = {}
    if "mnemonic" in req:
        seed = bip39_seed(req["mnemonic"], req.get("passphrase", ""))
        out["public_keys"] = [
            "0x" + bls.SkToPk(derive(seed, [12381, 3600, i, 0, 0])).hex() for i in req["indices"]
        ]
    out["verified"] = [
        bool(bls.Verify(bytes.fromhex(v["public_key"][2:]), bytes.fromhex(v["message"][2:]),
                        bytes.fromhex(v["signature"][2:])))
        for v in req.get("verify", [])
    ]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
