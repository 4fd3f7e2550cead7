//! The OpenAPI 3.1 document served at `/v1/openapi.json`, built from the route table so that
//! every route is listed.

use serde_json::{Map, Value, json};

use strongroom_core::quorum::GatedOp;

use crate::http::ROUTES;

fn request_schema(operation: &str) -> Option<Value> {
    Some(match operation {
        "operator.init" => {
            json!({"type": "object", "required": ["shares", "threshold"], "additionalProperties": false,
            "properties": {"shares": {"type": "integer", "minimum": 1, "maximum": 255},
                           "threshold": {"type": "integer", "minimum": 1, "maximum": 255},
                           "custodian_keys": {"type": "array", "items": {"type": "string"},
                               "description": "one age X25519 recipient (age1...) per share; shares come back encrypted"}}})
        }
        "operator.unseal" => {
            json!({"type": "object", "required": ["share"], "additionalProperties": false,
            "properties": {"share": {"type": "string", "description": "one share string (srs1-...)"}}})
        }
        "operator.rekey_start" => {
            json!({"type": "object", "required": ["shares", "threshold"], "additionalProperties": false,
            "properties": {"shares": {"type": "integer", "minimum": 1, "maximum": 255,
                               "description": "the new share count"},
                           "threshold": {"type": "integer", "minimum": 1, "maximum": 255},
                           "custodian_keys": {"type": "array", "items": {"type": "string"},
                               "description": "one age X25519 recipient (age1...) per new share; the new shares come back encrypted"}}})
        }
        "backup.create" => {
            json!({"type": "object", "additionalProperties": false,
            "properties": {"shares": {"type": "integer", "minimum": 1, "maximum": 255,
                               "description": "backup shares to make (separate from the unseal shares)"},
                           "threshold": {"type": "integer", "minimum": 1, "maximum": 255},
                           "custodian_keys": {"type": "array", "items": {"type": "string"},
                               "description": "one age X25519 recipient per backup share"},
                           "request": {"type": "string", "description": "collect this approved backup request instead"}}})
        }
        "operator.rekey_share" => {
            json!({"type": "object", "required": ["nonce", "share"], "additionalProperties": false,
            "properties": {"nonce": {"type": "string", "description": "the rekey's nonce (GET /v1/sys/rekey)"},
                           "share": {"type": "string", "description": "a current share while authorising, a new one while verifying"}}})
        }
        "domain.create" => {
            json!({"type": "object", "required": ["name"], "additionalProperties": false,
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
                           "new_keys": {"type": "string", "enum": ["cold", "warm", "hot"]}}})
        }
        "domain.algorithms" => {
            json!({"type": "object", "required": ["set"], "additionalProperties": false,
            "properties": {"set": {"type": "object", "description": "algorithm name -> state",
                "additionalProperties": {"type": "string", "enum": ["allowed", "deprecated", "disabled"]}}}})
        }
        "key.temperature" => {
            json!({"type": "object", "required": ["temperature"], "additionalProperties": false,
            "properties": {"temperature": {"type": "string", "enum": ["cold", "warm", "hot"]},
                           "idle_seconds": {"type": "integer", "minimum": 60, "maximum": 2_592_000,
                               "description": "hot only: demote to warm after this long without a signature"}}})
        }
        "token.create" => json!({"type": "object", "additionalProperties": false,
            "properties": {"domain": {"type": "string"}, "ttl_seconds": {"type": "integer", "minimum": 0},
                           "scope": {"type": "string", "enum": ["sign", "keymanager"],
                                     "description": "sign (default): an application token; keymanager: the Keymanager API only"}}}),
        "config.verify" => json!({"type": "object", "required": ["config_sha256", "signatures"],
            "additionalProperties": false,
            "properties": {"config_sha256": {"type": "string", "description": "SHA-256 of the configuration file, hex"},
                           "signatures": {"type": "object", "description": "the FILE.sig document (docs/formats.md)"}}}),
        "operator.tamper" => json!({"type": "object", "additionalProperties": false,
            "properties": {"reason": {"type": "string", "description": "recorded in the audit log"}}}),
        "eth2.export_keystore" => {
            json!({"type": "object", "required": ["password"], "additionalProperties": false,
            "description": "key (files a key.export request) or request (collects the approved keystore)",
            "properties": {"key": {"type": "string"}, "request": {"type": "string"},
                           "password": {"type": "string", "minLength": 8},
                           "kdf": {"type": "string", "enum": ["scrypt", "pbkdf2"]}}})
        }
        "keymanager.import" => {
            json!({"type": "object", "required": ["keystores", "passwords"], "additionalProperties": false,
            "properties": {"keystores": {"type": "array", "maxItems": 256, "items": {"type": "string", "description": "an EIP-2335 keystore, JSON-encoded"}},
                           "passwords": {"type": "array", "items": {"type": "string"}},
                           "slashing_protection": {"type": "string", "description": "an EIP-3076 interchange, JSON-encoded"}}})
        }
        "keymanager.delete" => {
            json!({"type": "object", "required": ["pubkeys"], "additionalProperties": false,
            "properties": {"pubkeys": {"type": "array", "maxItems": 10000, "items": {"type": "string", "pattern": "^0x[0-9a-fA-F]{96}$"}}}})
        }
        "key.create" => {
            json!({"type": "object", "required": ["algorithm"], "additionalProperties": false,
            "properties": {"domain": {"type": "string"},
                           "algorithm": {"type": "string", "enum": ["secp256k1", "ed25519", "p256"]},
                           "label": {"type": "string", "maxLength": 256}}})
        }
        "wallet.create" => {
            json!({"type": "object", "required": ["chain"], "additionalProperties": false,
            "properties": {"domain": {"type": "string"},
                           "chain": {"type": "string", "enum": ["bitcoin", "ethereum", "eos"]},
                           "network": {"type": "string", "enum": ["bitcoin", "testnet", "signet", "regtest"], "description": "bitcoin only (default bitcoin)"},
                           "address_type": {"type": "string", "enum": ["p2wpkh", "p2tr"], "description": "bitcoin only (default p2wpkh: BIP-84; p2tr: BIP-86)"},
                           "chain_id": {"type": "integer", "minimum": 1, "description": "ethereum only (default 1), pinned to the wallet"},
                           "eos_chain_id": {"type": "string", "description": "eos only: 32 bytes hex (default EOS mainnet), pinned to the wallet"},
                           "label": {"type": "string", "maxLength": 256},
                           "mnemonic": {"type": "string", "description": "a BIP-39 English mnemonic to import (else fresh entropy)"},
                           "passphrase": {"type": "string", "description": "the BIP-39 passphrase of an imported mnemonic"}}})
        }
        "eth.sign_tx" => {
            json!({"type": "object", "required": ["tx"], "additionalProperties": false,
            "properties": {"index": {"type": "integer", "minimum": 0, "description": "address index m/44'/60'/0'/0/i (default 0)"},
                           "tx": {"type": "object", "description": "Ethereum JSON-RPC transaction object: type, chainId, nonce, to, from, value, gas, gasPrice | maxFeePerGas + maxPriorityFeePerGas, data, accessList (hex quantities)"}}})
        }
        "eth.erc20_transfer" => {
            json!({"type": "object", "required": ["token", "to", "amount", "nonce", "gas", "max_fee_per_gas", "max_priority_fee_per_gas"], "additionalProperties": false,
            "properties": {"index": {"type": "integer", "minimum": 0}, "token": {"type": "string"}, "to": {"type": "string"},
                           "amount": {"type": "string", "description": "base units, decimal"},
                           "nonce": {"type": "integer"}, "gas": {"type": "integer"},
                           "max_fee_per_gas": {"type": "string", "description": "wei, decimal"},
                           "max_priority_fee_per_gas": {"type": "string", "description": "wei, decimal"}}})
        }
        "btc.sign_psbt" => {
            json!({"type": "object", "required": ["psbt"], "additionalProperties": false,
            "properties": {"psbt": {"type": "string", "description": "BIP-174 PSBT, base64 (at most 46 KiB decoded)"}}})
        }
        "eos.sign" => {
            json!({"type": "object", "required": ["chain_id", "tx"], "additionalProperties": false,
            "properties": {"index": {"type": "integer", "minimum": 0},
                           "chain_id": {"type": "string", "description": "32 bytes, hex"},
                           "tx": {"type": "string", "description": "the packed transaction, hex"},
                           "context_free_data": {"type": "string", "description": "packed context-free data, hex"}}})
        }
        "eth.sign_typed_data" => {
            json!({"type": "object", "required": ["data"], "additionalProperties": false,
            "properties": {"index": {"type": "integer", "minimum": 0},
                           "data": {"type": "object", "description": "eth_signTypedData_v4 JSON: types, primaryType, domain, message"}}})
        }
        "eth.sign_message" => {
            json!({"type": "object", "additionalProperties": false,
            "properties": {"index": {"type": "integer", "minimum": 0}, "message": {"type": "string", "description": "UTF-8 text"},
                           "message_hex": {"type": "string", "description": "or bytes, hex"}}})
        }
        "eth2.slashing_import" => {
            json!({"type": "object", "required": ["metadata", "data"],
                   "description": "an EIP-3076 interchange (format version 5)"})
        }
        "eth2.import" => {
            json!({"type": "object", "required": ["password", "keystores"], "additionalProperties": false,
            "properties": {"domain": {"type": "string"}, "password": {"type": "string"},
                           "keystores": {"type": "array", "maxItems": 64, "description": "[name, EIP-2335 keystore] pairs",
                                         "items": {"type": "array", "minItems": 2, "maxItems": 2}}}})
        }
        "eth2.promote" => {
            json!({"type": "object", "required": ["to"], "additionalProperties": false,
            "properties": {"domain": {"type": "string"}, "to": {"type": "string", "enum": ["warm", "hot"]},
                           "idle_seconds": {"type": "integer", "minimum": 1}}})
        }
        "eth2.authorize_exit" => {
            json!({"type": "object", "required": ["epoch"], "additionalProperties": false,
            "properties": {"epoch": {"type": "integer", "minimum": 0}}})
        }
        "eth2.derive" => {
            json!({"type": "object", "required": ["mnemonic", "count"], "additionalProperties": false,
            "properties": {"domain": {"type": "string"}, "mnemonic": {"type": "string", "description": "BIP-39 words"},
                           "passphrase": {"type": "string"}, "start": {"type": "integer", "minimum": 0},
                           "count": {"type": "integer", "minimum": 1, "maximum": 10000}}})
        }
        "key.policy_set" => {
            json!({"type": "object", "required": ["version"], "additionalProperties": false,
            "description": "a plain key's policy (README: Policies of plain keys)",
            "properties": {"version": {"const": 1},
                           "tokens": {"type": "array", "items": {"type": "string"}, "description": "application token ids that may sign; absent: any of the key's domain"},
                           "max_per_hour": {"type": "integer", "minimum": 1},
                           "max_per_day": {"type": "integer", "minimum": 1}}})
        }
        "policy.set" => {
            json!({"type": "object", "required": ["version", "rules"], "description": "a policy document (README: Policies)",
            "properties": {"version": {"const": 1}, "cooling_off": {"type": "string", "description": "e.g. 24h: new list entries wait this long"},
                           "lists": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                           "deny": {"type": "array", "items": {"type": "string"}},
                           "hours": {"type": "object", "properties": {"days": {"type": "array", "items": {"type": "string"}}, "from": {"type": "string"}, "to": {"type": "string"}}},
                           "rules": {"type": "array", "items": {"type": "object", "required": ["name", "effect", "call"]}}}})
        }
        "policy.test" => {
            json!({"type": "object", "required": ["tx"], "additionalProperties": false,
            "properties": {"tx": {"type": "object", "description": "as for eth.sign_tx"}}})
        }
        "operator.create" => {
            json!({"type": "object", "required": ["name", "roles"], "additionalProperties": false,
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9._-]{1,64}$"},
                           "roles": {"type": "array", "items": {"type": "string",
                               "enum": ["security-officer", "custodian", "approver", "auditor"]}},
                           "domain": {"type": "string"}}})
        }
        "key.export" => {
            json!({"type": "object", "required": ["custodian_keys", "threshold"], "additionalProperties": false,
            "properties": {"custodian_keys": {"type": "array", "items": {"type": "string"}, "description": "age X25519 recipients (age1...), one per share"},
                           "threshold": {"type": "integer", "minimum": 1, "maximum": 255},
                           "remove": {"type": "boolean", "description": "take the key offline in the same step"}}})
        }
        "key.import" => {
            json!({"type": "object", "required": ["bundle", "shares"], "additionalProperties": false,
            "properties": {"bundle": {"type": "object", "description": "the bundle file (format strongroom-cold-bundle-v1)"},
                           "shares": {"type": "array", "items": {"type": "string"}, "description": "decrypted bundle shares (srs1-...)"}}})
        }
        "operator.roles" => {
            json!({"type": "object", "required": ["roles"], "additionalProperties": false,
            "properties": {"roles": {"type": "array", "items": {"type": "string",
                               "enum": ["security-officer", "custodian", "approver", "auditor"]}},
                           "domain": {"type": "string", "description": "confine to this domain; omit for all domains"}}})
        }
        "operator.login" => {
            json!({"type": "object", "required": ["name", "password", "totp"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "password": {"type": "string"},
                           "totp": {"type": "string", "pattern": "^[0-9]{6,8}$"},
                           "new_password": {"type": "string", "minLength": 12}}})
        }
        "operator.register_key" => {
            json!({"type": "object", "required": ["public_key"], "additionalProperties": false,
            "properties": {"public_key": {"$ref": "#/components/schemas/Hex"}}})
        }
        "request.approve" => {
            json!({"type": "object", "required": ["signature"], "additionalProperties": false,
            "properties": {"signature": {"$ref": "#/components/schemas/Hex"}}})
        }
        "quorum.set" => {
            json!({"type": "object", "required": ["operation", "approvals"], "additionalProperties": false,
            "properties": {"operation": {"type": "string", "enum": GatedOp::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>()},
                           "approvals": {"type": "integer", "minimum": 1, "maximum": 16},
                           "domain": {"type": "string"}}})
        }
        "key.sign" => json!({"type": "object", "additionalProperties": false,
            "description": "exactly one of digest (ECDSA keys: 32 bytes) or message (Ed25519 keys)",
            "properties": {"digest": {"$ref": "#/components/schemas/Hex"},
                           "message": {"$ref": "#/components/schemas/Hex"}}}),
        _ => return None,
    })
}

