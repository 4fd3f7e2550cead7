//! HD wallets: which chain a wallet serves, on which network, and by which derivation path.
//!
//! A wallet is stored as a key whose secret is a BIP-32 seed ([`crate::Algorithm::Bip32Seed`]).
//! Its public part, [`WalletPublic`], takes the place of a key's public key: the wallet's spec
//! and its account-level extended public key. Being the key's public key, it is bound into
//! the sealed seed's associated data, so a database editor who changes a wallet's chain id or
//! network makes the seed unusable rather than the signatures replayable elsewhere.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// BIP-32's hardened-index offset.
pub const HARDENED: u32 = 0x8000_0000;

/// The chain a wallet serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Chain {
    /// Bitcoin (BIP-84 / BIP-86 accounts).
    Bitcoin,
    /// Ethereum and EVM chains (m/44'/60'/0'/0/i).
    Ethereum,
    /// EOS / Antelope (m/44'/194'/0'/0/i).
    Eos,
}

impl Chain {
    /// The CLI and API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Bitcoin => "bitcoin",
            Chain::Ethereum => "ethereum",
            Chain::Eos => "eos",
        }
    }
}

impl FromStr for Chain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "bitcoin" => Ok(Chain::Bitcoin),
            "ethereum" => Ok(Chain::Ethereum),
            "eos" => Ok(Chain::Eos),
            _ => Err(Error::InvalidInput("chain")),
        }
    }
}

/// A Bitcoin network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitcoinNetwork {
    /// Mainnet.
    Bitcoin,
    /// Testnet (3 or 4: the address and key formats are the same).
    Testnet,
    /// Signet.
    Signet,
    /// Regtest.
    Regtest,
}

impl BitcoinNetwork {
    const ALL: [BitcoinNetwork; 4] = [
        BitcoinNetwork::Bitcoin,
        BitcoinNetwork::Testnet,
        BitcoinNetwork::Signet,
        BitcoinNetwork::Regtest,
    ];

    /// The CLI and API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BitcoinNetwork::Bitcoin => "bitcoin",
            BitcoinNetwork::Testnet => "testnet",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        }
    }

    fn code(self) -> u8 {
        match self {
            BitcoinNetwork::Bitcoin => 0,
            BitcoinNetwork::Testnet => 1,
            BitcoinNetwork::Signet => 2,
            BitcoinNetwork::Regtest => 3,
        }
    }

    /// SLIP-44 coin type in the derivation path: 0 on mainnet, 1 on every test network.
    #[must_use]
    pub fn coin_type(self) -> u32 {
        u32::from(self != BitcoinNetwork::Bitcoin)
    }
}

impl FromStr for BitcoinNetwork {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or(Error::InvalidInput("network"))
    }
}

/// A Bitcoin wallet's output type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// Native SegWit v0, BIP-84 (`bc1q...`).
    P2wpkh,
    /// Taproot key-path, BIP-86 (`bc1p...`).
    P2tr,
}

impl AddressType {
    /// The CLI and API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::P2wpkh => "p2wpkh",
            AddressType::P2tr => "p2tr",
        }
    }

    /// The BIP-43 purpose of its accounts.
    #[must_use]
    pub fn purpose(self) -> u32 {
        match self {
            AddressType::P2wpkh => 84,
            AddressType::P2tr => 86,
        }
    }
}

impl FromStr for AddressType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "p2wpkh" => Ok(AddressType::P2wpkh),
            "p2tr" => Ok(AddressType::P2tr),
            _ => Err(Error::InvalidInput("address type")),
        }
    }
}

/// What a wallet is for. Fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WalletSpec {
    /// A Bitcoin account.
    Bitcoin {
        /// The network its addresses and extended keys are for.
        network: BitcoinNetwork,
        /// Its output type (and so its BIP-43 purpose).
        address_type: AddressType,
    },
    /// An Ethereum account pinned to one chain id (EIP-155), so that its signatures cannot be
    /// replayed on another chain.
    Ethereum {
        /// The EIP-155 chain id.
        chain_id: u64,
    },
    /// An EOS / Antelope account, pinned to one chain id (the same key is valid on every
    /// Antelope chain, and account names mean different things on each).
    Eos {
        /// The chain id (32 bytes).
        chain_id: [u8; 32],
    },
}

