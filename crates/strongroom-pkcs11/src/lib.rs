//! The PKCS#11 seal: the vault's root key encrypted (AES-256-GCM, with the vault id and key
//! label as associated data) by a non-extractable AES key that lives inside a hardware token,
//! so a node can unseal itself at start while the token is present.
//!
//! This crate is the I/O edge between the keystore and a vendor's PKCS#11 module. It must
//! not: create or accept a wrapping key that can leave the token (extractable or not
//! sensitive), keep the PIN anywhere but in the token handle (zeroized on drop), retry a
//! refused PIN (tokens lock after a few failures), or hand back anything but what the token
//! decrypted (the keystore checks it against the vault's check value).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use strongroom_core::EntropySource;
use strongroom_crypto::RootKey;
use strongroom_keystore::{HsmError, RootWrapper};
use zeroize::Zeroizing;

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

/// Where the token and its key are (the `[seal]` section of a node's configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Params {
    /// Path of the vendor's PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// Label of the token holding the wrapping key.
    pub token_label: String,
    /// File holding the token's user PIN (only its owner may read it).
    pub pin_file: PathBuf,
    /// Label of the AES wrapping key in the token.
    pub key_label: String,
}

/// An open PKCS#11 module with the slot of the configured token. Each operation opens a
/// session, logs in, works, and closes it (which logs out), one at a time.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    serial: String,
    pin: AuthPin,
    key_label: String,
    entropy: std::sync::Arc<dyn EntropySource>,
    // Held for each operation; holds the PIN refusal that stops every later login.
    busy: Mutex<Option<HsmError>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the module, finds the token by label and checks the PIN with one login.
    ///
    /// # Errors
    /// [`HsmError::PinFile`], [`HsmError::ModuleUnavailable`], [`HsmError::TokenNotFound`],
    /// [`HsmError::PinIncorrect`], [`HsmError::PinLocked`] or [`HsmError::Device`].
    pub fn open(
        params: &Pkcs11Params,
        entropy: std::sync::Arc<dyn EntropySource>,
    ) -> Result<Self, HsmError> {
        let pin = read_pin(&params.pin_file)?;
        let module =
            |e: CkError| HsmError::ModuleUnavailable(format!("{}: {e}", params.module.display()));
        let ctx = Pkcs11::new(&params.module).map_err(module)?;
        // cryptoki does not finalize a module on drop, so an earlier failed open in this
        // process may have left it initialised.
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(module(e)),
        }
        let mut found = Vec::new();
        for slot in ctx.get_slots_with_token().map_err(device)? {
            let info = ctx.get_token_info(slot).map_err(device)?;
            if info.label().trim_end() == params.token_label {
                found.push((slot, info.serial_number().trim_end().to_owned()));
            }
        }
        let (slot, serial) = match found.as_slice() {
            [one] => one.clone(),
            [] => return Err(HsmError::TokenNotFound(params.token_label.clone())),
            _ => {
                return Err(HsmError::Device(format!(
                    "several tokens are labelled \"{}\"",
                    params.token_label
                )));
            }
        };
        let token = Self {
            ctx,
            slot,
            serial,
            pin,
            key_label: params.key_label.clone(),
            entropy,
            busy: Mutex::new(None),
        };
        drop(token.session(&mut token.lock())?);
        Ok(token)
    }

    /// The token's serial number, as it reports it (bound into seal-migration requests).
    #[must_use]
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Whether the wrapping key exists (and is protected) on the token.
    ///
    /// # Errors
    /// Token failures, [`HsmError::KeyAmbiguous`], [`HsmError::KeyNotProtected`].
    pub fn has_key(&self) -> Result<bool, HsmError> {
        let mut busy = self.lock();
        let session = self.session(&mut busy)?;
        Ok(self.find_key(&session)?.is_some())
    }

    /// Stores `value` as the token's data object labelled `label` (private to the token's
    /// user), in place of what it held: the rollback anchor keeps the vault's newest audit head
    /// here, outside the data directory. Tokens need not let a data object's value change, so
    /// the new object is made first and the old ones destroyed after: a crash in between
    /// leaves both, never neither.
    ///
    /// # Errors
    /// Token failures.
    pub fn write_anchor(&self, label: &str, value: &[u8]) -> Result<(), HsmError> {
        let mut busy = self.lock();
        let session = self.session(&mut busy)?;
        let old = self.find_anchor(&session, label)?;
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Application(b"strongroom".to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .map_err(device)?;
        for o in old {
            session.destroy_object(o).map_err(device)?;
        }
        Ok(())
    }

    /// The values of the token's data objects labelled `label` (one, normally; two after a
    /// crash inside [`Token::write_anchor`]).
    ///
    /// # Errors
    /// Token failures.
    pub fn read_anchors(&self, label: &str) -> Result<Vec<Vec<u8>>, HsmError> {
        let mut busy = self.lock();
        let session = self.session(&mut busy)?;
        let mut out = Vec::new();
        for o in self.find_anchor(&session, label)? {
            let attrs = session
                .get_attributes(o, &[AttributeType::Value])
                .map_err(device)?;
            out.extend(attrs.into_iter().filter_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            }));
        }
        Ok(out)
    }

    fn find_anchor(&self, session: &Session, label: &str) -> Result<Vec<ObjectHandle>, HsmError> {
        session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(device)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HsmError>> {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A logged-in session. Once the token has refused the PIN, it is never offered again by
    /// this handle: tokens lock the PIN after a few failures, and only a restart (with a
    /// corrected PIN file) tries again.
    fn session(&self, refused: &mut Option<HsmError>) -> Result<Session, HsmError> {
        if let Some(e) = refused {
            return Err(e.clone());
        }
        let session = self.ctx.open_rw_session(self.slot).map_err(device)?;
        let e = match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => return Ok(session),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => HsmError::PinLocked,
            Err(CkError::Pkcs11(
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired,
                _,
            )) => HsmError::PinIncorrect,
            Err(e) => return Err(device(e)),
        };
        *refused = Some(e.clone());
        Err(e)
    }

    /// The wrapping key, checked to be a 256-bit AES key made inside the token that has never
    /// been readable: local, sensitive and always so, not extractable and never so. A key
    /// imported with a known value (not local) is refused, since the wrapped root would then
    /// be open to whoever knew it.
    fn find_key(&self, session: &Session) -> Result<Option<ObjectHandle>, HsmError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
        ];
        let found = session.find_objects(&template).map_err(device)?;
        let key = match found.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            _ => return Err(HsmError::KeyAmbiguous(self.key_label.clone())),
        };
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::KeyType,
                    AttributeType::ValueLen,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Local,
                ],
            )
            .map_err(device)?;
        let (mut aes, mut len) = (false, 0u64);
        let mut protected = [false; 5];
        for a in attrs {
            match a {
                Attribute::KeyType(t) => aes = t == KeyType::AES,
                Attribute::ValueLen(n) => len = n.into(),
                Attribute::Sensitive(s) => protected[0] = s,
                Attribute::AlwaysSensitive(s) => protected[1] = s,
                Attribute::Extractable(e) => protected[2] = !e,
                Attribute::NeverExtractable(e) => protected[3] = e,
                Attribute::Local(l) => protected[4] = l,
                _ => {}
            }
        }
        if !aes {
            return Err(HsmError::KeyNotFound(self.key_label.clone()));
        }
        if len != 32 || protected.contains(&false) {
            return Err(HsmError::KeyNotProtected(self.key_label.clone()));
        }
        Ok(Some(key))
    }

    /// Generates the wrapping key inside the token: AES-256, persistent, private, sensitive,
    /// never extractable, usable only to encrypt and decrypt.
    fn generate_key(&self, session: &Session) -> Result<ObjectHandle, HsmError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
        ];
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(device)
    }
}

