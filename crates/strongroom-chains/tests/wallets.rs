//! Published vectors for HD wallets: BIP-32 (1-4), BIP-39 (the Trezor English set), BIP-84,
//! BIP-86, BIP-341 (key-path output keys), Ethereum's m/44'/60' address, EIP-55 and EOS.
#![allow(clippy::unwrap_used, missing_docs)]

use std::str::FromStr;

use bitcoin::bip32::{Xpriv, Xpub};
use strongroom_chains::{account_xpub, address};
use strongroom_core::wallet::{AddressType, BitcoinNetwork, HARDENED, WalletSpec};
use strongroom_crypto::HdSeed;

const ABANDON: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

fn path(text: &str) -> Vec<u32> {
    text.split('/')
        .skip(1)
        .map(|c| match c.strip_suffix('h') {
            Some(n) => n.parse::<u32>().unwrap() | HARDENED,
            None => c.parse().unwrap(),
        })
        .collect()
}

/// BIP-32 test vectors 1-4 (from BIP-32's text; vector 5 is about parsing invalid extended keys,
/// which strongroom never accepts from anyone): the public key our derivation gives at each
/// path equals the one in the published extended public key (decoded, not derived, by
/// rust-bitcoin).
#[test]
fn bip32_vectors_1_to_4() {
    let vectors: &[(&str, &[(&str, &str)])] = &[
        (
            "000102030405060708090a0b0c0d0e0f",
            &[
                (
                    "m",
                    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
                ),
                (
                    "m/0h",
                    "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
                ),
                (
                    "m/0h/1",
                    "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
                ),
                (
                    "m/0h/1/2h",
                    "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
                ),
                (
                    "m/0h/1/2h/2",
                    "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
                ),
                (
                    "m/0h/1/2h/2/1000000000",
                    "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
                ),
            ],
        ),
        (
            "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
            &[
                (
                    "m",
                    "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
                ),
                (
                    "m/0",
                    "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
                ),
                (
                    "m/0/2147483647h",
                    "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
                ),
                (
                    "m/0/2147483647h/1",
                    "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
                ),
                (
                    "m/0/2147483647h/1/2147483646h",
                    "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
                ),
                (
                    "m/0/2147483647h/1/2147483646h/2",
                    "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
                ),
            ],
        ),
        (
            "4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be",
            &[
                (
                    "m",
                    "xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13",
                ),
                (
                    "m/0h",
                    "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y",
                ),
            ],
        ),
        // Vector 4: hardened derivation whose private key has leading zeros.
        (
            "3ddd5602285899a946114506157c7997e5444528f3003f6134712147db19b678",
            &[
                (
                    "m",
                    "xpub661MyMwAqRbcGczjuMoRm6dXaLDEhW1u34gKenbeYqAix21mdUKJyuyu5F1rzYGVxyL6tmgBUAEPrEz92mBXjByMRiJdba9wpnN37RLLAXa",
                ),
                (
                    "m/0h",
                    "xpub69AUMk3qDBi3uW1sXgjCmVjJ2G6WQoYSnNHyzkmdCHEhSZ4tBok37xfFEqHd2AddP56Tqp4o56AePAgCjYdvpW2PU2jbUPFKsav5ut6Ch1m",
                ),
                (
                    "m/0h/1h",
                    "xpub6BJA1jSqiukeaesWfxe6sNK9CCGaujFFSJLomWHprUL9DePQ4JDkM5d88n49sMGJxrhpjazuXYWdMf17C9T5XnxkopaeS7jGk1GyyVziaMt",
                ),
            ],
        ),
    ];
    for (seed, chain) in vectors {
        let seed = HdSeed::from_bytes(&hex::decode(seed).unwrap()).unwrap();
        for (p, xpub) in *chain {
            let expected = Xpub::from_str(xpub).unwrap().public_key.serialize();
            assert_eq!(
                seed.signing_key(&path(p)).unwrap().public_key(),
                expected.as_slice(),
                "{p}"
            );
        }
    }
}

/// The Trezor BIP-39 English vectors (passphrase "TREZOR"): the mnemonic gives the published
/// seed, checked through the master key it makes (the vector's xprv, parsed by rust-bitcoin)
/// and an account derived from it.
#[test]
fn bip39_vectors() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bip39-vectors.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = json["english"].as_array().unwrap();
    assert_eq!(vectors.len(), 24);
    let secp = secp256k1::Secp256k1::new();
    let spec = WalletSpec::Ethereum { chain_id: 1 };
    for v in vectors {
        let mnemonic = v[1].as_str().unwrap();
        let master = Xpriv::from_str(v[3].as_str().unwrap()).unwrap();
        let ours = HdSeed::from_mnemonic(mnemonic, "TREZOR")
            .unwrap()
            .wallet_public(spec)
            .unwrap();
        assert_eq!(
            ours.master_fingerprint,
            master.fingerprint(&secp).to_bytes(),
            "{mnemonic}"
        );
        let account_path: Vec<bitcoin::bip32::ChildNumber> =
            spec.account_path().iter().map(|&i| i.into()).collect();
        let account = Xpub::from_priv(&secp, &master.derive_priv(&secp, &account_path).unwrap());
        assert_eq!(ours.account.public_key, account.public_key.serialize());
        assert_eq!(ours.account.chain_code, account.chain_code.to_bytes());
        // Another passphrase is another wallet.
        assert_ne!(
            HdSeed::from_mnemonic(mnemonic, "")
                .unwrap()
                .wallet_public(spec)
                .unwrap(),
            ours
        );
    }
}

