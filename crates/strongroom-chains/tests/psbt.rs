//! Bitcoin PSBT planning and signing: BIP-341's key-path sighash and signature vectors, and
//! PSBTs built here for "abandon ... about" wallets (BIP-84 and BIP-86), honest and hostile.
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint};
use bitcoin::hashes::Hash as _;
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::secp256k1::{PublicKey, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache};
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness, absolute,
    transaction,
};
use strongroom_chains::Error;
use strongroom_chains::psbt::{InputKind, InputSignature, parse_psbt, plan};
use strongroom_core::Algorithm;
use strongroom_core::wallet::{AddressType, BitcoinNetwork, HARDENED, WalletPublic, WalletSpec};
use strongroom_crypto::{HdSeed, Payload, SigningKey};

const ABANDON: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// BIP-341's key-path spending vectors: our sighash of every input (all hash types) and our
/// tweaked signature with zero auxiliary randomness are the published ones.
#[test]
fn bip341_key_path_sighashes_and_signatures() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bip341-wallet-test-vectors.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for case in json["keyPathSpending"].as_array().unwrap() {
        let tx: Transaction = bitcoin::consensus::deserialize(
            &hex::decode(case["given"]["rawUnsignedTx"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let prevouts: Vec<TxOut> = case["given"]["utxosSpent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| TxOut {
                value: Amount::from_sat(u["amountSats"].as_u64().unwrap()),
                script_pubkey: ScriptBuf::from_hex(u["scriptPubKey"].as_str().unwrap()).unwrap(),
            })
            .collect();
        for input in case["inputSpending"].as_array().unwrap() {
            let given = &input["given"];
            let index = usize::try_from(given["txinIndex"].as_u64().unwrap()).unwrap();
            let hash_type = u8::try_from(given["hashType"].as_u64().unwrap()).unwrap();
            let sighash = strongroom_chains::psbt::taproot_key_spend_sighash(
                &tx, &prevouts, index, hash_type,
            )
            .unwrap();
            assert_eq!(
                hex::encode(sighash),
                input["intermediary"]["sigHash"].as_str().unwrap()
            );
            let key = SigningKey::from_secret_bytes(
                Algorithm::Secp256k1,
                &hex::decode(given["internalPrivkey"].as_str().unwrap()).unwrap(),
            )
            .unwrap();
            let root: Option<[u8; 32]> = given["merkleRoot"]
                .as_str()
                .map(|r| hex::decode(r).unwrap().try_into().unwrap());
            let sig = key
                .sign_taproot_key_spend(&sighash, root.as_ref(), &[0; 32])
                .unwrap();
            let witness = input["expected"]["witness"][0].as_str().unwrap();
            let mut expected = hex::encode(sig);
            if hash_type != 0 {
                expected.push_str(&format!("{hash_type:02x}"));
            }
            assert_eq!(expected, witness);
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

fn wallet(address_type: AddressType) -> (HdSeed, WalletPublic) {
    let seed = HdSeed::from_mnemonic(ABANDON, "").unwrap();
    let w = seed
        .wallet_public(WalletSpec::Bitcoin {
            network: BitcoinNetwork::Bitcoin,
            address_type,
        })
        .unwrap();
    (seed, w)
}

fn full_path(w: &WalletPublic, change: bool, index: u32) -> Vec<u32> {
    let mut p = w.spec.account_path().to_vec();
    p.extend([u32::from(change), index]);
    p
}

fn source(w: &WalletPublic, path: &[u32]) -> (Fingerprint, DerivationPath) {
    (
        Fingerprint::from(w.master_fingerprint),
        DerivationPath::from(
            path.iter()
                .map(|&i| ChildNumber::from(i))
                .collect::<Vec<_>>(),
        ),
    )
}

fn script(w: &WalletPublic, change: bool, index: u32) -> ScriptBuf {
    let a = strongroom_chains::address(w, change, index).unwrap();
    bitcoin::Address::from_str(&a.address)
        .unwrap()
        .assume_checked()
        .script_pubkey()
}

fn public_key(w: &WalletPublic, change: bool, index: u32) -> PublicKey {
    PublicKey::from_slice(&strongroom_chains::child_public_key(&w.account, change, index).unwrap())
        .unwrap()
}

/// A stranger's P2WPKH script (the BIP-173 example).
fn foreign_script() -> ScriptBuf {
    bitcoin::Address::from_str("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
        .unwrap()
        .assume_checked()
        .script_pubkey()
}

/// A transaction funding `scripts` (so it can be a PSBT's previous transaction).
fn funding(scripts: &[(ScriptBuf, u64)], salt: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([salt; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: scripts
            .iter()
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    }
}

/// A PSBT spending receive addresses 0 and 3 of `w` (50,000 and 30,000 sat), paying 60,000 to
/// a stranger and 19,000 back to change address 1 (fee 1,000), with derivation claims.
fn payment(w: &WalletPublic) -> Psbt {
    let prev = funding(
        &[(script(w, false, 0), 50_000), (script(w, false, 3), 30_000)],
        7,
    );
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: (0..2)
            .map(|vout| TxIn {
                previous_output: OutPoint::new(prev.compute_txid(), vout),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![
            TxOut {
                value: Amount::from_sat(60_000),
                script_pubkey: foreign_script(),
            },
            TxOut {
                value: Amount::from_sat(19_000),
                script_pubkey: script(w, true, 1),
            },
        ],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
    let taproot = matches!(
        w.spec,
        WalletSpec::Bitcoin {
            address_type: AddressType::P2tr,
            ..
        }
    );
    for (i, index) in [(0usize, 0u32), (1, 3)] {
        let input = &mut psbt.inputs[i];
        input.witness_utxo = Some(prev.output[i].clone());
        let pk = public_key(w, false, index);
        let src = source(w, &full_path(w, false, index));
        if taproot {
            input
                .tap_key_origins
                .insert(XOnlyPublicKey::from(pk), (vec![], src));
        } else {
            input.non_witness_utxo = Some(prev.clone());
            input.bip32_derivation.insert(pk, src);
        }
    }
    let pk = public_key(w, true, 1);
    let src = source(w, &full_path(w, true, 1));
    if taproot {
        psbt.outputs[1]
            .tap_key_origins
            .insert(XOnlyPublicKey::from(pk), (vec![], src));
    } else {
        psbt.outputs[1].bip32_derivation.insert(pk, src);
    }
    psbt
}

fn sign_all(
    seed: &HdSeed,
    w: &WalletPublic,
    p: &strongroom_chains::psbt::PsbtPlan,
) -> Vec<InputSignature> {
    p.inputs
        .iter()
        .map(|i| {
            let key = seed.signing_key(&full_path(w, i.change, i.index)).unwrap();
            match i.kind {
                InputKind::P2wpkh => InputSignature::Ecdsa(
                    key.sign(Payload::Digest(&i.sighash))
                        .unwrap()
                        .compact()
                        .unwrap(),
                ),
                InputKind::P2tr { .. } => InputSignature::Schnorr(
                    key.sign_taproot_key_spend(&i.sighash, None, &[9; 32])
                        .unwrap(),
                ),
            }
        })
        .collect()
}

#[test]
fn p2wpkh_payment_is_planned_signed_and_valid() {
    let (seed, w) = wallet(AddressType::P2wpkh);
    let psbt = payment(&w);
    let text = strongroom_chains::psbt::psbt_base64(&psbt);
    let p = plan(parse_psbt(text.as_bytes()).unwrap(), &w).unwrap();
    assert_eq!(p.fee, 1_000);
    assert_eq!(
        p.inputs
            .iter()
            .map(|i| (i.change, i.index))
            .collect::<Vec<_>>(),
        [(false, 0), (false, 3)]
    );
    assert_eq!(p.outputs[0].own, None);
    assert_eq!(
        p.outputs[0].address,
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    );
    assert_eq!(p.outputs[1].own, Some((true, 1)));
    let sigs = sign_all(&seed, &w, &p);
    let signed = p.finish(&sigs).unwrap();
    let tx: Transaction =
        bitcoin::consensus::deserialize(&hex::decode(signed.tx.unwrap()).unwrap()).unwrap();
    // Each witness is [DER || 0x01, key] and verifies over BIP-143's sighash.
    let secp = Secp256k1::verification_only();
    let prev = psbt.inputs[0].non_witness_utxo.clone().unwrap();
    for (i, index) in [(0usize, 0u32), (1, 3)] {
        let w_items: Vec<&[u8]> = tx.input[i].witness.iter().collect();
        assert_eq!(w_items.len(), 2);
        assert_eq!(w_items[1], public_key(&w, false, index).serialize());
        let sig = bitcoin::ecdsa::Signature::from_slice(w_items[0]).unwrap();
        assert_eq!(sig.sighash_type, EcdsaSighashType::All);
        let h = SighashCache::new(&tx)
            .p2wpkh_signature_hash(
                i,
                &prev.output[i].script_pubkey,
                prev.output[i].value,
                EcdsaSighashType::All,
            )
            .unwrap();
        secp.verify_ecdsa(
            &secp256k1::Message::from_digest(h.to_byte_array()),
            &sig.signature,
            &public_key(&w, false, index),
        )
        .unwrap();
    }
    assert_eq!(tx.compute_txid().to_string(), signed.txid);
    // The returned PSBT carries the partial signatures.
    let back = parse_psbt(signed.psbt.as_bytes()).unwrap();
    assert_eq!(back.inputs[0].partial_sigs.len(), 1);
}

#[test]
fn p2tr_payment_is_planned_signed_and_valid() {
    let (seed, w) = wallet(AddressType::P2tr);
    let psbt = payment(&w);
    let p = plan(psbt.clone(), &w).unwrap();
    assert!(matches!(p.inputs[0].kind, InputKind::P2tr { all: false }));
    assert_eq!(p.outputs[1].own, Some((true, 1)));
    let sigs = sign_all(&seed, &w, &p);
    let signed = p.finish(&sigs).unwrap();
    let tx: Transaction =
        bitcoin::consensus::deserialize(&hex::decode(signed.tx.unwrap()).unwrap()).unwrap();
    let secp = Secp256k1::verification_only();
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    for i in 0..2 {
        let items: Vec<&[u8]> = tx.input[i].witness.iter().collect();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].len(),
            64,
            "SIGHASH_DEFAULT signatures have no type byte"
        );
        let h = SighashCache::new(&tx)
            .taproot_key_spend_signature_hash(
                i,
                &Prevouts::All(&prevouts),
                bitcoin::TapSighashType::Default,
            )
            .unwrap();
        // The output key is the one in the spent script (the BIP-86 tweak of the address key).
        let output_key =
            XOnlyPublicKey::from_slice(&prevouts[i].script_pubkey.as_bytes()[2..]).unwrap();
        secp.verify_schnorr(
            &secp256k1::schnorr::Signature::from_slice(items[0]).unwrap(),
            &secp256k1::Message::from_digest(h.to_byte_array()),
            &output_key,
        )
        .unwrap();
    }
}

/// Without derivation claims, the wallet still recognises its own scripts (within the scan
/// window), and treats the rest as destinations.
#[test]
fn scripts_without_claims_are_recognised_by_scan() {
    let (_, w) = wallet(AddressType::P2wpkh);
    let mut psbt = payment(&w);
    for i in &mut psbt.inputs {
        i.bip32_derivation.clear();
    }
    psbt.outputs[1].bip32_derivation.clear();
    let p = plan(psbt, &w).unwrap();
    assert_eq!(p.inputs[1].index, 3);
    assert_eq!(p.outputs[1].own, Some((true, 1)));
}

fn refused(psbt: Psbt, w: &WalletPublic) -> Error {
    plan(psbt, w).unwrap_err()
}

#[test]
fn hostile_psbts_are_refused() {
    let (_, w) = wallet(AddressType::P2wpkh);

    // An input from another wallet.
    let mut psbt = payment(&w);
    let stranger = funding(&[(foreign_script(), 50_000)], 9);
    psbt.unsigned_tx.input[0].previous_output = OutPoint::new(stranger.compute_txid(), 0);
    psbt.inputs[0].non_witness_utxo = Some(stranger.clone());
    psbt.inputs[0].witness_utxo = Some(stranger.output[0].clone());
    psbt.inputs[0].bip32_derivation.clear();
    assert_eq!(
        refused(psbt, &w),
        Error::PsbtInput(0, "it is not this wallet's")
    );

    // "Change" to a foreign address, claiming our change path.
    let mut psbt = payment(&w);
    psbt.unsigned_tx.output[1].script_pubkey = foreign_script();
    assert_eq!(refused(psbt, &w), Error::PsbtDerivationMismatch("output"));

    // An input whose claim is ours but whose script is not.
    let mut lie = payment(&w);
    lie.inputs[0].bip32_derivation.clear();
    lie.inputs[0].bip32_derivation.insert(
        public_key(&w, false, 5),
        source(&w, &full_path(&w, false, 5)),
    );
    assert_eq!(refused(lie, &w), Error::PsbtDerivationMismatch("input"));

    // Sighash modes that leave the transaction open.
    for ty in [
        EcdsaSighashType::None,
        EcdsaSighashType::SinglePlusAnyoneCanPay,
    ] {
        let mut psbt = payment(&w);
        psbt.inputs[1].sighash_type = Some(PsbtSighashType::from(ty));
        assert_eq!(
            refused(psbt, &w),
            Error::PsbtInput(1, "only SIGHASH_ALL is signed")
        );
    }

    // A segwit v0 input without its previous transaction (the fee attack).
    let mut psbt = payment(&w);
    psbt.inputs[0].non_witness_utxo = None;
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));

    // A previous transaction that is not the one spent, or a witness UTXO that lies about
    // the amount.
    let mut psbt = payment(&w);
    psbt.inputs[0].non_witness_utxo = Some(funding(&[(script(&w, false, 0), 50_000)], 8));
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));
    let mut psbt = payment(&w);
    psbt.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(5_000_000);
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));

    // Outputs worth more than the inputs.
    let mut psbt = payment(&w);
    psbt.unsigned_tx.output[0].value = Amount::from_sat(70_000);
    assert_eq!(
        refused(psbt, &w),
        Error::InvalidPsbt("the outputs spend more than the inputs")
    );

    // An output with no address (OP_RETURN).
    let mut psbt = payment(&w);
    psbt.unsigned_tx.output[0].script_pubkey = ScriptBuf::new_op_return([1u8; 4]);
    assert_eq!(
        refused(psbt, &w),
        Error::PsbtOutput(0, "its script has no address")
    );

    // An input already finalized.
    let mut psbt = payment(&w);
    psbt.inputs[0].final_script_witness = Some(Witness::from_slice(&[[1u8; 3]]));
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));

    // The same coin spent twice (its amount would count twice).
    let mut psbt = payment(&w);
    psbt.unsigned_tx.input[1].previous_output = psbt.unsigned_tx.input[0].previous_output;
    assert_eq!(
        refused(psbt, &w),
        Error::InvalidPsbt("an outpoint is spent twice")
    );

    // Claims of the wallet piled on one input (each would cost a derivation).
    let mut psbt = payment(&w);
    for index in 10..13 {
        psbt.inputs[0].bip32_derivation.insert(
            public_key(&w, false, index),
            source(&w, &full_path(&w, false, index)),
        );
    }
    assert_eq!(refused(psbt, &w), Error::PsbtDerivationMismatch("input"));

    // Maps that do not match the transaction (a hand-built PSBT).
    let mut psbt = payment(&w);
    psbt.inputs.pop();
    assert!(matches!(refused(psbt, &w), Error::InvalidPsbt(_)));

    // A wallet of another chain.
    let seed = HdSeed::from_mnemonic(ABANDON, "").unwrap();
    let eth = seed
        .wallet_public(WalletSpec::Ethereum { chain_id: 1 })
        .unwrap();
    assert!(matches!(refused(payment(&w), &eth), Error::InvalidPsbt(_)));

    // Bytes that are not a PSBT, and one too large.
    assert!(matches!(
        parse_psbt(b"cHNidP8Bnotreally"),
        Err(Error::InvalidPsbt(_))
    ));
    assert!(matches!(
        parse_psbt(b"psbt\xff\x00"),
        Err(Error::InvalidPsbt(_))
    ));
    let huge = "A".repeat(strongroom_chains::psbt::MAX_PSBT_BYTES * 2);
    assert_eq!(
        parse_psbt(huge.as_bytes()).unwrap_err(),
        Error::InvalidPsbt("too large")
    );
}

