//! Signing keys for secp256k1, Ed25519, P-256, BLS12-381 and ML-DSA-65.
//!
//! ECDSA uses RFC 6979 deterministic nonces and returns low-S compact signatures; every
//! signature is verified against the key's own public key before it leaves this module,
//! except BLS signatures: deterministic with no nonce to fault, and a pairing check would
//! cost more than the signature (the key is checked when it is loaded instead).
//!
//! A loaded key's secret bytes are kept encrypted under the per-process memory key
//! ([`crate::memory`]) and opened into locked memory only for the instant of a signature.

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use strongroom_core::{Algorithm, EntropySource};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;
use crate::memory::{InMemory, Secret};

/// What is signed: a 32-byte prehash (ECDSA) or a whole message (Ed25519).
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A 32-byte digest computed by the caller.
    Digest(&'a [u8; 32]),
    /// A message, hashed inside the algorithm (Ed25519).
    Message(&'a [u8]),
}

impl Payload<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Payload::Digest(_) => "digest",
            Payload::Message(_) => "message",
        }
    }
}

/// A verified signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Compact encoding: `r || s` (ECDSA, low-S) or `R || S` (Ed25519), 64 bytes; the
    /// FIPS 204 encoding for ML-DSA-65, 3,309 bytes.
    pub bytes: Vec<u8>,
    /// The secp256k1 public-key recovery id (0-3).
    pub recovery_id: Option<u8>,
    /// ASN.1 DER encoding, for ECDSA (what OpenSSL and X.509 tooling expect).
    pub der: Option<Vec<u8>>,
}

impl Signature {
    /// The 64-byte compact form (ECDSA `r || s`, Ed25519 `R || S`).
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] for a signature of another length (ML-DSA).
    pub fn compact(&self) -> Result<[u8; 64], Error> {
        self.bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidSignature)
    }
}

/// A private signing key.
pub struct SigningKey {
    algorithm: Algorithm,
    // The 32 secret bytes (secp256k1/P-256/BLS scalar, Ed25519 seed), encrypted in memory.
    secret: InMemory,
    public_key: Vec<u8>,
    // Parsed once, so verify-before-release does not decompress the point on every signature.
    verifier: Verifier,
}

/// The Ethereum consensus BLS ciphersuite (proof of possession, signatures in G2).
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A parsed public key, ready to verify.
enum Verifier {
    Secp256k1(secp256k1::PublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Bls(Box<blst::min_pk::PublicKey>),
    MlDsa65(Box<ml_dsa::VerifyingKey<ml_dsa::MlDsa65>>),
}

impl Verifier {
    fn parse(algorithm: Algorithm, public_key: &[u8]) -> Result<Self, Error> {
        match algorithm {
            Algorithm::Secp256k1 => secp256k1::PublicKey::from_slice(public_key)
                .map(Verifier::Secp256k1)
                .ok(),
            Algorithm::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                .map(Verifier::P256)
                .ok(),
            Algorithm::Ed25519 => <&[u8; 32]>::try_from(public_key)
                .ok()
                .and_then(|pk| ed25519_dalek::VerifyingKey::from_bytes(pk).ok())
                .map(Verifier::Ed25519),
            // Decompressed, on the curve, in the subgroup, not the identity.
            Algorithm::Bls12381 => blst::min_pk::PublicKey::key_validate(public_key)
                .ok()
                .map(|pk| Verifier::Bls(Box::new(pk))),
            // Every 1,952-byte string decodes (pkDecode is total); the length is the check.
            Algorithm::MlDsa65 => {
                ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(public_key)
                    .ok()
                    .map(|enc| Verifier::MlDsa65(Box::new(ml_dsa::VerifyingKey::decode(&enc))))
            }
            _ => None,
        }
        .ok_or(Error::InvalidPublicKey)
    }