fn wallet(spec: WalletSpec) -> strongroom_core::wallet::WalletPublic {
    HdSeed::from_mnemonic(ABANDON, "")
        .unwrap()
        .wallet_public(spec)
        .unwrap()
}

/// BIP-84's and BIP-86's own test vectors (mnemonic "abandon ... about").
#[test]
fn bip84_and_bip86_vectors() {
    let w = wallet(WalletSpec::Bitcoin {
        network: BitcoinNetwork::Bitcoin,
        address_type: AddressType::P2wpkh,
    });
    assert_eq!(w.master_fingerprint, [0x73, 0xc5, 0xda, 0x0a]);
    assert_eq!(
        address(&w, false, 0).unwrap().address,
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    );
    assert_eq!(
        address(&w, false, 1).unwrap().address,
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    );
    let change = address(&w, true, 0).unwrap();
    assert_eq!(change.address, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el");
    assert_eq!(change.path, "m/84'/0'/0'/1/0");
    // BIP-84 gives the account key as zpub; the same key with xpub version bytes.
    let zpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
    let mut raw = bitcoin::base58::decode_check(zpub).unwrap();
    raw[..4].copy_from_slice(&[0x04, 0x88, 0xB2, 0x1E]);
    assert_eq!(
        account_xpub(&w).unwrap(),
        bitcoin::base58::encode_check(&raw)
    );

    let w = wallet(WalletSpec::Bitcoin {
        network: BitcoinNetwork::Bitcoin,
        address_type: AddressType::P2tr,
    });
    assert_eq!(
        account_xpub(&w).unwrap(),
        "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
    );
    assert_eq!(
        address(&w, false, 0).unwrap().address,
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    );
    assert_eq!(
        address(&w, false, 1).unwrap().address,
        "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"
    );
    assert_eq!(
        address(&w, true, 0).unwrap().address,
        "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"
    );
    // Test networks use coin type 1, tpub and tb1.
    let t = wallet(WalletSpec::Bitcoin {
        network: BitcoinNetwork::Testnet,
        address_type: AddressType::P2wpkh,
    });
    assert!(account_xpub(&t).unwrap().starts_with("tpub"));
    assert!(address(&t, false, 0).unwrap().address.starts_with("tb1q"));
    assert_eq!(address(&t, false, 0).unwrap().path, "m/84'/1'/0'/0/0");
    let r = wallet(WalletSpec::Bitcoin {
        network: BitcoinNetwork::Regtest,
        address_type: AddressType::P2tr,
    });
    assert!(address(&r, false, 0).unwrap().address.starts_with("bcrt1p"));
}

/// BIP-341's key-path outputs (no script tree): the internal key gives the published address.
#[test]
fn bip341_key_path_outputs() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bip341-wallet-test-vectors.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for v in json["scriptPubKey"].as_array().unwrap() {
        if !v["given"]["scriptTree"].is_null() {
            continue;
        }
        let mut key = [2u8; 33];
        key[1..]
            .copy_from_slice(&hex::decode(v["given"]["internalPubkey"].as_str().unwrap()).unwrap());
        assert_eq!(
            strongroom_chains::bitcoin_address(&key, BitcoinNetwork::Bitcoin, AddressType::P2tr)
                .unwrap(),
            v["expected"]["bip350Address"].as_str().unwrap()
        );
        checked += 1;
    }
    assert!(checked >= 1);
}

/// Ethereum: the well-known first address of "abandon ... about" at m/44'/60'/0'/0/0, EIP-55
/// checksummed.
#[test]
fn ethereum_and_eos_addresses() {
    let w = wallet(WalletSpec::Ethereum { chain_id: 1 });
    let a = address(&w, false, 0).unwrap();
    assert_eq!(a.address, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
    assert_eq!(a.path, "m/44'/60'/0'/0/0");
    // The EIP-55 examples: our checksum is theirs.
    for expected in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let parsed = alloy_primitives::Address::from_str(&expected.to_lowercase()).unwrap();
        assert_eq!(parsed.to_checksum(None), expected);
    }
    // The address is keccak of the key derived by the signing path too.
    let key = HdSeed::from_mnemonic(ABANDON, "")
        .unwrap()
        .signing_key(&path("m/44h/60h/0h/0/0"))
        .unwrap();
    assert_eq!(key.public_key(), a.public_key.as_slice());

    let e = address(
        &wallet(WalletSpec::Eos {
            chain_id: strongroom_core::wallet::EOS_MAINNET,
        }),
        false,
        0,
    )
    .unwrap();
    assert!(e.address.starts_with("EOS"));
    assert!(e.alternate.unwrap().starts_with("PUB_K1_"));
    assert_eq!(e.path, "m/44'/194'/0'/0/0");
}
