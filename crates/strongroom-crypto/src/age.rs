//! Encryption to an age X25519 recipient (`age1...`), in the age v1 format
//! (<https://age-encryption.org/v1>), so that each unseal share can be handed to one custodian
//! encrypted to their key and decrypted only by them, with the standard `age` tool.
//!
//! Only what strongroom needs: one X25519 recipient, ASCII-armored output. The tests decrypt
//! with the reference `age` binary.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use strongroom_core::EntropySource;
use zeroize::Zeroizing;

use crate::Error;

const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
const CHUNK: usize = 64 * 1024;

/// An age X25519 recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeRecipient([u8; 32]);

impl AgeRecipient {
    /// A recipient from its raw X25519 public key.
    #[must_use]
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// Parses `age1...` (bech32, HRP `age`).
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (hrp, data) = bech32::decode(text.trim()).map_err(|_| Error::InvalidPublicKey)?;
        if hrp.as_str() != "age" {
            return Err(Error::InvalidPublicKey);
        }
        let key: [u8; 32] = data.try_into().map_err(|_| Error::InvalidPublicKey)?;
        Ok(Self(key))
    }
}

impl core::fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hrp = bech32::Hrp::parse_unchecked("age");
        let text = bech32::encode::<bech32::Bech32>(hrp, &self.0).map_err(|_| core::fmt::Error)?;
        f.write_str(&text)
    }
}

fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is within HKDF-SHA256's limit, so this cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, out.as_mut());
    out
}

fn seal(key: &[u8; 32], nonce: &[u8; 12], plain: &[u8]) -> Result<Vec<u8>, Error> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .encrypt(&(*nonce).into(), plain)
        .map_err(|_| Error::InvalidKeyMaterial)
}

/// Encrypts `plaintext` to `recipient`; returns the ASCII-armored age file.
///
/// # Errors
/// [`Error::Entropy`]; [`Error::InvalidPublicKey`] for a low-order recipient key.
pub fn age_encrypt(
    recipient: &AgeRecipient,
    plaintext: &[u8],
    entropy: &dyn EntropySource,
) -> Result<Zeroizing<String>, Error> {
    let mut file_key = Zeroizing::new([0u8; 16]);
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 16];
    for buf in [
        file_key.as_mut_slice(),
        ephemeral.as_mut_slice(),
        nonce.as_mut_slice(),
    ] {
        entropy.fill(buf).map_err(|_| Error::Entropy)?;
    }
    // X25519 stanza: wrap the file key under HKDF(shared secret).
    let share = MontgomeryPoint::mul_base_clamped(*ephemeral).to_bytes();
    let shared = Zeroizing::new(
        MontgomeryPoint(recipient.0)
            .mul_clamped(*ephemeral)
            .to_bytes(),
    );
    if shared.iter().all(|b| *b == 0) {
        return Err(Error::InvalidPublicKey);
    }
    let salt = [share.as_slice(), recipient.0.as_slice()].concat();
    let wrap_key = hkdf32(shared.as_ref(), &salt, X25519_INFO);
    let body = seal(&wrap_key, &[0; 12], file_key.as_ref())?;
    let mut header = String::from("age-encryption.org/v1\n");
    header.push_str(&format!("-> X25519 {}\n", STANDARD_NO_PAD.encode(share)));
    // The body is wrapped at 64 columns; 32 bytes encode to 43 characters, one short line.
    header.push_str(&format!("{}\n", STANDARD_NO_PAD.encode(&body)));
    header.push_str("---");
    let mac_key = hkdf32(file_key.as_ref(), &[], b"header");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key.as_ref())
        .map_err(|_| Error::InvalidKeyMaterial)?;
    mac.update(header.as_bytes());
    header.push_str(&format!(
        " {}\n",
        STANDARD_NO_PAD.encode(mac.finalize().into_bytes())
    ));

    // Payload: nonce, then STREAM chunks of ChaCha20-Poly1305 under HKDF(file key, nonce).
    let payload_key = hkdf32(file_key.as_ref(), &nonce, b"payload");
    let mut binary = header.into_bytes();
    binary.extend_from_slice(&nonce);
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(CHUNK).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        n[11] = u8::from(i + 1 == chunks.len());
        binary.extend(seal(&payload_key, &n, chunk)?);
    }
    let mut out = Zeroizing::new(String::from("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    let b64 = STANDARD.encode(&binary);
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).map_err(|_| Error::InvalidKeyMaterial)?);
        out.push('\n');
    }
    out.push_str("-----END AGE ENCRYPTED FILE-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_parse_and_reject_garbage() {
        // A recipient from the age specification's examples.
        let r =
            AgeRecipient::parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")
                .unwrap();
        assert_ne!(r.0, [0; 32]);
        assert_eq!(
            r.to_string(),
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
        );
        assert!(
            AgeRecipient::parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q")
                .is_err(),
            "bad checksum"
        );
        assert!(AgeRecipient::parse("age1qqqq").is_err());
        assert!(
            AgeRecipient::parse("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq").is_err(),
            "wrong HRP"
        );
    }

    #[test]
    fn armored_output_has_the_age_shape() {
        let r =
            AgeRecipient::parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")
                .unwrap();
        let out = age_encrypt(&r, b"srs1-share", &crate::OsEntropy).unwrap();
        assert!(out.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(out.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        let b64: String = out.lines().filter(|l| !l.starts_with("-----")).collect();
        let raw = STANDARD.decode(b64).unwrap();
        assert!(raw.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        assert!(!String::from_utf8_lossy(&raw).contains("srs1-share"));
    }
}
