//! The storage contract, written once against `&dyn Storage`: every backend (SQLite now,
//! PostgreSQL next) must pass it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strongroom_core::id::DomainName;
use strongroom_core::operator::{Role, Roles};
use strongroom_core::quorum::{GatedOp, QuorumRule};
use strongroom_core::record::{
    ApprovalRecord, AuditBody, AuditEvent, DomainRecord, InitRecord, KeyRecord, OperatorRecord,
    Outcome, PendingRecord, RequestStatus, SignedHead, TokenKind, TokenRecord,
};
use strongroom_core::slashing::{Duty, DutyRecord};
use strongroom_core::storage::{Change, FieldCipher, Mutation, Storage};
use strongroom_core::temperature::Temperature;
use strongroom_core::{
    Algorithm, DomainId, Error, KeyId, OperatorId, PendingId, RequestId, TokenId, UnixMillis,
    VaultId,
};

fn domain(n: u8, name: &str) -> DomainRecord {
    DomainRecord {
        id: DomainId::from_random([n; 16]),
        name: name.parse::<DomainName>().unwrap(),
        wrapped_key: vec![n; 61],
        created_at: UnixMillis(u64::from(n)),
        new_key_temperature: Temperature::Warm,
        algorithms: strongroom_core::AlgorithmPolicy::default(),
        destroyed_at: None,
        key_version: 1,
        retiring: None,
    }
}

fn key(n: u8, d: &DomainRecord) -> KeyRecord {
    KeyRecord {
        id: KeyId::from_random([n; 16]),
        domain: d.id,
        version: 1,
        algorithm: Algorithm::Secp256k1,
        label: Some(format!("k{n}")),
        public_key: vec![2; 33],
        created_at: UnixMillis(100 + u64::from(n)),
        destroyed_at: None,
        sealed_secret: Some(vec![n; 61]),
        temperature: Temperature::Warm,
        temperature_since: UnixMillis(100 + u64::from(n)),
        hot_idle_secs: None,
        temperature_mac: [n; 32],
        domain_key_version: 1,
        predecessor: None,
    }
}

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        time: UnixMillis(i),
        request_id: RequestId::from_random([u8::try_from(i % 251).unwrap(); 16]),
        actor: "root:x".into(),
        source: Some("127.0.0.1".into()),
        operation: "key.sign".into(),
        domain: None,
        key: Some("k".into()),
        outcome: Outcome::Granted,
        code: None,
        count: 1,
        detail: None,
    }
}

fn operator(n: u8) -> OperatorRecord {
    OperatorRecord {
        id: OperatorId::from_random([n; 16]),
        name: "alice".parse().unwrap(),
        roles: Roles::new(&[Role::SecurityOfficer, Role::Approver]).unwrap(),
        domain: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        must_change_password: true,
        totp_sealed: vec![5; 50],
        totp_last_step: None,
        failed_logins: 0,
        locked_until: None,
        approval_key: None,
        created_at: UnixMillis(7),
        disabled_at: None,
        mac: [1; 32],
    }
}

fn pending(n: u8, requester: Option<OperatorId>) -> PendingRecord {
    PendingRecord {
        id: PendingId::from_random([n; 16]),
        op: GatedOp::DestroyKey,
        params: r#"{"key":"k"}"#.into(),
        domain: None,
        key: None,
        requester: "operator:x".into(),
        requester_operator: requester,
        required: 2,
        created_at: UnixMillis(10),
        expires_at: UnixMillis(20),
        nonce: [4; 32],
        hash: [5; 32],
        status: RequestStatus::Pending,
        result: None,
        decided_at: None,
        mac: [6; 32],
    }
}

fn apply(store: &dyn Storage, m: Vec<Mutation>) -> Result<(), Error> {
    let mut result = Ok(());
    store.write(&mut |txn| {
        result = txn.apply(&m);
        Ok(())
    })?;
    result
}

/// Layered encryption over the real storage keys, with a switch that plays the vault
/// sealing (as the keystore does).
struct TestCipher {
    keys: strongroom_crypto::StorageKeys,
    unsealed: AtomicBool,
}

impl TestCipher {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            keys: strongroom_crypto::RootKey::generate(&strongroom_crypto::OsEntropy)
                .unwrap()
                .storage_keys(),
            unsealed: AtomicBool::new(true),
        })
    }
    fn check(&self) -> Result<(), Error> {
        if self.unsealed.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::Sealed)
        }
    }
}

impl FieldCipher for TestCipher {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.check()?;
        self.keys
            .seal(aad, plaintext, &strongroom_crypto::OsEntropy)
            .map_err(|_| Error::Entropy)
    }
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        self.check()?;
        self.keys
            .open(aad, sealed)
            .map_err(|_| Error::Corrupt("sealed field"))
    }
    fn blind_index(&self, purpose: &[u8], value: &[u8]) -> Result<[u8; 32], Error> {
        self.check()?;
        Ok(self.keys.blind_index(purpose, value))
    }
}

/// What a test can do to a backend's database behind its back.
struct Raw<'a> {
    /// Everything the database holds, as the bytes an administrator could read.
    dump: &'a dyn Fn() -> Vec<u8>,
    /// Runs SQL directly (the administrator editing rows).
    exec: &'a dyn Fn(&str),
}

/// Whether `needle` appears as text or hex-encoded (how dumps show binary columns).
fn contains(haystack: &[u8], needle: &str) -> bool {
    let hexed = hex::encode(needle);
    [needle.as_bytes(), hexed.as_bytes()]
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == *n))
}