/// Taproot: SIGHASH_ALL is accepted (and signed with its type byte), other modes refused.
#[test]
fn taproot_sighash_modes() {
    let (seed, w) = wallet(AddressType::P2tr);
    let mut psbt = payment(&w);
    psbt.inputs[0].sighash_type = Some(PsbtSighashType::from_u32(1));
    let p = plan(psbt, &w).unwrap();
    assert!(matches!(p.inputs[0].kind, InputKind::P2tr { all: true }));
    let sigs = sign_all(&seed, &w, &p);
    let tx: Transaction = bitcoin::consensus::deserialize(
        &hex::decode(p.finish(&sigs).unwrap().tx.unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(tx.input[0].witness.iter().next().unwrap().len(), 65);
    for ty in [2u32, 3, 0x81, 0x83] {
        let mut psbt = payment(&w);
        psbt.inputs[0].sighash_type = Some(PsbtSighashType::from_u32(ty));
        assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));
    }
    // A script tree or another internal key on our input: not a BIP-86 output of ours.
    let mut psbt = payment(&w);
    psbt.inputs[0].tap_merkle_root = Some(bitcoin::TapNodeHash::assume_hidden([5; 32]));
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(0, _)));
    let mut psbt = payment(&w);
    psbt.inputs[1].tap_internal_key = Some(XOnlyPublicKey::from(public_key(&w, false, 9)));
    assert!(matches!(refused(psbt, &w), Error::PsbtInput(1, _)));
    // A signature by another key (a seed that disagrees with the wallet's public part) is
    // not put into the PSBT.
    let p = plan(payment(&w), &w).unwrap();
    let mut sigs = sign_all(&seed, &w, &p);
    let other = seed.signing_key(&full_path(&w, false, 42)).unwrap();
    sigs[1] = InputSignature::Schnorr(
        other
            .sign_taproot_key_spend(&p.inputs[1].sighash, None, &[0; 32])
            .unwrap(),
    );
    assert_eq!(p.finish(&sigs).unwrap_err(), Error::SignatureMismatch);

    // A key-path claim with the wrong (hardened) index is not ours and is ignored; the
    // script is still found by scanning.
    let mut psbt = payment(&w);
    let pk = public_key(&w, false, 0);
    psbt.inputs[0].tap_key_origins.clear();
    psbt.inputs[0].tap_key_origins.insert(
        XOnlyPublicKey::from(pk),
        (vec![], source(&w, &[HARDENED, 1, 2])),
    );
    assert_eq!(plan(psbt, &w).unwrap().inputs[0].index, 0);
}

