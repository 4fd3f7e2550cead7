//! Time-based one-time passwords (RFC 6238) for operator login, via totp-rs: 30-second steps,
//! one step of drift either way, and each step accepted at most once (RFC 6238 section 5.2).

use strongroom_core::EntropySource;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::Error;

/// Step length, in seconds (RFC 6238 default).
pub const STEP_SECONDS: u64 = 30;
/// Steps of clock drift accepted either way.
pub const DRIFT_STEPS: u16 = 1;

/// The HMAC behind a TOTP secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpAlgorithm {
    /// HMAC-SHA-1 (what most authenticator apps use).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl OtpAlgorithm {
    fn library(self) -> Algorithm {
        match self {
            OtpAlgorithm::Sha1 => Algorithm::SHA1,
            OtpAlgorithm::Sha256 => Algorithm::SHA256,
            OtpAlgorithm::Sha512 => Algorithm::SHA512,
        }
    }

    /// Stable one-byte code used when the secret is sealed.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            OtpAlgorithm::Sha1 => 1,
            OtpAlgorithm::Sha256 => 2,
            OtpAlgorithm::Sha512 => 3,
        }
    }

    /// Inverse of [`OtpAlgorithm::code`].
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(OtpAlgorithm::Sha1),
            2 => Some(OtpAlgorithm::Sha256),
            3 => Some(OtpAlgorithm::Sha512),
            _ => None,
        }
    }

    /// Seed length matching the hash (RFC 6238 Appendix B uses 20, 32 and 64 bytes).
    #[must_use]
    pub fn seed_len(self) -> usize {
        match self {
            OtpAlgorithm::Sha1 => 20,
            OtpAlgorithm::Sha256 => 32,
            OtpAlgorithm::Sha512 => 64,
        }
    }
}

/// Why a one-time password was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpRejection {
    /// The code matches no step in the accepted window.
    Wrong,
    /// The code matches a step that was already used (or an earlier one).
    Replayed,
}

/// An operator's TOTP secret.
pub struct TotpSecret {
    algorithm: OtpAlgorithm,
    digits: u8,
    totp: Totp,
    seed: Zeroizing<Vec<u8>>,
}

impl TotpSecret {
    /// Draws a new secret (6-digit codes).
    ///
    /// # Errors
    /// [`Error::Entropy`].
    pub fn generate(algorithm: OtpAlgorithm, entropy: &dyn EntropySource) -> Result<Self, Error> {
        let mut seed = Zeroizing::new(vec![0u8; algorithm.seed_len()]);
        entropy.fill(&mut seed).map_err(|_| Error::Entropy)?;
        Self::from_seed(algorithm, &seed, 6)
    }

