//! This node's seal: which one its configuration names, the open PKCS#11 token when it is
//! `pkcs11`, and why the last attempt to use the token failed. Unsealing itself, seal
//! migration and their audit records live in `service.rs`/`requests.rs`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use strongroom_core::EntropySource;
use strongroom_keystore::{HsmError, SealKind};
use strongroom_pkcs11::{Pkcs11Params, Token};

/// The seal a node is configured with.
pub(crate) struct NodeSeal {
    params: Option<Pkcs11Params>,
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    token: Option<Arc<Token>>,
    last_error: Option<HsmError>,
}

impl NodeSeal {
    pub(crate) fn new(params: Option<Pkcs11Params>) -> Self {
        Self {
            params,
            state: Mutex::new(TokenState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What this node's configuration asks for.
    pub(crate) fn kind(&self) -> SealKind {
        if self.params.is_some() {
            SealKind::Pkcs11
        } else {
            SealKind::Shamir
        }
    }

    /// The configured token's label.
    pub(crate) fn token_label(&self) -> Option<&str> {
        self.params.as_ref().map(|p| p.token_label.as_str())
    }

    /// The configured wrapping key's label.
    pub(crate) fn key_label(&self) -> Option<&str> {
        self.params.as_ref().map(|p| p.key_label.as_str())
    }

    /// The token, opened on first use. `None` for a Shamir node. A refused or locked PIN is
    /// not tried again until the node restarts: tokens lock the PIN after a few failures.
    pub(crate) fn token(
        &self,
        entropy: &Arc<dyn EntropySource>,
    ) -> Option<Result<Arc<Token>, HsmError>> {
        let params = self.params.as_ref()?;
        let mut state = self.state();
        if let Some(t) = &state.token {
            return Some(Ok(Arc::clone(t)));
        }
        if let Some(e @ (HsmError::PinIncorrect | HsmError::PinLocked)) = &state.last_error {
            return Some(Err(e.clone()));
        }
        Some(match Token::open(params, Arc::clone(entropy)) {
            Ok(t) => {
                let t = Arc::new(t);
                state.token = Some(Arc::clone(&t));
                Ok(t)
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(e)
            }
        })
    }

    /// Records how the last use of the token went.
    pub(crate) fn note(&self, result: Result<(), &HsmError>) {
        self.state().last_error = result.err().cloned();
    }

    /// Why the token last failed, if it did.
    pub(crate) fn last_error(&self) -> Option<HsmError> {
        self.state().last_error.clone()
    }
}
