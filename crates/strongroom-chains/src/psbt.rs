//! Bitcoin PSBTs (BIP-174): decoded, checked against the wallet, and planned for signing.
//!
//! [`plan`] reads a PSBT the way a careful signer does, trusting nothing it cannot check:
//! - every input must be the wallet's own (P2WPKH under BIP-84 or key-path P2TR under BIP-86):
//!   matched by a BIP-32 derivation claim that is re-derived from the wallet's account key, or
//!   by script within the first [`SCAN_WINDOW`] addresses of each branch. A foreign input is
//!   refused: its amount could not be trusted, so neither could the fee.
//! - a segwit v0 input must carry its whole previous transaction (checked against the
//!   outpoint), because a v0 signature commits to its own amount only (the 2020 "fee attack");
//!   Taproot signatures commit to every input's amount and script.
//! - only `SIGHASH_ALL` (and Taproot's `SIGHASH_DEFAULT`) are signed: the other modes leave
//!   parts of the transaction open to change after signing.
//! - an output that claims to be the wallet's (change) must derive to its script, or the PSBT
//!   is refused; other outputs are destinations, judged by policy.
//!
//! The plan carries each owned input's sighash; the caller signs them and hands the signatures
//! to [`PsbtPlan::finish`], which fills the PSBT (signer role) and, once every input is
//! signed, finalizes and extracts the transaction. No key is held here.

use std::collections::HashMap;

use base64::Engine as _;
use bitcoin::bip32::{Fingerprint, KeySource};
use bitcoin::hashes::Hash as _;
use bitcoin::key::TapTweak as _;
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::secp256k1::ecdsa::Signature as EcdsaSig;
use bitcoin::secp256k1::schnorr::Signature as SchnorrSig;
use bitcoin::secp256k1::{Message, PublicKey, XOnlyPublicKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{Address, CompressedPublicKey, ScriptBuf, Transaction, TxOut, Witness};
use serde_json::{Value, json};
use strongroom_core::wallet::{AddressType, HARDENED, WalletPublic, WalletSpec};

use crate::Error;

/// The largest PSBT accepted, in bytes (binary); base64 text may be a third longer (so it
/// fits the API's 64 KiB body limit).
pub const MAX_PSBT_BYTES: usize = 46 * 1024;

/// The most inputs one PSBT may spend (each costs a derivation and a signature).
pub const MAX_INPUTS: usize = 200;

/// How many addresses of each branch (receive and change) are searched for a script that
/// carries no derivation claim.
pub const SCAN_WINDOW: u32 = 100;

/// A PSBT from its binary form, or from base64 text (surrounding whitespace allowed).
///
/// # Errors
/// [`Error::InvalidPsbt`] for anything that is not a well-formed PSBT within
/// [`MAX_PSBT_BYTES`].
pub fn parse_psbt(input: &[u8]) -> Result<Psbt, Error> {
    const MAGIC: &[u8] = b"psbt\xff";
    let binary;
    let bytes = if input.starts_with(MAGIC) {
        input
    } else {
        let text = std::str::from_utf8(input)
            .map_err(|_| Error::InvalidPsbt("neither binary nor base64"))?
            .trim();
        if text.len() > MAX_PSBT_BYTES / 3 * 4 + 4 {
            return Err(Error::InvalidPsbt("too large"));
        }
        binary = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| Error::InvalidPsbt("not base64"))?;
        &binary
    };
    if bytes.len() > MAX_PSBT_BYTES {
        return Err(Error::InvalidPsbt("too large"));
    }
    Psbt::deserialize(bytes).map_err(|_| Error::InvalidPsbt("does not decode as BIP-174"))
}

/// A PSBT as base64 text.
#[must_use]
pub fn psbt_base64(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

/// How one owned input is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// P2WPKH: an ECDSA signature with `SIGHASH_ALL`.
    P2wpkh,
    /// Key-path P2TR: a BIP-340 signature by the BIP-86-tweaked key, with `SIGHASH_DEFAULT`
    /// (`all = false`) or `SIGHASH_ALL`.
    P2tr {
        /// The PSBT asked for an explicit `SIGHASH_ALL`.
        all: bool,
    },
}

/// One input to sign.
#[derive(Clone, Debug)]
pub struct OwnedInput {
    /// The wallet address: change branch or not, and index.
    pub change: bool,
    /// The address index.
    pub index: u32,
    /// The address's compressed public key.
    pub public_key: [u8; 33],
    /// How it is spent.
    pub kind: InputKind,
    /// What to sign: the BIP-143 (P2WPKH) or BIP-341 (P2TR) sighash.
    pub sighash: [u8; 32],
    /// The amount spent, in satoshi.
    pub value: u64,
}

