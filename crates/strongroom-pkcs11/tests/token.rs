//! The PKCS#11 seal against a real SoftHSM2 token made for the test. SoftHSM reads its
//! configuration from `SOFTHSM2_CONF`, which a test cannot set for its own process, so the
//! outer test makes the token store and runs the inner one in a child process with it set.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;

use strongroom_core::{EntropySource, VaultId};
use strongroom_crypto::{OsEntropy, RootKey};
use strongroom_keystore::{HsmError, RootWrapper, hsm_aad};
use strongroom_pkcs11::{Pkcs11Params, Token};
use support::softhsm::{MODULE, PIN, SoftHsm};

const CHILD_ENV: &str = "STRONGROOM_TEST_TOKEN_DIR";

#[test]
fn wrapping_the_root_key_in_softhsm() {
    let hsm = SoftHsm::new();
    hsm.init_token("vault");
    hsm.init_token("other");
    // An AES key that is not sensitive: its value can be read out, so it must be refused.
    hsm.tool(
        "vault",
        &["--keygen", "--key-type", "AES:32", "--label", "weak"],
    );
    // A sensitive AES key imported with a value someone knows (not made in the token).
    let known = hsm.conf().with_file_name("known-key.bin");
    std::fs::write(&known, [0x11u8; 32]).unwrap();
    hsm.tool(
        "vault",
        &[
            "--write-object",
            known.to_str().unwrap(),
            "--type",
            "secrkey",
            "--key-type",
            "AES:32",
            "--label",
            "imported",
            "--sensitive",
        ],
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "in_child", "--ignored", "--nocapture"])
        .env("SOFTHSM2_CONF", hsm.conf())
        .env(CHILD_ENV, hsm.conf().parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    // The key strongroom made is one that never leaves the token (read by OpenSC).
    let described = hsm.describe_key("vault", "strongroom-root").unwrap();
    for attr in [
        "sensitive",
        "always sensitive",
        "never extractable",
        "local",
    ] {
        assert!(described.contains(attr), "{attr} missing in {described}");
    }
    assert!(
        !described.contains("wrap"),
        "usage must be encrypt/decrypt only: {described}"
    );
}

