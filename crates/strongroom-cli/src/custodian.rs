//! Shares for custodians with age keys: reading their recipients, writing each unseal share or
//! cold-storage bundle share (encrypted by the server) to its own file, and reading decrypted
//! bundle shares back for an import.

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
    share_paths_named(dir, "strongroom-share", count)
}

/// As [`share_paths`], for files `PREFIX-N.age`.
pub(crate) fn share_paths_named(
    dir: &Path,
    prefix: &str,
    count: usize,
) -> Result<Vec<PathBuf>, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Input(format!(
            "share directory {} does not exist",
            dir.display()
        )));
    }
    let paths: Vec<PathBuf> = (1..=count)
        .map(|i| dir.join(format!("{prefix}-{i}.age")))
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
            // Standard error: standard output may be a JSON answer.
            Ok(()) => eprintln!("share for {recipient}: {}", path.display()),
            Err(e) => {
                eprintln!("cannot write {}: {e}; here it is instead:", path.display());
                println!("share for {recipient}:\n{armored}");
            }
        }
    }
    Ok(())
}

/// The bundle file and its share files (`FILE.share-N.age`), checked before anything is
/// exported: none may exist already.
pub(crate) fn bundle_paths(out: &Path, shares: usize) -> Result<Vec<PathBuf>, CliError> {
    let mut paths = vec![out.to_owned()];
    paths.extend((1..=shares).map(|i| {
        let mut p = out.as_os_str().to_owned();
        p.push(format!(".share-{i}.age"));
        PathBuf::from(p)
    }));
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(CliError::Input(format!(
            "{} already exists; move it away or choose another --out",
            p.display()
        )));
    }
    Ok(paths)
}

fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()
}

/// Writes a bundle (`paths[0]`) and each custodian's encrypted share (`paths[1..]`). All of it
/// is ciphertext; a file that cannot be written is printed instead, as the bundle may be the
/// key's only copy.
pub(crate) fn write_bundle(bundle: &Value, paths: &[PathBuf]) -> Result<(), CliError> {
    let shares = bundle["shares"]
        .as_array()
        .ok_or_else(|| CliError::Input("the server returned no bundle".into()))?;
    if shares.len() + 1 != paths.len() {
        return Err(CliError::Input(
            "the server returned the wrong number of shares".into(),
        ));
    }
    let text = serde_json::to_string_pretty(bundle).unwrap_or_else(|_| bundle.to_string());
    let mut items = vec![("bundle".to_owned(), text)];
    for s in shares {
        items.push((
            format!(
                "share {} for {}",
                s["index"],
                s["recipient"].as_str().unwrap_or_default()
            ),
            s["age"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for ((what, body), path) in items.iter().zip(paths) {
        match create_new(path, body.as_bytes()) {
            Ok(()) => eprintln!("{what}: {}", path.display()),
            Err(e) => {
                eprintln!("cannot write {}: {e}; here it is instead:", path.display());
                println!("{what}:\n{body}");
            }
        }
    }
    Ok(())
}

/// Decrypted bundle shares: one per file, or one per line of standard input.
pub(crate) fn read_shares(files: &[PathBuf]) -> Result<Vec<zeroize::Zeroizing<String>>, CliError> {
    let mut out = Vec::new();
    if files.is_empty() {
        let mut all = zeroize::Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut all)
            .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
        for line in all.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.push(zeroize::Zeroizing::new(line.to_owned()));
        }
    }
    for f in files {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", f.display())))?,
        );
        out.push(zeroize::Zeroizing::new(text.trim().to_owned()));
    }
    Ok(out)
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