impl RootWrapper for Token {
    fn key_label(&self) -> &str {
        &self.key_label
    }

    fn wrap(&self, aad: &[u8], root: &RootKey) -> Result<Vec<u8>, HsmError> {
        let mut busy = self.lock();
        let session = self.session(&mut busy)?;
        let key = match self.find_key(&session)? {
            Some(k) => k,
            None => self.generate_key(&session)?,
        };
        let mut iv = [0u8; IV_LEN];
        self.entropy
            .fill(&mut iv)
            .map_err(|_| HsmError::Device("entropy source failed".into()))?;
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(device)?;
        let ct = session
            .encrypt(&Mechanism::AesGcm(params), key, root.danger_expose_bytes())
            .map_err(device)?;
        // Stored as the token left it: a token that makes its own IVs writes it back here.
        let mut out = Vec::with_capacity(IV_LEN + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<RootKey, HsmError> {
        let mut busy = self.lock();
        let session = self.session(&mut busy)?;
        let key = self
            .find_key(&session)?
            .ok_or_else(|| HsmError::KeyNotFound(self.key_label.clone()))?;
        let (iv, ct) = wrapped
            .split_first_chunk::<IV_LEN>()
            .ok_or(HsmError::UnwrapFailed)?;
        let mut iv = *iv;
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(device)?;
        let plain = Zeroizing::new(
            session
                .decrypt(&Mechanism::AesGcm(params), key, ct)
                .map_err(|e| match e {
                    // SoftHSM (and some vendors) report a failed GCM tag as a general error.
                    CkError::Pkcs11(
                        RvError::GeneralError
                        | RvError::EncryptedDataInvalid
                        | RvError::EncryptedDataLenRange
                        | RvError::DataInvalid
                        | RvError::DataLenRange,
                        _,
                    ) => HsmError::UnwrapFailed,
                    other => device(other),
                })?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        if plain.len() != bytes.len() {
            return Err(HsmError::UnwrapFailed);
        }
        bytes.copy_from_slice(&plain);
        Ok(RootKey::danger_from_bytes(&bytes))
    }
}

fn device(e: CkError) -> HsmError {
    HsmError::Device(e.to_string())
}

/// Reads the PIN, refusing a file that anyone but its owner can read or write.
fn read_pin(path: &Path) -> Result<AuthPin, HsmError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| HsmError::PinFile(format!("{shown}: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(HsmError::PinFile(format!(
            "{shown} is readable or writable by others; chmod 600 it"
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| HsmError::PinFile(format!("{shown}: {e}")))?,
    );
    let pin = text.trim_end_matches(['\n', '\r']);
    if pin.is_empty() {
        return Err(HsmError::PinFile(format!("{shown} is empty")));
    }
    Ok(AuthPin::from(pin))
}