fn response_schema(operation: &str) -> Value {
    match operation {
        "key.create" | "key.show" | "key.destroy" => json!({"$ref": "#/components/schemas/Key"}),
        "key.list" => json!({"type": "array", "items": {"$ref": "#/components/schemas/Key"}}),
        "wallet.create" | "wallet.show" => json!({"$ref": "#/components/schemas/Wallet"}),
        "eth.sign_tx" | "eth.erc20_transfer" => {
            json!({"type": "object", "required": ["raw", "hash", "from", "intent"], "properties": {
            "wallet": {"type": "string"}, "from": {"type": "string"},
            "raw": {"type": "string", "description": "the signed transaction, 0x hex"},
            "hash": {"type": "string", "description": "its hash, 0x hex"},
            "intent": {"type": "object", "description": "what it does, as decoded by the vault"}}})
        }
        "eth.sign_message" => {
            json!({"type": "object", "required": ["signature", "from"], "properties": {
            "wallet": {"type": "string"}, "from": {"type": "string"},
            "signature": {"type": "string", "description": "r || s || v (27/28), 0x hex"}}})
        }
        "wallet.list" => json!({"type": "array", "items": {"$ref": "#/components/schemas/Wallet"}}),
        "wallet.address" => {
            json!({"type": "object", "required": ["address", "path", "public_key"], "properties": {
            "wallet": {"type": "string"}, "address": {"type": "string", "description": "bech32/bech32m, EIP-55 or EOS..."},
            "address_k1": {"type": "string", "description": "EOS only: PUB_K1_..."},
            "index": {"type": "integer"}, "change": {"type": "boolean"}, "path": {"type": "string"},
            "public_key": {"type": "string", "description": "compressed secp256k1, hex"}}})
        }
        "wallet.xpub" => {
            json!({"type": "object", "required": ["xpub", "master_fingerprint", "path"], "properties": {
            "wallet": {"type": "string"}, "xpub": {"type": "string"}, "master_fingerprint": {"type": "string"},
            "path": {"type": "string"}}})
        }
        "domain.create" | "domain.destroy" | "domain.algorithms" => {
            json!({"$ref": "#/components/schemas/Domain"})
        }
        "domain.list" => json!({"type": "array", "items": {"$ref": "#/components/schemas/Domain"}}),
        "domain.show" | "domain.rotate" => {
            json!({"allOf": [{"$ref": "#/components/schemas/Domain"},
            {"type": "object", "properties": {
                "key_version": {"type": "integer", "description": "the master key version new blobs are sealed under"},
                "rotation": {"type": "object", "description": "while a rotation runs", "properties": {
                    "from_version": {"type": "integer"}, "to_version": {"type": "integer"},
                    "remaining": {"type": "integer", "description": "online keys still under the retiring version"},
                    "offline": {"type": "integer", "description": "keys in export bundles under it: the rotation ends once each is imported or destroyed"}}}}}]})
        }
        "status" | "operator.unseal" | "operator.seal" => {
            json!({"$ref": "#/components/schemas/Status"})
        }
        "key.sign" => {
            json!({"type": "object", "required": ["key_id", "algorithm", "signature"], "properties": {
            "key_id": {"type": "string"}, "algorithm": {"type": "string"},
            "signature": {"type": "string", "description": "64-byte r||s (low-S) or Ed25519 R||S, lowercase hex"},
            "recovery_id": {"type": "integer", "description": "secp256k1 only"},
            "signature_der": {"type": "string", "description": "ECDSA only: ASN.1 DER, hex"}}})
        }
        "operator.init" => json!({"type": "object", "properties": {
            "vault_id": {"type": "string"}, "shares": {"type": "array", "items": {"type": "string"}},
            "encrypted_shares": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "recipient": {"type": "string"},
                "age": {"type": "string", "description": "ASCII-armored age v1 file"}}}},
            "threshold": {"type": "integer"}, "root_token": {"type": "string"},
            "audit_public_key": {"type": "string"}}}),
        "operator.rekey_start" | "operator.rekey_status" | "operator.rekey_share" => {
            json!({"type": "object", "required": ["nonce", "phase", "progress", "required"], "properties": {
            "nonce": {"type": "string"},
            "phase": {"type": "string", "enum": ["authorise", "verify", "commit", "complete"]},
            "progress": {"type": "integer"}, "required": {"type": "integer"},
            "shares": {"type": "integer"}, "threshold": {"type": "integer"},
            "custodian_keys": {"type": "array", "items": {"type": "string"}},
            "new_shares": {"type": "array", "items": {"type": "string"},
                "description": "once, to the holder whose share completes authorisation"},
            "encrypted_shares": {"type": "array", "items": {"type": "object"}},
            "epoch": {"type": "integer", "description": "on completion: rekeys so far"},
            "domains_rewrapped": {"type": "integer"}}})
        }
        "backup.create" => json!({"type": "object", "properties": {
            "file": {"type": "object", "description": "the backup file (docs/formats.md), written by the CLI"},
            "shares": {"type": "array", "items": {"type": "string"}},
            "encrypted_shares": {"type": "array", "items": {"type": "object"}}}}),
        "seal.migrate" => json!({"type": "object", "properties": {
            "seal": {"type": "string", "enum": ["shamir", "pkcs11"]},
            "key_label": {"type": ["string", "null"]}}}),
        "token.create" => json!({"type": "object", "properties": {"id": {"type": "string"},
            "token": {"type": "string"}, "domain": {"type": "string"},
            "scope": {"type": "string", "enum": ["sign", "keymanager"]},
            "expires_at": {"type": ["string", "null"]}}}),
        _ => json!({"type": "object"}),
    }
}

