//! Replays the policy fuzz corpus (fuzz/corpus/policy) through the fuzz target's entry point.
#![allow(clippy::unwrap_used, missing_docs)]

#[test]
fn policy_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        strongroom_policy::fuzzing::policy(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0);
}
