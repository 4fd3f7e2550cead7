//! HD wallet seeds: BIP-39 mnemonics to seeds, BIP-32 derivation of account extended public
//! keys and of per-address secp256k1 signing keys, and EIP-2333 derivation of BLS validator
//! keys.
//!
//! Derivation is rust-bitcoin's `bip32`. Its `Xpriv` holds libsecp256k1's `SecretKey`, which
//! is `Copy`, so every extended private key here is erased (`non_secure_erase`) as soon as the
//! bytes we need are in zeroizing storage; copies the library makes on its own stack while it
//! derives are beyond our reach (the same limit as every secp256k1 key: see `signing.rs`).

use bitcoin::NetworkKind;
use bitcoin::bip32::{ChildNumber, Xpriv, Xpub};
use bitcoin::secp256k1::SecretKey;
use strongroom_core::wallet::{ExtendedPublic, WalletPublic, WalletSpec};
use strongroom_core::{Algorithm, EntropySource};
use zeroize::{Zeroize, Zeroizing};

use crate::memory::{InMemory, Secret};
use crate::{Error, SigningKey};

/// Shortest and longest seeds BIP-32 accepts (128 and 512 bits).
const SEED_LEN: std::ops::RangeInclusive<usize> = 16..=64;

/// A BIP-32 seed (the 64-byte output of BIP-39, or raw seed bytes). Zeroized on drop.
pub struct HdSeed {
    seed: Zeroizing<Vec<u8>>,
}

