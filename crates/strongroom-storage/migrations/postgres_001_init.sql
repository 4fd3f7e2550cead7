-- strongroom PostgreSQL schema, version 1 (the same tables as sqlite_001_init.sql, in PostgreSQL types). Secrets appear only as AEAD blobs, and private metadata (names,
-- labels, policies, request parameters, audit events) only sealed under the storage key, with
-- blind indexes for lookups (see docs/formats.md).
CREATE TABLE vault (
    id               BIGINT PRIMARY KEY CHECK (id = 1),
    vault_id         BYTEA    NOT NULL CHECK (octet_length(vault_id) = 16),
    created_at       BIGINT NOT NULL,
    seal_config      BYTEA,
    root_check       BYTEA,
    audit_public_key BYTEA,
    initialized_at   BIGINT
);
CREATE TABLE domains (
    id          BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    name_index  BYTEA NOT NULL UNIQUE CHECK (octet_length(name_index) = 32),
    name        BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    new_keys    BYTEA NOT NULL,
    -- The algorithm policy, sealed like the name (never NULL: a NULL would let a database
    -- editor re-allow a disabled algorithm).
    algorithms  BYTEA NOT NULL,
    destroyed_at BIGINT,
    -- The master key's version (rotation adds one), and during a rotation the previous one.
    key_version BIGINT NOT NULL DEFAULT 1 CHECK (key_version > 0),
    retiring_version BIGINT,
    retiring_key BYTEA,
    CHECK ((retiring_version IS NULL) = (retiring_key IS NULL))
);
CREATE TABLE keys (
    id            BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    domain_id     BYTEA    NOT NULL REFERENCES domains (id),
    version       BIGINT NOT NULL,
    algorithm     TEXT    NOT NULL,
    label         BYTEA    NOT NULL,
    public_key    BYTEA    NOT NULL,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT,
    sealed_secret BYTEA,
    temperature   TEXT    NOT NULL,
    temperature_mac BYTEA  NOT NULL CHECK (octet_length(temperature_mac) = 32),
    temperature_since BIGINT NOT NULL,
    hot_idle_secs BIGINT CHECK (hot_idle_secs > 0),
    -- Which version of the domain master key seals sealed_secret.
    domain_key_version BIGINT NOT NULL DEFAULT 1,
    -- The key this one succeeds (key rotate).
    predecessor BYTEA
);
CREATE INDEX keys_by_domain ON keys (domain_id, created_at);
CREATE TABLE operators (
    id                   BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    name_index           BYTEA    NOT NULL UNIQUE CHECK (octet_length(name_index) = 32),
    name                 BYTEA    NOT NULL,
    roles                BIGINT NOT NULL,
    domain_id            BYTEA REFERENCES domains (id),
    password_hash        TEXT    NOT NULL,
    must_change_password BIGINT NOT NULL,
    totp_sealed          BYTEA    NOT NULL,
    totp_last_step       BIGINT,
    failed_logins        BIGINT NOT NULL,
    locked_until         BIGINT,
    approval_key         BYTEA,
    created_at           BIGINT NOT NULL,
    disabled_at          BIGINT,
    mac                  BYTEA    NOT NULL CHECK (octet_length(mac) = 32)
);
CREATE TABLE tokens (
    id          BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    hash        BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    kind        TEXT NOT NULL,
    domain_id   BYTEA REFERENCES domains (id),
    operator_id BYTEA REFERENCES operators (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    mac        BYTEA NOT NULL CHECK (octet_length(mac) = 32)
);
CREATE TABLE pending (
    id                 BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    op                 TEXT    NOT NULL,
    params             BYTEA    NOT NULL,
    domain_id          BYTEA,
    key_id             BYTEA,
    requester          BYTEA    NOT NULL,
    requester_operator BYTEA,
    required           BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    nonce              BYTEA    NOT NULL,
    hash               BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
    status             TEXT    NOT NULL,
    result             BYTEA,
    decided_at         BIGINT,
    mac                BYTEA    NOT NULL CHECK (octet_length(mac) = 32)
);
CREATE INDEX pending_by_status ON pending (status, created_at);
CREATE TABLE approvals (
    request_id  BYTEA    NOT NULL REFERENCES pending (id),
    approver_id BYTEA    NOT NULL REFERENCES operators (id),
    signature   BYTEA    NOT NULL CHECK (octet_length(signature) = 64),
    at          BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);
-- rule_index: blind index of (scope, operation); rule: the sealed rule (see docs/formats.md).
-- policy: the wallet's policy, sealed (row: wallet id || version).
CREATE TABLE policies (
    wallet_id BYTEA    PRIMARY KEY CHECK (octet_length(wallet_id) = 16),
    version   BIGINT   NOT NULL CHECK (version > 0),
    policy    BYTEA    NOT NULL,
    set_at    BIGINT   NOT NULL
);
-- What a wallet spent of an asset per hour: asset_index is the blind index of (wallet, asset),
-- bucket the hour (Unix ms / 3 600 000), amount the sum, sealed (row: asset_index || bucket).
CREATE TABLE spends (
    asset_index BYTEA   NOT NULL CHECK (octet_length(asset_index) = 32),
    bucket      BIGINT NOT NULL,
    amount      BYTEA   NOT NULL,
    PRIMARY KEY (asset_index, bucket)
);
-- Answers to requests made with an Idempotency-Key: key_index is the blind index of
-- (principal, key); response is sealed (row: key_index).
CREATE TABLE idempotency (
    key_index   BYTEA   PRIMARY KEY CHECK (octet_length(key_index) = 32),
    fingerprint BYTEA   NOT NULL CHECK (octet_length(fingerprint) = 32),
    response    BYTEA   NOT NULL,
    created_at  BIGINT NOT NULL
);
-- Ethereum slashing protection (EIP-3076). A validator is a BLS public key on one chain:
-- validator_index is the blind index of (genesis validators root || pubkey); the public key
-- is sealed (row: validator_index); min_* are the lowest slot, source and target of imported
-- histories (signatures below them are refused). Slots and epochs are in the clear, for the
-- range checks.
CREATE TABLE eth2_validators (
    validator_index         BYTEA PRIMARY KEY CHECK (octet_length(validator_index) = 32),
    genesis_validators_root BYTEA NOT NULL CHECK (octet_length(genesis_validators_root) = 32),
    pubkey                  BYTEA NOT NULL,
    min_slot                BIGINT,
    min_source              BIGINT,
    min_target              BIGINT
);
-- signing_root NULL: unknown (imported without one, or two imports disagreed): only a
-- refusal can follow at that slot or target.
CREATE TABLE eth2_blocks (
    validator_index BYTEA NOT NULL CHECK (octet_length(validator_index) = 32),
    slot            BIGINT NOT NULL CHECK (slot >= 0),
    signing_root    BYTEA CHECK (octet_length(signing_root) = 32),
    PRIMARY KEY (validator_index, slot)
);
CREATE TABLE eth2_attestations (
    validator_index BYTEA NOT NULL CHECK (octet_length(validator_index) = 32),
    source_epoch    BIGINT NOT NULL CHECK (source_epoch >= 0),
    target_epoch    BIGINT NOT NULL CHECK (target_epoch >= 0),
    signing_root    BYTEA CHECK (octet_length(signing_root) = 32),
    PRIMARY KEY (validator_index, target_epoch, source_epoch)
);
-- Which domains a validator's records belong to: the domain that first recorded it, and every
-- domain that signed for it since (exports are by membership; imports only into members).
CREATE TABLE eth2_memberships (
    domain_id       BYTEA NOT NULL CHECK (octet_length(domain_id) = 16),
    validator_index BYTEA NOT NULL CHECK (octet_length(validator_index) = 32),
    PRIMARY KEY (domain_id, validator_index)
);
-- Voluntary exits authorised by a quorum: (validator key, exit epoch).
CREATE TABLE eth2_exits (
    key_id BYTEA NOT NULL CHECK (octet_length(key_id) = 16),
    epoch  BIGINT NOT NULL CHECK (epoch >= 0),
    PRIMARY KEY (key_id, epoch)
);
-- Validator keys released to another signer (a Keymanager API delete, an EIP-2335 export):
-- batch promotion passes them over.
CREATE TABLE eth2_released (
    key_id      BYTEA PRIMARY KEY CHECK (octet_length(key_id) = 16),
    released_at BIGINT NOT NULL,
    how         TEXT NOT NULL
);
-- The chain each domain's validators sign for, pinned by its first import or signature.
CREATE TABLE eth2_domains (
    domain_id               BYTEA PRIMARY KEY CHECK (octet_length(domain_id) = 16),
    genesis_validators_root BYTEA NOT NULL CHECK (octet_length(genesis_validators_root) = 32)
);
CREATE TABLE quorum_rules (
    rule_index BYTEA PRIMARY KEY CHECK (octet_length(rule_index) = 32),
    rule       BYTEA NOT NULL
);
-- event: the canonical event bytes, sealed under the storage key unless `sealed` is 0
-- (records written while the vault was sealed). digest: what the chain commits to.
CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY,
    prev_hash  BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    time       BIGINT NOT NULL,
    digest     BYTEA NOT NULL CHECK (octet_length(digest) = 32),
    sealed     BIGINT NOT NULL CHECK (sealed IN (0, 1)),
    event      BYTEA NOT NULL,
    sign_index BYTEA CHECK (octet_length(sign_index) = 32)
);
-- When each key last signed (idle demotion of hot keys), without scanning the chain:
-- sign_index is the blind index of the key id on granted key.sign records.
CREATE INDEX audit_signatures ON audit (sign_index, seq) WHERE sign_index IS NOT NULL;
CREATE TABLE audit_heads (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA    NOT NULL,
    time      BIGINT NOT NULL,
    signature BYTEA    NOT NULL
);
