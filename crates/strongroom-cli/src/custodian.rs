//! Unseal shares for custodians with age keys: reading their recipients and writing each
//! share, encrypted by the server, to its own file. Nothing here sees a share in the clear.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::client::CliError;

/// A custodian's recipient, given inline (`age1...`) or as a file holding one.
///
/// A file holding an age *identity* is refused: the custodian's secret key must never travel
/// to the person running the ceremony.
pub(crate) fn recipient(arg: &str) -> Result<String, CliError> {
    let text = if arg.starts_with("age1") {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg)
            .map_err(|e| CliError::Input(format!("cannot read custodian key {arg}: {e}")))?
    };
    if text.contains("AGE-SECRET-KEY-") {
        return Err(CliError::Input(format!(
            "{arg} holds an age secret key; give only the public recipient \
             (`age-keygen -y KEY`), and keep the secret key with its custodian"
        )));
    }
    let found = text
        .lines()
        .map(|l| l.trim().trim_start_matches("# public key:").trim())
        .find(|l| l.starts_with("age1"))
        .ok_or_else(|| CliError::Input(format!("no age1... recipient in {arg}")))?;
    strongroom_crypto::AgeRecipient::parse(found)
        .map_err(|_| CliError::Input(format!("{arg}: not a valid age X25519 recipient")))?;
    Ok(found.to_owned())
}

/// The files the shares will go to, checked before the vault is initialised: the directory
/// exists and no share file would be overwritten.
pub(crate) fn share_paths(dir: &Path, count: usize) -> Result<Vec<PathBuf>, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Input(format!(
            "share directory {} does not exist",
            dir.display()
        )));
    }
    let paths: Vec<PathBuf> = (1..=count)
        .map(|i| dir.join(format!("strongroom-share-{i}.age")))
        .collect();
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(CliError::Input(format!(
            "{} already exists; move it away or choose another --share-dir",
            p.display()
        )));
    }
    Ok(paths)
}

/// Writes each encrypted share to its file. A file that cannot be written is printed
/// instead: the vault is initialised by now and the share exists nowhere else.
pub(crate) fn write_shares(answer: &Value, paths: &[PathBuf]) -> Result<(), CliError> {
    let shares = answer["encrypted_shares"]
        .as_array()
        .ok_or_else(|| CliError::Input("the server returned no encrypted shares".into()))?;
    if shares.len() != paths.len() {
        return Err(CliError::Input(
            "the server returned the wrong number of shares".into(),
        ));
    }
    for (share, path) in shares.iter().zip(paths) {
        let armored = share["age"].as_str().unwrap_or_default();
        let recipient = share["recipient"].as_str().unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, armored.as_bytes())?;
                f.sync_all()
            });
        match written {
            Ok(()) => println!("share for {recipient}: {}", path.display()),
            Err(e) => {
                eprintln!("cannot write {}: {e}; here it is instead:", path.display());
                println!("share for {recipient}:\n{armored}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn recipients_come_inline_or_from_keygen_output_but_never_with_a_secret() {
        assert_eq!(recipient(R).unwrap(), R);
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("pub.txt");
        std::fs::write(&public, format!("{R}\n")).unwrap();
        assert_eq!(recipient(public.to_str().unwrap()).unwrap(), R);
        let identity = dir.path().join("key.txt");
        std::fs::write(
            &identity,
            format!("# created: now\n# public key: {R}\nAGE-SECRET-KEY-1QQQQ\n"),
        )
        .unwrap();
        assert!(recipient(identity.to_str().unwrap()).is_err());
        assert!(recipient("age1notbech32").is_err());
    }

    #[test]
    fn existing_share_files_are_refused_before_init() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(share_paths(dir.path(), 3).unwrap().len(), 3);
        std::fs::write(dir.path().join("strongroom-share-2.age"), "x").unwrap();
        assert!(share_paths(dir.path(), 3).is_err());
        assert!(share_paths(&dir.path().join("missing"), 1).is_err());
    }
}
