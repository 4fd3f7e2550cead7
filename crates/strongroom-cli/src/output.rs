//! Printing answers as text or JSON.

use base64::Engine as _;
use serde_json::Value;

use crate::client::CliError;
use crate::field;

pub(crate) struct Output {
    pub(crate) json: bool,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

impl Output {
    pub(crate) fn raw(&self, v: &Value) -> Result<(), CliError> {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
        Ok(())
    }

    pub(crate) fn object(&self, v: &Value) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        if let Value::Object(m) = v {
            for (k, val) in m {
                println!("{k}: {}", scalar(val));
            }
        }
        Ok(())
    }

    pub(crate) fn list(&self, v: &Value, columns: &[&str]) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        for item in v.as_array().map(Vec::as_slice).unwrap_or_default() {
            let cells: Vec<String> = columns.iter().map(|c| scalar(&item[*c])).collect();
            println!("{}", cells.join("  "));
        }
        Ok(())
    }

    pub(crate) fn status(&self, v: &Value) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        println!("initialized: {}", scalar(&v["initialized"]));
        println!("sealed: {}", scalar(&v["sealed"]));
        println!(
            "unseal progress: {}/{}",
            scalar(&v["progress"]),
            scalar(&v["threshold"])
        );
        if !v["seal"].is_null() {
            println!("seal: {}", scalar(&v["seal"]));
        }
        if v["node_seal"] != v["seal"] && !v["node_seal"].is_null() {
            println!(
                "this node's [seal]: {} (run `strongroom operator seal-migrate` once unsealed)",
                scalar(&v["node_seal"])
            );
        }
        if let Some(e) = v["seal_error"].as_object() {
            println!(
                "seal error: {} ({})",
                scalar(&e["message"]),
                scalar(&e["code"])
            );
        }
        println!("version: {}", scalar(&v["version"]));
        Ok(())
    }

    pub(crate) fn domain(&self, v: &Value) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        for k in [
            "name",
            "id",
            "state",
            "new_keys",
            "created_at",
            "key_version",
        ] {
            println!("{k}: {}", scalar(&v[k]));
        }
        if let Some(r) = v["rotation"].as_object() {
            println!(
                "rotation: version {} -> {}: {} key(s) to move, {} offline (ends once imported or destroyed)",
                scalar(&r["from_version"]),
                scalar(&r["to_version"]),
                scalar(&r["remaining"]),
                scalar(&r["offline"])
            );
        }
        Ok(())
    }

    pub(crate) fn rekey(&self, v: &Value) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        let phase = scalar(&v["phase"]);
        if phase == "complete" {
            println!(
                "Rekey complete (epoch {}): {} domain master key(s) re-wrapped under the new root.",
                scalar(&v["epoch"]),
                scalar(&v["domains_rewrapped"])
            );
            println!("Only the new shares unseal the vault from now on; destroy the old ones.");
            return Ok(());
        }
        println!("rekey nonce: {}", scalar(&v["nonce"]));
        println!(
            "new shares: {} (threshold {})",
            scalar(&v["shares"]),
            scalar(&v["threshold"])
        );
        let to: Vec<String> = v["custodian_keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(scalar)
            .collect();
        if to.is_empty() {
            println!("new shares go to: whoever submits the last current share (in the clear)");
        } else {
            println!("new shares go to: {}", to.join(", "));
        }
        let what = if phase == "authorise" {
            "current shares (authorising)"
        } else {
            "new shares (verifying)"
        };
        println!(
            "{what}: {}/{}",
            scalar(&v["progress"]),
            scalar(&v["required"])
        );
        let clear = v["new_shares"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !clear.is_empty() {
            println!(
                "\nThe new shares, shown ONCE. Give one to each custodian; {} of them must be \n\
                 submitted back (`strongroom operator rekey`) before they replace the current ones.\n",
                scalar(&v["threshold"])
            );
            for (i, s) in clear.iter().enumerate() {
                println!("new share {}: {}", i + 1, scalar(s));
            }
        } else if v["encrypted_shares"].is_array() {
            println!(
                "\nThe new shares are encrypted to their custodians and written to the share \n\
                 directory; {} of them must be submitted back before they replace the current ones.",
                scalar(&v["threshold"])
            );
        }
        Ok(())
    }

    pub(crate) fn init(&self, v: &Value) -> Result<(), CliError> {
        if self.json {
            return self.raw(v);
        }
        let shares = v["shares"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if shares.is_empty() {
            println!("Vault initialised. Each share is encrypted to its custodian's age key.");
            println!(
                "Send each file to its custodian; any {} of them unseal the vault with\n  \
                 age -d -i KEY share.age | strongroom operator unseal\n",
                scalar(&v["threshold"])
            );
        } else {
            println!("Vault initialised. These shares are shown ONCE and are not stored anywhere.");
            println!(
                "Give one to each custodian; any {} of them unseal the vault.\n",
                scalar(&v["threshold"])
            );
        }
        for (i, s) in shares.iter().enumerate() {
            println!("share {}: {}", i + 1, scalar(s));
        }
        println!("\nroot token: {}", field(v, "root_token"));
        println!("audit public key: {}", field(v, "audit_public_key"));
        if field(v, "seal") == "pkcs11" {
            println!(
                "\nThe root key is also wrapped by the PKCS#11 token: nodes unseal themselves at start.\n\
                 The shares are the recovery path (and the way back to Shamir sealing): keep them\n\
                 as safe as the token, since any {} of them unseal the vault without it.",
                scalar(&v["threshold"])
            );
        } else {
            println!(
                "\nThe vault is sealed: run `strongroom operator unseal` with {} shares.",
                scalar(&v["threshold"])
            );
        }
        Ok(())
    }

    pub(crate) fn pem(&self, key: &Value) -> Result<(), CliError> {
        let alg: strongroom_core::Algorithm = field(key, "algorithm")
            .parse()
            .map_err(|_| CliError::Input("unknown algorithm in answer".into()))?;
        let pk = hex::decode(field(key, "public_key"))
            .map_err(|_| CliError::Input("malformed public key".into()))?;
        let der = strongroom_crypto::spki_der(alg, &pk)
            .map_err(|_| CliError::Input("malformed public key".into()))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----");
        if self.json {
            return self.raw(&serde_json::json!({"id": field(key, "id"), "pem": pem}));
        }
        println!("{pem}");
        Ok(())
    }
}
