//! HD wallets over the API: create (fresh, or from a BIP-39 mnemonic), list, show, addresses
//! and the account extended public key.
//!
//! A wallet is a key of algorithm `bip32-seed` whose public key is its
//! [`WalletPublic`] (see `strongroom_core::wallet`), so temperature, destruction, cold
//! export and idle demotion act on a wallet exactly as on a key. Addresses and the xpub are
//! derived from the public part: they never open the seed, and work for cold wallets too.

use serde::Serialize;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::wallet::{AddressType, BitcoinNetwork, Chain, WalletPublic, WalletSpec};
use strongroom_core::{Algorithm, KeyId, Operation, Principal};
use strongroom_keystore::WalletSource;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault, allow, check_label, live_domain, rfc3339};

/// What `POST /v1/wallets` asks for. The mnemonic and passphrase zeroize on drop.
pub(crate) struct NewWallet {
    pub(crate) domain: Option<String>,
    pub(crate) chain: String,
    pub(crate) network: Option<String>,
    pub(crate) address_type: Option<String>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) eos_chain_id: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) mnemonic: Option<Zeroizing<String>>,
    pub(crate) passphrase: Option<Zeroizing<String>>,
}

impl NewWallet {
    /// Parses the spec: every parameter must belong to the chain it is given for.
    fn spec(&self) -> Result<WalletSpec, ApiError> {
        let misplaced = |what: &str| {
            ApiError::bad(
                "invalid_wallet",
                format!("{what} does not apply to {} wallets", self.chain),
            )
        };
        let chain: Chain = self.chain.parse()?;
        match chain {
            Chain::Bitcoin => {
                if self.chain_id.is_some() {
                    return Err(misplaced("--chain-id"));
                }
                if self.eos_chain_id.is_some() {
                    return Err(misplaced("--eos-chain-id"));
                }
                Ok(WalletSpec::Bitcoin {
                    network: self
                        .network
                        .as_deref()
                        .map_or(Ok(BitcoinNetwork::Bitcoin), str::parse)?,
                    address_type: self
                        .address_type
                        .as_deref()
                        .map_or(Ok(AddressType::P2wpkh), str::parse)?,
                })
            }
            Chain::Ethereum | Chain::Eos => {
                if self.network.is_some() {
                    return Err(misplaced("--network"));
                }
                if self.address_type.is_some() {
                    return Err(misplaced("--address-type"));
                }
                if chain == Chain::Eos {
                    if self.chain_id.is_some() {
                        return Err(misplaced("--chain-id"));
                    }
                    let chain_id = match &self.eos_chain_id {
                        None => strongroom_core::wallet::EOS_MAINNET,
                        Some(h) => hex::decode(h.trim_start_matches("0x"))
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .ok_or_else(|| {
                                ApiError::bad("invalid_wallet", "eos_chain_id is 32 bytes, hex")
                            })?,
                    };
                    return Ok(WalletSpec::Eos { chain_id });
                }
                if self.eos_chain_id.is_some() {
                    return Err(misplaced("--eos-chain-id"));
                }
                match self.chain_id.unwrap_or(1) {
                    0 => Err(ApiError::bad("invalid_wallet", "chain id 0 is not a chain")),
                    chain_id => Ok(WalletSpec::Ethereum { chain_id }),
                }
            }
            _ => Err(strongroom_core::Error::InvalidInput("chain").into()),
        }
    }
}

/// A wallet's public description.
#[derive(Serialize)]
pub struct WalletView {
    id: String,
    domain: String,
    domain_id: String,
    chain: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eos_chain_id: Option<String>,
    label: Option<String>,
    master_fingerprint: String,
    account_path: String,
    xpub: String,
    state: &'static str,
    temperature: &'static str,
    created_at: String,
}

impl WalletView {
    fn new(k: &KeyRecord, d: &DomainRecord) -> Result<Self, ApiError> {
        let w = WalletPublic::decode(&k.public_key)?;
        let (network, address_type, chain_id) = match w.spec {
            WalletSpec::Bitcoin {
                network,
                address_type,
            } => (Some(network.as_str()), Some(address_type.as_str()), None),
            WalletSpec::Ethereum { chain_id } => (None, None, Some(chain_id)),
            _ => (None, None, None),
        };
        let eos_chain_id = match w.spec {
            WalletSpec::Eos { chain_id } => Some(hex::encode(chain_id)),
            _ => None,
        };
        Ok(Self {
            id: k.id.to_string(),
            domain: d.name.to_string(),
            domain_id: d.id.to_string(),
            chain: w.spec.chain().as_str(),
            network,
            address_type,
            chain_id,
            eos_chain_id,
            label: k.label.clone(),
            master_fingerprint: hex::encode(w.master_fingerprint),
            account_path: w.spec.account_path_text(),
            xpub: strongroom_chains::account_xpub(&w).map_err(|_| ApiError::StoredDataCorrupt)?,
            state: match (k.destroyed_at, &k.sealed_secret) {
                (Some(_), _) => "destroyed",
                (None, None) => "offline",
                (None, Some(_)) => "active",
            },
            temperature: k.temperature.as_str(),
            created_at: rfc3339(k.created_at),
        })
    }
}