/// The document.
#[must_use]
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "operationId": r.operation,
            "summary": r.summary,
            "responses": {
                "200": {"description": "success", "content": {"application/json": {"schema": response_schema(r.operation)}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}
            }
        });
        if r.authenticated {
            op["security"] = json!([{"bearer": []}]);
        }
        if let Some(schema) = request_schema(r.operation) {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if r.path.contains("{name}") {
            op["parameters"] = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if r.path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if r.operation == "request.list" {
            op["parameters"] = json!([{"name": "status", "in": "query", "required": false, "schema": {"type": "string"}}]);
        }
        if matches!(
            r.operation,
            "domain.create"
                | "operator.create"
                | "operator.roles"
                | "key.export"
                | "eth2.export_keystore"
                | "domain.destroy"
                | "domain.algorithms"
                | "key.destroy"
                | "quorum.set"
                | "key.temperature"
                | "key.sign"
                | "eth.sign_tx"
                | "eth.erc20_transfer"
                | "policy.set"
                | "seal.migrate"
                | "backup.create"
        ) {
            op["responses"]["202"] = json!({"description": "waiting for approvals: a pending request",
                "content": {"application/json": {"schema": {"type": "object", "required": ["request_id", "status"]}}}});
        }
        if r.operation == "key.list" {
            op["parameters"] = json!([{"name": "domain", "in": "query", "required": false, "schema": {"type": "string"}}]);
        }
        let entry = paths.entry(r.path).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "strongroom", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Custody vault API. Errors are {\"error\": {\"code\", \"message\"}}."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {
                "type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}}},
            "schemas": {
                "Hex": {"type": "string", "pattern": "^(0x|0X)?([0-9a-fA-F]{2})*$"},
                "Status": {"type": "object", "properties": {"initialized": {"type": "boolean"}, "sealed": {"type": "boolean"},
                    "progress": {"type": "integer"}, "threshold": {"type": "integer"}, "version": {"type": "string"},
                    "vault_id": {"type": "string"},
                    "seal": {"type": "string", "enum": ["shamir", "pkcs11"], "description": "what protects the root key at rest"},
                    "node_seal": {"type": "string", "enum": ["shamir", "pkcs11"], "description": "what this node's [seal] names"},
                    "seal_error": {"type": "object", "description": "why this node's token did not unseal the vault",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Domain": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                    "new_keys": {"type": "string", "enum": ["cold", "warm", "hot"]},
                    "algorithms": {"type": "object", "description": "each algorithm's state",
                        "additionalProperties": {"type": "string", "enum": ["allowed", "deprecated", "disabled"]}},
                    "created_at": {"type": "string", "format": "date-time"},
                    "state": {"type": "string", "enum": ["active", "destroyed"]},
                    "destroyed_at": {"type": "string", "format": "date-time"}}},
                "Key": {"type": "object", "required": ["id", "algorithm", "public_key"], "properties": {
                    "id": {"type": "string"}, "domain": {"type": "string"}, "domain_id": {"type": "string"},
                    "algorithm": {"type": "string", "enum": ["secp256k1", "ed25519", "p256", "bip32-seed", "bls12-381", "ml-dsa-65"]},
                    "label": {"type": ["string", "null"]},
                    "public_key": {"type": "string", "description": "compressed SEC1 (33 bytes) or Ed25519 (32 bytes), hex; for a wallet (bip32-seed) its public part (docs/formats.md)"},
                    "version": {"type": "integer"}, "state": {"type": "string", "enum": ["active", "offline", "destroyed"]},
                    "temperature": {"type": "string", "enum": ["cold", "warm", "hot"]},
                    "temperature_since": {"type": "string", "format": "date-time"},
                    "hot_idle_seconds": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "destroyed_at": {"type": ["string", "null"]}}},
                "Wallet": {"type": "object", "required": ["id", "chain", "xpub", "master_fingerprint", "account_path"], "properties": {
                    "id": {"type": "string"}, "domain": {"type": "string"}, "domain_id": {"type": "string"},
                    "chain": {"type": "string", "enum": ["bitcoin", "ethereum", "eos"]},
                    "network": {"type": "string"}, "address_type": {"type": "string"}, "chain_id": {"type": "integer"},
                    "label": {"type": ["string", "null"]}, "master_fingerprint": {"type": "string"},
                    "account_path": {"type": "string"}, "xpub": {"type": "string"},
                    "state": {"type": "string", "enum": ["active", "offline", "destroyed"]},
                    "temperature": {"type": "string", "enum": ["cold", "warm", "hot"]},
                    "created_at": {"type": "string", "format": "date-time"}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn gated_routes_document_their_202() {
        let doc = super::document();
        for (path, method) in [
            ("/v1/domains", "post"),
            ("/v1/operators", "post"),
            ("/v1/operators/{name}/roles", "post"),
            ("/v1/keys/{id}/export", "post"),
            ("/v1/domains/{name}", "delete"),
            ("/v1/keys/{id}", "delete"),
            ("/v1/quorum", "post"),
            ("/v1/keys/{id}/temperature", "post"),
            ("/v1/keys/{id}/sign", "post"),
            ("/v1/wallets/{id}/eth/sign-tx", "post"),
            ("/v1/wallets/{id}/eth/erc20-transfer", "post"),
            ("/v1/wallets/{id}/policy", "put"),
        ] {
            assert!(
                doc["paths"][path][method]["responses"]["202"].is_object(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        for r in crate::http::ROUTES {
            let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], r.operation, "{} {}", r.method, r.path);
            if r.method == "POST"
                && !matches!(
                    r.operation,
                    "operator.seal"
                        | "operator.disable"
                        | "request.reject"
                        | "clock.acknowledge"
                        | "seal.migrate"
                        | "domain.rotate"
                        | "key.rotate"
                )
            {
                assert!(
                    op["requestBody"].is_object(),
                    "{} has no request schema",
                    r.operation
                );
            }
        }
    }
}