    fn verify(&self, payload: Payload<'_>, signature: &[u8]) -> Result<(), Error> {
        match (self, payload) {
            (Verifier::Secp256k1(pk), Payload::Digest(digest)) => {
                let sig = secp256k1::ecdsa::Signature::from_compact(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                // libsecp256k1 rejects high-S signatures in verify_ecdsa.
                secp()
                    .verify_ecdsa(&secp256k1::Message::from_digest(*digest), &sig, pk)
                    .map_err(|_| Error::InvalidSignature)
            }
            (Verifier::P256(vk), Payload::Digest(digest)) => {
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                vk.verify_prehash(digest, &sig)
                    .map_err(|_| Error::InvalidSignature)
            }
            (Verifier::Ed25519(vk), Payload::Message(msg)) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                vk.verify_strict(msg, &sig)
                    .map_err(|_| Error::InvalidSignature)
            }
            (Verifier::Bls(pk), Payload::Message(msg)) => {
                let sig = blst::min_pk::Signature::from_bytes(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                match sig.verify(true, msg, BLS_DST, &[], pk, false) {
                    blst::BLST_ERROR::BLST_SUCCESS => Ok(()),
                    _ => Err(Error::InvalidSignature),
                }
            }
            (Verifier::MlDsa65(vk), Payload::Message(msg)) => {
                let enc = ml_dsa::EncodedSignature::<ml_dsa::MlDsa65>::try_from(signature)
                    .map_err(|_| Error::InvalidSignature)?;
                let sig = ml_dsa::Signature::decode(&enc).ok_or(Error::InvalidSignature)?;
                // Pure ML-DSA with the empty context, as strongroom signs.
                if vk.verify_with_context(msg, &[], &sig) {
                    Ok(())
                } else {
                    Err(Error::InvalidSignature)
                }
            }
            (Verifier::Ed25519(_) | Verifier::Bls(_) | Verifier::MlDsa65(_), given) => {
                Err(Error::WrongPayload {
                    expected: "message",
                    given: given.kind(),
                })
            }
            (_, given) => Err(Error::WrongPayload {
                expected: "32-byte digest",
                given: given.kind(),
            }),
        }
    }
}

pub(crate) fn secp() -> &'static secp256k1::Secp256k1<secp256k1::All> {
    static CTX: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::All>> =
        std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let mut ctx = secp256k1::Secp256k1::new();
        // Blinding for side-channel resistance; a failed draw leaves the (still correct)
        // default context.
        let mut seed = Zeroizing::new([0u8; 32]);
        if getrandom::fill(seed.as_mut()).is_ok() {
            ctx.seeded_randomize(&seed);
        }
        ctx
    })
}

impl SigningKey {
    /// Generates a key and runs the pairwise-consistency test (sign, then verify) on it.
    ///
    /// # Errors
    /// [`Error::Entropy`] if the source fails; [`Error::SelfCheck`] if the new key fails its test.
    pub fn generate(algorithm: Algorithm, entropy: &dyn EntropySource) -> Result<Self, Error> {
        // A wallet seed is not a signing key (see `HdSeed`).
        if !algorithm.is_signing() {
            return Err(Error::InvalidKeyMaterial);
        }
        if algorithm == Algorithm::Bls12381 {
            // The IETF BLS KeyGen (HKDF-mod-r) from 32 bytes of entropy.
            let mut ikm = Zeroizing::new([0u8; 32]);
            entropy.fill(ikm.as_mut()).map_err(|_| Error::Entropy)?;
            let sk =
                blst::min_pk::SecretKey::key_gen(ikm.as_ref(), &[]).map_err(|_| Error::Entropy)?;
            let key = Self::from_secret_bytes(algorithm, Zeroizing::new(sk.to_bytes()).as_ref())?;
            key.pairwise_consistency_test()?;
            return Ok(key);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        // A uniformly random 32-byte string is a valid secp256k1/P-256 scalar except with
        // probability below 2^-32; rejection sampling keeps the distribution uniform.
        for _ in 0..64 {
            entropy.fill(bytes.as_mut()).map_err(|_| Error::Entropy)?;
            match Self::from_secret_bytes(algorithm, bytes.as_ref()) {
                Ok(key) => {
                    key.pairwise_consistency_test()?;
                    return Ok(key);
                }
                Err(Error::InvalidKeyMaterial) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Entropy)
    }

    /// Rebuilds a key from its 32 secret bytes.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a valid key for `algorithm`.
    pub fn from_secret_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| Error::InvalidKeyMaterial)?;
        let public_key = Self::public_key_of(algorithm, arr)?;
        let verifier = Verifier::parse(algorithm, &public_key)?;
        let secret = InMemory::seal(&memory_aad(algorithm, &public_key), arr)?;
        Ok(Self {
            algorithm,
            secret,
            public_key,
            verifier,
        })
    }