/// One output, as the wallet understands it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedOutput {
    /// The address paid, as the wallet's network writes it.
    pub address: String,
    /// Satoshi.
    pub value: u64,
    /// `Some((change, index))` when the output pays one of the wallet's own addresses.
    pub own: Option<(bool, u32)>,
}

/// A PSBT checked against a wallet, with what to sign.
#[derive(Debug)]
pub struct PsbtPlan {
    psbt: Psbt,
    /// The inputs, in order; every one is the wallet's.
    pub inputs: Vec<OwnedInput>,
    /// The outputs, in order.
    pub outputs: Vec<PlannedOutput>,
    /// Inputs minus outputs, in satoshi.
    pub fee: u64,
    /// The transaction id (segwit: unaffected by signatures).
    pub txid: String,
}

/// A signature for one input, in the order of [`PsbtPlan::inputs`].
#[derive(Clone, Copy, Debug)]
pub enum InputSignature {
    /// Compact low-S ECDSA `r || s`, for [`InputKind::P2wpkh`].
    Ecdsa([u8; 64]),
    /// BIP-340 Schnorr, for [`InputKind::P2tr`].
    Schnorr([u8; 64]),
}

/// A signed PSBT.
#[derive(Debug)]
pub struct SignedPsbt {
    /// The PSBT with the wallet's signatures (signer role), base64.
    pub psbt: String,
    /// The finalized transaction, hex, when every input is signed.
    pub tx: Option<String>,
    /// The transaction id.
    pub txid: String,
    /// The finalized transaction's virtual size, in vbytes.
    pub vsize: Option<usize>,
}

/// What the wallet can recognise: its type, network, fingerprint and account path.
struct WalletView<'a> {
    w: &'a WalletPublic,
    address_type: AddressType,
    network: bitcoin::Network,
    fingerprint: Fingerprint,
    account_path: Vec<u32>,
    scanned: Option<HashMap<ScriptBuf, (bool, u32)>>,
    // Each derivation costs; a hostile PSBT may name the same address many times.
    derived: HashMap<(bool, u32), (ScriptBuf, [u8; 33])>,
}

/// The most derivation claims of this wallet one input or output may carry (an honest one
/// carries one).
const MAX_CLAIMS: usize = 2;

impl<'a> WalletView<'a> {
    fn new(w: &'a WalletPublic) -> Result<Self, Error> {
        let WalletSpec::Bitcoin {
            network,
            address_type,
        } = w.spec
        else {
            return Err(Error::InvalidPsbt("the wallet is not a Bitcoin wallet"));
        };
        Ok(Self {
            w,
            address_type,
            network: crate::address::network(network),
            fingerprint: Fingerprint::from(w.master_fingerprint),
            account_path: w.spec.account_path().to_vec(),
            scanned: None,
            derived: HashMap::new(),
        })
    }

    fn script_of(&mut self, change: bool, index: u32) -> Result<(ScriptBuf, [u8; 33]), Error> {
        if let Some(known) = self.derived.get(&(change, index)) {
            return Ok(known.clone());
        }
        let pk = crate::child_public_key(&self.w.account, change, index)?;
        let known = (wallet_script(&pk, self.address_type)?, pk);
        self.derived.insert((change, index), known.clone());
        Ok(known)
    }

    /// The address a claimed derivation path names, if it is under this wallet's account
    /// and our fingerprint: `Ok(None)` for someone else's claim.
    fn claimed(&self, source: &KeySource) -> Option<(bool, u32)> {
        let (fp, path) = source;
        if *fp != self.fingerprint {
            return None;
        }
        let path: Vec<u32> = path.into_iter().map(|c| u32::from(*c)).collect();
        match path.strip_prefix(self.account_path.as_slice()) {
            Some(&[branch @ (0 | 1), index]) if index < HARDENED => Some((branch == 1, index)),
            _ => None,
        }
    }