/// EOS mainnet's chain id, the default of EOS wallets.
pub const EOS_MAINNET: [u8; 32] = [
    0xac, 0xa3, 0x76, 0xf2, 0x06, 0xb8, 0xfc, 0x25, 0xa6, 0xed, 0x44, 0xdb, 0xdc, 0x66, 0x54, 0x7c,
    0x36, 0xc6, 0xc3, 0x3e, 0x3a, 0x11, 0x9f, 0xfb, 0xea, 0xef, 0x94, 0x36, 0x42, 0xf0, 0xe9, 0x06,
];

impl WalletSpec {
    /// The chain.
    #[must_use]
    pub fn chain(&self) -> Chain {
        match self {
            WalletSpec::Bitcoin { .. } => Chain::Bitcoin,
            WalletSpec::Ethereum { .. } => Chain::Ethereum,
            WalletSpec::Eos { .. } => Chain::Eos,
        }
    }

    /// The account-level path (all hardened): `m/purpose'/coin'/0'`.
    #[must_use]
    pub fn account_path(&self) -> [u32; 3] {
        let (purpose, coin) = match self {
            WalletSpec::Bitcoin {
                network,
                address_type,
            } => (address_type.purpose(), network.coin_type()),
            WalletSpec::Ethereum { .. } => (44, 60),
            WalletSpec::Eos { .. } => (44, 194),
        };
        [purpose | HARDENED, coin | HARDENED, HARDENED]
    }

    /// The path of address `index` on the receive (`change = false`) or change branch, as
    /// text (`m/84'/0'/0'/0/5`).
    #[must_use]
    pub fn path_text(&self, change: bool, index: u32) -> String {
        format!("{}/{}/{index}", self.account_path_text(), u8::from(change))
    }

    /// The account's path as text (`m/84'/0'/0'`).
    #[must_use]
    pub fn account_path_text(&self) -> String {
        let mut out = String::from("m");
        for c in self.account_path() {
            out.push_str(&format!("/{}'", c & !HARDENED));
        }
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            WalletSpec::Bitcoin {
                network,
                address_type,
            } => {
                out.push(1);
                out.push(network.code());
                out.push(match address_type {
                    AddressType::P2wpkh => 0,
                    AddressType::P2tr => 1,
                });
            }
            WalletSpec::Ethereum { chain_id } => {
                out.push(2);
                out.extend_from_slice(&chain_id.to_be_bytes());
            }
            WalletSpec::Eos { chain_id } => {
                out.push(3);
                out.extend_from_slice(chain_id);
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (&chain, rest) = bytes.split_first()?;
        match chain {
            1 => {
                let ([net, ty], rest) = rest.split_first_chunk::<2>().map(|(h, r)| (*h, r))?;
                let network = *BitcoinNetwork::ALL.iter().find(|n| n.code() == net)?;
                let address_type = match ty {
                    0 => AddressType::P2wpkh,
                    1 => AddressType::P2tr,
                    _ => return None,
                };
                Some((
                    WalletSpec::Bitcoin {
                        network,
                        address_type,
                    },
                    rest,
                ))
            }
            2 => {
                let (id, rest) = rest.split_first_chunk::<8>()?;
                Some((
                    WalletSpec::Ethereum {
                        chain_id: u64::from_be_bytes(*id),
                    },
                    rest,
                ))
            }
            3 => {
                let (id, rest) = rest.split_first_chunk::<32>()?;
                Some((WalletSpec::Eos { chain_id: *id }, rest))
            }
            _ => None,
        }
    }
}

/// A BIP-32 extended public key: chain code and compressed public key, at a known path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtendedPublic {
    /// Depth below the master key.
    pub depth: u8,
    /// First four bytes of the parent key's HASH160.
    pub parent_fingerprint: [u8; 4],
    /// The last path element (hardened ones with [`HARDENED`] set).
    pub child_number: u32,
    /// The chain code.
    pub chain_code: [u8; 32],
    /// The compressed secp256k1 public key.
    pub public_key: [u8; 33],
}

/// A wallet's public part, stored as its key's public key (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalletPublic {
    /// What the wallet is for.
    pub spec: WalletSpec,
    /// The master key's fingerprint (first four bytes of HASH160 of its public key), which
    /// PSBTs and watch-only software use to recognise the wallet.
    pub master_fingerprint: [u8; 4],
    /// The account-level extended public key, at [`WalletSpec::account_path`].
    pub account: ExtendedPublic,
}