    /// The public key of `bytes`, which also checks that they are a key for `algorithm`.
    fn public_key_of(algorithm: Algorithm, arr: &[u8; 32]) -> Result<Vec<u8>, Error> {
        match algorithm {
            Algorithm::Secp256k1 => {
                let mut sk =
                    secp256k1::SecretKey::from_slice(arr).map_err(|_| Error::InvalidKeyMaterial)?;
                let pk = secp256k1::PublicKey::from_secret_key(secp(), &sk);
                sk.non_secure_erase();
                Ok(pk.serialize().to_vec())
            }
            Algorithm::Ed25519 => {
                let sk = ed25519_dalek::SigningKey::from_bytes(arr);
                Ok(sk.verifying_key().to_bytes().to_vec())
            }
            Algorithm::P256 => {
                let sk = p256::ecdsa::SigningKey::from_slice(arr)
                    .map_err(|_| Error::InvalidKeyMaterial)?;
                Ok(sk.verifying_key().to_sec1_point(true).as_bytes().to_vec())
            }
            // Nonzero and below the group order.
            Algorithm::Bls12381 => {
                let sk = blst::min_pk::SecretKey::from_bytes(arr)
                    .map_err(|_| Error::InvalidKeyMaterial)?;
                Ok(sk.sk_to_pk().compress().to_vec())
            }
            // Any 32 bytes are a KeyGen seed (FIPS 204 Algorithm 6).
            Algorithm::MlDsa65 => Ok(ml_dsa_key(arr)
                .expanded_key()
                .verifying_key()
                .encode()
                .as_slice()
                .to_vec()),
            _ => Err(Error::InvalidKeyMaterial),
        }
    }

    /// The secret bytes, opened into locked memory for one use.
    fn open(&self) -> Result<Secret<32>, Error> {
        self.secret
            .open(&memory_aad(self.algorithm, &self.public_key))
    }

