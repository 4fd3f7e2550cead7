//! Ethereum vectors: EIP-155's example transaction (signing hash and signed bytes), EIP-191,
//! ERC-20 call data, and the parser's refusals.
#![allow(clippy::unwrap_used, missing_docs)]

use alloy_primitives::{Address, U256};
use serde_json::json;
use strongroom_chains::Error;
use strongroom_chains::ethereum::{
    EthCall, decode_call, erc20_transfer_data, parse_transaction, personal_message_hash,
};
use strongroom_core::Algorithm;
use strongroom_crypto::{Payload, SigningKey};

/// EIP-155's example: nonce 9, 20 gwei, 21000 gas, 1 ether to 0x3535...35 on chain 1, signed
/// with the key 0x4646...46.
#[test]
fn eip155_example() {
    let tx = parse_transaction(
        &json!({"nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
                "to": "0x3535353535353535353535353535353535353535",
                "value": "0xde0b6b3a7640000", "data": "0x"}),
        1,
    )
    .unwrap()
    .tx;
    let hash = tx.signing_hash();
    assert_eq!(
        hex::encode(hash),
        "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
    );
    let key = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &[0x46; 32]).unwrap();
    let sig = key.sign(Payload::Digest(&hash)).unwrap();
    let raw = tx.signed_raw(&sig.compact().unwrap(), sig.recovery_id.unwrap());
    assert_eq!(
        hex::encode(raw),
        "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    let intent = tx.intent();
    assert_eq!(intent.tx_type, 0);
    assert_eq!(intent.call, EthCall::None);
    assert_eq!(intent.value, U256::from(10u128.pow(18)));
    assert_eq!(intent.max_fee, U256::from(21_000u64 * 20_000_000_000));
}

#[test]
fn eip191_hash() {
    // keccak256("\x19Ethereum Signed Message:\n11hello world"), as geth and eth-account compute.
    assert_eq!(
        hex::encode(personal_message_hash(b"hello world")),
        "d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68"
    );
}

#[test]
fn erc20_calls_decode_exactly() {
    let to: Address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
        .parse()
        .unwrap();
    let token = Some(Address::repeat_byte(7));
    let data = erc20_transfer_data(to, U256::from(1_000_000u64));
    assert_eq!(
        hex::encode(&data),
        "a9059cbb0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed00000000000000000000000000000000000000000000000000000000000f4240"
    );
    assert_eq!(
        decode_call(token, &data),
        EthCall::Erc20Transfer {
            to,
            amount: U256::from(1_000_000u64)
        }
    );
    // approve is decoded as what it is.
    let mut approve = data.clone();
    approve[..4].copy_from_slice(&[0x09, 0x5e, 0xa7, 0xb3]);
    assert!(matches!(
        decode_call(token, &approve),
        EthCall::Erc20Approve { .. }
    ));
    // A trailing byte, a dirty address word, or a short call is not a transfer.
    let mut longer = data.clone();
    longer.push(0);
    assert!(matches!(
        decode_call(token, &longer),
        EthCall::Unknown { .. }
    ));
    let mut dirty = data.clone();
    dirty[4] = 1;
    assert!(matches!(
        decode_call(token, &dirty),
        EthCall::Unknown { .. }
    ));
    assert!(matches!(
        decode_call(token, &data[..40]),
        EthCall::Unknown { .. }
    ));
    assert_eq!(
        decode_call(token, &[1, 2]),
        EthCall::Unknown {
            selector: None,
            len: 2
        }
    );
    assert_eq!(decode_call(None, &[1, 2]), EthCall::Deploy { len: 2 });
}

#[test]
fn the_parser_refuses_what_it_cannot_sign_faithfully() {
    let base = json!({"type": "0x2", "chainId": "0x1", "nonce": "0x1", "gas": "0x5208",
        "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1",
        "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"});
    assert!(parse_transaction(&base, 1).is_ok());
    let with = |k: &str, v: serde_json::Value| {
        let mut tx = base.clone();
        tx[k] = v;
        parse_transaction(&tx, 1).unwrap_err()
    };
    assert_eq!(
        with("chainId", json!("0x5")),
        Error::ChainIdMismatch {
            wallet: 1,
            transaction: 5
        }
    );
    assert_eq!(
        with("maxPriorityFeePerGas", json!("0x3")),
        Error::FeeCapBelowPriorityFee
    );
    assert_eq!(with("type", json!("0x4")), Error::Eip7702Refused);
    assert_eq!(with("type", json!("0x3")), Error::UnsupportedTxType(3));
    assert_eq!(
        with("to", json!("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")),
        Error::InvalidAddress
    );
    assert_eq!(with("to", json!("0x1234")), Error::InvalidAddress);
    assert!(matches!(
        with("gasPrice", json!("0x1")),
        Error::InvalidTransaction(_)
    ));
    assert!(matches!(
        with("nonce", json!("0x10000000000000000")),
        Error::InvalidTransaction(_)
    ));
    assert!(matches!(
        with("value", json!(format!("0x1{}", "0".repeat(64)))),
        Error::InvalidTransaction(_)
    ));
    assert!(matches!(
        with("data", json!("0xabc")),
        Error::InvalidTransaction(_)
    ));
    // `data` and `input` both given must agree.
    let mut both = base.clone();
    both["data"] = json!("0x02");
    both["input"] = json!("0x01");
    assert!(matches!(
        parse_transaction(&both, 1),
        Err(Error::InvalidTransaction(_))
    ));
    both["input"] = json!("0x02");
    assert!(parse_transaction(&both, 1).is_ok());
    assert!(matches!(with("extra", json!(1)), Error::UnknownField(_)));
    // A token call that does not decode exactly is refused, not passed on as "unknown".
    let transfer = "a9059cbb0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed00000000000000000000000000000000000000000000000000000000000f4240";
    assert!(
        parse_transaction(
            &{
                let mut t = base.clone();
                t["data"] = json!(format!("0x{transfer}"));
                t
            },
            1
        )
        .is_ok()
    );
    assert!(matches!(
        with("data", json!(format!("0x{transfer}00"))),
        Error::InvalidTransaction(_)
    ));
    assert!(matches!(
        with(
            "data",
            json!(format!(
                "0x{}",
                transfer.replacen("a9059cbb00", "a9059cbb01", 1)
            ))
        ),
        Error::InvalidTransaction(_)
    ));
    // All lower or all upper case addresses carry no checksum and are accepted.
    let mut lower = base.clone();
    lower["to"] = json!("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
    assert!(parse_transaction(&lower, 1).is_ok());
    // Fee fields decide the type when it is absent.
    let mut legacy = base.clone();
    let o = legacy.as_object_mut().unwrap();
    o.remove("type");
    o.remove("maxFeePerGas");
    o.remove("maxPriorityFeePerGas");
    o.insert("gasPrice".into(), json!("0x1"));
    assert_eq!(
        parse_transaction(&legacy, 1).unwrap().tx.intent().tx_type,
        0
    );
    legacy["accessList"] = json!([]);
    assert_eq!(
        parse_transaction(&legacy, 1).unwrap().tx.intent().tx_type,
        1
    );
}
