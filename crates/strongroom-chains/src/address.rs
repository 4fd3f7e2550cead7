//! Addresses and extended public keys of HD wallets.

use std::sync::OnceLock;

use bitcoin::bip32::{ChainCode, ChildNumber, Fingerprint, Xpub};
use bitcoin::hashes::{Hash as _, ripemd160};
use bitcoin::secp256k1::{PublicKey, Secp256k1, VerifyOnly};
use bitcoin::{CompressedPublicKey, Network, NetworkKind};
use strongroom_core::wallet::{
    AddressType, BitcoinNetwork, ExtendedPublic, HARDENED, WalletPublic, WalletSpec,
};

use crate::Error;

/// One address of a wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletAddress {
    /// The address in the chain's usual form: bech32 (P2WPKH) or bech32m (P2TR) for
    /// Bitcoin, EIP-55 for Ethereum, `EOS...` for EOS.
    pub address: String,
    /// The chain's other form, where it has one: `PUB_K1_...` for EOS.
    pub alternate: Option<String>,
    /// The derivation path from the master key.
    pub path: String,
    /// The compressed secp256k1 public key at that path.
    pub public_key: [u8; 33],
}

pub(crate) fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

pub(crate) fn network(n: BitcoinNetwork) -> Network {
    match n {
        BitcoinNetwork::Bitcoin => Network::Bitcoin,
        BitcoinNetwork::Testnet => Network::Testnet,
        BitcoinNetwork::Signet => Network::Signet,
        BitcoinNetwork::Regtest => Network::Regtest,
    }
}

fn xpub(w: &WalletPublic) -> Result<Xpub, Error> {
    let a = &w.account;
    let mainnet = !matches!(
        w.spec,
        WalletSpec::Bitcoin { network, .. } if network != BitcoinNetwork::Bitcoin
    );
    Ok(Xpub {
        network: if mainnet {
            NetworkKind::Main
        } else {
            NetworkKind::Test
        },
        depth: a.depth,
        parent_fingerprint: Fingerprint::from(a.parent_fingerprint),
        child_number: ChildNumber::from(a.child_number),
        public_key: PublicKey::from_slice(&a.public_key).map_err(|_| Error::InvalidPublicKey)?,
        chain_code: ChainCode::from(a.chain_code),
    })
}

/// The account-level extended public key in BIP-32 serialisation: `xpub...` (`tpub...` on
/// Bitcoin test networks), for watch-only software.
///
/// # Errors
/// [`Error::InvalidPublicKey`] if the stored key does not decode.
pub fn account_xpub(w: &WalletPublic) -> Result<String, Error> {
    Ok(xpub(w)?.to_string())
}

/// Whether `address` (a policy's canonical form) can name a destination of a wallet of
/// `spec`: a Bitcoin address valid on the wallet's network, a `0x` address for Ethereum, an
/// Antelope name or asset for EOS. Anything else would be a policy entry that never matches.
#[must_use]
pub fn policy_address_fits(spec: WalletSpec, address: &str) -> bool {
    let bitcoin = address
        .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
        .ok();
    match spec {
        WalletSpec::Bitcoin { network: n, .. } => {
            bitcoin.is_some_and(|a| a.is_valid_for_network(network(n)))
        }
        WalletSpec::Ethereum { .. } => address.starts_with("0x"),
        WalletSpec::Eos { .. } => bitcoin.is_none() && !address.starts_with("0x"),
        _ => false,
    }
}

/// The public key of address `index` on the receive or change branch (`account/0/i` or
/// `account/1/i`), derived without any secret.
///
/// # Errors
/// [`Error::InvalidIndex`] for `index >= 2^31`; [`Error::InvalidPublicKey`].
pub fn child_public_key(
    account: &ExtendedPublic,
    change: bool,
    index: u32,
) -> Result<[u8; 33], Error> {
    if index >= HARDENED {
        return Err(Error::InvalidIndex);
    }
    let parent = Xpub {
        network: NetworkKind::Main,
        depth: account.depth,
        parent_fingerprint: Fingerprint::from(account.parent_fingerprint),
        child_number: ChildNumber::from(account.child_number),
        public_key: PublicKey::from_slice(&account.public_key)
            .map_err(|_| Error::InvalidPublicKey)?,
        chain_code: ChainCode::from(account.chain_code),
    };
    let path = [
        ChildNumber::from(u32::from(change)),
        ChildNumber::from(index),
    ];
    parent
        .derive_pub(secp(), &path)
        .map(|x| x.public_key.serialize())
        .map_err(|_| Error::InvalidPublicKey)
}

