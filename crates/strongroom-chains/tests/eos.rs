//! EOS / Antelope: account names, the packed-transaction decoder (built by an encoder written
//! here from the Antelope serialisation rules), canonical signatures and `SIG_K1_` encoding
//! (checked by recovering the public key from the signature).
#![allow(clippy::unwrap_used, missing_docs)]

use strongroom_chains::Error;
use strongroom_chains::eos::{
    EosCall, decode_transaction, is_canonical, sig_k1, signing_digest, string_to_name,
};

fn varuint(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn name(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&string_to_name(s).unwrap().to_le_bytes());
}

/// A packed transaction with one `transfer` action (the eosio.token layout).
fn transfer(contract: &str, from: &str, to: &str, amount: i64, memo: &str) -> Vec<u8> {
    let mut data = Vec::new();
    name(from, &mut data);
    name(to, &mut data);
    data.extend_from_slice(&amount.to_le_bytes());
    // Symbol 4,EOS: precision byte then the code.
    data.extend_from_slice(&[4, b'E', b'O', b'S', 0, 0, 0, 0]);
    varuint(memo.len() as u32, &mut data);
    data.extend_from_slice(memo.as_bytes());

    let mut tx = Vec::new();
    tx.extend_from_slice(&1_700_000_000u32.to_le_bytes()); // expiration
    tx.extend_from_slice(&1234u16.to_le_bytes()); // ref_block_num
    tx.extend_from_slice(&0xdead_beefu32.to_le_bytes()); // ref_block_prefix
    varuint(0, &mut tx); // max_net_usage_words
    tx.push(0); // max_cpu_usage_ms
    varuint(0, &mut tx); // delay_sec
    varuint(0, &mut tx); // context-free actions
    varuint(1, &mut tx); // actions
    name(contract, &mut tx);
    name("transfer", &mut tx);
    varuint(1, &mut tx);
    name(from, &mut tx);
    name("active", &mut tx);
    varuint(data.len() as u32, &mut tx);
    tx.extend_from_slice(&data);
    varuint(0, &mut tx); // extensions
    tx
}

#[test]
fn names_have_their_published_values() {
    assert_eq!(string_to_name("eosio"), Some(6_138_663_577_826_885_632));
    assert_eq!(
        string_to_name("eosio.token"),
        Some(6_138_663_591_592_764_928)
    );
    assert_eq!(string_to_name("Bad"), None);
    assert_eq!(string_to_name("toolongnameforeos"), None);
}

#[test]
fn transfers_decode_exactly_and_anything_else_is_refused() {
    let tx = transfer("eosio.token", "alice", "bob", 12_345, "rent");
    let d = decode_transaction(&tx).unwrap();
    assert_eq!(d.expiration, 1_700_000_000);
    assert_eq!(d.actions.len(), 1);
    let a = &d.actions[0];
    assert_eq!(
        (a.account.as_str(), a.name.as_str()),
        ("eosio.token", "transfer")
    );
    assert_eq!(
        a.authorization,
        vec![("alice".to_owned(), "active".to_owned())]
    );
    assert_eq!(
        a.call,
        EosCall::Transfer {
            from: "alice".into(),
            to: "bob".into(),
            amount: 12_345,
            symbol: "4,EOS".into(),
            memo: "rent".into()
        }
    );
    // Trailing bytes, truncation, a negative amount, a corrupt transfer.
    let mut longer = tx.clone();
    longer.push(0);
    assert!(decode_transaction(&longer).is_err());
    for cut in 0..tx.len() {
        assert!(decode_transaction(&tx[..cut]).is_err(), "cut at {cut}");
    }
    // A seven-letter symbol fills the symbol word (once a shift overflow, found by fuzzing).
    let mut seven = transfer("eosio.token", "alice", "bob", 1, "");
    let at = seven.len() - 1 - 1 - 8;
    seven[at..at + 8].copy_from_slice(&[4, b'A', b'B', b'C', b'D', b'E', b'F', b'G']);
    match &decode_transaction(&seven).unwrap().actions[0].call {
        EosCall::Transfer { symbol, .. } => assert_eq!(symbol, "4,ABCDEFG"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode_transaction(&transfer("eosio.token", "alice", "bob", -1, "")).unwrap_err(),
        Error::InvalidTransaction("malformed transfer action")
    );
    // A transfer whose data has one byte too many (the data length covers it).
    let mut padded = transfer("eosio.token", "alice", "bob", 1, "");
    let len_at = padded.len() - 1 - 25;
    padded[len_at] += 1;
    padded.insert(padded.len() - 1, 0);
    assert!(decode_transaction(&padded).is_err());
}

#[test]
fn canonical_signatures_recover_the_signing_key() {
    let secp = secp256k1::Secp256k1::new();
    let sk = secp256k1::SecretKey::from_slice(&[0x33; 32]).unwrap();
    let pk = secp256k1::PublicKey::from_secret_key(&secp, &sk);
    let key = strongroom_crypto::SigningKey::from_secret_bytes(
        strongroom_core::Algorithm::Secp256k1,
        &[0x33; 32],
    )
    .unwrap();
    let chain = [0xac; 32];
    for i in 0..20 {
        let tx = transfer("eosio.token", "alice", "bob", i, "x");
        let digest = signing_digest(&chain, &tx, &[]);
        // The digest is sha256(chain id || packed || 32 zero bytes).
        let mut pre = chain.to_vec();
        pre.extend_from_slice(&tx);
        pre.extend_from_slice(&[0; 32]);
        use sha2::Digest as _;
        assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(&pre)));
        let sig = key.sign_digest_until(&digest, is_canonical).unwrap();
        assert!(is_canonical(&sig.compact().unwrap()));
        let text = sig_k1(&sig.compact().unwrap(), sig.recovery_id.unwrap());
        let raw = bitcoin::base58::decode(text.strip_prefix("SIG_K1_").unwrap()).unwrap();
        assert_eq!(raw.len(), 69);
        let recovered = secp
            .recover_ecdsa(
                &secp256k1::Message::from_digest(digest),
                &secp256k1::ecdsa::RecoverableSignature::from_compact(
                    &raw[1..65],
                    secp256k1::ecdsa::RecoveryId::from_i32(i32::from(raw[0] - 31)).unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(recovered, pk);
    }
    // The canonical test itself: r's top bit, and a needless leading zero.
    let mut bad = [0x11u8; 64];
    assert!(is_canonical(&bad));
    bad[0] = 0x80;
    assert!(!is_canonical(&bad));
    bad[0] = 0;
    bad[1] = 0x10;
    assert!(!is_canonical(&bad));
}
