//! EIP-712: the specification's own example (hash and signature by the key keccak256("cow")),
//! permits recognised, and another chain's domain refused.
#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::json;
use strongroom_chains::Error;
use strongroom_chains::eip712::{PERMIT2, TypedKind, parse_typed_data};
use strongroom_core::Algorithm;
use strongroom_crypto::{Payload, SigningKey};

fn mail() -> serde_json::Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                     {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

#[test]
fn the_eip712_example() {
    let r = parse_typed_data(&mail(), 1).unwrap();
    assert_eq!(
        hex::encode(r.hash),
        "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    assert_eq!(r.kind, TypedKind::Other);
    // Signed with the example's key, keccak256("cow").
    let cow = alloy_primitives::keccak256(b"cow");
    let key = SigningKey::from_secret_bytes(Algorithm::Secp256k1, cow.as_slice()).unwrap();
    let sig = key.sign(Payload::Digest(&r.hash)).unwrap();
    assert_eq!(
        hex::encode(&sig.bytes[..32]),
        "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
    );
    assert_eq!(
        hex::encode(&sig.bytes[32..]),
        "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"
    );
    assert_eq!(27 + sig.recovery_id.unwrap(), 28);
    // The domain pins a chain: a wallet on another chain refuses it.
    assert_eq!(
        parse_typed_data(&mail(), 5).unwrap_err(),
        Error::ChainIdMismatch {
            wallet: 5,
            transaction: 1
        }
    );
    assert_eq!(
        parse_typed_data(&json!({"types": {}}), 1).unwrap_err(),
        Error::InvalidTypedData
    );
}

#[test]
fn permits_are_recognised() {
    let permit = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "chainId": 1,
                   "verifyingContract": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
        "message": {"owner": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
                    "spender": "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
                    "value": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
                    "nonce": 0, "deadline": 4102444800u64}
    });
    let r = parse_typed_data(&permit, 1).unwrap();
    assert_eq!(r.call(), "permit");
    match r.kind {
        TypedKind::Permit { spender, value, .. } => {
            assert_eq!(
                spender.to_checksum(None),
                "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
            );
            assert_eq!(value, alloy_primitives::U256::MAX);
        }
        other => panic!("{other:?}"),
    }
    let mut permit2 = permit.clone();
    permit2["domain"]["verifyingContract"] = json!(PERMIT2.to_checksum(None));
    permit2["primaryType"] = json!("Permit");
    assert_eq!(parse_typed_data(&permit2, 1).unwrap().call(), "permit2");
}
