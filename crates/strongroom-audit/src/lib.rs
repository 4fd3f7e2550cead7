//! The audit chain: how records are encoded and hashed, how chain heads are signed and
//! stored, and how a chain is verified offline.
//!
//! Everything here is pure: no I/O, no clock and no secret key. Signing heads is done by the
//! keystore (which holds the audit key); this crate only builds the messages and verifies
//! signatures, so auditors can run it anywhere. Byte layouts are specified in
//! `docs/formats.md`.

mod encoding;
mod verify;

pub use encoding::{
    Chain, HEAD_SLOT_LEN, body_digest, decode_event, decode_head_slot, encode_event,
    encode_head_slot, event_digest, genesis_hash, head_message, record_hash,
};
pub use verify::{Report, Verifier, VerifyError, verify_head_signature};