impl HdSeed {
    /// A fresh seed: 256 bits of entropy as a 24-word BIP-39 mnemonic, stretched with an
    /// empty passphrase. The mnemonic itself is never shown: backups of a wallet are
    /// cold-storage bundles, which never leave the seed readable by one person.
    ///
    /// # Errors
    /// [`Error::Entropy`].
    pub fn generate(entropy: &dyn EntropySource) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        entropy.fill(bytes.as_mut()).map_err(|_| Error::Entropy)?;
        let mut mnemonic =
            bip39::Mnemonic::from_entropy(bytes.as_ref()).map_err(|_| Error::Entropy)?;
        let seed = Self::stretch(&mnemonic, "");
        mnemonic.zeroize();
        Ok(seed)
    }

    /// The seed of a BIP-39 mnemonic (English word list, checksum checked) and passphrase,
    /// both normalised to NFKD as BIP-39 says.
    ///
    /// # Errors
    /// [`Error::InvalidMnemonic`] for an unknown word, a wrong word count or a bad checksum.
    pub fn from_mnemonic(phrase: &str, passphrase: &str) -> Result<Self, Error> {
        let mut mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, phrase)
            .map_err(|_| Error::InvalidMnemonic)?;
        let seed = Self::stretch(&mnemonic, passphrase);
        mnemonic.zeroize();
        Ok(seed)
    }

    fn stretch(mnemonic: &bip39::Mnemonic, passphrase: &str) -> Self {
        let seed = Zeroizing::new(mnemonic.to_seed(passphrase));
        Self {
            seed: Zeroizing::new(seed.to_vec()),
        }
    }

    /// A seed from its raw bytes (16 to 64 bytes), as stored sealed.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for another length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if !SEED_LEN.contains(&bytes.len()) {
            return Err(Error::InvalidKeyMaterial);
        }
        Ok(Self {
            seed: Zeroizing::new(bytes.to_vec()),
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.seed
    }

    fn master(&self) -> Result<Xpriv, Error> {
        // The network kind only chooses serialisation version bytes, which we never use for
        // private keys.
        Xpriv::new_master(NetworkKind::Main, &self.seed).map_err(|_| Error::InvalidKeyMaterial)
    }

    fn derive(&self, path: &[u32]) -> Result<(Xpriv, [u8; 4]), Error> {
        let mut master = self.master()?;
        let fingerprint = master.fingerprint(crate::signing::secp()).to_bytes();
        let path: Vec<ChildNumber> = path.iter().map(|&i| ChildNumber::from(i)).collect();
        let derived = master.derive_priv(crate::signing::secp(), &path);
        master.private_key.non_secure_erase();
        Ok((derived.map_err(|_| Error::InvalidKeyMaterial)?, fingerprint))
    }

    /// The wallet's public part: its spec, the master fingerprint, and the account-level
    /// extended public key at [`WalletSpec::account_path`].
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] in the 2^-127 case that a derivation step is invalid.
    pub fn wallet_public(&self, spec: WalletSpec) -> Result<WalletPublic, Error> {
        let (mut account, master_fingerprint) = self.derive(&spec.account_path())?;
        let xpub = Xpub::from_priv(crate::signing::secp(), &account);
        account.private_key.non_secure_erase();
        Ok(WalletPublic {
            spec,
            master_fingerprint,
            account: ExtendedPublic {
                depth: xpub.depth,
                parent_fingerprint: xpub.parent_fingerprint.to_bytes(),
                child_number: u32::from(xpub.child_number),
                chain_code: xpub.chain_code.to_bytes(),
                public_key: xpub.public_key.serialize(),
            },
        })
    }

    /// The account's extended private key (at [`WalletSpec::account_path`]) and the wallet's
    /// public part. Signing keys of the account's addresses come from the former without
    /// going back to the seed.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] in the 2^-127 case that a derivation step is invalid.
    pub fn account(&self, spec: WalletSpec) -> Result<(HdAccount, WalletPublic), Error> {
        let public = self.wallet_public(spec)?;
        let (mut account, _) = self.derive(&spec.account_path())?;
        let mut secret = Zeroizing::new([0u8; 64]);
        secret[..32].copy_from_slice(&account.private_key.secret_bytes());
        secret[32..].copy_from_slice(&account.chain_code.to_bytes());
        account.private_key.non_secure_erase();
        let depth = account.depth;
        let parent_fingerprint = account.parent_fingerprint.to_bytes();
        let child_number = u32::from(account.child_number);
        let aad = HdAccount::memory_aad(depth, parent_fingerprint, child_number);
        Ok((
            HdAccount {
                secret: InMemory::seal(&aad, secret.as_ref())?,
                depth,
                parent_fingerprint,
                child_number,
            },
            public,
        ))
    }

    /// The BLS12-381 key at EIP-2333 `path` (every index is hardened by construction; an
    /// Ethereum validator's signing key is EIP-2334's `m/12381/3600/i/0/0`). EIP-2333 needs a
    /// seed of at least 32 bytes (a BIP-39 seed is 64).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for a shorter seed.
    pub fn eip2333_key(&self, path: &[u32]) -> Result<SigningKey, Error> {
        let mut sk = blst::min_pk::SecretKey::derive_master_eip2333(&self.seed)
            .map_err(|_| Error::InvalidKeyMaterial)?;
        for &index in path {
            // The parent is zeroized as it is dropped (blst's SecretKey zeroizes on drop).
            sk = sk.derive_child_eip2333(index);
        }
        let bytes = Zeroizing::new(sk.to_bytes());
        SigningKey::from_secret_bytes(Algorithm::Bls12381, bytes.as_ref())
    }

    /// The secp256k1 signing key at `path` (indices with [`strongroom_core::wallet::HARDENED`]
    /// set are hardened).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] in the 2^-127 case that a derivation step is invalid.
    pub fn signing_key(&self, path: &[u32]) -> Result<SigningKey, Error> {
        let (mut derived, _) = self.derive(path)?;
        let secret = Zeroizing::new(derived.private_key.secret_bytes());
        derived.private_key.non_secure_erase();
        SigningKey::from_secret_bytes(Algorithm::Secp256k1, secret.as_ref())
    }
}

/// An account-level BIP-32 extended private key. Zeroized on drop.
pub struct HdAccount {
    // Private key || chain code, encrypted in memory (see `crate::memory`).
    secret: InMemory,
    depth: u8,
    parent_fingerprint: [u8; 4],
    child_number: u32,
}

impl HdAccount {
    fn memory_aad(depth: u8, parent_fingerprint: [u8; 4], child_number: u32) -> Vec<u8> {
        let mut aad = b"strongroom/memory/hd-account/".to_vec();
        aad.push(depth);
        aad.extend_from_slice(&parent_fingerprint);
        aad.extend_from_slice(&child_number.to_be_bytes());
        aad
    }