/// One address of a wallet.
#[derive(Serialize)]
pub struct AddressView {
    wallet: String,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    address_k1: Option<String>,
    index: u32,
    change: bool,
    path: String,
    public_key: String,
}

/// A wallet's account extended public key, for watch-only software.
#[derive(Serialize)]
pub struct XpubView {
    wallet: String,
    xpub: String,
    master_fingerprint: String,
    path: String,
}

impl Vault {
    pub(crate) async fn create_wallet(
        &self,
        ctx: &RequestCtx,
        w: NewWallet,
    ) -> Result<WalletView, ApiError> {
        let spec = w.spec()?;
        check_label(w.label.as_deref())?;
        if w.passphrase.is_some() && w.mnemonic.is_none() {
            return Err(ApiError::bad(
                "invalid_wallet",
                "a passphrase applies only to an imported mnemonic",
            ));
        }
        if matches!(ctx.principal, Principal::Anonymous) {
            return Err(ApiError::Unauthenticated);
        }
        let d = self.resolve_domain(ctx, w.domain.as_deref())?;
        allow(ctx, &Operation::CreateKey(d.id))?;
        live_domain(&d)?;
        let id = KeyId::from_random(self.random_bytes()?);
        ctx.tag(|t| t.key = Some(id));
        let source = match &w.mnemonic {
            None => WalletSource::Fresh,
            Some(phrase) => WalletSource::Mnemonic {
                phrase,
                passphrase: w.passphrase.as_deref().map_or("", |p| p.as_str()),
            },
        };
        let record = self
            .keystore
            .create_wallet(&d, id, spec, source, w.label, ctx.time)?;
        self.commit(
            ctx,
            "wallet.create",
            vec![Mutation::CreateKey(record.clone())],
        )
        .await?;
        let view = WalletView::new(&record, &d)?;
        self.keys.put(record, d);
        Ok(view)
    }

    pub(crate) fn list_wallets(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
    ) -> Result<Vec<WalletView>, ApiError> {
        let (d, keys) = self.domain_keys(ctx, domain)?;
        keys.iter()
            .filter(|k| k.algorithm == Algorithm::Bip32Seed)
            .map(|k| WalletView::new(k, &d))
            .collect()
    }

    /// A wallet the caller may read; a plain key's id answers like an unknown one.
    fn wallet(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<(KeyRecord, DomainRecord, WalletPublic), ApiError> {
        self.wallet_for(ctx, id, Operation::ReadKeys)
    }

    /// A wallet the caller may perform `op` on (its row's MAC checked); a plain key's id
    /// answers like an unknown one.
    pub(crate) fn wallet_for(
        &self,
        ctx: &RequestCtx,
        id: &str,
        op: fn(strongroom_core::DomainId) -> Operation,
    ) -> Result<(KeyRecord, DomainRecord, WalletPublic), ApiError> {
        let found = self.key_for(ctx, id, op)?;
        let (k, d) = (&found.0, &found.1);
        if k.algorithm != Algorithm::Bip32Seed {
            return Err(ApiError::NotFound);
        }
        self.check_public(k)?;
        let w = WalletPublic::decode(&k.public_key)?;
        Ok((k.clone(), d.clone(), w))
    }

    pub(crate) fn show_wallet(&self, ctx: &RequestCtx, id: &str) -> Result<WalletView, ApiError> {
        let (k, d, _) = self.wallet(ctx, id)?;
        WalletView::new(&k, &d)
    }

    pub(crate) fn wallet_address(
        &self,
        ctx: &RequestCtx,
        id: &str,
        change: bool,
        index: u32,
    ) -> Result<AddressView, ApiError> {
        let (k, _, w) = self.wallet(ctx, id)?;
        let a = strongroom_chains::address(&w, change, index).map_err(|e| match e {
            strongroom_chains::Error::InvalidIndex => {
                ApiError::bad("invalid_index", "address indices are below 2^31")
            }
            _ => ApiError::StoredDataCorrupt,
        })?;
        Ok(AddressView {
            wallet: k.id.to_string(),
            address: a.address,
            address_k1: a.alternate,
            index,
            change,
            path: a.path,
            public_key: hex::encode(a.public_key),
        })
    }

    pub(crate) fn wallet_xpub(&self, ctx: &RequestCtx, id: &str) -> Result<XpubView, ApiError> {
        let (k, _, w) = self.wallet(ctx, id)?;
        Ok(XpubView {
            wallet: k.id.to_string(),
            xpub: strongroom_chains::account_xpub(&w).map_err(|_| ApiError::StoredDataCorrupt)?,
            master_fingerprint: hex::encode(w.master_fingerprint),
            path: w.spec.account_path_text(),
        })
    }
}