    pub(crate) fn secret_bytes(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        Ok(Zeroizing::new(*self.open()?.expose()))
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key: compressed SEC1 (33 bytes) for ECDSA, 32 bytes for Ed25519, a
    /// compressed G1 point (48 bytes) for BLS.
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Signs, then verifies the result against this key's public key before returning it.
    ///
    /// # Errors
    /// [`Error::WrongPayload`] if the payload kind does not suit the algorithm;
    /// [`Error::SelfCheck`] if the fresh signature does not verify (nothing is returned).
    pub fn sign(&self, payload: Payload<'_>) -> Result<Signature, Error> {
        let sig = self.sign_unverified(payload)?;
        self.verifier
            .verify(payload, &sig.bytes)
            .map_err(|_| Error::SelfCheck)?;
        Ok(sig)
    }

    /// An ECDSA secp256k1 signature of `digest` that `accept`s: the first of RFC 6979's
    /// nonce, then the same with extra data 1, 2, ... (RFC 6979 section 3.6), for chains that
    /// demand a particular form (Antelope's "canonical" signatures) or prefer one (Bitcoin's
    /// low-R signatures, a byte shorter). Verified before release.
    ///
    /// # Errors
    /// [`Error::WrongPayload`] for other algorithms; [`Error::SelfCheck`] if no nonce within
    /// 256 tries gives an acceptable signature (each try succeeds with probability about 1/4).
    pub fn sign_digest_until(
        &self,
        digest: &[u8; 32],
        accept: impl Fn(&[u8; 64]) -> bool,
    ) -> Result<Signature, Error> {
        if self.algorithm != Algorithm::Secp256k1 {
            return Err(not_secp256k1());
        }
        let bytes = self.open()?;
        let msg = secp256k1::Message::from_digest(*digest);
        for counter in 0u32..256 {
            let mut sk = secp256k1::SecretKey::from_slice(bytes.expose())
                .map_err(|_| Error::InvalidKeyMaterial)?;
            let rsig = if counter == 0 {
                secp().sign_ecdsa_recoverable(&msg, &sk)
            } else {
                // Bitcoin Core's encoding of the counter (little-endian, first bytes), so
                // that low-R grinding gives the signatures Core and other wallets give.
                let mut extra = [0u8; 32];
                extra[..4].copy_from_slice(&counter.to_le_bytes());
                secp().sign_ecdsa_recoverable_with_noncedata(&msg, &sk, &extra)
            };
            sk.non_secure_erase();
            let (rid, compact) = rsig.serialize_compact();
            if !accept(&compact) {
                continue;
            }
            self.verifier
                .verify(Payload::Digest(digest), &compact)
                .map_err(|_| Error::SelfCheck)?;
            return Ok(Signature {
                bytes: compact.to_vec(),
                recovery_id: u8::try_from(rid.to_i32()).ok(),
                der: Some(rsig.to_standard().serialize_der().to_vec()),
            });
        }
        Err(Error::SelfCheck)
    }

    /// A BLS signature (96 bytes, a compressed G2 point) of `msg`: for Ethereum validators,
    /// a 32-byte signing root. Not verified before release (see the module documentation).
    ///
    /// # Errors
    /// [`Error::WrongPayload`] for other algorithms.
    pub fn sign_bls(&self, msg: &[u8]) -> Result<[u8; 96], Error> {
        if self.algorithm != Algorithm::Bls12381 {
            return Err(Error::WrongPayload {
                expected: "BLS key",
                given: "other key",
            });
        }
        // blst's SecretKey zeroizes itself on drop.
        let sk = blst::min_pk::SecretKey::from_bytes(self.open()?.expose())
            .map_err(|_| Error::InvalidKeyMaterial)?;
        Ok(sk.sign(msg, BLS_DST, &[]).compress())
    }

    /// A BIP-340 Schnorr signature of the 32-byte `msg` by this (secp256k1) key, with the
    /// auxiliary randomness `aux` (BIP-340's side-channel defence). Verified before release.
    ///
    /// # Errors
    /// [`Error::WrongPayload`] for other algorithms; [`Error::SelfCheck`] on a fault.
    pub fn sign_schnorr(&self, msg: &[u8; 32], aux: &[u8; 32]) -> Result<[u8; 64], Error> {
        self.schnorr(msg, None, aux)
    }

    /// A BIP-341 key-path signature: BIP-340 Schnorr of the transaction's `sighash` by this key
    /// tweaked with `TapTweak(x(P) || merkle_root)` (BIP-86 wallets have no script tree, so
    /// `merkle_root` is `None`). Verified against the tweaked output key before release.
    ///
    /// # Errors
    /// [`Error::WrongPayload`] for other algorithms; [`Error::InvalidKeyMaterial`] in the
    /// negligible case that the tweak is invalid; [`Error::SelfCheck`] on a fault.
    pub fn sign_taproot_key_spend(
        &self,
        sighash: &[u8; 32],
        merkle_root: Option<&[u8; 32]>,
        aux: &[u8; 32],
    ) -> Result<[u8; 64], Error> {
        self.schnorr(sighash, Some(merkle_root), aux)
    }

    /// The 32-byte x-only public key (BIP-340) of a secp256k1 key.
    ///
    /// # Errors
    /// [`Error::WrongPayload`] for other algorithms.
    pub fn x_only_public_key(&self) -> Result<[u8; 32], Error> {
        match &self.verifier {
            Verifier::Secp256k1(pk) => Ok(pk.x_only_public_key().0.serialize()),
            _ => Err(not_secp256k1()),
        }
    }

    /// Schnorr signing, untweaked (`tweak` `None`) or with the Taproot tweak of the given
    /// merkle root (`Some(None)`: no script tree).
    fn schnorr(
        &self,
        msg: &[u8; 32],
        tweak: Option<Option<&[u8; 32]>>,
        aux: &[u8; 32],
    ) -> Result<[u8; 64], Error> {
        use bitcoin::key::TapTweak as _;
        if self.algorithm != Algorithm::Secp256k1 {
            return Err(not_secp256k1());
        }
        let mut sk = secp256k1::SecretKey::from_slice(self.open()?.expose())
            .map_err(|_| Error::InvalidKeyMaterial)?;
        let mut keypair = secp256k1::Keypair::from_secret_key(secp(), &sk);
        sk.non_secure_erase();
        if let Some(merkle_root) = tweak {
            let root = merkle_root.map(|r| bitcoin::TapNodeHash::assume_hidden(*r));
            let tweaked = keypair.tap_tweak(secp(), root).to_keypair();
            keypair.non_secure_erase();
            keypair = tweaked;
        }
        let message = secp256k1::Message::from_digest(*msg);
        let sig = secp().sign_schnorr_with_aux_rand(&message, &keypair, aux);
        let (public, _) = keypair.x_only_public_key();
        keypair.non_secure_erase();
        secp()
            .verify_schnorr(&sig, &message, &public)
            .map_err(|_| Error::SelfCheck)?;
        Ok(*sig.as_ref())
    }

    fn sign_unverified(&self, payload: Payload<'_>) -> Result<Signature, Error> {
        match (self.algorithm, payload, &self.verifier) {
            (Algorithm::MlDsa65, Payload::Message(msg), _) => {
                // Deterministic ML-DSA (FIPS 204's optional variant, as RFC 6979 and Ed25519
                // are deterministic here), pure, empty context; verified before release. The
                // expanded key zeroizes itself on drop.
                let sk = ml_dsa_key(self.open()?.expose());
                let sig = sk
                    .expanded_key()
                    .sign_deterministic(msg, &[])
                    .map_err(|_| Error::SelfCheck)?;
                Ok(Signature {
                    bytes: sig.encode().as_slice().to_vec(),
                    recovery_id: None,
                    der: None,
                })
            }
            (Algorithm::Secp256k1, Payload::Digest(digest), _) => {
                // libsecp256k1's SecretKey is `Copy`: built for this one signature and erased.
                let mut sk = secp256k1::SecretKey::from_slice(self.open()?.expose())
                    .map_err(|_| Error::InvalidKeyMaterial)?;
                let msg = secp256k1::Message::from_digest(*digest);
                let rsig = secp().sign_ecdsa_recoverable(&msg, &sk);
                sk.non_secure_erase();
                let (rid, bytes) = rsig.serialize_compact();
                let der = rsig.to_standard().serialize_der().to_vec();
                Ok(Signature {
                    bytes: bytes.to_vec(),
                    recovery_id: u8::try_from(rid.to_i32()).ok(),
                    der: Some(der),
                })
            }
            (Algorithm::P256, Payload::Digest(digest), _) => {
                // The scalar alone (the library's SigningKey would recompute the public key,
                // a second scalar multiplication per signature); RFC 6979 as `sign_prehash`.
                let mut repr = p256::FieldBytes::from(*self.open()?.expose());
                let d = Option::<p256::NonZeroScalar>::from(p256::NonZeroScalar::from_repr(repr));
                repr.as_mut_slice().zeroize();
                let mut d = d.ok_or(Error::InvalidKeyMaterial)?;
                let (sig, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, sha2::Sha256>(
                    &d,
                    digest,
                    &[],
                );
                d.zeroize();
                let sig = sig.normalize_s();
                Ok(Signature {
                    bytes: sig.to_bytes().to_vec(),
                    recovery_id: None,
                    der: Some(sig.to_der().as_bytes().to_vec()),
                })
            }
            (Algorithm::Ed25519, Payload::Message(msg), Verifier::Ed25519(vk)) => {
                // The expanded key (one SHA-512 of the seed) and the stored public key, rather
                // than recomputing the public key per signature. A mismatch would leak the key
                // (the nonce hashes the wrong point); it cannot happen: `vk` is parsed from the
                // public key bound into the memory encryption's associated data, and `sign`
                // verifies every signature against it before release.
                let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(self.open()?.expose());
                Ok(Signature {
                    bytes: ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&esk, msg, vk)
                        .to_bytes()
                        .to_vec(),
                    recovery_id: None,
                    der: None,
                })
            }
            // BLS signatures are 96 bytes: `sign_bls`.
            (Algorithm::Bls12381, _, _) => Err(Error::WrongPayload {
                expected: "BLS signing root (sign_bls)",
                given: "generic signature",
            }),
            (algorithm, given, _) => Err(Error::WrongPayload {
                expected: if matches!(algorithm, Algorithm::Ed25519 | Algorithm::MlDsa65) {
                    "message"
                } else {
                    "32-byte digest"
                },
                given: given.kind(),
            }),
        }
    }

    fn pairwise_consistency_test(&self) -> Result<(), Error> {
        const PCT_DIGEST: [u8; 32] = *b"strongroom pairwise consistency!";
        // Tests only: `STRONGROOM_BREAK_SELF_TEST=pairwise-consistency` verifies against
        // another message, as a key whose halves disagree would fail.
        #[allow(unused_mut)]
        let mut checked = PCT_DIGEST;
        #[cfg(feature = "danger-break-self-test")]
        if std::env::var("STRONGROOM_BREAK_SELF_TEST").is_ok_and(|b| b == "pairwise-consistency") {
            checked[0] ^= 1;
        }
        if self.algorithm == Algorithm::Bls12381 {
            let sig = self.sign_bls(&PCT_DIGEST)?;
            return self
                .verifier
                .verify(Payload::Message(&checked), &sig)
                .map_err(|_| Error::SelfCheck);
        }
        let (signed, verified) = match self.algorithm() {
            Algorithm::Ed25519 | Algorithm::MlDsa65 => {
                (Payload::Message(&PCT_DIGEST), Payload::Message(&checked))
            }
            _ => (Payload::Digest(&PCT_DIGEST), Payload::Digest(&checked)),
        };
        let sig = self.sign_unverified(signed)?;
        self.verifier
            .verify(verified, &sig.bytes)
            .map_err(|_| Error::SelfCheck)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

// The secret is ciphertext in memory; its plaintext exists only in locked, zeroed-on-drop
// buffers for the duration of one operation.
impl ZeroizeOnDrop for SigningKey {}

/// What a signing key's memory encryption binds: the algorithm and the public key.
fn memory_aad(algorithm: Algorithm, public_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + public_key.len());
    aad.extend_from_slice(b"strongroom/memory/signing-key/");
    aad.extend_from_slice(algorithm.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(public_key);
    aad
}

/// The ML-DSA-65 key of a KeyGen seed (zeroized on drop).
fn ml_dsa_key(seed: &[u8; 32]) -> ml_dsa::SigningKey<ml_dsa::MlDsa65> {
    let mut xi = ml_dsa::Seed::from(*seed);
    let key = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&xi);
    xi.as_mut_slice().zeroize();
    key
}

fn not_secp256k1() -> Error {
    Error::WrongPayload {
        expected: "secp256k1 key",
        given: "other key",
    }
}

/// Verifies a BIP-340 Schnorr signature of the 32-byte `msg` under the x-only public key.
///
/// # Errors
/// [`Error::InvalidPublicKey`] or [`Error::InvalidSignature`].
pub fn verify_schnorr(
    x_only: &[u8; 32],
    msg: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), Error> {
    let pk = secp256k1::XOnlyPublicKey::from_slice(x_only).map_err(|_| Error::InvalidPublicKey)?;
    let sig = secp256k1::schnorr::Signature::from_slice(signature)
        .map_err(|_| Error::InvalidSignature)?;
    secp()
        .verify_schnorr(&sig, &secp256k1::Message::from_digest(*msg), &pk)
        .map_err(|_| Error::InvalidSignature)
}

/// Verifies a compact 64-byte signature. ECDSA signatures must be low-S for secp256k1
/// (BIP-146 / EIP-2 malleability rule); Ed25519 uses strict verification (no small-order
/// keys, canonical `S`).
///
/// # Errors
/// [`Error::InvalidPublicKey`], [`Error::InvalidSignature`] or [`Error::WrongPayload`].
pub fn verify(
    algorithm: Algorithm,
    public_key: &[u8],
    payload: Payload<'_>,
    signature: &[u8],
) -> Result<(), Error> {
    Verifier::parse(algorithm, public_key)?.verify(payload, signature)
}

/// Verifies an ML-DSA-65 signature of `msg` with the context string `ctx` (FIPS 204
/// ML-DSA.Verify; strongroom's own keys sign with the empty context).
///
/// # Errors
/// [`Error::InvalidPublicKey`] (not 1,952 bytes) or [`Error::InvalidSignature`] (including a
/// context over 255 bytes).
pub fn verify_ml_dsa_65(
    public_key: &[u8],
    msg: &[u8],
    ctx: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let Verifier::MlDsa65(vk) = Verifier::parse(Algorithm::MlDsa65, public_key)? else {
        return Err(Error::InvalidPublicKey);
    };
    let enc = ml_dsa::EncodedSignature::<ml_dsa::MlDsa65>::try_from(signature)
        .map_err(|_| Error::InvalidSignature)?;
    let sig = ml_dsa::Signature::decode(&enc).ok_or(Error::InvalidSignature)?;
    if vk.verify_with_context(msg, ctx, &sig) {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

/// Verifies a BLS signature (96 bytes) of `msg` under a 48-byte public key, with the subgroup
/// checks of both.
///
/// # Errors
/// [`Error::InvalidPublicKey`] or [`Error::InvalidSignature`].
pub fn verify_bls(public_key: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), Error> {
    Verifier::parse(Algorithm::Bls12381, public_key)?.verify(Payload::Message(msg), signature)
}
