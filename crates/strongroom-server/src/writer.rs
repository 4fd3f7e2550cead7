//! The audit writer: one thread that owns all writes, so every state change lands in the same
//! transaction as its audit record, and many requests share one commit (group commit).
//!
//! A batch is: begin; for each request apply its mutations (atomically, on their own) and
//! append its record; sign the new chain head (when unsealed); commit (fsync); write the head
//! file (fsync); then answer every request in the batch. If the commit or the head file
//! fails, the writer stops for good and every later request fails: it never retries a failed
//! fsync into a false success.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;

use strongroom_audit::Chain;
use strongroom_core::record::{AuditEvent, Outcome, SignedHead};
use strongroom_core::storage::{Mutation, Storage};
use strongroom_core::{Clock, Error as CoreError};
use strongroom_keystore::Keystore;
use strongroom_storage::HeadFile;
use tokio::sync::oneshot;

const MAX_BATCH: usize = 4096;

/// Why a submitted write did not succeed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The request's mutation was refused (conflict, missing row); the refusal was audited.
    Refused(CoreError),
    /// The audit record could not be made durable; nothing of the request is durable.
    AuditUnavailable,
}

struct Job {
    mutations: Vec<Mutation>,
    event: AuditEvent,
    reply: Option<oneshot::Sender<Result<(), WriteError>>>,
}

/// Handle for submitting writes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    failed: Arc<AtomicBool>,
    heads: Arc<AtomicU8>,
    written: tokio::sync::watch::Receiver<Option<SignedHead>>,
}

/// Batches get signed heads, written to the head file only forwards.
const HEADS_SIGNED: u8 = 0;
/// A rolled-back database awaits its acceptance: batches get no signed head, so the head
/// file (this node's high-water mark) is left as it is.
const HEADS_HELD: u8 = 1;
/// The rollback was accepted: the next signed head replaces the head file's, then back to
/// signed.
const HEADS_REBASE: u8 = 2;

impl Writer {
    /// Starts the writer thread.
    pub(crate) fn start(
        store: Arc<dyn Storage>,
        keystore: Arc<Keystore>,
        clock: Arc<dyn Clock>,
        head_path: &Path,
    ) -> Result<(Self, std::thread::JoinHandle<()>), strongroom_storage::Error> {
        let vault_id = store.vault()?.vault_id;
        let chain = Chain::resume(vault_id, store.audit_tail()?);
        let head_file = HeadFile::open(head_path)?;
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(AtomicU8::new(HEADS_SIGNED));
        let (written_tx, written) = tokio::sync::watch::channel(None);
        let mut state = Loop {
            store,
            keystore,
            clock,
            chain,
            head_file,
            failed: Arc::clone(&failed),
            heads: Arc::clone(&heads),
            written: written_tx,
        };
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || state.run(&rx))
            .map_err(|e| strongroom_storage::Error::Io {
                what: "start audit writer",
                source: e,
            })?;
        Ok((
            Self {
                tx,
                failed,
                heads,
                written,
            },
            handle,
        ))
    }

    /// The newest head written to the head file (for the token's rollback anchor).
    pub(crate) fn written_heads(&self) -> tokio::sync::watch::Receiver<Option<SignedHead>> {
        self.written.clone()
    }

    /// Stops signing heads (a rolled-back database, until its acceptance).
    pub(crate) fn hold_heads(&self) {
        self.heads.store(HEADS_HELD, Ordering::SeqCst);
    }

    /// The rollback was accepted: the next head is signed and replaces the head file's.
    pub(crate) fn rebase_heads(&self) {
        self.heads.store(HEADS_REBASE, Ordering::SeqCst);
    }

    /// Whether the writer has stopped after a durability failure.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Applies `mutations` and appends `event`, durably, in one transaction.
    pub(crate) async fn submit(
        &self,
        mutations: Vec<Mutation>,
        event: AuditEvent,
    ) -> Result<(), WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                mutations,
                event,
                reply: Some(reply),
            })
            .map_err(|_| WriteError::AuditUnavailable)?;
        rx.await.unwrap_or(Err(WriteError::AuditUnavailable))
    }

    /// Appends `event` without waiting (aggregated records of unauthenticated traffic).
    pub(crate) fn submit_detached(&self, event: AuditEvent) {
        // If the writer is gone the process is shutting down; the aggregate is lost with it.
        let _ = self.tx.send(Job {
            mutations: vec![],
            event,
            reply: None,
        });
    }
}