    /// Rebuilds a secret from its seed (after unsealing it, or from published test vectors).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for a seed under 128 bits or digits outside 6..=8.
    pub fn from_seed(algorithm: OtpAlgorithm, seed: &[u8], digits: u8) -> Result<Self, Error> {
        let totp = Builder::new()
            .with_algorithm(algorithm.library())
            .with_digits(digits)
            .with_skew(DRIFT_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(seed.to_vec())
            .build()
            .map_err(|_| Error::InvalidKeyMaterial)?;
        Ok(Self {
            algorithm,
            digits,
            totp,
            seed: Zeroizing::new(seed.to_vec()),
        })
    }

    pub(crate) fn seed(&self) -> &[u8] {
        &self.seed
    }

    /// The hash.
    #[must_use]
    pub fn algorithm(&self) -> OtpAlgorithm {
        self.algorithm
    }

    /// Code length.
    #[must_use]
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// The code for the step containing `unix_seconds`.
    #[must_use]
    pub fn code_at(&self, unix_seconds: u64) -> Zeroizing<String> {
        Zeroizing::new(self.totp.generate(unix_seconds).to_string())
    }

    /// Checks `code` at `unix_seconds` (one step of drift either way) and returns the step it
    /// matched. A step at or before `last_used_step` is refused, so a code works once.
    ///
    /// # Errors
    /// [`OtpRejection::Wrong`] or [`OtpRejection::Replayed`].
    pub fn verify(
        &self,
        code: &str,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Result<u64, OtpRejection> {
        let code = code.trim();
        if code.len() != usize::from(self.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpRejection::Wrong);
        }
        let step = self
            .totp
            .check(code, unix_seconds)
            .ok_or(OtpRejection::Wrong)?;
        if last_used_step.is_some_and(|last| step <= last) {
            return Err(OtpRejection::Replayed);
        }
        Ok(step)
    }

    /// The `otpauth://totp/...` URI an authenticator app enrols from. It contains the secret:
    /// show it once, to its operator.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if issuer or account contain `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<Zeroizing<String>, Error> {
        let totp = Builder::new()
            .with_algorithm(self.algorithm.library())
            .with_digits(self.digits)
            .with_skew(DRIFT_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.seed.to_vec())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(|_| Error::InvalidKeyMaterial)?;
        totp.to_url()
            .map(Zeroizing::new)
            .map_err(|_| Error::InvalidKeyMaterial)
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSecret")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &[u8] = b"12345678901234567890";
    const SHA256: &[u8] = b"12345678901234567890123456789012";
    const SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B (cross-checked with pyotp 2.9).
    #[test]
    fn rfc6238_appendix_b() {
        let table: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1_111_111_109, ["07081804", "68084774", "25091201"]),
            (1_111_111_111, ["14050471", "67062674", "99943326"]),
            (1_234_567_890, ["89005924", "91819424", "93441116"]),
            (2_000_000_000, ["69279037", "90698825", "38618901"]),
            (20_000_000_000, ["65353130", "77737706", "47863826"]),
        ];
        let secrets = [
            TotpSecret::from_seed(OtpAlgorithm::Sha1, SHA1, 8).unwrap(),
            TotpSecret::from_seed(OtpAlgorithm::Sha256, SHA256, 8).unwrap(),
            TotpSecret::from_seed(OtpAlgorithm::Sha512, SHA512, 8).unwrap(),
        ];
        for (t, codes) in table {
            for (s, code) in secrets.iter().zip(codes) {
                assert_eq!(s.code_at(t).as_str(), code, "{:?} at {t}", s.algorithm());
                assert_eq!(s.verify(code, t, None), Ok(t / STEP_SECONDS));
            }
        }
        // A SHA-256 secret wrongly built from the 20-byte seed must not reproduce the vector.
        let wrong = TotpSecret::from_seed(OtpAlgorithm::Sha256, SHA1, 8).unwrap();
        assert_ne!(wrong.code_at(59).as_str(), "46119246");
    }

    #[test]
    fn drift_window_and_single_use() {
        let s = TotpSecret::from_seed(OtpAlgorithm::Sha1, SHA1, 8).unwrap();
        let t = 1_234_567_890;
        let code = s.code_at(t);
        assert!(
            s.verify(&code, t + STEP_SECONDS, None).is_ok(),
            "one step late is accepted"
        );
        assert!(
            s.verify(&code, t - STEP_SECONDS, None).is_ok(),
            "one step early is accepted"
        );
        assert_eq!(
            s.verify(&code, t + 2 * STEP_SECONDS + 30, None),
            Err(OtpRejection::Wrong)
        );
        let step = s.verify(&code, t, None).unwrap();
        assert_eq!(s.verify(&code, t, Some(step)), Err(OtpRejection::Replayed));
        assert_eq!(
            s.verify(&s.code_at(t - 30), t, Some(step)),
            Err(OtpRejection::Replayed)
        );
        assert!(s.verify(&s.code_at(t + 30), t + 30, Some(step)).is_ok());
        for bad in ["", "1234567", "123456789", "abcdefgh", "0000000x"] {
            assert_eq!(s.verify(bad, t, None), Err(OtpRejection::Wrong), "{bad:?}");
        }
    }

    #[test]
    fn enrolment_uri_and_short_seeds() {
        let s = TotpSecret::generate(OtpAlgorithm::Sha1, &crate::OsEntropy).unwrap();
        let uri = s.otpauth_uri("strongroom", "alice").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/strongroom:alice?"),
            "{}",
            uri.as_str()
        );
        assert!(uri.contains("secret="));
        assert!(TotpSecret::from_seed(OtpAlgorithm::Sha1, &[1; 10], 6).is_err());
        assert!(!format!("{s:?}").contains("secret"));
    }
}