/// Address `index` of a wallet on its receive (`change = false`) or change branch.
///
/// # Errors
/// [`Error::InvalidIndex`] for `index >= 2^31`; [`Error::InvalidPublicKey`].
pub fn address(w: &WalletPublic, change: bool, index: u32) -> Result<WalletAddress, Error> {
    let public_key = child_public_key(&w.account, change, index)?;
    let (address, alternate) = match w.spec {
        WalletSpec::Bitcoin {
            network: net,
            address_type,
        } => (bitcoin_address(&public_key, net, address_type)?, None),
        WalletSpec::Ethereum { .. } => (ethereum_address(&public_key)?, None),
        WalletSpec::Eos { .. } => (eos_legacy(&public_key), Some(eos_k1(&public_key))),
        _ => return Err(Error::InvalidPublicKey),
    };
    Ok(WalletAddress {
        address,
        alternate,
        path: w.spec.path_text(change, index),
        public_key,
    })
}

/// A P2WPKH (bech32) or BIP-86 key-path P2TR (bech32m) address.
///
/// # Errors
/// [`Error::InvalidPublicKey`].
pub fn bitcoin_address(
    public_key: &[u8; 33],
    net: BitcoinNetwork,
    address_type: AddressType,
) -> Result<String, Error> {
    let pk = PublicKey::from_slice(public_key).map_err(|_| Error::InvalidPublicKey)?;
    Ok(match address_type {
        AddressType::P2wpkh => {
            bitcoin::Address::p2wpkh(&CompressedPublicKey(pk), network(net)).to_string()
        }
        // BIP-86: the output key is the internal key tweaked with an empty script tree.
        AddressType::P2tr => {
            bitcoin::Address::p2tr(secp(), pk.x_only_public_key().0, None, network(net)).to_string()
        }
    })
}

/// The EIP-55 checksummed address: the last 20 bytes of keccak-256 of the uncompressed key.
///
/// # Errors
/// [`Error::InvalidPublicKey`].
pub fn ethereum_address(public_key: &[u8; 33]) -> Result<String, Error> {
    Ok(crate::ethereum::address_of(public_key)?.to_checksum(None))
}

/// `EOS` + base58(key || first 4 bytes of RIPEMD-160(key)).
fn eos_legacy(public_key: &[u8; 33]) -> String {
    let check = ripemd160::Hash::hash(public_key);
    let mut data = public_key.to_vec();
    data.extend_from_slice(&check.as_byte_array()[..4]);
    format!("EOS{}", bitcoin::base58::encode(&data))
}

/// `PUB_K1_` + base58(key || first 4 bytes of RIPEMD-160(key || "K1")).
fn eos_k1(public_key: &[u8; 33]) -> String {
    let mut suffixed = public_key.to_vec();
    suffixed.extend_from_slice(b"K1");
    let check = ripemd160::Hash::hash(&suffixed);
    let mut data = public_key.to_vec();
    data.extend_from_slice(&check.as_byte_array()[..4]);
    format!("PUB_K1_{}", bitcoin::base58::encode(&data))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(hex_key: &str) -> [u8; 33] {
        let mut out = [0u8; 33];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex_key[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn eos_keys_match_the_antelope_development_key() {
        // The public key of Antelope's well-known development key
        // 5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3.
        let pk = key("02c0ded2bc1f1305fb0faac5e6c03ee3a1924234985427b6167ca569d13df435cf");
        assert_eq!(
            eos_legacy(&pk),
            "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
        );
        assert_eq!(
            eos_k1(&pk),
            "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63"
        );
    }

    #[test]
    fn hardened_indices_are_refused() {
        let w = ExtendedPublic {
            depth: 3,
            parent_fingerprint: [0; 4],
            child_number: HARDENED,
            chain_code: [1; 32],
            public_key: key("02c0ded2bc1f1305fb0faac5e6c03ee3a1924234985427b6167ca569d13df435cf"),
        };
        assert_eq!(
            child_public_key(&w, false, HARDENED),
            Err(Error::InvalidIndex)
        );
        assert!(child_public_key(&w, false, HARDENED - 1).is_ok());
        let bad = ExtendedPublic {
            public_key: [9; 33],
            ..w
        };
        assert_eq!(
            child_public_key(&bad, false, 0),
            Err(Error::InvalidPublicKey)
        );
    }
}
