//! Entropy as a port, so tests can inject failing or deterministic sources and the self-defence
//! work can wrap the OS source in health tests.

use crate::Error;

/// A source of cryptographically secure random bytes.
pub trait EntropySource: Send + Sync + 'static {
    /// Fills `buf` entirely, or fails without partial output being used.
    ///
    /// # Errors
    /// [`Error::Entropy`] when the source cannot deliver; callers must then abort the operation.
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error>;
}