    /// Which of the wallet's addresses `script` is, from the derivation claims (each checked
    /// by deriving it again) or, lacking any, by scanning. A claim of ours that does not
    /// derive to `script` is a lie: `Err`.
    fn recognise<'k>(
        &mut self,
        script: &ScriptBuf,
        claims: impl Iterator<Item = &'k KeySource>,
        what: &'static str,
    ) -> Result<Option<(bool, u32, [u8; 33])>, Error> {
        let mut claimed = 0;
        for source in claims {
            let Some((change, index)) = self.claimed(source) else {
                continue;
            };
            claimed += 1;
            if claimed > MAX_CLAIMS {
                return Err(Error::PsbtDerivationMismatch(what));
            }
            let (derived, pk) = self.script_of(change, index)?;
            if &derived == script {
                return Ok(Some((change, index, pk)));
            }
        }
        if claimed > 0 {
            return Err(Error::PsbtDerivationMismatch(what));
        }
        if self.scanned.is_none() {
            let mut map = HashMap::new();
            for change in [false, true] {
                for index in 0..SCAN_WINDOW {
                    map.insert(self.script_of(change, index)?.0, (change, index));
                }
            }
            self.scanned = Some(map);
        }
        match self.scanned.as_ref().and_then(|m| m.get(script)) {
            Some(&(change, index)) => {
                let (_, pk) = self.script_of(change, index)?;
                Ok(Some((change, index, pk)))
            }
            None => Ok(None),
        }
    }
}

/// The output script of a wallet address: P2WPKH, or BIP-86 P2TR (no script tree).
fn wallet_script(public_key: &[u8; 33], address_type: AddressType) -> Result<ScriptBuf, Error> {
    let pk = PublicKey::from_slice(public_key).map_err(|_| Error::InvalidPublicKey)?;
    Ok(match address_type {
        AddressType::P2wpkh => ScriptBuf::new_p2wpkh(&CompressedPublicKey(pk).wpubkey_hash()),
        AddressType::P2tr => ScriptBuf::new_p2tr(crate::address::secp(), pk.into(), None),
    })
}

/// The output an input spends, checked: from the previous transaction when there is one
/// (its id must be the outpoint's, and a witness UTXO beside it must agree).
fn spent_output(psbt: &Psbt, i: usize) -> Result<TxOut, Error> {
    let input = &psbt.inputs[i];
    let outpoint = psbt.unsigned_tx.input[i].previous_output;
    let from_tx = match &input.non_witness_utxo {
        Some(prev) => {
            if prev.compute_txid() != outpoint.txid {
                return Err(Error::PsbtInput(
                    i,
                    "its previous transaction is not the one spent",
                ));
            }
            let vout = usize::try_from(outpoint.vout).unwrap_or(usize::MAX);
            Some(
                prev.output
                    .get(vout)
                    .cloned()
                    .ok_or(Error::PsbtInput(i, "the spent output does not exist"))?,
            )
        }
        None => None,
    };
    match (from_tx, &input.witness_utxo) {
        (Some(a), Some(b)) if &a != b => Err(Error::PsbtInput(
            i,
            "its witness UTXO disagrees with its previous transaction",
        )),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b.clone()),
        (None, None) => Err(Error::PsbtInput(i, "it carries no UTXO")),
    }
}

/// The BIP-341 key-path sighash of input `index` of `tx`, spending `prevouts` (all of them),
/// with the hash type byte `hash_type`.
///
/// # Errors
/// [`Error::InvalidPsbt`] for an unknown hash type or inconsistent prevouts.
pub fn taproot_key_spend_sighash(
    tx: &Transaction,
    prevouts: &[TxOut],
    index: usize,
    hash_type: u8,
) -> Result<[u8; 32], Error> {
    let ty = TapSighashType::from_consensus_u8(hash_type)
        .map_err(|_| Error::InvalidPsbt("unknown sighash type"))?;
    SighashCache::new(tx)
        .taproot_key_spend_signature_hash(index, &Prevouts::All(prevouts), ty)
        .map(|h| h.to_byte_array())
        .map_err(|_| Error::InvalidPsbt("the inputs and their UTXOs do not line up"))
}