const WALLET_PUBLIC_VERSION: u8 = 1;

impl WalletPublic {
    /// `version (1) || spec || master fingerprint (4) || depth (1) || parent fingerprint (4)
    /// || child number (4) || chain code (32) || public key (33)`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.push(WALLET_PUBLIC_VERSION);
        self.spec.encode_into(&mut out);
        out.extend_from_slice(&self.master_fingerprint);
        let a = &self.account;
        out.push(a.depth);
        out.extend_from_slice(&a.parent_fingerprint);
        out.extend_from_slice(&a.child_number.to_be_bytes());
        out.extend_from_slice(&a.chain_code);
        out.extend_from_slice(&a.public_key);
        out
    }

    /// Reads [`WalletPublic::encode`]'s bytes back.
    ///
    /// # Errors
    /// [`Error::Corrupt`] unless the bytes are exactly one encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Self::try_decode(bytes).ok_or(Error::Corrupt("wallet public key"))
    }

    fn try_decode(bytes: &[u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if version != WALLET_PUBLIC_VERSION {
            return None;
        }
        let (spec, rest) = WalletSpec::decode(rest)?;
        let (master_fingerprint, rest) = rest.split_first_chunk::<4>()?;
        let (&depth, rest) = rest.split_first()?;
        let (parent_fingerprint, rest) = rest.split_first_chunk::<4>()?;
        let (child, rest) = rest.split_first_chunk::<4>()?;
        let (chain_code, rest) = rest.split_first_chunk::<32>()?;
        let public_key: [u8; 33] = rest.try_into().ok()?;
        Some(WalletPublic {
            spec,
            master_fingerprint: *master_fingerprint,
            account: ExtendedPublic {
                depth,
                parent_fingerprint: *parent_fingerprint,
                child_number: u32::from_be_bytes(*child),
                chain_code: *chain_code,
                public_key,
            },
        })
    }
}

impl fmt::Display for WalletSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletSpec::Bitcoin {
                network,
                address_type,
            } => write!(f, "bitcoin {} {}", network.as_str(), address_type.as_str()),
            WalletSpec::Ethereum { chain_id } => write!(f, "ethereum chain {chain_id}"),
            WalletSpec::Eos { chain_id } => {
                f.write_str("eos chain ")?;
                chain_id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(spec: WalletSpec) -> WalletPublic {
        WalletPublic {
            spec,
            master_fingerprint: [1, 2, 3, 4],
            account: ExtendedPublic {
                depth: 3,
                parent_fingerprint: [5, 6, 7, 8],
                child_number: HARDENED,
                chain_code: [9; 32],
                public_key: [2; 33],
            },
        }
    }

    #[test]
    fn wallet_publics_round_trip_and_refuse_anything_else() {
        let specs = [
            WalletSpec::Bitcoin {
                network: BitcoinNetwork::Signet,
                address_type: AddressType::P2tr,
            },
            WalletSpec::Ethereum {
                chain_id: 11_155_111,
            },
            WalletSpec::Eos {
                chain_id: EOS_MAINNET,
            },
        ];
        for spec in specs {
            let w = sample(spec);
            let bytes = w.encode();
            assert_eq!(WalletPublic::decode(&bytes).unwrap(), w);
            assert!(WalletPublic::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(WalletPublic::decode(&longer).is_err());
            let mut bad_version = bytes.clone();
            bad_version[0] = 2;
            assert!(WalletPublic::decode(&bad_version).is_err());
        }
    }

    #[test]
    fn paths_follow_bip44_84_86() {
        let btc = WalletSpec::Bitcoin {
            network: BitcoinNetwork::Bitcoin,
            address_type: AddressType::P2wpkh,
        };
        assert_eq!(btc.path_text(false, 0), "m/84'/0'/0'/0/0");
        let tr = WalletSpec::Bitcoin {
            network: BitcoinNetwork::Testnet,
            address_type: AddressType::P2tr,
        };
        assert_eq!(tr.path_text(true, 7), "m/86'/1'/0'/1/7");
        assert_eq!(
            WalletSpec::Ethereum { chain_id: 1 }.path_text(false, 3),
            "m/44'/60'/0'/0/3"
        );
        assert_eq!(
            WalletSpec::Eos {
                chain_id: EOS_MAINNET
            }
            .path_text(false, 0),
            "m/44'/194'/0'/0/0"
        );
    }
}