#[test]
#[ignore = "run by wrapping_the_root_key_in_softhsm, with SOFTHSM2_CONF set"]
fn in_child() {
    let dir = std::path::PathBuf::from(
        std::env::var_os(CHILD_ENV).expect("run through wrapping_the_root_key_in_softhsm"),
    );
    let pin_file = |name: &str, pin: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("{pin}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let good = Pkcs11Params {
        module: MODULE.into(),
        token_label: "vault".into(),
        pin_file: pin_file("pin", PIN),
        key_label: "strongroom-root".into(),
    };
    let entropy: Arc<dyn EntropySource> = Arc::new(OsEntropy);
    let open = |p: &Pkcs11Params| Token::open(p, Arc::clone(&entropy));

    // What keeps the vault sealed, each named. A refused PIN is tried once, never again.
    let wrong_pin = Pkcs11Params {
        pin_file: pin_file("wrong", "0000"),
        ..good.clone()
    };
    assert_eq!(open(&wrong_pin).unwrap_err(), HsmError::PinIncorrect);
    let missing_token = Pkcs11Params {
        token_label: "absent".into(),
        ..good.clone()
    };
    assert_eq!(
        open(&missing_token).unwrap_err(),
        HsmError::TokenNotFound("absent".into())
    );
    let no_module = Pkcs11Params {
        module: dir.join("no-such-module.so"),
        ..good.clone()
    };
    assert!(matches!(
        open(&no_module).unwrap_err(),
        HsmError::ModuleUnavailable(_)
    ));
    let loose_pin = good.pin_file.with_file_name("loose");
    std::fs::write(&loose_pin, PIN).unwrap();
    let lax = Pkcs11Params {
        pin_file: loose_pin,
        ..good.clone()
    };
    assert!(matches!(open(&lax).unwrap_err(), HsmError::PinFile(_)));

    let weak = open(&Pkcs11Params {
        key_label: "weak".into(),
        ..good.clone()
    })
    .unwrap();
    let root = RootKey::generate(&OsEntropy).unwrap();
    let aad = hsm_aad(&VaultId::from_random([1; 16]), "weak");
    assert_eq!(
        weak.wrap(&aad, &root).unwrap_err(),
        HsmError::KeyNotProtected("weak".into())
    );
    drop(weak);
    let imported = open(&Pkcs11Params {
        key_label: "imported".into(),
        ..good.clone()
    })
    .unwrap();
    assert_eq!(
        imported.wrap(&aad, &root).unwrap_err(),
        HsmError::KeyNotProtected("imported".into())
    );
    drop(imported);

    // The real thing: the key is made on first use, and only it opens what it wrapped.
    let token = open(&good).unwrap();
    assert!(!token.has_key().unwrap());
    let aad = hsm_aad(&VaultId::from_random([1; 16]), "strongroom-root");
    let wrapped = token.wrap(&aad, &root).unwrap();
    assert!(token.has_key().unwrap());
    assert_eq!(wrapped.len(), 12 + 32 + 16);
    assert!(!wrapped.windows(32).any(|w| w == root.danger_expose_bytes()));
    let back = token.unwrap(&aad, &wrapped).unwrap();
    assert!(back.matches_check(&root.check_value()));
    // Wrapping twice uses the same key but a fresh IV.
    let again = token.wrap(&aad, &root).unwrap();
    assert_ne!(again, wrapped);
    assert!(
        token
            .unwrap(&aad, &again)
            .unwrap()
            .matches_check(&root.check_value())
    );

    // The rollback anchor: a private data object, created, replaced, read back.
    assert!(
        token
            .read_anchors("strongroom-audit-head:v")
            .unwrap()
            .is_empty()
    );
    token
        .write_anchor("strongroom-audit-head:v", b"first")
        .unwrap();
    token
        .write_anchor("strongroom-audit-head:v", b"second head")
        .unwrap();
    token
        .write_anchor("strongroom-audit-head:w", b"other vault")
        .unwrap();
    assert_eq!(
        token.read_anchors("strongroom-audit-head:v").unwrap(),
        vec![b"second head".to_vec()]
    );
    assert_eq!(
        token.read_anchors("strongroom-audit-head:w").unwrap(),
        vec![b"other vault".to_vec()]
    );

    let other_vault = hsm_aad(&VaultId::from_random([2; 16]), "strongroom-root");
    assert_eq!(
        token.unwrap(&other_vault, &wrapped).unwrap_err(),
        HsmError::UnwrapFailed
    );
    for i in [0, 12, wrapped.len() - 1] {
        let mut bad = wrapped.clone();
        bad[i] ^= 1;
        assert_eq!(
            token.unwrap(&aad, &bad).unwrap_err(),
            HsmError::UnwrapFailed,
            "{i}"
        );
    }
    assert_eq!(
        token.unwrap(&aad, &wrapped[..10]).unwrap_err(),
        HsmError::UnwrapFailed
    );

    // The PIN changed under a running node: refused once, and then never offered again by
    // this handle, even after the PIN is changed back (a token would lock it otherwise).
    // (Through the same loaded module: SoftHSM keeps the token's PIN in memory per process.)
    let module = cryptoki::context::Pkcs11::new(MODULE).unwrap();
    let slot = module
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| module.get_token_info(*s).unwrap().label().trim_end() == "vault")
        .unwrap();
    let change = |old: &str, new: &str| {
        let s = module.open_rw_session(slot).unwrap();
        s.set_pin(&old.into(), &new.into()).unwrap();
    };
    change(PIN, "9999-changed");
    assert_eq!(
        token.unwrap(&aad, &wrapped).unwrap_err(),
        HsmError::PinIncorrect
    );
    change("9999-changed", PIN);
    assert_eq!(
        token.unwrap(&aad, &wrapped).unwrap_err(),
        HsmError::PinIncorrect
    );
    assert_eq!(token.has_key().unwrap_err(), HsmError::PinIncorrect);
    drop(token);
    // A fresh handle (a restart) with the right PIN works again.
    assert!(
        open(&good)
            .unwrap()
            .unwrap(&aad, &wrapped)
            .unwrap()
            .matches_check(&root.check_value())
    );

    // The same label on another token is another key.
    let elsewhere = open(&Pkcs11Params {
        token_label: "other".into(),
        ..good.clone()
    })
    .unwrap();
    assert_eq!(
        elsewhere.unwrap(&aad, &wrapped).unwrap_err(),
        HsmError::KeyNotFound("strongroom-root".into())
    );
    elsewhere.wrap(&aad, &root).unwrap();
    assert_eq!(
        elsewhere.unwrap(&aad, &wrapped).unwrap_err(),
        HsmError::UnwrapFailed
    );
}
