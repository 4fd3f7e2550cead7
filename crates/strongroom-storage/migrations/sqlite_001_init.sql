-- strongroom SQLite schema, version 1. Secrets appear only as AEAD blobs, and private metadata (names,
-- labels, policies, request parameters, audit events) only sealed under the storage key, with
-- blind indexes for lookups (see docs/formats.md).
CREATE TABLE vault (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    vault_id         BLOB    NOT NULL CHECK (length(vault_id) = 16),
    created_at       INTEGER NOT NULL,
    seal_config      BLOB,
    root_check       BLOB,
    audit_public_key BLOB,
    initialized_at   INTEGER
);
CREATE TABLE domains (
    id          BLOB PRIMARY KEY CHECK (length(id) = 16),
    name_index  BLOB NOT NULL UNIQUE CHECK (length(name_index) = 32),
    name        BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    new_keys    BLOB NOT NULL,
    -- The algorithm policy, sealed like the name (never NULL: a NULL would let a database
    -- editor re-allow a disabled algorithm).
    algorithms  BLOB NOT NULL,
    destroyed_at INTEGER,
    -- The master key's version (rotation adds one), and during a rotation the previous one.
    key_version INTEGER NOT NULL DEFAULT 1 CHECK (key_version > 0),
    retiring_version INTEGER,
    retiring_key BLOB,
    CHECK ((retiring_version IS NULL) = (retiring_key IS NULL))
);
CREATE TABLE keys (
    id            BLOB PRIMARY KEY CHECK (length(id) = 16),
    domain_id     BLOB    NOT NULL REFERENCES domains (id),
    version       INTEGER NOT NULL,
    algorithm     TEXT    NOT NULL,
    label         BLOB    NOT NULL,
    public_key    BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    destroyed_at  INTEGER,
    sealed_secret BLOB,
    temperature   TEXT    NOT NULL,
    temperature_mac BLOB  NOT NULL CHECK (length(temperature_mac) = 32),
    temperature_since INTEGER NOT NULL,
    hot_idle_secs INTEGER CHECK (hot_idle_secs > 0),
    -- Which version of the domain master key seals sealed_secret.
    domain_key_version INTEGER NOT NULL DEFAULT 1,
    -- The key this one succeeds (key rotate).
    predecessor BLOB
);
CREATE INDEX keys_by_domain ON keys (domain_id, created_at);
CREATE TABLE operators (
    id                   BLOB PRIMARY KEY CHECK (length(id) = 16),
    name_index           BLOB    NOT NULL UNIQUE CHECK (length(name_index) = 32),
    name                 BLOB    NOT NULL,
    roles                INTEGER NOT NULL,
    domain_id            BLOB REFERENCES domains (id),
    password_hash        TEXT    NOT NULL,
    must_change_password INTEGER NOT NULL,
    totp_sealed          BLOB    NOT NULL,
    totp_last_step       INTEGER,
    failed_logins        INTEGER NOT NULL,
    locked_until         INTEGER,
    approval_key         BLOB,
    created_at           INTEGER NOT NULL,
    disabled_at          INTEGER,
    mac                  BLOB    NOT NULL CHECK (length(mac) = 32)
);
CREATE TABLE tokens (
    id          BLOB PRIMARY KEY CHECK (length(id) = 16),
    hash        BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    kind        TEXT NOT NULL,
    domain_id   BLOB REFERENCES domains (id),
    operator_id BLOB REFERENCES operators (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    mac        BLOB NOT NULL CHECK (length(mac) = 32)
);
CREATE TABLE pending (
    id                 BLOB PRIMARY KEY CHECK (length(id) = 16),
    op                 TEXT    NOT NULL,
    params             BLOB    NOT NULL,
    domain_id          BLOB,
    key_id             BLOB,
    requester          BLOB    NOT NULL,
    requester_operator BLOB,
    required           INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    nonce              BLOB    NOT NULL,
    hash               BLOB    NOT NULL CHECK (length(hash) = 32),
    status             TEXT    NOT NULL,
    result             BLOB,
    decided_at         INTEGER,
    mac                BLOB    NOT NULL CHECK (length(mac) = 32)
);
CREATE INDEX pending_by_status ON pending (status, created_at);
CREATE TABLE approvals (
    request_id  BLOB    NOT NULL REFERENCES pending (id),
    approver_id BLOB    NOT NULL REFERENCES operators (id),
    signature   BLOB    NOT NULL CHECK (length(signature) = 64),
    at          INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);
-- rule_index: blind index of (scope, operation); rule: the sealed rule (see docs/formats.md).
-- policy: the wallet's policy, sealed (row: wallet id || version).
CREATE TABLE policies (
    wallet_id BLOB    PRIMARY KEY CHECK (length(wallet_id) = 16),
    version   INTEGER  NOT NULL CHECK (version > 0),
    policy    BLOB    NOT NULL,
    set_at    INTEGER   NOT NULL
);
-- What a wallet spent of an asset per hour: asset_index is the blind index of (wallet, asset),
-- bucket the hour (Unix ms / 3 600 000), amount the sum, sealed (row: asset_index || bucket).
CREATE TABLE spends (
    asset_index BLOB   NOT NULL CHECK (length(asset_index) = 32),
    bucket      INTEGER NOT NULL,
    amount      BLOB   NOT NULL,
    PRIMARY KEY (asset_index, bucket)
);
-- Answers to requests made with an Idempotency-Key: key_index is the blind index of
-- (principal, key); response is sealed (row: key_index).
CREATE TABLE idempotency (
    key_index   BLOB   PRIMARY KEY CHECK (length(key_index) = 32),
    fingerprint BLOB   NOT NULL CHECK (length(fingerprint) = 32),
    response    BLOB   NOT NULL,
    created_at  INTEGER NOT NULL
);
-- Ethereum slashing protection (EIP-3076). A validator is a BLS public key on one chain:
-- validator_index is the blind index of (genesis validators root || pubkey); the public key
-- is sealed (row: validator_index); min_* are the lowest slot, source and target of imported
-- histories (signatures below them are refused). Slots and epochs are in the clear, for the
-- range checks.
CREATE TABLE eth2_validators (
    validator_index         BLOB PRIMARY KEY CHECK (length(validator_index) = 32),
    genesis_validators_root BLOB NOT NULL CHECK (length(genesis_validators_root) = 32),
    pubkey                  BLOB NOT NULL,
    min_slot                INTEGER,
    min_source              INTEGER,
    min_target              INTEGER
);
-- signing_root NULL: unknown (imported without one, or two imports disagreed): only a
-- refusal can follow at that slot or target.
CREATE TABLE eth2_blocks (
    validator_index BLOB NOT NULL CHECK (length(validator_index) = 32),
    slot            INTEGER NOT NULL CHECK (slot >= 0),
    signing_root    BLOB CHECK (length(signing_root) = 32),
    PRIMARY KEY (validator_index, slot)
);
CREATE TABLE eth2_attestations (
    validator_index BLOB NOT NULL CHECK (length(validator_index) = 32),
    source_epoch    INTEGER NOT NULL CHECK (source_epoch >= 0),
    target_epoch    INTEGER NOT NULL CHECK (target_epoch >= 0),
    signing_root    BLOB CHECK (length(signing_root) = 32),
    PRIMARY KEY (validator_index, target_epoch, source_epoch)
);
-- Which domains a validator's records belong to: the domain that first recorded it, and every
-- domain that signed for it since (exports are by membership; imports only into members).
CREATE TABLE eth2_memberships (
    domain_id       BLOB NOT NULL CHECK (length(domain_id) = 16),
    validator_index BLOB NOT NULL CHECK (length(validator_index) = 32),
    PRIMARY KEY (domain_id, validator_index)
);
-- Voluntary exits authorised by a quorum: (validator key, exit epoch).
CREATE TABLE eth2_exits (
    key_id BLOB NOT NULL CHECK (length(key_id) = 16),
    epoch  INTEGER NOT NULL CHECK (epoch >= 0),
    PRIMARY KEY (key_id, epoch)
);
-- Validator keys released to another signer (a Keymanager API delete, an EIP-2335 export):
-- batch promotion passes them over.
CREATE TABLE eth2_released (
    key_id      BLOB PRIMARY KEY CHECK (length(key_id) = 16),
    released_at INTEGER NOT NULL,
    how         TEXT NOT NULL
);
-- The chain each domain's validators sign for, pinned by its first import or signature.
CREATE TABLE eth2_domains (
    domain_id               BLOB PRIMARY KEY CHECK (length(domain_id) = 16),
    genesis_validators_root BLOB NOT NULL CHECK (length(genesis_validators_root) = 32)
);
CREATE TABLE quorum_rules (
    rule_index BLOB PRIMARY KEY CHECK (length(rule_index) = 32),
    rule       BLOB NOT NULL
);
-- event: the canonical event bytes, sealed under the storage key unless `sealed` is 0
-- (records written while the vault was sealed). digest: what the chain commits to.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    prev_hash  BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB NOT NULL CHECK (length(hash) = 32),
    time       INTEGER NOT NULL,
    digest     BLOB NOT NULL CHECK (length(digest) = 32),
    sealed     INTEGER NOT NULL CHECK (sealed IN (0, 1)),
    event      BLOB NOT NULL,
    sign_index BLOB CHECK (length(sign_index) = 32)
);
-- When each key last signed (idle demotion of hot keys), without scanning the chain:
-- sign_index is the blind index of the key id on granted key.sign records.
CREATE INDEX audit_signatures ON audit (sign_index, seq) WHERE sign_index IS NOT NULL;
CREATE TABLE audit_heads (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB    NOT NULL,
    time      INTEGER NOT NULL,
    signature BLOB    NOT NULL
);