/// Checks `psbt` against Bitcoin wallet `w` and plans its signatures.
///
/// # Errors
/// [`Error::InvalidPsbt`], [`Error::PsbtInput`] (foreign, unsupported or inconsistent input),
/// [`Error::PsbtOutput`] (an output with no address), [`Error::PsbtDerivationMismatch`] (a
/// claim of ours that does not derive to the script: "change" to a foreign address).
pub fn plan(psbt: Psbt, w: &WalletPublic) -> Result<PsbtPlan, Error> {
    let mut view = WalletView::new(w)?;
    let tx = &psbt.unsigned_tx;
    if tx.input.is_empty() || tx.output.is_empty() {
        return Err(Error::InvalidPsbt("no inputs or no outputs"));
    }
    if tx.input.len() > MAX_INPUTS {
        return Err(Error::InvalidPsbt("too many inputs"));
    }
    // The parser makes these agree; a `Psbt` built by hand may not.
    if psbt.inputs.len() != tx.input.len() || psbt.outputs.len() != tx.output.len() {
        return Err(Error::InvalidPsbt("the maps do not match the transaction"));
    }
    // The same coin twice would count its amount twice (and the transaction is invalid).
    let mut seen = std::collections::HashSet::new();
    if !tx.input.iter().all(|i| seen.insert(i.previous_output)) {
        return Err(Error::InvalidPsbt("an outpoint is spent twice"));
    }
    let spent: Vec<TxOut> = (0..tx.input.len())
        .map(|i| spent_output(&psbt, i))
        .collect::<Result<_, _>>()?;
    let mut cache = SighashCache::new(tx);
    let mut inputs = Vec::with_capacity(spent.len());
    for (i, prev) in spent.iter().enumerate() {
        let input = &psbt.inputs[i];
        if input.final_script_witness.is_some() || input.final_script_sig.is_some() {
            return Err(Error::PsbtInput(i, "it is already finalized"));
        }
        let claims: Vec<&KeySource> = input
            .bip32_derivation
            .values()
            .chain(input.tap_key_origins.values().map(|(_, s)| s))
            .collect();
        let (change, index, public_key) = view
            .recognise(&prev.script_pubkey, claims.into_iter(), "input")?
            .ok_or(Error::PsbtInput(i, "it is not this wallet's"))?;
        let (kind, sighash) = match view.address_type {
            AddressType::P2wpkh => {
                if input.non_witness_utxo.is_none() {
                    return Err(Error::PsbtInput(
                        i,
                        "a segwit v0 input must carry its previous transaction",
                    ));
                }
                if input
                    .sighash_type
                    .is_some_and(|t| t != PsbtSighashType::from(EcdsaSighashType::All))
                {
                    return Err(Error::PsbtInput(i, "only SIGHASH_ALL is signed"));
                }
                let h = cache
                    .p2wpkh_signature_hash(
                        i,
                        &prev.script_pubkey,
                        prev.value,
                        EcdsaSighashType::All,
                    )
                    .map_err(|_| Error::PsbtInput(i, "its sighash cannot be computed"))?;
                (InputKind::P2wpkh, h.to_byte_array())
            }
            AddressType::P2tr => {
                // A BIP-86 output has no script tree and commits to the key we derived: a
                // PSBT that says otherwise describes some other output.
                let internal = PublicKey::from_slice(&public_key)
                    .map(XOnlyPublicKey::from)
                    .map_err(|_| Error::InvalidPublicKey)?;
                if input.tap_merkle_root.is_some()
                    || !input.tap_scripts.is_empty()
                    || input.tap_internal_key.is_some_and(|k| k != internal)
                {
                    return Err(Error::PsbtInput(
                        i,
                        "it describes a script tree or another internal key",
                    ));
                }
                let all = match input.sighash_type.map(PsbtSighashType::to_u32) {
                    None | Some(0) => false,
                    Some(1) => true,
                    Some(_) => {
                        return Err(Error::PsbtInput(
                            i,
                            "only SIGHASH_DEFAULT or SIGHASH_ALL is signed",
                        ));
                    }
                };
                let ty = if all {
                    TapSighashType::All
                } else {
                    TapSighashType::Default
                };
                let h = cache
                    .taproot_key_spend_signature_hash(i, &Prevouts::All(&spent), ty)
                    .map_err(|_| Error::PsbtInput(i, "its sighash cannot be computed"))?;
                (InputKind::P2tr { all }, h.to_byte_array())
            }
        };
        inputs.push(OwnedInput {
            change,
            index,
            public_key,
            kind,
            sighash,
            value: prev.value.to_sat(),
        });
    }
    let mut outputs = Vec::with_capacity(tx.output.len());
    for (o, out) in tx.output.iter().enumerate() {
        let address = Address::from_script(&out.script_pubkey, view.network)
            .map_err(|_| Error::PsbtOutput(o, "its script has no address"))?;
        let meta = &psbt.outputs[o];
        let claims: Vec<&KeySource> = meta
            .bip32_derivation
            .values()
            .chain(meta.tap_key_origins.values().map(|(_, s)| s))
            .collect();
        let own = view
            .recognise(&out.script_pubkey, claims.into_iter(), "output")?
            .map(|(c, i, _)| (c, i));
        outputs.push(PlannedOutput {
            address: address.to_string(),
            value: out.value.to_sat(),
            own,
        });
    }
    let total_in = inputs
        .iter()
        .try_fold(0u64, |a, i| a.checked_add(i.value))
        .ok_or(Error::InvalidPsbt("input amounts overflow"))?;
    let total_out = outputs
        .iter()
        .try_fold(0u64, |a, o| a.checked_add(o.value))
        .ok_or(Error::InvalidPsbt("output amounts overflow"))?;
    let fee = total_in
        .checked_sub(total_out)
        .ok_or(Error::InvalidPsbt("the outputs spend more than the inputs"))?;
    let txid = tx.compute_txid().to_string();
    Ok(PsbtPlan {
        psbt,
        inputs,
        outputs,
        fee,
        txid,
    })
}

