//! Key bytes at rest in process memory.
//!
//! Two places a secret can live while the vault is unsealed:
//! - [`Secret`] (from `strongroom-memguard`): locked, dump-excluded pages, for the few
//!   long-lived vault keys (root, wrapping, audit, storage) and for a key's bytes during the
//!   instant it signs.
//! - [`InMemory`]: ciphertext in ordinary memory under the per-process memory key (which is a
//!   `Secret`), for what there are many of: signing keys, wallet account keys. A heap page
//!   that is swapped out, dumped, or left behind after a free shows only ciphertext.
//!
//! The memory key is drawn from the operating system at first use and never leaves the
//! process. ChaCha20-Poly1305 with a per-process counter nonce (never reused under one key);
//! the associated data binds what the bytes are (algorithm and public key), so a corrupted or
//! swapped entry fails to open instead of signing with the wrong key.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
pub use strongroom_memguard::Secret;
use zeroize::{Zeroize as _, Zeroizing};

use crate::Error;

const TAG_LEN: usize = 16;

/// Secret bytes encrypted under the per-process memory key.
pub(crate) struct InMemory {
    // Which memory key: entries made before a rotation no longer open.
    generation: u64,
    counter: u64,
    // ciphertext || tag
    sealed: Box<[u8]>,
}

/// The memory key and its generation (`None` after a rotation, until next needed).
static KEY: RwLock<Option<(u64, Secret<32>)>> = RwLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Destroys the per-process memory key: every key encrypted under it (loaded signing keys,
/// wallet keys, wherever copies of their ciphertext remain) becomes unreadable, and a
/// signature in flight fails. The next key loaded draws a new one. The tamper response and
/// sealing call this; nothing else may (the whole process shares the key).
pub fn rotate_memory_key() {
    let mut k = KEY
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    *k = None;
}

/// Runs `f` with the current memory key and its generation, drawing one if there is none.
fn with_key<T>(f: impl FnOnce(u64, &Secret<32>) -> Result<T, Error>) -> Result<T, Error> {
    {
        let k = KEY
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((generation, key)) = k.as_ref() {
            return f(*generation, key);
        }
    }
    let mut k = KEY
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if k.is_none() {
        let mut key = Secret::<32>::zeroed();
        getrandom::fill(key.expose_mut()).map_err(|_| Error::Entropy)?;
        *k = Some((GENERATION.load(Ordering::Acquire), key));
    }
    match k.as_ref() {
        Some((generation, key)) => f(*generation, key),
        None => Err(Error::Entropy),
    }
}

fn nonce(counter: u64) -> chacha20poly1305::Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n.into()
}

impl InMemory {
    /// Encrypts `plain`, binding `aad`.
    pub(crate) fn seal(aad: &[u8], plain: &[u8]) -> Result<Self, Error> {
        // One counter for the process: a nonce is never reused under any memory key.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The plaintext is in this buffer until it is encrypted in place; zeroized if not.
        let mut sealed = Zeroizing::new(vec![0u8; plain.len() + TAG_LEN]);
        let (body, tag_out) = sealed.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let generation = with_key(|generation, key| {
            let tag = ChaCha20Poly1305::new(key.expose().into())
                .encrypt_inout_detached(&nonce(counter), aad, body.into())
                .map_err(|_| Error::SelfCheck)?;
            tag_out.copy_from_slice(&tag);
            Ok(generation)
        })?;
        Ok(Self {
            generation,
            counter,
            sealed: std::mem::take(&mut *sealed).into_boxed_slice(),
        })
    }

    /// Decrypts into locked memory. The caller keeps the result only as long as it needs it.
    ///
    /// # Errors
    /// [`Error::SelfCheck`] if the entry does not open under this process's key with `aad`
    /// (memory corrupted, the wrong entry, or the memory key was rotated since), or its length
    /// is not `N`.
    pub(crate) fn open<const N: usize>(&self, aad: &[u8]) -> Result<Secret<N>, Error> {
        let (body, tag) = self.sealed.split_at(self.sealed.len() - TAG_LEN);
        if body.len() != N {
            return Err(Error::SelfCheck);
        }
        let tag = <&chacha20poly1305::Tag>::try_from(tag).map_err(|_| Error::SelfCheck)?;
        with_key(|generation, key| {
            if generation != self.generation {
                return Err(Error::SelfCheck);
            }
            let mut out = Secret::<N>::zeroed();
            out.expose_mut().copy_from_slice(body);
            ChaCha20Poly1305::new(key.expose().into())
                .decrypt_inout_detached(
                    &nonce(self.counter),
                    aad,
                    (&mut out.expose_mut()[..]).into(),
                    tag,
                )
                .map_err(|_| Error::SelfCheck)?;
            Ok(out)
        })
    }
}

impl Drop for InMemory {
    fn drop(&mut self) {
        // Ciphertext only, but no reason to leave it behind for a key that may come back.
        self.sealed.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binds_aad_and_hides_the_bytes() {
        let plain = [0x5a; 32];
        let m = InMemory::seal(b"what", &plain).unwrap();
        assert!(!m.sealed.windows(4).any(|w| w == [0x5a; 4]));
        assert_eq!(m.open::<32>(b"what").unwrap().expose(), &plain);
        assert!(matches!(m.open::<32>(b"else"), Err(Error::SelfCheck)));
        assert!(matches!(m.open::<31>(b"what"), Err(Error::SelfCheck)));
        let again = InMemory::seal(b"what", &plain).unwrap();
        assert_ne!(again.counter, m.counter, "a nonce is never reused");
        assert_ne!(again.sealed, m.sealed);
    }
}
