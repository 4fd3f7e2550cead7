"""Independent Bitcoin oracle for the tests: embit derives the wallet itself from the mnemonic,
builds PSBTs that spend its coins, signs them itself, and verifies the signatures of finalized
transactions with its own sighash code. Reads one JSON request on stdin, writes one JSON
answer on stdout."""
import json
import sys

from embit import bip32, bip39, ec, script
from embit.networks import NETWORKS
from embit.psbt import PSBT, DerivationPath
from embit.transaction import Transaction, TransactionInput, TransactionOutput

HARDENED = 0x80000000


class Wallet:
    def __init__(self, mnemonic, kind, network):
        self.root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic))
        self.kind = kind
        self.net = NETWORKS[network]
        coin = 0 if network == "main" else 1
        self.account_path = [(84 if kind == "p2wpkh" else 86) + HARDENED, coin + HARDENED, HARDENED]
        self.account = self.root.derive(self.account_path)

    def pub(self, change, index):
        return self.account.derive([change, index]).key.get_public_key()

    def script(self, change, index):
        pub = self.pub(change, index)
        return script.p2wpkh(pub) if self.kind == "p2wpkh" else script.p2tr(pub)

    def address(self, change, index):
        return self.script(change, index).address(self.net)

    def claim(self, scope, change, index):
        pub = self.pub(change, index)
        path = DerivationPath(self.root.my_fingerprint, self.account_path + [change, index])
        if self.kind == "p2wpkh":
            scope.bip32_derivations[pub] = path
        else:
            scope.taproot_bip32_derivations[pub] = ([], path)


def build(w, b):
    """A PSBT spending receive addresses b["inputs"] ([index, sat]...), paying b["outputs"]
    ([address, sat]...) and b["change"] ([index, sat]) back to the wallet's change branch."""
    prev = Transaction(
        vin=[TransactionInput(bytes([b.get("salt", 7)]) * 32, 0)],
        vout=[TransactionOutput(v, w.script(0, i)) for i, v in b["inputs"]],
    )
    vout = [TransactionOutput(v, script.address_to_scriptpubkey(a)) for a, v in b["outputs"]]
    if b.get("change"):
        vout.append(TransactionOutput(b["change"][1], w.script(1, b["change"][0])))
    tx = Transaction(
        vin=[TransactionInput(prev.txid(), n, sequence=0xFFFFFFFD) for n in range(len(b["inputs"]))],
        vout=vout,
    )
    psbt = PSBT(tx)
    for n, (i, _) in enumerate(b["inputs"]):
        psbt.inputs[n].witness_utxo = prev.vout[n]
        if w.kind == "p2wpkh":
            psbt.inputs[n].non_witness_utxo = prev
        w.claim(psbt.inputs[n], 0, i)
    if b.get("change"):
        w.claim(psbt.outputs[-1], 1, b["change"][0])
    text = psbt.to_string()
    # embit signs the same PSBT with the keys it derived.
    mine = PSBT.from_string(text)
    mine.sign_with(w.root)
    sigs = []
    for inp in mine.inputs:
        if w.kind == "p2wpkh":
            sigs.append(list(inp.partial_sigs.values())[0].hex())
        else:
            sigs.append(inp.final_scriptwitness.items[0].hex() if inp.final_scriptwitness else "")
    return {"psbt": text, "embit_signatures": sigs, "fee": psbt.fee()}


def verify(w, v):
    """Checks every input signature of the finalized v["tx"] against the PSBT v["psbt"]."""
    tx = Transaction.from_string(v["tx"])
    psbt = PSBT.from_string(v["psbt"])
    utxos = [inp.utxo for inp in psbt.inputs]
    ok = []
    for n, inp in enumerate(tx.vin):
        items = inp.witness.items
        if w.kind == "p2wpkh":
            sig, pub = items[0], ec.PublicKey.parse(items[1])
            assert sig[-1] == 1, "not SIGHASH_ALL"
            h = tx.sighash_segwit(n, script.p2pkh(pub), utxos[n].value)
            good = pub.verify(ec.Signature.parse(sig[:-1]), h)
        else:
            sig = items[0]
            ty = sig[64] if len(sig) == 65 else 0
            h = tx.sighash_taproot(
                n, [u.script_pubkey for u in utxos], [u.value for u in utxos], sighash=ty
            )
            output_key = ec.PublicKey.from_xonly(utxos[n].script_pubkey.data[2:])
            good = output_key.schnorr_verify(ec.SchnorrSig.parse(sig[:64]), h)
        ok.append(bool(good))
    return {"valid": ok, "txid": tx.txid().hex()}


def main():
    req = json.load(sys.stdin)
    w = Wallet(req["mnemonic"], req["kind"], req.get("network", "main"))
    out = {"addresses": [w.address(0, i) for i in range(4)], "change_addresses": [w.address(1, i) for i in range(2)]}
    if "build" in req:
        out.update(build(w, req["build"]))
    if "verify" in req:
        out.update(verify(w, req["verify"]))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
