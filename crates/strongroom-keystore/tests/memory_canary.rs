//! Key bytes leave no trace in process memory: a validator key with a known secret is
//! imported and signs, and then the whole readable address space of this process is scanned
//! for the secret in either byte order: while unsealed (the loaded key is encrypted under the
//! per-process memory key), and after seal.
//!
//! The needle is kept XOR-masked, so the scanner's own copy never matches.

use std::io::{Read as _, Seek as _};
use std::sync::Arc;

use strongroom_core::id::DomainName;
use strongroom_core::record::VaultMeta;
use strongroom_core::temperature::Temperature;
use strongroom_core::{DomainId, KeyId, UnixMillis, VaultId};
use strongroom_crypto::OsEntropy;
use strongroom_keystore::{Keystore, KeystoreImport, ShamirSeal};

const MASK: u8 = 0x5c;

/// The EIP-2335 test keystore's secret
/// (`000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f`), each byte XOR
/// `MASK`; the leading zero bytes are left out (too common to mean anything).
fn masked_needles() -> [Vec<u8>; 2] {
    let masked = "5c5c5c5c5c458a34c05406bd39df42cf13ab3ff21afefa9d2eefadea56d0be33";
    let bytes: Vec<u8> = (0..masked.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&masked[i..i + 2], 16).expect("hex"))
        .collect();
    let body = bytes[5..].to_vec();
    let mut reversed = body.clone();
    reversed.reverse();
    [body, reversed]
}

/// How many times the (unmasked) needle occurs in this process's readable memory.
fn occurrences(masked: &[u8]) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let mut mem = std::fs::File::open("/proc/self/mem").expect("mem");
    let first = masked[0] ^ MASK;
    let mut found = 0;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar") || line.contains("[vsyscall]") {
            continue;
        }
        let Some((lo, hi)) = range.split_once('-') else {
            continue;
        };
        let (lo, hi) = (
            u64::from_str_radix(lo, 16).expect("lo"),
            u64::from_str_radix(hi, 16).expect("hi"),
        );
        let mut at = lo;
        while at < hi {
            let len = usize::try_from((hi - at).min(buf.len() as u64)).expect("len");
            let chunk = &mut buf[..len];
            if mem.seek(std::io::SeekFrom::Start(at)).is_err() || mem.read_exact(chunk).is_err() {
                // Unreadable (secretmem is, by design): nothing to see there.
                break;
            }
            for i in 0..len.saturating_sub(masked.len() - 1) {
                if chunk[i] == first
                    && chunk[i..i + masked.len()]
                        .iter()
                        .zip(masked)
                        .all(|(b, m)| *b ^ MASK == *m)
                {
                    found += 1;
                }
            }
            // Overlap chunks so a needle across a boundary is seen.
            at += (len - (masked.len() - 1).min(len - 1)) as u64;
        }
        chunk_zero(&mut buf);
    }
    found
}

fn chunk_zero(buf: &mut [u8]) {
    buf.iter_mut().for_each(|b| *b = 0);
}

#[test]
fn a_loaded_key_is_not_in_memory_in_the_clear_and_seal_leaves_nothing() {
    let [be, le] = masked_needles();
    let scan = |when: &str| {
        let (b, l) = (occurrences(&be), occurrences(&le));
        assert_eq!(
            (b, l),
            (0, 0),
            "{when}: secret found in memory (big-, little-endian)"
        );
    };
    // The scanner finds what is there: plant the needle (unmasked, once) and look.
    let mut planted: Vec<u8> = be.iter().map(|b| b ^ MASK).collect();
    assert!(occurrences(&be) >= 1, "the scanner works");
    zeroize::Zeroize::zeroize(&mut planted);

    let ks = Keystore::new(Arc::new(OsEntropy));
    let vault_id = VaultId::from_random([3; 16]);
    let init = ks
        .initialize(
            vault_id,
            ShamirSeal {
                shares: 1,
                threshold: 1,
            },
            None,
            UnixMillis(1),
            b"t",
        )
        .expect("init");
    ks.load(&VaultMeta {
        vault_id,
        created_at: UnixMillis(1),
        init: Some(init.record),
    })
    .expect("load");
    ks.submit_share(&init.shares[0]).expect("unseal");
    let domain = ks
        .create_domain(
            DomainId::from_random([1; 16]),
            "validators".parse::<DomainName>().expect("name"),
            Temperature::Hot,
            UnixMillis(2),
        )
        .expect("domain");

    let keystore = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../strongroom-crypto/tests/vectors/eip2335/pbkdf2.json"
    ))
    .expect("vector");
    let password = "\u{1d531}\u{1d522}\u{1d530}\u{1d531}\u{1d52d}\u{1d51e}\u{1d530}\u{1d530}\u{1d534}\u{1d52c}\u{1d52f}\u{1d521}\u{1f511}";
    let imported = ks
        .import_validator_keys(
            &domain,
            &[KeystoreImport {
                id: KeyId::from_random([2; 16]),
                keystore: &keystore,
                label: "canary".into(),
                password,
            }],
            UnixMillis(3),
        )
        .expect("import");
    let record = imported.into_iter().next().expect("one").expect("imported");
    assert_eq!(
        hex::encode(&record.public_key),
        "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07"
    );
    let sig = ks.sign_validator(&domain, &record, &[7; 32]).expect("sign");
    strongroom_crypto::verify_bls(&record.public_key, &[7; 32], &sig).expect("verifies");

    scan("unsealed, key loaded");
    ks.seal();
    scan("after seal");
}