/// Layered encryption, against a fresh database of `vault_id`: a database administrator sees
/// no private metadata; rows moved or edited in the database are refused; and while the
/// vault is sealed private data can be neither read nor written, yet the audit chain goes on.
fn layered(store: &dyn Storage, vault_id: VaultId, raw: &Raw<'_>) {
    let mut chain = strongroom_audit::Chain::resume(vault_id, None);
    let marked = |i: u64, what: &str| AuditEvent {
        actor: format!("operator:actor-{what}"),
        source: Some("198.51.100.77".into()),
        operation: format!("op-{what}"),
        key: Some(format!("key-{what}")),
        code: Some(format!("code-{what}")),
        ..event(i)
    };

    // Before a cipher is handed over, nothing private is written, not even an audit event
    // in the clear: only a configured cipher may say "sealed".
    let d = domain(1, "secret-treasury");
    assert!(apply(store, vec![Mutation::CreateDomain(d.clone())]).is_err());
    assert!(matches!(
        store.write(&mut |txn| txn.append_audit(&chain.clone().append(marked(1, "clear")))),
        Err(Error::NoFieldCipher)
    ));
    assert!(store.audit_records(1, 10).unwrap().is_empty());

    let cipher = TestCipher::new();
    store.use_field_cipher(cipher.clone()).unwrap();
    assert!(matches!(
        store.use_field_cipher(TestCipher::new()),
        Err(Error::Conflict(_))
    ));
    // While the vault is sealed: private columns refuse, the chain does not (in the clear).
    cipher.unsealed.store(false, Ordering::SeqCst);
    assert!(matches!(
        apply(store, vec![Mutation::CreateDomain(d.clone())]),
        Err(Error::Sealed)
    ));
    store
        .write(&mut |txn| txn.append_audit(&chain.clone().append(marked(1, "clear"))))
        .unwrap();
    chain.append(marked(1, "clear"));
    cipher.unsealed.store(true, Ordering::SeqCst);
    let mut k = key(2, &d);
    k.label = Some("secret-cold-label".into());
    // Public keys give away addresses.
    k.public_key = b"secret-public-key-of-a-wallet".to_vec();
    let o = OperatorRecord {
        name: "secret-alice".parse().unwrap(),
        ..operator(3)
    };
    let p = PendingRecord {
        params: r#"{"to":"secret-address"}"#.into(),
        requester: "operator:secret-requester".into(),
        result: Some("secret-result".into()),
        ..pending(4, None)
    };
    let rule = QuorumRule {
        domain: Some(d.id),
        op: GatedOp::DestroyKey,
        approvals: 3,
    };
    apply(
        store,
        vec![
            Mutation::CreateDomain(d.clone()),
            Mutation::CreateKey(k.clone()),
            Mutation::CreateOperator(o.clone()),
            Mutation::CreatePending(p.clone()),
            Mutation::SetQuorum(rule),
        ],
    )
    .unwrap();
    store
        .write(&mut |txn| txn.append_audit(&chain.clone().append(marked(2, "sealed"))))
        .unwrap();
    chain.append(marked(2, "sealed"));

    // Everything reads back through the cipher...
    assert_eq!(store.domain_by_name(&d.name).unwrap(), Some(d.clone()));
    assert_eq!(store.key(k.id).unwrap(), Some(k.clone()));
    assert_eq!(store.operator_by_name(&o.name).unwrap(), Some(o.clone()));
    assert_eq!(store.pending(p.id).unwrap(), Some(p.clone()));
    assert_eq!(store.quorum_rules().unwrap(), vec![rule]);
    let records = store.audit_records(1, 10).unwrap();
    assert_eq!(
        records.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
        vec![
            AuditBody::Open(marked(1, "clear")),
            AuditBody::Open(marked(2, "sealed"))
        ]
    );
    // A validator's public key (which tenant runs which validators is private).
    let mut pubkey = [b'-'; 48];
    pubkey[..23].copy_from_slice(b"secret-validator-pubkey");
    apply(
        store,
        vec![Mutation::Eth2Import {
            domain: d.id,
            interchange: strongroom_core::slashing::Interchange {
                genesis_validators_root: [7; 32],
                data: vec![strongroom_core::slashing::History {
                    pubkey,
                    blocks: vec![],
                    attestations: vec![],
                }],
            },
        }],
    )
    .unwrap();
    assert_eq!(
        store.eth2_export(d.id).unwrap().unwrap().data[0].pubkey,
        pubkey
    );
    // ...and the database holds none of it in the clear, except the record written while
    // sealed.
    let dump = (raw.dump)();
    for secret in [
        "secret-validator-pubkey",
        "secret-treasury",
        "secret-cold-label",
        "secret-public-key-of-a-wallet",
        "secret-alice",
        "secret-address",
        "secret-requester",
        "secret-result",
        "actor-sealed",
        "op-sealed",
        "key-sealed",
        "code-sealed",
    ] {
        assert!(
            !contains(&dump, secret),
            "{secret} is readable in the database"
        );
    }
    assert!(
        contains(&dump, "op-clear"),
        "the dump does not show the database"
    );
    // Nor the request's nonce, which with the clear request hash would confirm guesses of the
    // sealed parameters.
    let nonce_hex = hex::encode(p.nonce);
    assert!(
        !dump.windows(32).any(|w| w == p.nonce)
            && !dump.windows(64).any(|w| w == nonce_hex.as_bytes()),
        "the request nonce is readable in the database"
    );

    // A sealed value moved to another row does not open: two domains swap names.
    let e = domain(5, "secret-other");
    apply(store, vec![Mutation::CreateDomain(e.clone())]).unwrap();
    // (`domain(n, ..)` is created at time n.)
    (raw.exec)(
        "UPDATE domains SET name = (SELECT name FROM domains WHERE created_at = 5)
         WHERE created_at = 1",
    );
    assert!(matches!(store.domain(d.id), Err(Error::Corrupt(_))));
    assert!(matches!(
        store.domain_by_name(&d.name),
        Err(Error::Corrupt(_))
    ));
    assert_eq!(store.domain(e.id).unwrap(), Some(e));

    // Sealed: private data neither reads nor writes; the chain still appends (in the clear)
    // and reads back as digests that verify.
    cipher.unsealed.store(false, Ordering::SeqCst);
    assert!(matches!(
        store.operator_by_name(&o.name),
        Err(Error::Sealed)
    ));
    assert!(matches!(store.key(k.id), Err(Error::Sealed)));
    assert!(matches!(
        apply(store, vec![Mutation::SetQuorum(rule)]),
        Err(Error::Sealed)
    ));
    store
        .write(&mut |txn| txn.append_audit(&chain.clone().append(marked(3, "while-sealed"))))
        .unwrap();
    chain.append(marked(3, "while-sealed"));
    let records = store.audit_records(1, 10).unwrap();
    assert!(matches!(records[1].body, AuditBody::Sealed { .. }));
    assert_eq!(records[2].body, AuditBody::Open(marked(3, "while-sealed")));
    let mut verifier = strongroom_audit::Verifier::new(vault_id, None, &[]).unwrap();
    for r in &records {
        verifier.record(r).unwrap();
    }
    let report = verifier.finish().unwrap();
    assert_eq!((report.records, report.sealed), (3, 1));

    // An edited sealed event is caught: by its AEAD tag once unsealed, by the chain anyway.
    cipher.unsealed.store(true, Ordering::SeqCst);
    (raw.exec)("UPDATE audit SET digest = prev_hash WHERE seq = 2");
    let records = store.audit_records(1, 10).unwrap();
    assert_eq!(records[1].body, AuditBody::Open(marked(2, "sealed")));
    cipher.unsealed.store(false, Ordering::SeqCst);
    let mut verifier = strongroom_audit::Verifier::new(vault_id, None, &[]).unwrap();
    let records = store.audit_records(1, 10).unwrap();
    verifier.record(&records[0]).unwrap();
    assert_eq!(
        verifier.record(&records[1]),
        Err(strongroom_audit::VerifyError::Edited { seq: 2 })
    );

    // The signature marker is outside the record hash: copied onto a newer record of
    // something else, it must not make an idle key look used.
    cipher.unsealed.store(true, Ordering::SeqCst);
    let signer = KeyId::from_random([78; 16]);
    store
        .write(&mut |txn| {
            for (t, operation) in [(50, "key.sign"), (60, "key.show")] {
                txn.append_audit(&chain.append(AuditEvent {
                    time: UnixMillis(t),
                    operation: operation.into(),
                    key: Some(signer.to_string()),
                    ..event(t)
                }))?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(store.last_signature(signer).unwrap(), Some(UnixMillis(50)));
    (raw.exec)(
        "UPDATE audit SET sign_index = (SELECT sign_index FROM audit WHERE time = 50)
         WHERE time = 60",
    );
    assert_eq!(store.last_signature(signer).unwrap(), None);
}

/// Runs the whole contract against `store`, a freshly created database of `vault_id`.
fn conformance(store: &dyn Storage, vault_id: VaultId) {
    store.use_field_cipher(TestCipher::new()).unwrap();
    // Installation row.
    let meta = store.vault().unwrap();
    assert_eq!(meta.vault_id, vault_id);
    assert!(meta.init.is_none());
    let init = InitRecord {
        seal_config: vec![1, 1, 1],
        root_check: [7; 32],
        audit_public_key: [8; 32],
        initialized_at: UnixMillis(5),
    };
    apply(store, vec![Mutation::Initialize(init.clone())]).unwrap();
    assert_eq!(store.vault().unwrap().init, Some(init.clone()));
    assert!(matches!(
        apply(store, vec![Mutation::Initialize(init.clone())]),
        Err(Error::Conflict(_))
    ));
    // A seal change applies only over the configuration it was made from.
    let resealed = vec![2, 0, 3, 1, 1, 1];
    apply(
        store,
        vec![Mutation::ChangeSeal {
            from: init.seal_config.clone(),
            to: resealed.clone(),
        }],
    )
    .unwrap();
    assert!(matches!(
        apply(
            store,
            vec![Mutation::ChangeSeal {
                from: init.seal_config.clone(),
                to: vec![1, 2, 2],
            }],
        ),
        Err(Error::Conflict(_))
    ));
    let now = store.vault().unwrap().init.unwrap();
    assert_eq!(now.seal_config, resealed);
    assert_eq!(now.root_check, init.root_check);

    // Domains: unique names.
    let a = domain(1, "alpha");
    let b = domain(2, "beta");
    apply(
        store,
        vec![
            Mutation::CreateDomain(a.clone()),
            Mutation::CreateDomain(b.clone()),
        ],
    )
    .unwrap();
    let dup = DomainRecord {
        id: DomainId::from_random([3; 16]),
        ..a.clone()
    };
    assert!(matches!(
        apply(store, vec![Mutation::CreateDomain(dup)]),
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.domains().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.domain_by_name(&a.name).unwrap(), Some(a.clone()));
    assert_eq!(store.domain(b.id).unwrap(), Some(b.clone()));
    assert_eq!(store.domain(DomainId::from_random([9; 16])).unwrap(), None);

    // A domain's algorithm policy: compare-and-swap on the one it was decided from.
    let restricted = strongroom_core::AlgorithmPolicy::default()
        .with(Algorithm::P256, strongroom_core::AlgorithmState::Disabled);
    assert!(matches!(
        apply(
            store,
            vec![Mutation::SetDomainAlgorithms {
                id: b.id,
                from: restricted.clone(),
                to: strongroom_core::AlgorithmPolicy::default(),
            }],
        ),
        Err(Error::Conflict(_))
    ));
    apply(
        store,
        vec![Mutation::SetDomainAlgorithms {
            id: b.id,
            from: b.algorithms.clone(),
            to: restricted.clone(),
        }],
    )
    .unwrap();
    assert_eq!(store.domain(b.id).unwrap().unwrap().algorithms, restricted);
    apply(
        store,
        vec![Mutation::SetDomainAlgorithms {
            id: b.id,
            from: restricted,
            to: b.algorithms.clone(),
        }],
    )
    .unwrap();
    assert_eq!(store.domain(b.id).unwrap(), Some(b.clone()));

    // Keys: foreign key to the domain; one request's mutations are all-or-nothing.
    let k1 = key(11, &a);
    let k2 = key(12, &b);
    apply(store, vec![Mutation::CreateKey(k1.clone())]).unwrap();
    let orphan = key(13, &domain(99, "nowhere"));
    assert!(apply(store, vec![Mutation::CreateKey(orphan)]).is_err());
    let r = apply(
        store,
        vec![
            Mutation::CreateKey(k2.clone()),
            Mutation::CreateKey(k1.clone()),
        ],
    );
    assert!(matches!(r, Err(Error::Conflict(_))));
    assert_eq!(
        store.key(k2.id).unwrap(),
        None,
        "first half of a failed request must not remain"
    );
    apply(store, vec![Mutation::CreateKey(k2.clone())]).unwrap();
    assert_eq!(store.key(k1.id).unwrap(), Some(k1.clone()));
    assert_eq!(store.keys(a.id).unwrap(), vec![k1.clone()]);
    assert_eq!(
        store.key_with_domain(k2.id).unwrap(),
        Some((k2.clone(), b.clone()))
    );

    // Temperature changes are compare-and-swap on its MAC.
    let set = |t, idle, mac, expected_mac| Mutation::SetTemperature {
        id: k1.id,
        temperature: t,
        since: UnixMillis(300),
        hot_idle_secs: idle,
        mac,
        expected_mac,
    };
    assert!(store.idle_limited_keys().unwrap().is_empty());
    apply(
        store,
        vec![set(Temperature::Hot, Some(600), [70; 32], [11; 32])],
    )
    .unwrap();
    assert!(matches!(
        apply(
            store,
            vec![set(Temperature::Cold, None, [71; 32], [11; 32])]
        ),
        Err(Error::Conflict(_))
    ));
    let hot = store.key(k1.id).unwrap().unwrap();
    assert_eq!(
        (
            hot.temperature,
            hot.temperature_mac,
            hot.temperature_since,
            hot.hot_idle_secs
        ),
        (Temperature::Hot, [70; 32], UnixMillis(300), Some(600))
    );
    assert_eq!(store.idle_limited_keys().unwrap(), vec![hot.clone()]);
    let k1 = hot;

    // Offline and back: only a cold, online key goes offline; only an offline key comes back.
    let k2_cold = KeyRecord {
        temperature: Temperature::Cold,
        ..k2.clone()
    };
    let offline = |k: &KeyRecord, blob: Vec<u8>, version: u32| Mutation::TakeOffline {
        id: k.id,
        sealed_secret: blob,
        domain_key_version: version,
    };
    assert!(matches!(
        apply(
            store,
            vec![offline(&k1, k1.sealed_secret.clone().unwrap(), 1)]
        ),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        apply(
            store,
            vec![Mutation::RestoreSecret {
                id: k2.id,
                sealed_secret: vec![1]
            }]
        ),
        Err(Error::Conflict(_))
    ));
    apply(
        store,
        vec![Mutation::SetTemperature {
            id: k2.id,
            temperature: Temperature::Cold,
            since: UnixMillis(301),
            hot_idle_secs: None,
            mac: [72; 32],
            expected_mac: k2.temperature_mac,
        }],
    )
    .unwrap();
    // Only with exactly the blob and domain key version the bundle holds.
    let blob = k2.sealed_secret.clone().unwrap();
    for (b, v) in [(vec![0; 61], 1), (blob.clone(), 2)] {
        assert!(matches!(
            apply(store, vec![offline(&k2, b, v)]),
            Err(Error::Conflict(_))
        ));
    }
    apply(store, vec![offline(&k2, blob.clone(), 1)]).unwrap();
    assert_eq!(store.key(k2.id).unwrap().unwrap().sealed_secret, None);
    assert!(matches!(
        apply(store, vec![offline(&k2, blob, 1)]),
        Err(Error::Conflict(_))
    ));
    apply(
        store,
        vec![Mutation::RestoreSecret {
            id: k2.id,
            sealed_secret: k2_cold.sealed_secret.clone().unwrap(),
        }],
    )
    .unwrap();
    assert_eq!(
        store.key(k2.id).unwrap().unwrap().sealed_secret,
        k2_cold.sealed_secret
    );

    // Destroy erases the sealed secret, once.
    apply(
        store,
        vec![Mutation::DestroyKey {
            id: k1.id,
            at: UnixMillis(500),
        }],
    )
    .unwrap();
    let gone = store.key(k1.id).unwrap().unwrap();
    assert_eq!(
        (gone.sealed_secret, gone.destroyed_at),
        (None, Some(UnixMillis(500)))
    );
    assert!(matches!(
        apply(
            store,
            vec![Mutation::DestroyKey {
                id: k1.id,
                at: UnixMillis(501)
            }]
        ),
        Err(Error::NotFound(_))
    ));

    // Tokens by hash; revocation once.
    let t = TokenRecord {
        id: TokenId::from_random([21; 16]),
        hash: [21; 32],
        kind: TokenKind::Application(a.id),
        created_at: UnixMillis(1),
        expires_at: Some(UnixMillis(99)),
        revoked_at: None,
        mac: [22; 32],
    };
    apply(store, vec![Mutation::CreateToken(t.clone())]).unwrap();
    assert_eq!(store.token_by_hash(&[21; 32]).unwrap(), Some(t.clone()));
    apply(
        store,
        vec![Mutation::RevokeToken {
            id: t.id,
            at: UnixMillis(50),
            mac: [23; 32],
        }],
    )
    .unwrap();
    let revoked = store.token(t.id).unwrap().unwrap();
    assert_eq!(
        (revoked.revoked_at, revoked.mac),
        (Some(UnixMillis(50)), [23; 32])
    );
    assert!(matches!(
        apply(
            store,
            vec![Mutation::RevokeToken {
                id: t.id,
                at: UnixMillis(51),
                mac: [24; 32],
            }]
        ),
        Err(Error::NotFound(_))
    ));

    // Operators: unique names; updates are compare-and-swap on the row's MAC.
    let op = OperatorRecord {
        domain: Some(a.id),
        ..operator(31)
    };
    apply(store, vec![Mutation::CreateOperator(op.clone())]).unwrap();
    let twin = OperatorRecord {
        id: OperatorId::from_random([32; 16]),
        ..op.clone()
    };
    assert!(matches!(
        apply(store, vec![Mutation::CreateOperator(twin)]),
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.operator_by_name(&op.name).unwrap(), Some(op.clone()));
    assert_eq!(store.operator(op.id).unwrap(), Some(op.clone()));
    let logged_in = OperatorRecord {
        totp_last_step: Some(41),
        must_change_password: false,
        approval_key: Some([9; 32]),
        locked_until: Some(UnixMillis(70)),
        failed_logins: 2,
        mac: [2; 32],
        ..op.clone()
    };
    apply(
        store,
        vec![Mutation::UpdateOperator {
            expected_mac: [1; 32],
            record: logged_in.clone(),
        }],
    )
    .unwrap();
    assert_eq!(store.operators().unwrap(), vec![logged_in.clone()]);
    let stale = apply(
        store,
        vec![Mutation::UpdateOperator {
            expected_mac: [1; 32],
            record: op.clone(),
        }],
    );
    assert!(
        matches!(stale, Err(Error::Conflict(_))),
        "a stale update must not win"
    );
    let session = TokenRecord {
        id: TokenId::from_random([33; 16]),
        hash: [33; 32],
        kind: TokenKind::Session(op.id),
        created_at: UnixMillis(1),
        expires_at: Some(UnixMillis(2)),
        revoked_at: None,
        mac: [3; 32],
    };
    apply(store, vec![Mutation::CreateToken(session.clone())]).unwrap();
    assert_eq!(store.token_by_hash(&[33; 32]).unwrap(), Some(session));

    // Pending requests, approvals (one per approver) and quorum rules.
    let req = PendingRecord {
        domain: Some(a.id),
        key: Some(k2.id),
        ..pending(41, Some(op.id))
    };
    apply(store, vec![Mutation::CreatePending(req.clone())]).unwrap();
    assert_eq!(store.pending(req.id).unwrap(), Some(req.clone()));
    let approval = ApprovalRecord {
        request: req.id,
        approver: op.id,
        signature: [7; 64],
        at: UnixMillis(11),
    };
    apply(store, vec![Mutation::AddApproval(approval.clone())]).unwrap();
    let twice = apply(
        store,
        vec![Mutation::AddApproval(ApprovalRecord {
            at: UnixMillis(12),
            ..approval.clone()
        })],
    );
    assert!(
        matches!(twice, Err(Error::Conflict(_))),
        "one approval per approver"
    );
    assert_eq!(store.approvals(req.id).unwrap(), vec![approval]);
    let done = PendingRecord {
        status: RequestStatus::Executed,
        result: Some("{}".into()),
        decided_at: Some(UnixMillis(13)),
        mac: [8; 32],
        ..req.clone()
    };
    apply(
        store,
        vec![Mutation::UpdatePending {
            expected_mac: [6; 32],
            record: done.clone(),
        }],
    )
    .unwrap();
    assert!(
        apply(
            store,
            vec![Mutation::UpdatePending {
                expected_mac: [6; 32],
                record: req.clone()
            }]
        )
        .is_err()
    );
    assert_eq!(
        store.pendings(Some(RequestStatus::Executed)).unwrap(),
        vec![done]
    );
    assert!(
        store
            .pendings(Some(RequestStatus::Pending))
            .unwrap()
            .is_empty()
    );
    let vault_rule = QuorumRule {
        domain: None,
        op: GatedOp::CreateDomain,
        approvals: 2,
    };
    let domain_rule = QuorumRule {
        domain: Some(a.id),
        op: GatedOp::DestroyKey,
        approvals: 3,
    };
    apply(
        store,
        vec![
            Mutation::SetQuorum(vault_rule),
            Mutation::SetQuorum(domain_rule),
        ],
    )
    .unwrap();
    apply(
        store,
        vec![Mutation::SetQuorum(QuorumRule {
            approvals: 4,
            ..vault_rule
        })],
    )
    .unwrap();
    let rules = store.quorum_rules().unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules.contains(&QuorumRule {
        approvals: 4,
        ..vault_rule
    }));
    assert!(rules.contains(&domain_rule));

    // Destroying a domain erases its master key and every key's secret in it, once.
    let destroy = |at| Mutation::DestroyDomain {
        id: b.id,
        at: UnixMillis(at),
    };
    apply(store, vec![destroy(900)]).unwrap();
    let gone = store.domain(b.id).unwrap().unwrap();
    assert_eq!(
        (gone.wrapped_key.len(), gone.destroyed_at),
        (0, Some(UnixMillis(900)))
    );
    let k2_gone = store.key(k2.id).unwrap().unwrap();
    assert_eq!(
        (k2_gone.sealed_secret, k2_gone.destroyed_at),
        (None, Some(UnixMillis(900)))
    );
    assert!(store.domain(a.id).unwrap().unwrap().destroyed_at.is_none());
    assert!(matches!(
        apply(store, vec![destroy(901)]),
        Err(Error::NotFound(_))
    ));

    // Audit: a refused mutation does not abort its batch; records and heads read back in order.
    let mut chain = strongroom_audit::Chain::resume(vault_id, store.audit_tail().unwrap());
    assert_eq!(chain.seq(), 0);
    let mut refused = None;
    store
        .write(&mut |txn| {
            refused = Some(txn.apply(&[Mutation::CreateDomain(a.clone())]));
            for i in 1..=3 {
                txn.append_audit(&chain.append(event(i)))?;
            }
            txn.put_head(&SignedHead {
                vault_id,
                seq: chain.seq(),
                hash: chain.hash(),
                time: UnixMillis(3),
                signature: [1; 64],
            })
        })
        .unwrap();
    assert!(matches!(refused, Some(Err(Error::Conflict(_)))));
    assert_eq!(store.audit_tail().unwrap(), Some((3, chain.hash())));
    let recs = store.audit_records(2, 10).unwrap();
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(recs[1].body, AuditBody::Open(event(3)));
    assert_eq!(store.audit_heads().unwrap().len(), 1);

    // The newest granted signature by a key, from the chain; refusals do not count.
    let k = KeyId::from_random([77; 16]);
    assert_eq!(store.last_signature(k).unwrap(), None);
    store
        .write(&mut |txn| {
            for (t, operation, outcome) in [
                (10, "key.sign", Outcome::Granted),
                (20, "key.sign", Outcome::Granted),
                (30, "key.sign", Outcome::Denied),
                (40, "key.show", Outcome::Granted),
            ] {
                txn.append_audit(&chain.append(AuditEvent {
                    time: UnixMillis(t),
                    operation: operation.into(),
                    key: Some(k.to_string()),
                    outcome,
                    ..event(t)
                }))?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(store.last_signature(k).unwrap(), Some(UnixMillis(20)));

    // Policies: versions follow one another; a change over a stale version is refused.
    let wallet = k1.id;
    let pol = |version: u32, text: &str| strongroom_core::record::PolicyRecord {
        wallet,
        version,
        policy: text.into(),
        set_at: UnixMillis(u64::from(version)),
    };
    assert_eq!(store.policy(wallet).unwrap(), None);
    apply(store, vec![Mutation::SetPolicy(pol(1, "first"))]).unwrap();
    assert!(matches!(
        apply(store, vec![Mutation::SetPolicy(pol(1, "again"))]),
        Err(Error::Conflict(_))
    ));
    apply(store, vec![Mutation::SetPolicy(pol(2, "second"))]).unwrap();
    assert!(matches!(
        apply(store, vec![Mutation::SetPolicy(pol(2, "stale"))]),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        apply(store, vec![Mutation::SetPolicy(pol(4, "skipped"))]),
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.policy(wallet).unwrap(), Some(pol(2, "second")));

    // Spends: counted per wallet and asset within the window; a limit is checked in the
    // transaction, against 256-bit big-endian sums.
    let be = |n: u64| {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&n.to_be_bytes());
        out
    };
    let hour = 3_600_000;
    let spend = |asset: &str, amount: u64, at: u64, limit: Option<u64>| Mutation::RecordSpend {
        wallet,
        asset: asset.into(),
        amount: be(amount),
        at: UnixMillis(at),
        since: UnixMillis(at.saturating_sub(24 * hour)),
        limit: limit.map(be),
    };
    let t0 = 100 * hour;
    apply(store, vec![spend("native", 60, t0, Some(100))]).unwrap();
    assert!(matches!(
        apply(store, vec![spend("native", 41, t0 + 1, Some(100))]),
        Err(Error::Conflict(_))
    ));
    apply(store, vec![spend("native", 40, t0 + hour, Some(100))]).unwrap();
    apply(store, vec![spend("0xtoken", 7, t0, None)]).unwrap();
    let since = UnixMillis(t0);
    assert_eq!(store.spent_since(wallet, "native", since).unwrap(), be(100));
    assert_eq!(store.spent_since(wallet, "0xtoken", since).unwrap(), be(7));
    assert_eq!(store.spent_since(k2.id, "native", since).unwrap(), be(0));
    // A day and an hour later the first hour has left the window.
    assert_eq!(
        store
            .spent_since(wallet, "native", UnixMillis(t0 + hour))
            .unwrap(),
        be(40)
    );
    apply(store, vec![spend("native", 60, t0 + 25 * hour, Some(100))]).unwrap();
    // Without a limit a spend is always counted, even past any limit.
    apply(store, vec![spend("native", u64::MAX, t0 + 25 * hour, None)]).unwrap();
    assert!(matches!(
        apply(
            store,
            vec![spend("native", 1, t0 + 25 * hour, Some(u64::MAX))]
        ),
        Err(Error::Conflict(_))
    ));

    // A duty's key must be hot as stored when its transaction runs.
    let va = domain(41, "validators-a");
    let vb = domain(42, "validators-b");
    apply(
        store,
        vec![
            Mutation::CreateDomain(va.clone()),
            Mutation::CreateDomain(vb.clone()),
        ],
    )
    .unwrap();
    let mut vk = key(43, &va);
    vk.temperature = Temperature::Hot;
    apply(store, vec![Mutation::CreateKey(vk.clone())]).unwrap();
    apply(store, vec![Mutation::RequireHotKey { key: vk.id }]).unwrap();
    apply(
        store,
        vec![Mutation::SetTemperature {
            id: vk.id,
            temperature: Temperature::Cold,
            since: UnixMillis(500),
            hot_idle_secs: None,
            mac: [44; 32],
            expected_mac: vk.temperature_mac,
        }],
    )
    .unwrap();
    for missing in [vk.id, KeyId::from_random([45; 16])] {
        assert!(matches!(
            apply(store, vec![Mutation::RequireHotKey { key: missing }]),
            Err(Error::Conflict(strongroom_core::slashing::KEY_NOT_HOT))
        ));
    }
    apply(store, vec![Mutation::RequireColdKey { key: vk.id }]).unwrap();
    assert!(matches!(
        apply(
            store,
            vec![Mutation::RequireColdKey {
                key: KeyId::from_random([45; 16])
            }]
        ),
        Err(Error::Conflict(strongroom_core::slashing::KEY_NOT_COLD))
    ));
    // A release is recorded once (the first), and listed for the key's domain only.
    for (at, how) in [(600, "keymanager.delete"), (700, "eth2.export_keystore")] {
        apply(
            store,
            vec![Mutation::Eth2Release {
                key: vk.id,
                at: UnixMillis(at),
                how,
            }],
        )
        .unwrap();
    }
    assert_eq!(
        store.eth2_released(va.id).unwrap(),
        vec![(vk.id, UnixMillis(600), "keymanager.delete".to_owned())]
    );
    assert_eq!(store.eth2_released(vb.id).unwrap(), vec![]);
    // A validator one domain began: another adds to its records only once it holds the key.
    let validator = strongroom_core::slashing::Validator {
        genesis_validators_root: [46; 32],
        pubkey: [47; 48],
    };
    apply(
        store,
        vec![Mutation::Eth2Duty(DutyRecord {
            domain: va.id,
            validator,
            duty: Duty::Attestation {
                source: 1,
                target: 2,
                signing_root: [48; 32],
            },
        })],
    )
    .unwrap();
    let history = |domain: DomainId| Mutation::Eth2Import {
        domain,
        interchange: strongroom_core::slashing::Interchange {
            genesis_validators_root: validator.genesis_validators_root,
            data: vec![strongroom_core::slashing::History {
                pubkey: validator.pubkey,
                blocks: vec![],
                attestations: vec![strongroom_core::slashing::SignedAttestation {
                    source: 3,
                    target: 4,
                    signing_root: None,
                }],
            }],
        },
    };
    assert!(matches!(
        apply(store, vec![history(vb.id)]),
        Err(Error::Conflict(strongroom_core::slashing::OTHER_DOMAIN))
    ));
    apply(
        store,
        vec![
            Mutation::Eth2Join {
                domain: vb.id,
                validator,
            },
            history(vb.id),
        ],
    )
    .unwrap();
    let exported = store.eth2_export(vb.id).unwrap().unwrap();
    assert_eq!(exported.data.len(), 1);
    assert_eq!(exported.data[0].attestations.len(), 2);
    // Joining checks the chain the domain is pinned to.
    assert!(matches!(
        apply(
            store,
            vec![Mutation::Eth2Join {
                domain: vb.id,
                validator: strongroom_core::slashing::Validator {
                    genesis_validators_root: [49; 32],
                    pubkey: [47; 48],
                },
            }],
        ),
        Err(Error::Conflict(strongroom_core::slashing::WRONG_CHAIN))
    ));

    rotation_and_rekey(store);

    // A batch that fails leaves nothing behind.
    let before = store.audit_tail().unwrap();
    let failed = store.write(&mut |txn| {
        let mut c = chain.clone();
        txn.append_audit(&c.append(event(4)))?;
        Err(Error::Entropy)
    });
    assert!(failed.is_err());
    assert_eq!(store.audit_tail().unwrap(), before);
}

/// Domain master key rotation (start by compare-and-swap, move blobs, finish only when no
/// live key — online or offline — is left under the retiring key) and the rekey that re-wraps
/// every live domain's keys, retiring ones included, or nothing.
fn rotation_and_rekey(store: &dyn Storage) {
    let r = domain(90, "rotating");
    let k1 = key(91, &r);
    let k2 = key(92, &r);
    let k3 = KeyRecord {
        sealed_secret: None,
        ..key(93, &r)
    };
    let k4 = KeyRecord {
        sealed_secret: None,
        destroyed_at: Some(UnixMillis(5)),
        ..key(94, &r)
    };
    let mut batch = vec![Mutation::CreateDomain(r.clone())];
    batch.extend([&k1, &k2, &k3, &k4].map(|k| Mutation::CreateKey((*k).clone())));
    apply(store, batch).unwrap();
    let rotate = |from: &[u8], to: u8| Mutation::RotateDomainKey {
        id: r.id,
        from_version: 1,
        from_wrapped: from.to_vec(),
        to_version: 2,
        to_wrapped: vec![to; 61],
    };
    assert!(matches!(
        apply(store, vec![rotate(&[0; 61], 7)]),
        Err(Error::Conflict(_))
    ));
    apply(store, vec![rotate(&r.wrapped_key, 7)]).unwrap();
    let now = store.domain(r.id).unwrap().unwrap();
    assert_eq!((now.key_version, now.wrapped_key.clone()), (2, vec![7; 61]));
    assert_eq!(
        now.retiring,
        Some(strongroom_core::record::RetiringKey {
            version: 1,
            wrapped_key: r.wrapped_key.clone()
        })
    );
    // One rotation at a time.
    assert!(matches!(
        apply(
            store,
            vec![Mutation::RotateDomainKey {
                id: r.id,
                from_version: 2,
                from_wrapped: vec![7; 61],
                to_version: 3,
                to_wrapped: vec![8; 61],
            }]
        ),
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.keys_under(r.id, 1).unwrap(), (2, 1));
    let ids = |v: Vec<KeyRecord>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(store.keys_to_rewrap(r.id, 1, 1).unwrap()), vec![k1.id]);
    assert_eq!(
        ids(store.keys_to_rewrap(r.id, 1, 10).unwrap()),
        vec![k1.id, k2.id]
    );
    let finish = Mutation::FinishDomainRotation {
        id: r.id,
        version: 1,
    };
    assert!(matches!(
        apply(store, vec![finish.clone()]),
        Err(Error::Conflict(_))
    ));
    let rewrap = |k: &KeyRecord, was: Vec<u8>, now: u8| Mutation::RewrapKeys {
        domain: r.id,
        from_version: 1,
        to_version: 2,
        keys: vec![(k.id, was, vec![now; 61])],
    };
    // A batch that meets a key changed since it was read moves nothing.
    assert!(matches!(
        apply(
            store,
            vec![
                rewrap(&k1, k1.sealed_secret.clone().unwrap(), 11),
                rewrap(&k2, vec![0; 61], 12),
            ],
        ),
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.key(k1.id).unwrap().unwrap(), k1);
    apply(
        store,
        vec![
            rewrap(&k1, k1.sealed_secret.clone().unwrap(), 11),
            rewrap(&k2, k2.sealed_secret.clone().unwrap(), 12),
        ],
    )
    .unwrap();
    let k1_now = store.key(k1.id).unwrap().unwrap();
    assert_eq!(
        (k1_now.domain_key_version, k1_now.sealed_secret),
        (2, Some(vec![11; 61]))
    );
    // New keys only under the current or retiring version.
    let late = |n: u8, v: u32| KeyRecord {
        domain_key_version: v,
        ..key(n, &r)
    };
    assert!(matches!(
        apply(store, vec![Mutation::CreateKey(late(95, 3))]),
        Err(Error::Conflict(_))
    ));
    apply(store, vec![Mutation::CreateKey(late(96, 1))]).unwrap();
    apply(
        store,
        vec![rewrap(&late(96, 1), late(96, 1).sealed_secret.unwrap(), 14)],
    )
    .unwrap();
    // The offline key still holds the retiring key.
    assert_eq!(store.keys_under(r.id, 1).unwrap(), (0, 1));
    assert!(matches!(
        apply(store, vec![finish.clone()]),
        Err(Error::Conflict(_))
    ));

    // A rekey now must re-wrap every live domain's current key and this retiring one.
    let seal = store.vault().unwrap().init.unwrap().seal_config;
    let live: Vec<DomainRecord> = store
        .domains()
        .unwrap()
        .into_iter()
        .filter(|d| d.destroyed_at.is_none())
        .collect();
    let wraps: Vec<_> = live
        .iter()
        .map(|d| (d.id, d.wrapped_key.clone(), vec![0xee; 61]))
        .collect();
    let retiring_wraps = vec![(r.id, r.wrapped_key.clone(), vec![0xdd; 61])];
    let rekey = |wraps: Vec<_>, retiring_wraps: Vec<_>| Mutation::Rekey {
        from: seal.clone(),
        to: vec![3, 3, 3],
        wraps,
        retiring_wraps,
    };
    for (w, rw) in [
        (wraps[1..].to_vec(), retiring_wraps.clone()),
        (wraps.clone(), vec![]),
    ] {
        assert!(matches!(
            apply(store, vec![rekey(w, rw)]),
            Err(Error::Conflict(_))
        ));
        assert_eq!(store.vault().unwrap().init.unwrap().seal_config, seal);
    }
    apply(store, vec![rekey(wraps, retiring_wraps)]).unwrap();
    let now = store.domain(r.id).unwrap().unwrap();
    assert_eq!(now.wrapped_key, vec![0xee; 61]);
    assert_eq!(now.retiring.unwrap().wrapped_key, vec![0xdd; 61]);
    apply(
        store,
        vec![Mutation::ChangeSeal {
            from: vec![3, 3, 3],
            to: seal,
        }],
    )
    .unwrap();

    // The offline key comes back (its blob under the retiring key), moves, and the rotation
    // ends: the retiring key is gone.
    apply(
        store,
        vec![Mutation::RestoreSecret {
            id: k3.id,
            sealed_secret: vec![93; 61],
        }],
    )
    .unwrap();
    assert_eq!(store.keys_under(r.id, 1).unwrap(), (1, 0));
    apply(store, vec![rewrap(&k3, vec![93; 61], 13)]).unwrap();
    apply(store, vec![finish]).unwrap();
    let done = store.domain(r.id).unwrap().unwrap();
    assert_eq!((done.key_version, done.retiring), (2, None));
    assert_eq!(store.keys_under(r.id, 2).unwrap(), (4, 0));
    // The erased version takes no new key.
    assert!(matches!(
        apply(store, vec![Mutation::CreateKey(late(97, 1))]),
        Err(Error::Conflict(_))
    ));
}

fn dump_of(store: &dyn Storage) -> strongroom_core::storage::Dump {
    let mut out = None;
    store
        .write(&mut |txn| {
            out = Some(txn.dump()?);
            Ok(())
        })
        .unwrap();
    out.unwrap()
}

fn restore_into(
    store: &dyn Storage,
    d: &strongroom_core::storage::Dump,
    seal: &[u8],
) -> Result<(), Error> {
    store.write(&mut |txn| txn.restore(d, seal))
}

/// A backup's rows: a vault filled by the whole contract on SQLite restores into an empty
/// PostgreSQL database and back, every row and the vault's identity as they were, with the new
/// seal; a store that is not empty, or a dump with other columns, is refused and left as it was.
#[test]
fn a_dump_restores_into_either_backend() {
    let dir = tempfile::tempdir().unwrap();
    let vault_id = VaultId::from_random([45; 16]);
    let sqlite =
        strongroom_storage::SqliteStore::create(&dir.path().join("a.db"), vault_id, UnixMillis(1))
            .unwrap();
    conformance(&sqlite, vault_id);
    let original = dump_of(&sqlite);
    let filled: Vec<(&str, usize)> = original
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.rows.len()))
        .collect();
    assert!(
        filled.iter().filter(|t| t.1 > 0).count() >= 16,
        "{filled:?}"
    );

    let server = pg::PgServer::start();
    let (pg, _) = strongroom_storage::PgStore::open(
        &server.another_database("restored"),
        || VaultId::from_random([46; 16]),
        UnixMillis(7),
    )
    .unwrap();
    pg.use_field_cipher(TestCipher::new()).unwrap();
    // A dump whose columns differ is refused, and nothing lands.
    let mut other = original.clone();
    other.tables[1].columns.pop();
    assert!(matches!(
        restore_into(&pg, &other, &[9, 9]),
        Err(Error::Corrupt(_))
    ));
    assert!(pg.vault().unwrap().init.is_none());
    restore_into(&pg, &original, &[9, 9]).unwrap();
    let restored = dump_of(&pg);
    assert_eq!(restored.tables, original.tables);
    assert_eq!(restored.vault.vault_id, vault_id);
    let (was, now) = (
        original.vault.init.clone().unwrap(),
        restored.vault.init.clone().unwrap(),
    );
    assert_eq!(now.seal_config, vec![9, 9]);
    assert_eq!(
        (now.root_check, now.audit_public_key, now.initialized_at),
        (was.root_check, was.audit_public_key, was.initialized_at)
    );
    // The chain reads back through the ordinary API.
    assert_eq!(pg.audit_tail().unwrap(), sqlite.audit_tail().unwrap());
    // Not twice: the store is no longer empty.
    assert!(matches!(
        restore_into(&pg, &original, &[9, 9]),
        Err(Error::Conflict(_))
    ));

    // And back into a fresh SQLite file.
    let back = strongroom_storage::SqliteStore::create(
        &dir.path().join("b.db"),
        VaultId::from_random([47; 16]),
        UnixMillis(8),
    )
    .unwrap();
    back.use_field_cipher(TestCipher::new()).unwrap();
    restore_into(&back, &restored, &[8]).unwrap();
    assert_eq!(dump_of(&back).tables, original.tables);
}

#[test]
fn sqlite_meets_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let vault_id = VaultId::from_random([42; 16]);
    let store =
        strongroom_storage::SqliteStore::create(&dir.path().join("v.db"), vault_id, UnixMillis(1))
            .unwrap();
    conformance(&store, vault_id);

    let path = dir.path().join("layered.db");
    let store = strongroom_storage::SqliteStore::create(&path, vault_id, UnixMillis(1)).unwrap();
    let dump = || {
        // The database file and its write-ahead log: everything SQLite has written.
        let mut all = std::fs::read(&path).unwrap();
        all.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        all
    };
    let exec = |sql: &str| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    };
    layered(
        &store,
        vault_id,
        &Raw {
            dump: &dump,
            exec: &exec,
        },
    );
}

#[path = "support/pg.rs"]
mod pg;

/// The same contract against a real PostgreSQL server, plus what only a shared database
/// has to get right: migrations that run once, a foreign database refused.
#[test]
fn postgres_meets_the_storage_contract() {
    let server = pg::PgServer::start();
    let vault_id = VaultId::from_random([43; 16]);
    let (store, fresh) =
        strongroom_storage::PgStore::open(&server.url, || vault_id, UnixMillis(1)).unwrap();
    assert!(fresh);
    conformance(&store, vault_id);
    // A second node opening the same database finds the vault, not a new one.
    let (again, fresh) = strongroom_storage::PgStore::open(
        &server.url,
        || VaultId::from_random([44; 16]),
        UnixMillis(2),
    )
    .unwrap();
    assert!(!fresh);
    assert_eq!(again.vault().unwrap().vault_id, vault_id);
    // Another node hears about changes that its caches must forget, once they commit.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    again
        .watch(Box::new(move |c| {
            let _ = tx.lock().unwrap().send(c);
        }))
        .unwrap();
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(rx.recv_timeout(wait).unwrap(), Change::Everything);
    let d = domain(60, "watched");
    let t = TokenRecord {
        id: TokenId::from_random([61; 16]),
        hash: [61; 32],
        kind: TokenKind::Application(d.id),
        created_at: UnixMillis(1),
        expires_at: None,
        revoked_at: None,
        mac: [61; 32],
    };
    apply(
        &store,
        vec![Mutation::CreateDomain(d), Mutation::CreateToken(t.clone())],
    )
    .unwrap();
    apply(
        &store,
        vec![Mutation::RevokeToken {
            id: t.id,
            at: UnixMillis(5),
            mac: [62; 32],
        }],
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(wait).unwrap(), Change::Token(t.id));
    // A refused batch notifies nothing.
    let failed = store.write(&mut |txn| {
        txn.apply(&[Mutation::RevokeToken {
            id: t.id,
            at: UnixMillis(6),
            mac: [63; 32],
        }])?;
        Err(Error::Entropy)
    });
    assert!(failed.is_err());
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err()
    );
    assert_eq!(
        server.psql(&server.url, "SELECT count(*) FROM strongroom_schema"),
        "1\n"
    );
    // A database with someone else's tables is never written to.
    let foreign = server.another_database("someone_else");
    server.psql(&foreign, "CREATE TABLE payroll (id int)");
    assert!(matches!(
        strongroom_storage::PgStore::open(&foreign, || vault_id, UnixMillis(1)),
        Err(strongroom_storage::Error::Corrupt(_))
    ));
    assert_eq!(
        server.psql(
            &foreign,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "1\n"
    );
    assert!(strongroom_storage::PgStore::open_existing(&foreign).is_err());

    let url = server.another_database("layered");
    let (store, _) = strongroom_storage::PgStore::open(&url, || vault_id, UnixMillis(1)).unwrap();
    let dump = || server.dump(&url).into_bytes();
    let exec = |sql: &str| {
        server.psql(&url, sql);
    };
    layered(
        &store,
        vault_id,
        &Raw {
            dump: &dump,
            exec: &exec,
        },
    );
}

/// The EIP-3076 interchange test suite (`tests/data/eip3076/`): for each case, a fresh store
/// pinned to the case's chain imports each step's interchange (which must succeed or fail as
/// `should_succeed` says), then checks and records each block and attestation, which must be
/// allowed or refused as `should_succeed_complete` says (the complete strategy). Returns the
/// number of cases run.
fn eip3076_suite(fresh: &mut dyn FnMut(&str) -> Box<dyn Storage>) -> usize {
    use strongroom_core::slashing::{Duty, DutyRecord, Interchange, Validator};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/eip3076");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let hex32 = |v: &serde_json::Value| -> [u8; 32] {
        hex::decode(&v.as_str().unwrap()[2..])
            .unwrap()
            .try_into()
            .unwrap()
    };
    let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<u64>().unwrap();
    let mut cases = 0;
    for path in files {
        let case: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let name = case["name"].as_str().unwrap();
        let store = fresh(name);
        store.use_field_cipher(TestCipher::new()).unwrap();
        let domain = DomainId::from_random([9; 16]);
        let gvr = hex32(&case["genesis_validators_root"]);
        apply(
            store.as_ref(),
            vec![Mutation::Eth2Import {
                domain,
                interchange: Interchange {
                    genesis_validators_root: gvr,
                    data: vec![],
                },
            }],
        )
        .unwrap();
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let imported = strongroom_chains::slashing::parse_interchange(
                step["interchange"].to_string().as_bytes(),
            )
            .map_err(|_| Error::Conflict("unparsable"))
            .and_then(|interchange| {
                apply(
                    store.as_ref(),
                    vec![Mutation::Eth2Import {
                        domain,
                        interchange,
                    }],
                )
            });
            assert_eq!(
                imported.is_ok(),
                step["should_succeed"].as_bool().unwrap(),
                "{name} step {i}: import {imported:?}"
            );
            let check = |pubkey: &serde_json::Value, duty: Duty| {
                let pubkey = hex::decode(&pubkey.as_str().unwrap()[2..]).unwrap();
                apply(
                    store.as_ref(),
                    vec![Mutation::Eth2Duty(DutyRecord {
                        domain,
                        validator: Validator {
                            genesis_validators_root: gvr,
                            pubkey: pubkey.try_into().unwrap(),
                        },
                        duty,
                    })],
                )
            };
            for b in step["blocks"].as_array().unwrap() {
                let r = check(
                    &b["pubkey"],
                    Duty::Block {
                        slot: num(&b["slot"]),
                        signing_root: hex32(&b["signing_root"]),
                    },
                );
                assert_eq!(
                    r.is_ok(),
                    b["should_succeed_complete"].as_bool().unwrap(),
                    "{name} step {i}: block {b} gave {r:?}"
                );
                if let Err(e) = r {
                    assert!(
                        matches!(e, Error::Conflict(c) if c == strongroom_core::slashing::SLASHABLE),
                        "{e:?}"
                    );
                }
            }
            for a in step["attestations"].as_array().unwrap() {
                let r = check(
                    &a["pubkey"],
                    Duty::Attestation {
                        source: num(&a["source_epoch"]),
                        target: num(&a["target_epoch"]),
                        signing_root: hex32(&a["signing_root"]),
                    },
                );
                assert_eq!(
                    r.is_ok(),
                    a["should_succeed_complete"].as_bool().unwrap(),
                    "{name} step {i}: attestation {a} gave {r:?}"
                );
            }
        }
        // What was recorded exports as an interchange that parses back.
        if let Some(ic) = store.eth2_export(domain).unwrap() {
            let text = strongroom_chains::slashing::interchange_json(&ic).to_string();
            assert_eq!(
                strongroom_chains::slashing::parse_interchange(text.as_bytes()).unwrap(),
                ic
            );
        }
        cases += 1;
    }
    cases
}

#[test]
fn sqlite_passes_the_eip3076_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let cases = eip3076_suite(&mut |_| {
        n += 1;
        Box::new(
            strongroom_storage::SqliteStore::create(
                &dir.path().join(format!("{n}.db")),
                VaultId::from_random([n; 16]),
                UnixMillis(1),
            )
            .unwrap(),
        )
    });
    assert_eq!(cases, 38);
}

#[test]
fn postgres_passes_the_eip3076_suite() {
    let server = pg::PgServer::start();
    let mut n = 0u8;
    let cases = eip3076_suite(&mut |_| {
        n += 1;
        let url = server.another_database(&format!("eip3076_{n}"));
        let (store, _) = strongroom_storage::PgStore::open(
            &url,
            || VaultId::from_random([n; 16]),
            UnixMillis(1),
        )
        .unwrap();
        Box::new(store)
    });
    assert_eq!(cases, 38);
}
