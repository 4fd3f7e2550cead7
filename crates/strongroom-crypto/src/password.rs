//! Operator passwords: Argon2id (RustCrypto `argon2`, default parameters: 19 MiB, 2 passes,
//! 1 lane, as OWASP recommends), stored as PHC strings with a 16-byte random salt.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use strongroom_core::EntropySource;
use zeroize::Zeroizing;

use crate::Error;

/// Hashes `password`; the PHC string returned is safe to store.
///
/// # Errors
/// [`Error::Entropy`] if no salt could be drawn.
pub fn hash_password(password: &str, entropy: &dyn EntropySource) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    entropy.fill(&mut salt).map_err(|_| Error::Entropy)?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::InvalidKeyMaterial)
}

/// Whether `password` matches the stored PHC string (constant time in the password).
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A random initial password for enrolment: 20 characters from an unambiguous alphabet
/// (about 100 bits).
///
/// # Errors
/// [`Error::Entropy`].
pub fn generate_password(entropy: &dyn EntropySource) -> Result<Zeroizing<String>, Error> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut out = Zeroizing::new(String::with_capacity(20));
    let mut byte = [0u8; 1];
    while out.len() < 20 {
        entropy.fill(&mut byte).map_err(|_| Error::Entropy)?;
        // Rejection sampling keeps the choice uniform.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsEntropy;

    #[test]
    fn hash_verify_and_refuse() {
        let phc = hash_password("correct horse", &OsEntropy).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct hors", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(
            phc,
            hash_password("correct horse", &OsEntropy).unwrap(),
            "salted"
        );
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password(&OsEntropy).unwrap();
        let b = generate_password(&OsEntropy).unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