    /// The signing key of address `index` on the receive (`change = false`) or change branch:
    /// `account/0/index` or `account/1/index`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for an index at or above 2^31 (hardened), or in the
    /// 2^-127 case that a derivation step is invalid.
    pub fn signing_key(&self, change: bool, index: u32) -> Result<SigningKey, Error> {
        if index >= strongroom_core::wallet::HARDENED {
            return Err(Error::InvalidKeyMaterial);
        }
        let secret: Secret<64> = self.secret.open(&Self::memory_aad(
            self.depth,
            self.parent_fingerprint,
            self.child_number,
        ))?;
        let (key, chain_code) = secret.expose().split_at(32);
        let mut chain = [0u8; 32];
        chain.copy_from_slice(chain_code);
        let mut account = Xpriv {
            network: NetworkKind::Main,
            depth: self.depth,
            parent_fingerprint: self.parent_fingerprint.into(),
            child_number: ChildNumber::from(self.child_number),
            private_key: SecretKey::from_slice(key).map_err(|_| Error::InvalidKeyMaterial)?,
            chain_code: chain.into(),
        };
        chain.zeroize();
        let path = [
            ChildNumber::from(u32::from(change)),
            ChildNumber::from(index),
        ];
        let derived = account.derive_priv(crate::signing::secp(), &path);
        account.private_key.non_secure_erase();
        let mut derived = derived.map_err(|_| Error::InvalidKeyMaterial)?;
        let secret = Zeroizing::new(derived.private_key.secret_bytes());
        derived.private_key.non_secure_erase();
        SigningKey::from_secret_bytes(Algorithm::Secp256k1, secret.as_ref())
    }
}

impl std::fmt::Debug for HdAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdAccount").finish_non_exhaustive()
    }
}

impl zeroize::ZeroizeOnDrop for HdAccount {}

impl std::fmt::Debug for HdSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdSeed").finish_non_exhaustive()
    }
}

impl zeroize::ZeroizeOnDrop for HdSeed {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strongroom_core::wallet::HARDENED;

    /// BIP-32 test vector 1: seed 000102030405060708090a0b0c0d0e0f, chain m/0'/1/2'/2/1000000000.
    #[test]
    fn bip32_vector_1_signing_keys() {
        let seed =
            HdSeed::from_bytes(&hex::decode("000102030405060708090a0b0c0d0e0f").unwrap()).unwrap();
        let key = seed
            .signing_key(&[HARDENED, 1, 2 | HARDENED, 2, 1_000_000_000])
            .unwrap();
        // xpub at m/0H/1/2H/2/1000000000: public key 022a471424...
        assert_eq!(
            hex::encode(key.public_key()),
            "022a471424da5e657499d1ff51cb43c47481a03b1e77f951fe64cec9f5a48f7011"
        );
    }

    #[test]
    fn account_keys_match_full_path_derivation() {
        let seed = HdSeed::from_mnemonic(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            "",
        )
        .unwrap();
        let spec = WalletSpec::Ethereum { chain_id: 1 };
        let (account, public) = seed.account(spec).unwrap();
        assert_eq!(public, seed.wallet_public(spec).unwrap());
        for (change, index) in [(false, 0), (false, 7), (true, 3)] {
            let mut path = spec.account_path().to_vec();
            path.extend([u32::from(change), index]);
            assert_eq!(
                account.signing_key(change, index).unwrap().public_key(),
                seed.signing_key(&path).unwrap().public_key()
            );
        }
        assert!(account.signing_key(false, HARDENED).is_err());
    }

    #[test]
    fn seeds_outside_bip32_lengths_are_refused() {
        assert!(HdSeed::from_bytes(&[7; 15]).is_err());
        assert!(HdSeed::from_bytes(&[7; 65]).is_err());
        assert!(HdSeed::from_bytes(&[7; 16]).is_ok());
    }

    #[test]
    fn bad_mnemonics_are_refused() {
        let mut words = ["abandon"; 12];
        // Valid: "abandon" x11 + "about".
        words[11] = "about";
        assert!(HdSeed::from_mnemonic(&words.join(" "), "").is_ok());
        words[11] = "abandon"; // wrong checksum
        assert_eq!(
            HdSeed::from_mnemonic(&words.join(" "), "").unwrap_err(),
            Error::InvalidMnemonic
        );
        assert!(HdSeed::from_mnemonic("abandon notaword", "").is_err());
    }
}