/// The fuzz target's wallets (published account xpubs) are the ones this mnemonic derives,
/// so fuzzed PSBTs reach the signing plan.
#[test]
fn fuzz_wallets_are_the_mnemonics() {
    for t in [AddressType::P2wpkh, AddressType::P2tr] {
        assert_eq!(
            strongroom_chains::fuzzing::abandon_wallet(t).unwrap(),
            wallet(t).1
        );
    }
}

/// Policy entries must name destinations of the wallet's chain and network: the server
/// writes a Bitcoin output's address for the wallet's network, so another network's form
/// would never match.
#[test]
fn policy_addresses_fit_the_wallet() {
    use strongroom_chains::policy_address_fits as fits;
    let btc = |network| WalletSpec::Bitcoin {
        network,
        address_type: AddressType::P2wpkh,
    };
    let main = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    let test = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx";
    let reg = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    assert!(fits(btc(BitcoinNetwork::Bitcoin), main));
    assert!(fits(
        btc(BitcoinNetwork::Bitcoin),
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    ));
    assert!(!fits(btc(BitcoinNetwork::Bitcoin), test));
    assert!(fits(btc(BitcoinNetwork::Testnet), test));
    assert!(fits(btc(BitcoinNetwork::Signet), test));
    assert!(!fits(btc(BitcoinNetwork::Testnet), main));
    assert!(fits(btc(BitcoinNetwork::Regtest), reg));
    assert!(!fits(btc(BitcoinNetwork::Regtest), main));
    assert!(!fits(
        btc(BitcoinNetwork::Bitcoin),
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
    ));
    let eth = WalletSpec::Ethereum { chain_id: 1 };
    assert!(fits(eth, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    assert!(!fits(eth, main));
    assert!(!fits(eth, "bob"));
    let eos = WalletSpec::Eos { chain_id: [0; 32] };
    assert!(fits(eos, "bob") && fits(eos, "eosio.token:4,eos"));
    assert!(!fits(eos, main));
}