struct Loop {
    store: Arc<dyn Storage>,
    keystore: Arc<Keystore>,
    clock: Arc<dyn Clock>,
    chain: Chain,
    head_file: HeadFile,
    failed: Arc<AtomicBool>,
    heads: Arc<AtomicU8>,
    written: tokio::sync::watch::Sender<Option<SignedHead>>,
}

/// How a refused mutation is recorded: the request was denied (a rule) or failed (a fault).
fn refusal(e: &CoreError) -> (Outcome, &'static str) {
    match e {
        // A rolling limit (a wallet's daily limit, a key's rate) that the spend would pass.
        CoreError::Conflict(strongroom_core::storage::LIMIT_EXCEEDED) => {
            (Outcome::Denied, "limit_exceeded")
        }
        CoreError::Conflict(strongroom_core::slashing::SLASHABLE) => (Outcome::Denied, "slashable"),
        CoreError::Conflict(strongroom_core::slashing::EXIT_NOT_AUTHORIZED) => {
            (Outcome::Denied, "exit_not_authorized")
        }
        CoreError::Conflict(strongroom_core::slashing::WRONG_CHAIN) => {
            (Outcome::Denied, "wrong_chain")
        }
        CoreError::Conflict(strongroom_core::slashing::OTHER_DOMAIN) => {
            (Outcome::Denied, "validator_of_another_domain")
        }
        CoreError::Conflict(_) => (Outcome::Denied, "conflict"),
        CoreError::NotFound(_) => (Outcome::Denied, "not_found"),
        _ => (Outcome::Failed, "storage_error"),
    }
}

