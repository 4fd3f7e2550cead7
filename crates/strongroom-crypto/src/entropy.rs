//! The operating system's entropy source, and an adapter that lets RustCrypto-style APIs draw
//! from any [`EntropySource`] without hiding its failures.

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use strongroom_core::EntropySource;

/// Randomness from the operating system (`getrandom(2)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl EntropySource for OsEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
        getrandom::fill(buf).map_err(|_| strongroom_core::Error::Entropy)
    }
}

/// Presents an [`EntropySource`] as an infallible RNG for library APIs that demand one.
/// A failure is remembered; [`RngAdapter::finish`] then fails and the caller must discard
/// whatever was produced with it.
pub(crate) struct RngAdapter<'a> {
    source: &'a dyn EntropySource,
    failed: bool,
}

impl<'a> RngAdapter<'a> {
    pub(crate) fn new(source: &'a dyn EntropySource) -> Self {
        Self {
            source,
            failed: false,
        }
    }

    pub(crate) fn finish(self) -> Result<(), crate::Error> {
        if self.failed {
            Err(crate::Error::Entropy)
        } else {
            Ok(())
        }
    }
}

impl TryRng for RngAdapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if self.source.fill(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

impl TryCryptoRng for RngAdapter<'_> {}
