//! Replays the fuzz corpora (fuzz/corpus/) through the same entry points the fuzz targets
//! use: every input that fuzzing has kept runs in CI and must not panic.
#![allow(clippy::unwrap_used, missing_docs)]

fn replay(target: &str, f: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}

#[test]
fn eth_transaction_corpus() {
    replay(
        "eth_transaction",
        strongroom_chains::fuzzing::eth_transaction,
    );
}

#[test]
fn eip712_corpus() {
    replay("eip712", strongroom_chains::fuzzing::eip712);
}

#[test]
fn eos_transaction_corpus() {
    replay(
        "eos_transaction",
        strongroom_chains::fuzzing::eos_transaction,
    );
}

#[test]
fn psbt_corpus() {
    replay("psbt", strongroom_chains::fuzzing::psbt);
}
