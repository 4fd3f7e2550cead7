//! Ethereum remote-signing requests: the signing root computed for every example request of
//! the remote-signing API specification (v1.1.0: every request type, every block version, full
//! phase0 and altair blocks included) is the one the specification publishes with it;
//! malformed requests are refused by field.
#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::Value;
use strongroom_chains::eth2::{Kind, parse_signing_request};

fn examples() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/remote-signing-examples.json"
    ))
    .unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn signing_roots_match_the_specification_examples() {
    let mut checked = 0;
    for (name, request) in examples() {
        // The examples come from a network on the minimal configuration, whose genesis fork
        // version (which builder registrations sign under) is 0x00000001.
        let parsed =
            parse_signing_request(&request, [0, 0, 0, 1]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let published = request["signingRoot"].as_str().unwrap();
        assert_eq!(
            format!("0x{}", hex::encode(parsed.signing_root)),
            published,
            "{name}"
        );
        assert_eq!(parsed.claimed_root, Some(parsed.signing_root));
        checked += 1;
    }
    assert_eq!(checked, 16);
}

#[test]
fn slashable_kinds_are_recognised() {
    let ex = examples();
    let att = parse_signing_request(&ex["ATTESTATION"], [0; 4]).unwrap();
    let Kind::Attestation { source, target } = att.kind else {
        panic!("{:?}", att.kind)
    };
    assert_eq!(
        (source, target),
        (
            ex["ATTESTATION"]["attestation"]["source"]["epoch"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            ex["ATTESTATION"]["attestation"]["target"]["epoch"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        )
    );
    assert!(matches!(
        parse_signing_request(&ex["BLOCK_V2 (DENEB)"], [0; 4])
            .unwrap()
            .kind,
        Kind::Block { slot: 0 }
    ));
    assert!(matches!(
        parse_signing_request(&ex["VOLUNTARY_EXIT"], [0; 4])
            .unwrap()
            .kind,
        Kind::VoluntaryExit { .. }
    ));
}

#[test]
fn malformed_requests_are_refused_by_field() {
    let ex = examples();
    let refuse = |mut v: Value, edit: &dyn Fn(&mut Value), field: &str| {
        edit(&mut v);
        let e = parse_signing_request(&v, [0; 4]).unwrap_err();
        assert_eq!(
            e,
            strongroom_chains::Error::InvalidEth2Request(Box::leak(
                field.to_owned().into_boxed_str()
            ))
        );
    };
    let att = ex["ATTESTATION"].clone();
    refuse(att.clone(), &|v| v["type"] = "SIGN_ANYTHING".into(), "type");
    refuse(
        att.clone(),
        &|v| v["attestation"]["slot"] = "-1".into(),
        "slot",
    );
    refuse(
        att.clone(),
        &|v| v["attestation"]["slot"] = "0x10".into(),
        "slot",
    );
    refuse(
        att.clone(),
        &|v| v["attestation"]["beacon_block_root"] = "0x00".into(),
        "beacon_block_root",
    );
    refuse(
        att.clone(),
        &|v| v["signingRoot"] = "0xzz".into(),
        "signingRoot",
    );
    refuse(
        att.clone(),
        &|v| {
            v["fork_info"]
                .as_object_mut()
                .unwrap()
                .remove("genesis_validators_root");
        },
        "genesis_validators_root",
    );
    refuse(
        ex["BLOCK_V2 (DENEB)"].clone(),
        &|v| v["beacon_block"]["version"] = "GLOAS".into(),
        "version",
    );
    refuse(
        ex["AGGREGATE_AND_PROOF"].clone(),
        &|v| v["aggregate_and_proof"]["aggregate"]["aggregation_bits"] = "0x00".into(),
        "aggregation_bits",
    );
}
