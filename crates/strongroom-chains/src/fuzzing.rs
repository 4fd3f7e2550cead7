//! Entry points for the fuzz targets in `fuzz/` and for the tests that replay their corpora:
//! each takes arbitrary bytes and must never panic, whatever it is given.

use std::str::FromStr as _;

use serde_json::Value;
use strongroom_core::wallet::{
    AddressType, BitcoinNetwork, ExtendedPublic, WalletPublic, WalletSpec,
};

/// Parses `data` as an Ethereum transaction object and exercises everything a signature
/// would: the intent, its JSON, the signing hash and the signed encoding.
pub fn eth_transaction(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for chain_id in [1, 5, u64::MAX] {
        if let Ok(parsed) = crate::ethereum::parse_transaction(&v, chain_id) {
            let intent = parsed.tx.intent();
            let _ = intent.to_json();
            let hash = parsed.tx.signing_hash();
            let raw = parsed.tx.signed_raw(&[1; 64], 1);
            // Deterministic: the same input gives the same bytes.
            assert_eq!(hash, parsed.tx.signing_hash());
            assert_eq!(raw, parsed.tx.signed_raw(&[1; 64], 1));
        }
    }
    if let Some(bytes) = v
        .as_str()
        .and_then(|s| alloy_primitives::hex::decode(s).ok())
    {
        let _ = crate::ethereum::decode_call(Some(alloy_primitives::Address::ZERO), &bytes);
    }
}

/// Parses `data` as EIP-712 typed data and hashes it.
pub fn eip712(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(r) = crate::eip712::parse_typed_data(&v, 1) {
        let _ = r.to_json();
        let _ = r.call();
    }
}

/// Decodes `data` as a packed EOS transaction and, if it decodes, computes its digest and JSON.
pub fn eos_transaction(data: &[u8]) {
    if let Ok(tx) = crate::eos::decode_transaction(data) {
        let _ = tx.to_json();
        let _ = crate::eos::signing_digest(&[0; 32], data, &[]);
    }
}

/// Parses `data` as a PSBT (binary or base64) and plans it for the BIP-84 and BIP-86 wallets
/// of the "abandon ... about" mnemonic; a plan is finished with dummy signatures (which the
/// finisher must reject or place, never panic on).
pub fn psbt(data: &[u8]) {
    let Ok(parsed) = crate::psbt::parse_psbt(data) else {
        return;
    };
    for address_type in [AddressType::P2wpkh, AddressType::P2tr] {
        let Some(w) = abandon_wallet(address_type) else {
            return;
        };
        if let Ok(plan) = crate::psbt::plan(parsed.clone(), &w) {
            let _ = plan.to_json(&w);
            let _ = plan.psbt_base64();
            let sigs: Vec<_> = plan
                .inputs
                .iter()
                .map(|i| match i.kind {
                    crate::psbt::InputKind::P2wpkh => crate::psbt::InputSignature::Ecdsa([1; 64]),
                    crate::psbt::InputKind::P2tr { .. } => {
                        crate::psbt::InputSignature::Schnorr([1; 64])
                    }
                })
                .collect();
            let _ = plan.finish(&sigs);
        }
    }
}

/// The account keys BIP-84 and BIP-86 publish for "abandon ... about" (master fingerprint
/// 73c5da0a).
#[must_use]
pub fn abandon_wallet(address_type: AddressType) -> Option<WalletPublic> {
    let xpub = match address_type {
        AddressType::P2wpkh => {
            "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"
        }
        AddressType::P2tr => {
            "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
        }
    };
    let x = bitcoin::bip32::Xpub::from_str(xpub).ok()?;
    Some(WalletPublic {
        spec: WalletSpec::Bitcoin {
            network: BitcoinNetwork::Bitcoin,
            address_type,
        },
        master_fingerprint: [0x73, 0xc5, 0xda, 0x0a],
        account: ExtendedPublic {
            depth: x.depth,
            parent_fingerprint: x.parent_fingerprint.to_bytes(),
            child_number: u32::from(x.child_number),
            chain_code: x.chain_code.to_bytes(),
            public_key: x.public_key.serialize(),
        },
    })
}
