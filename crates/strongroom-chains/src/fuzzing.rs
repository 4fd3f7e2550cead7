//! Entry points for the fuzz targets in `fuzz/` and for the tests that replay their corpora:
//! each takes arbitrary bytes and must never panic, whatever it is given.

use serde_json::Value;

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