impl PsbtPlan {
    /// The PSBT as planned (before signing), base64: what a quorum request stores, so that
    /// approvers and the executor see the same canonical bytes.
    #[must_use]
    pub fn psbt_base64(&self) -> String {
        psbt_base64(&self.psbt)
    }

    /// What the transaction does, for the audit log and approvers.
    #[must_use]
    pub fn to_json(&self, w: &WalletPublic) -> Value {
        let path = |change: bool, index: u32| w.spec.path_text(change, index);
        json!({
            "txid": self.txid,
            "fee_sat": self.fee,
            "inputs": self.inputs.iter().zip(&self.psbt.unsigned_tx.input).map(|(i, t)| json!({
                "outpoint": t.previous_output.to_string(),
                "value_sat": i.value,
                "path": path(i.change, i.index),
                "kind": match i.kind { InputKind::P2wpkh => "p2wpkh", InputKind::P2tr { .. } => "p2tr" },
            })).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|o| json!({
                "address": o.address,
                "value_sat": o.value,
                "own": o.own.map(|(c, i)| path(c, i)),
            })).collect::<Vec<_>>(),
        })
    }

    /// Fills in the signatures (one per input, in order), each verified against the key its
    /// spent script names, and finalizes when complete.
    ///
    /// # Errors
    /// [`Error::InvalidPsbt`] if the signatures do not match the inputs in number or kind, or
    /// do not parse; [`Error::SignatureMismatch`] if one does not verify.
    pub fn finish(self, signatures: &[InputSignature]) -> Result<SignedPsbt, Error> {
        let mismatch = Error::InvalidPsbt("signatures do not match the inputs");
        if signatures.len() != self.inputs.len() {
            return Err(mismatch);
        }
        let mut psbt = self.psbt;
        let mut witnesses = Vec::with_capacity(signatures.len());
        for ((i, input), sig) in self.inputs.iter().enumerate().zip(signatures) {
            let pk =
                PublicKey::from_slice(&input.public_key).map_err(|_| Error::InvalidPublicKey)?;
            match (input.kind, sig) {
                (InputKind::P2wpkh, InputSignature::Ecdsa(compact)) => {
                    let signature = bitcoin::ecdsa::Signature {
                        signature: EcdsaSig::from_compact(compact)
                            .map_err(|_| Error::InvalidPsbt("a signature does not parse"))?,
                        sighash_type: EcdsaSighashType::All,
                    };
                    // Checked against the key the spent script names, not only the signer's
                    // own: a wallet whose seed and public part disagree must not pass.
                    crate::address::secp()
                        .verify_ecdsa(
                            &Message::from_digest(input.sighash),
                            &signature.signature,
                            &pk,
                        )
                        .map_err(|_| Error::SignatureMismatch)?;
                    psbt.inputs[i]
                        .partial_sigs
                        .insert(bitcoin::PublicKey::new(pk), signature);
                    witnesses.push(Witness::p2wpkh(&signature, &pk));
                }
                (InputKind::P2tr { all }, InputSignature::Schnorr(bytes)) => {
                    let signature = bitcoin::taproot::Signature {
                        signature: SchnorrSig::from_slice(bytes)
                            .map_err(|_| Error::InvalidPsbt("a signature does not parse"))?,
                        sighash_type: if all {
                            TapSighashType::All
                        } else {
                            TapSighashType::Default
                        },
                    };
                    let (output_key, _) =
                        XOnlyPublicKey::from(pk).tap_tweak(crate::address::secp(), None);
                    crate::address::secp()
                        .verify_schnorr(
                            &signature.signature,
                            &Message::from_digest(input.sighash),
                            &output_key.to_x_only_public_key(),
                        )
                        .map_err(|_| Error::SignatureMismatch)?;
                    psbt.inputs[i].tap_key_sig = Some(signature);
                    psbt.inputs[i].tap_internal_key = Some(XOnlyPublicKey::from(pk));
                    witnesses.push(Witness::p2tr_key_spend(&signature));
                }
                _ => return Err(mismatch),
            }
        }
        let mut tx = psbt.unsigned_tx.clone();
        for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
            txin.witness = witness;
        }
        Ok(SignedPsbt {
            psbt: psbt_base64(&psbt),
            txid: self.txid,
            vsize: Some(tx.vsize()),
            tx: Some(bitcoin::consensus::encode::serialize_hex(&tx)),
        })
    }
}