impl Loop {
    fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        // If this thread panics, nothing more can be audited: mark the writer failed so that
        // every request is refused instead of answered unaudited.
        struct FailOnPanic(Arc<AtomicBool>);
        impl Drop for FailOnPanic {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
        }
        let _guard = FailOnPanic(Arc::clone(&self.failed));
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if self.failed.load(Ordering::SeqCst) {
                for j in jobs {
                    reply(j.reply, Err(WriteError::AuditUnavailable));
                }
                continue;
            }
            self.commit(jobs);
        }
    }

    fn commit(&mut self, jobs: Vec<Job>) {
        let mut chain = self.chain.clone();
        let mut results: Vec<Result<(), CoreError>> = Vec::with_capacity(jobs.len());
        let mut head = None;
        let keystore = &self.keystore;
        // Read once per batch: the head it signs and how it is written agree.
        let heads = self.heads.load(Ordering::SeqCst);
        let now = self.clock.now();
        let outcome = self.store.write(&mut |txn| {
            // Attach to the chain as the database has it now: with several nodes on one
            // database, another node may have appended since this one last did (the backend's
            // write transaction serialises appends).
            let tail = txn.audit_tail()?;
            // Never behind what this node last appended: a database put back under a running
            // node is refused (and the node stops), not built on.
            if tail.map_or(0, |(seq, _)| seq) < self.chain.seq() {
                return Err(CoreError::Corrupt(
                    "the audit chain went back: the database was rolled back",
                ));
            }
            // Nor another chain as long or longer (a different copy put in its place): the
            // record this node last appended must still be there.
            if self.chain.seq() > 0 && txn.audit_hash(self.chain.seq())? != Some(self.chain.hash())
            {
                return Err(CoreError::Corrupt(
                    "the audit chain was replaced: the database is another copy",
                ));
            }
            chain = Chain::resume(chain.vault_id(), tail);
            for j in &jobs {
                let applied = if j.mutations.is_empty() {
                    Ok(())
                } else {
                    txn.apply(&j.mutations)
                };
                let mut event = j.event.clone();
                if let Err(e) = &applied {
                    let (outcome, code) = refusal(e);
                    event.outcome = outcome;
                    event.code = Some(code.to_owned());
                }
                txn.append_audit(&chain.append(event))?;
                results.push(applied);
            }
            head = if heads == HEADS_HELD {
                None
            } else {
                keystore.sign_head(chain.seq(), chain.hash(), now)
            };
            if let Some(h) = &head {
                txn.put_head(h)?;
            }
            Ok(())
        });
        if let Err(e) = outcome {
            // Nothing of the batch is durable: refuse it, and everything after it.
            tracing::error!(error = %e, "audit log commit failed; refusing all further requests");
            self.failed.store(true, Ordering::SeqCst);
            for j in jobs {
                reply(j.reply, Err(WriteError::AuditUnavailable));
            }
            return;
        }
        let written = match &head {
            Some(h) if heads == HEADS_REBASE => {
                let w = self.head_file.danger_rebase(h);
                if w.is_ok() {
                    let _ = self.heads.compare_exchange(
                        HEADS_REBASE,
                        HEADS_SIGNED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                w
            }
            Some(h) => self.head_file.write(h),
            None => Ok(()),
        };
        match written {
            Ok(()) => {
                if let Some(h) = head {
                    self.written.send_replace(Some(h));
                }
            }
            Err(e) => {
                // The batch is committed, so it is answered as done; but the head file can
                // no longer be trusted to be current, so nothing after it is accepted.
                tracing::error!(error = %e, "head file write failed; refusing all further requests");
                self.failed.store(true, Ordering::SeqCst);
            }
        }
        self.chain = chain;
        for (j, r) in jobs.into_iter().zip(results) {
            reply(j.reply, r.map_err(WriteError::Refused));
        }
    }
}

fn reply(to: Option<oneshot::Sender<Result<(), WriteError>>>, r: Result<(), WriteError>) {
    if let Some(tx) = to {
        // The requester may have gone away (client disconnected); the record stands regardless.
        let _ = tx.send(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::id::DomainName;
    use strongroom_core::record::{
        AuditRecord, DomainRecord, KeyRecord, OperatorRecord, SignedHead, TokenRecord, VaultMeta,
    };
    use strongroom_core::storage::WriteBatch;
    use strongroom_core::{DomainId, KeyId, RequestId, SystemClock, TokenId, UnixMillis, VaultId};
    use strongroom_storage::SqliteStore;

    /// SQLite whose writes can be made to fail, like a full or failing disk.
    struct Flaky {
        inner: SqliteStore,
        fail: AtomicBool,
        /// When set, writes go to `other`: another copy of the database put in its place.
        other: Option<Arc<SqliteStore>>,
        redirect: AtomicBool,
    }

    impl Storage for Flaky {
        fn vault(&self) -> Result<VaultMeta, CoreError> {
            self.inner.vault()
        }
        fn policy(
            &self,
            wallet: KeyId,
        ) -> Result<Option<strongroom_core::record::PolicyRecord>, CoreError> {
            self.inner.policy(wallet)
        }
        fn idempotent(
            &self,
            principal: &str,
            key: &str,
        ) -> Result<Option<strongroom_core::record::IdempotentRecord>, CoreError> {
            self.inner.idempotent(principal, key)
        }
        fn spent_since(
            &self,
            wallet: KeyId,
            asset: &str,
            since: UnixMillis,
        ) -> Result<[u8; 32], CoreError> {
            self.inner.spent_since(wallet, asset, since)
        }
        fn eth2_export(
            &self,
            domain: DomainId,
        ) -> Result<Option<strongroom_core::slashing::Interchange>, CoreError> {
            self.inner.eth2_export(domain)
        }
        fn eth2_released(
            &self,
            domain: DomainId,
        ) -> Result<Vec<(KeyId, UnixMillis, String)>, CoreError> {
            self.inner.eth2_released(domain)
        }
        fn use_field_cipher(
            &self,
            cipher: Arc<dyn strongroom_core::storage::FieldCipher>,
        ) -> Result<(), CoreError> {
            self.inner.use_field_cipher(cipher)
        }
        fn domain_by_name(&self, n: &DomainName) -> Result<Option<DomainRecord>, CoreError> {
            self.inner.domain_by_name(n)
        }
        fn domain(&self, id: DomainId) -> Result<Option<DomainRecord>, CoreError> {
            self.inner.domain(id)
        }
        fn domains(&self) -> Result<Vec<DomainRecord>, CoreError> {
            self.inner.domains()
        }
        fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, CoreError> {
            self.inner.key(id)
        }
        fn key_with_domain(
            &self,
            id: KeyId,
        ) -> Result<Option<(KeyRecord, DomainRecord)>, CoreError> {
            self.inner.key_with_domain(id)
        }
        fn keys(&self, d: DomainId) -> Result<Vec<KeyRecord>, CoreError> {
            self.inner.keys(d)
        }
        fn keys_to_rewrap(
            &self,
            d: DomainId,
            version: u32,
            limit: u32,
        ) -> Result<Vec<KeyRecord>, CoreError> {
            self.inner.keys_to_rewrap(d, version, limit)
        }
        fn keys_under(&self, d: DomainId, version: u32) -> Result<(u64, u64), CoreError> {
            self.inner.keys_under(d, version)
        }
        fn idle_limited_keys(&self) -> Result<Vec<KeyRecord>, CoreError> {
            self.inner.idle_limited_keys()
        }
        fn last_signature(&self, k: KeyId) -> Result<Option<UnixMillis>, CoreError> {
            self.inner.last_signature(k)
        }
        fn operator_by_name(
            &self,
            n: &strongroom_core::operator::OperatorName,
        ) -> Result<Option<OperatorRecord>, CoreError> {
            self.inner.operator_by_name(n)
        }
        fn operator(
            &self,
            id: strongroom_core::OperatorId,
        ) -> Result<Option<OperatorRecord>, CoreError> {
            self.inner.operator(id)
        }
        fn operators(&self) -> Result<Vec<OperatorRecord>, CoreError> {
            self.inner.operators()
        }
        fn token_by_hash(&self, h: &[u8; 32]) -> Result<Option<TokenRecord>, CoreError> {
            self.inner.token_by_hash(h)
        }
        fn pending(
            &self,
            id: strongroom_core::PendingId,
        ) -> Result<Option<strongroom_core::record::PendingRecord>, CoreError> {
            self.inner.pending(id)
        }
        fn pendings(
            &self,
            status: Option<strongroom_core::record::RequestStatus>,
        ) -> Result<Vec<strongroom_core::record::PendingRecord>, CoreError> {
            self.inner.pendings(status)
        }
        fn approvals(
            &self,
            id: strongroom_core::PendingId,
        ) -> Result<Vec<strongroom_core::record::ApprovalRecord>, CoreError> {
            self.inner.approvals(id)
        }
        fn quorum_rules(&self) -> Result<Vec<strongroom_core::quorum::QuorumRule>, CoreError> {
            self.inner.quorum_rules()
        }
        fn tokens(&self) -> Result<Vec<TokenRecord>, CoreError> {
            self.inner.tokens()
        }
        fn token(&self, id: TokenId) -> Result<Option<TokenRecord>, CoreError> {
            self.inner.token(id)
        }
        fn audit_tail(&self) -> Result<Option<(u64, [u8; 32])>, CoreError> {
            self.inner.audit_tail()
        }
        fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, CoreError> {
            self.inner.audit_records(from, limit)
        }
        fn audit_heads(&self) -> Result<Vec<SignedHead>, CoreError> {
            self.inner.audit_heads()
        }
        fn write(&self, batch: WriteBatch<'_>) -> Result<(), CoreError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(CoreError::Storage("disk full".into()));
            }
            match &self.other {
                Some(other) if self.redirect.load(Ordering::SeqCst) => other.write(batch),
                _ => self.inner.write(batch),
            }
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            time: UnixMillis(1),
            request_id: RequestId::from_random([1; 16]),
            actor: "root:x".into(),
            source: None,
            operation: "key.sign".into(),
            domain: None,
            key: None,
            outcome: Outcome::Granted,
            code: None,
            count: 1,
            detail: None,
        }
    }

    #[tokio::test]
    async fn a_failed_commit_fails_closed_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let vid = VaultId::from_random([3; 16]);
        let inner = SqliteStore::create(&dir.path().join("v.db"), vid, UnixMillis(0)).unwrap();
        let flaky = Arc::new(Flaky {
            inner,
            fail: AtomicBool::new(false),
            other: None,
            redirect: AtomicBool::new(false),
        });
        let ks = Arc::new(Keystore::new(Arc::new(strongroom_crypto::OsEntropy)));
        let store: Arc<dyn Storage> = flaky.clone();
        // As at start: the (here sealed) keystore seals private columns.
        store.use_field_cipher(ks.clone()).unwrap();
        let (w, _t) = Writer::start(
            store.clone(),
            ks,
            Arc::new(SystemClock),
            &dir.path().join("audit-head"),
        )
        .unwrap();

        w.submit(vec![], event()).await.unwrap();
        assert_eq!(store.audit_tail().unwrap().unwrap().0, 1);

        flaky.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            w.submit(vec![], event()).await,
            Err(WriteError::AuditUnavailable)
        ));
        assert!(w.has_failed());
        // The disk recovers, but the writer never retries into a false success.
        flaky.fail.store(false, Ordering::SeqCst);
        assert!(matches!(
            w.submit(vec![], event()).await,
            Err(WriteError::AuditUnavailable)
        ));
        assert_eq!(
            store.audit_tail().unwrap().unwrap().0,
            1,
            "nothing written after the failure"
        );
    }

    /// Another copy of the database, with a chain as long or longer, put in place under a
    /// running writer: refused (not built on), and the writer stops.
    #[tokio::test]
    async fn a_replaced_chain_is_refused_even_when_longer() {
        let dir = tempfile::tempdir().unwrap();
        let vid = VaultId::from_random([4; 16]);
        let inner = SqliteStore::create(&dir.path().join("a.db"), vid, UnixMillis(0)).unwrap();
        let other =
            Arc::new(SqliteStore::create(&dir.path().join("b.db"), vid, UnixMillis(0)).unwrap());
        let ks = Arc::new(Keystore::new(Arc::new(strongroom_crypto::OsEntropy)));
        other.use_field_cipher(ks.clone()).unwrap();
        // The other copy: three records of its own.
        let (w2, _t2) = Writer::start(
            other.clone(),
            ks.clone(),
            Arc::new(SystemClock),
            &dir.path().join("b-head"),
        )
        .unwrap();
        for _ in 0..3 {
            let mut e = event();
            e.operation = "other.copy".into();
            w2.submit(vec![], e).await.unwrap();
        }
        let flaky = Arc::new(Flaky {
            inner,
            fail: AtomicBool::new(false),
            other: Some(other),
            redirect: AtomicBool::new(false),
        });
        let store: Arc<dyn Storage> = flaky.clone();
        store.use_field_cipher(ks.clone()).unwrap();
        let (w, _t) = Writer::start(
            store.clone(),
            ks,
            Arc::new(SystemClock),
            &dir.path().join("a-head"),
        )
        .unwrap();
        w.submit(vec![], event()).await.unwrap();
        w.submit(vec![], event()).await.unwrap();
        flaky.redirect.store(true, Ordering::SeqCst);
        assert!(matches!(
            w.submit(vec![], event()).await,
            Err(WriteError::AuditUnavailable)
        ));
        assert!(w.has_failed());
        assert_eq!(
            flaky
                .other
                .as_ref()
                .unwrap()
                .audit_tail()
                .unwrap()
                .unwrap()
                .0,
            3,
            "nothing appended to the other copy"
        );
    }
}
