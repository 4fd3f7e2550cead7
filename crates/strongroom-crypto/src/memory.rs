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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
pub use strongroom_memguard::Secret;

use crate::Error;

const TAG_LEN: usize = 16;

/// Secret bytes encrypted under the per-process memory key.
pub(crate) struct InMemory {
    counter: u64,
    // ciphertext || tag
    sealed: Box<[u8]>,
}

fn memory_key() -> Result<&'static Secret<32>, Error> {
    static KEY: OnceLock<Option<Secret<32>>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = Secret::<32>::zeroed();
        getrandom::fill(key.expose_mut()).ok().map(|()| key)
    })
    .as_ref()
    .ok_or(Error::Entropy)
}

fn nonce(counter: u64) -> chacha20poly1305::Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n.into()
}

impl InMemory {
    /// Encrypts `plain`, binding `aad`.
    pub(crate) fn seal(aad: &[u8], plain: &[u8]) -> Result<Self, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let key = memory_key()?;
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut sealed = vec![0u8; plain.len() + TAG_LEN];
        let (body, tag_out) = sealed.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let tag = ChaCha20Poly1305::new(key.expose().into())
            .encrypt_inout_detached(&nonce(counter), aad, body.into())
            .map_err(|_| Error::SelfCheck)?;
        tag_out.copy_from_slice(&tag);
        Ok(Self {
            counter,
            sealed: sealed.into_boxed_slice(),
        })
    }

    /// Decrypts into locked memory. The caller keeps the result only as long as it needs it.
    ///
    /// # Errors
    /// [`Error::SelfCheck`] if the entry does not open under this process's key with `aad`
    /// (memory corrupted, or the wrong entry), or its length is not `N`.
    pub(crate) fn open<const N: usize>(&self, aad: &[u8]) -> Result<Secret<N>, Error> {
        let key = memory_key()?;
        let (body, tag) = self.sealed.split_at(self.sealed.len() - TAG_LEN);
        if body.len() != N {
            return Err(Error::SelfCheck);
        }
        let mut out = Secret::<N>::zeroed();
        out.expose_mut().copy_from_slice(body);
        let tag = <&chacha20poly1305::Tag>::try_from(tag).map_err(|_| Error::SelfCheck)?;
        ChaCha20Poly1305::new(key.expose().into())
            .decrypt_inout_detached(
                &nonce(self.counter),
                aad,
                (&mut out.expose_mut()[..]).into(),
                tag,
            )
            .map_err(|_| Error::SelfCheck)?;
        Ok(out)
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
