#![allow(clippy::unwrap_used)]

use super::*;

const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const EXCHANGE: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const NEWCOMER: &str = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359";
const THIEF: &str = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb";
const ROUTER: &str = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d";
const HOUR: u64 = 3_600_000;

fn doc() -> String {
    format!(
        r#"{{
  "version": 1,
  "max_fee": "1000000",
  "cooling_off": "24h",
  "lists": {{"exchanges": ["{EXCHANGE}"]}},
  "deny": ["{THIEF}"],
  "rules": [
    {{"name": "usdc-small", "effect": "allow", "call": "erc20.transfer", "token": "{USDC}",
      "to": "@exchanges", "max_amount": "1000000000", "daily_limit": "5000000000"}},
    {{"name": "usdc-large", "effect": "quorum", "approvals": 2, "call": "erc20.transfer",
      "token": "{USDC}", "to": "@exchanges", "min_amount": "1000000001"}},
    {{"name": "eth-out", "effect": "allow", "call": "transfer", "to": ["@exchanges"],
      "max_amount": "1000000000000000000"}},
    {{"name": "swap", "effect": "allow", "call": "contract", "contract": "{ROUTER}",
      "selector": "0x38ed1739", "max_amount": "0"}},
    {{"name": "no-approvals", "effect": "deny", "call": ["erc20.approve", "erc20.transferFrom"]}}
  ]
}}"#
    )
}

fn token(to: &str, amount: u64) -> Intent {
    Intent {
        call: "erc20.transfer".into(),
        destination: Some(to.into()),
        contract: Some(USDC.into()),
        selector: Some("0xa9059cbb".into()),
        asset: USDC.into(),
        amount: U256::from(amount),
        fee: U256::from(21_000u64),
    }
}

fn eth(to: &str, wei: u128) -> Intent {
    Intent {
        call: "transfer".into(),
        destination: Some(to.into()),
        contract: None,
        selector: None,
        asset: "native".into(),
        amount: U256::from(wei),
        fee: U256::from(21_000u64),
    }
}

fn rule(d: &Decision) -> &str {
    d.rule()
}

#[test]
fn first_matching_rule_decides_and_nothing_matching_is_denied() {
    // Set at t=0: the exchange entry is usable after 24 h.
    let p = Policy::parse(&doc(), None, 0).unwrap();
    let later = 25 * HOUR;
    assert_eq!(
        p.evaluate(&token(EXCHANGE, 1_000_000_000), later),
        Decision::Allow {
            rule: "usdc-small".into(),
            daily_limit: Some("5000000000".into())
        }
    );
    assert_eq!(
        p.evaluate(&token(EXCHANGE, 1_000_000_001), later),
        Decision::Quorum {
            rule: "usdc-large".into(),
            approvals: 2
        }
    );
    assert_eq!(
        rule(&p.evaluate(&eth(EXCHANGE, 10u128.pow(18)), later)),
        "eth-out"
    );
    assert_eq!(
        rule(&p.evaluate(&eth(EXCHANGE, 10u128.pow(18) + 1), later)),
        "default-deny"
    );
    // Not on the list.
    assert_eq!(
        rule(&p.evaluate(&token(NEWCOMER, 1), later)),
        "default-deny"
    );
    // Another token to the same place.
    let mut other = token(EXCHANGE, 1);
    other.asset = NEWCOMER.into();
    other.contract = Some(NEWCOMER.into());
    assert_eq!(rule(&p.evaluate(&other, later)), "default-deny");
    // approve and transferFrom are denied by name.
    let mut approve = token(EXCHANGE, 1);
    approve.call = "erc20.approve".into();
    assert!(matches!(
        p.evaluate(&approve, later),
        Decision::Deny { rule, .. } if rule == "no-approvals"
    ));
    // Unknown calls: only the router's one method, without value.
    let call = |contract: &str, selector: &str, wei: u64| Intent {
        call: "contract".into(),
        destination: Some(contract.into()),
        contract: Some(contract.into()),
        selector: Some(selector.into()),
        asset: "native".into(),
        amount: U256::from(wei),
        fee: U256::ZERO,
    };
    assert_eq!(
        rule(&p.evaluate(&call(ROUTER, "0x38ed1739", 0), later)),
        "swap"
    );
    assert_eq!(
        rule(&p.evaluate(&call(ROUTER, "0x38ed1739", 1), later)),
        "default-deny"
    );
    assert_eq!(
        rule(&p.evaluate(&call(ROUTER, "0xdeadbeef", 0), later)),
        "default-deny"
    );
    assert_eq!(
        rule(&p.evaluate(&call(EXCHANGE, "0x38ed1739", 0), later)),
        "default-deny"
    );
}

#[test]
fn deny_list_wins_over_every_rule() {
    let d = format!(
        r#"{{"version": 1, "max_fee": "21000", "deny": ["{THIEF}"], "rules": [
            {{"name": "all", "effect": "allow", "call": ["transfer", "erc20.transfer"]}}]}}"#
    );
    let p = Policy::parse(&d, None, 0).unwrap();
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 5), 0)), "all");
    assert_eq!(rule(&p.evaluate(&eth(THIEF, 5), 0)), "deny-list");
    assert_eq!(rule(&p.evaluate(&token(THIEF, 5), 0)), "deny-list");
    // A token contract on the deny list is denied too.
    let mut via = token(EXCHANGE, 5);
    via.contract = Some(THIEF.into());
    assert_eq!(rule(&p.evaluate(&via, 0)), "deny-list");
}

#[test]
fn new_list_entries_cool_off_and_keep_their_age_across_updates() {
    let p = Policy::parse(&doc(), None, 0).unwrap();
    // Before 24 h the entry does not match: the transfer falls through to default-deny.
    assert_eq!(
        rule(&p.evaluate(&eth(EXCHANGE, 1), 23 * HOUR)),
        "default-deny"
    );
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), 24 * HOUR)), "eth-out");
    assert_eq!(p.cooling(23 * HOUR).len(), 1);
    assert!(p.cooling(24 * HOUR).is_empty());

    // A new policy at 30 h adds a newcomer: the old entry stays usable, the new one waits.
    let updated = doc().replace(
        &format!(r#"["{EXCHANGE}"]"#),
        &format!(r#"["{EXCHANGE}", "{NEWCOMER}"]"#),
    );
    let q = Policy::parse(&updated, Some(&p), 30 * HOUR).unwrap();
    assert_eq!(rule(&q.evaluate(&eth(EXCHANGE, 1), 31 * HOUR)), "eth-out");
    assert_eq!(
        rule(&q.evaluate(&eth(NEWCOMER, 1), 31 * HOUR)),
        "default-deny"
    );
    assert_eq!(rule(&q.evaluate(&eth(NEWCOMER, 1), 54 * HOUR)), "eth-out");
    // Stored and read back, the ages survive.
    let r = Policy::from_stored(&q.to_stored()).unwrap();
    assert_eq!(r, q);
    // Removing and re-adding an entry restarts its cooling-off.
    let without = Policy::parse(&doc().replace(EXCHANGE, NEWCOMER), Some(&q), 60 * HOUR).unwrap();
    let back = Policy::parse(&doc(), Some(&without), 61 * HOUR).unwrap();
    assert_eq!(
        rule(&back.evaluate(&eth(EXCHANGE, 1), 62 * HOUR)),
        "default-deny"
    );
}

#[test]
fn hours_are_utc_days_and_times() {
    let d = r#"{"version": 1, "max_fee": "21000", "hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"},
        "rules": [{"name": "any", "effect": "allow", "call": "transfer"}]}"#;
    let p = Policy::parse(d, None, 0).unwrap();
    // 1970-01-01 was a Thursday.
    let thursday_9am = 9 * HOUR;
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), thursday_9am)), "any");
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), 7 * HOUR)), "hours");
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), 18 * HOUR)), "hours");
    let saturday_9am = 2 * 24 * HOUR + 9 * HOUR;
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), saturday_9am)), "hours");
}

#[test]
fn amounts_are_256_bit() {
    let d = r#"{"version": 1, "max_fee": "21000", "rules": [{"name": "huge", "effect": "allow", "call": "transfer",
        "max_amount": "115792089237316195423570985008687907853269984665640564039457584007913129639935"}]}"#;
    let p = Policy::parse(d, None, 0).unwrap();
    let mut i = eth(EXCHANGE, 1);
    i.amount = U256::MAX;
    assert_eq!(rule(&p.evaluate(&i, 0)), "huge");
    let over = d.replace("639935", "639936");
    assert!(Policy::parse(&over, None, 0).is_err());
}

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    let cases = [
        (r#"{"version": 2, "rules": []}"#, "version"),
        (
            r#"{"version": 1, "rules": [], "extra": 1}"#,
            "unknown field",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "maybe", "call": "transfer"}]}"#,
            "effect",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "teleport"}]}"#,
            "unknown call",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "quorum", "call": "transfer"}]}"#,
            "approvals",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "quorum", "approvals": 0, "call": "transfer"}]}"#,
            "approvals",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "transfer", "to": "@nowhere"}]}"#,
            "no list",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "transfer", "to": "0x12"}]}"#,
            "address",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "transfer"}, {"name": "a", "effect": "deny", "call": "deploy"}]}"#,
            "two rules",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "default-deny", "effect": "allow", "call": "transfer"}]}"#,
            "reserved",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "deny", "call": "transfer", "daily_limit": "5"}]}"#,
            "daily_limit",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "transfer", "max_amount": "-1"}]}"#,
            "decimal",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "contract", "selector": "0x123"}]}"#,
            "selector",
        ),
        (
            r#"{"version": 1, "cooling_off": "soon", "rules": []}"#,
            "duration",
        ),
        (
            r#"{"version": 1, "hours": {"from": "18:00", "to": "08:00"}, "rules": []}"#,
            "before",
        ),
        (
            r#"{"version": 1, "hours": {"days": ["someday"], "from": "08:00", "to": "18:00"}, "rules": []}"#,
            "day",
        ),
        ("not json", "expected"),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": ["transfer", "erc20.transfer"], "max_amount": "5"}]}"#,
            "one unit",
        ),
        (
            r#"{"version": 1, "rules": [{"name": "a", "effect": "allow", "call": "erc20.transfer", "daily_limit": "5"}]}"#,
            "one unit",
        ),
        (
            r#"{"version": 1, "max_fee": "lots", "rules": []}"#,
            "max_fee",
        ),
    ];
    for (d, why) in cases {
        let err = Policy::parse(d, None, 0).unwrap_err().to_string();
        assert!(err.contains(why), "{d}: {err}");
    }
}

#[test]
fn the_empty_policy_denies_and_dev_allows_everything() {
    assert!(matches!(
        Policy::deny_all().evaluate(&eth(EXCHANGE, 1), 0),
        Decision::Deny { .. }
    ));
    let mut message = eth(EXCHANGE, 0);
    message.call = "message".into();
    message.fee = U256::ZERO;
    assert_eq!(
        rule(&Policy::deny_all().evaluate(&message, 0)),
        "default-deny"
    );
    let dev = Policy::dev_allow_all();
    for call in CALLS {
        let mut i = eth(THIEF, 1);
        i.call = call.into();
        assert_eq!(rule(&dev.evaluate(&i, 0)), "dev-allow-all");
    }
}

#[test]
fn fees_are_capped_and_a_policy_without_a_cap_refuses_transactions() {
    let d = r#"{"version": 1, "rules": [{"name": "any", "effect": "allow", "call": ["transfer", "message"]}]}"#;
    let p = Policy::parse(d, None, 0).unwrap();
    assert_eq!(rule(&p.evaluate(&eth(EXCHANGE, 1), 0)), "max-fee");
    // A message costs no fee.
    let mut message = eth(EXCHANGE, 0);
    message.call = "message".into();
    message.fee = U256::ZERO;
    assert_eq!(rule(&p.evaluate(&message, 0)), "any");
    let capped = Policy::parse(
        &d.replace(r#""version": 1,"#, r#""version": 1, "max_fee": "21000","#),
        None,
        0,
    )
    .unwrap();
    assert_eq!(rule(&capped.evaluate(&eth(EXCHANGE, 1), 0)), "any");
    let mut expensive = eth(EXCHANGE, 1);
    expensive.fee = U256::from(21_001u64);
    assert_eq!(rule(&capped.evaluate(&expensive, 0)), "max-fee");
}

#[test]
fn antelope_names_assets_and_actions() {
    let d = r#"{"version": 1, "lists": {"payees": ["bob", "exchange.gm"]},
        "rules": [
          {"name": "eos-out", "effect": "allow", "call": "token.transfer",
           "token": "eosio.token:4,EOS", "to": "@payees", "max_amount": "10000"},
          {"name": "ram", "effect": "allow", "call": "contract", "contract": "eosio", "selector": "buyrambytes"},
          {"name": "keys", "effect": "quorum", "approvals": 3, "call": "permissions"}]}"#;
    let p = Policy::parse(d, None, 0).unwrap();
    let action = |call: &str, contract: &str, name: &str| Intent {
        call: call.into(),
        destination: Some(contract.into()),
        contract: Some(contract.into()),
        selector: Some(name.into()),
        asset: "native".into(),
        amount: U256::ZERO,
        fee: U256::ZERO,
    };
    let transfer = Intent {
        call: "token.transfer".into(),
        destination: Some("bob".into()),
        contract: Some("eosio.token".into()),
        selector: Some("transfer".into()),
        asset: "eosio.token:4,eos".into(),
        amount: U256::from(10_000u64),
        fee: U256::ZERO,
    };
    assert_eq!(rule(&p.evaluate(&transfer, 0)), "eos-out");
    let mut fake = transfer.clone();
    fake.asset = "fake.token:4,eos".into();
    assert_eq!(rule(&p.evaluate(&fake, 0)), "default-deny");
    assert_eq!(
        rule(&p.evaluate(&action("contract", "eosio", "buyrambytes"), 0)),
        "ram"
    );
    assert_eq!(
        rule(&p.evaluate(&action("contract", "eosio", "delegatebw"), 0)),
        "default-deny"
    );
    assert_eq!(
        rule(&p.evaluate(&action("permissions", "eosio", "updateauth"), 0)),
        "keys"
    );
}

#[test]
fn bitcoin_addresses_are_checked_and_compared_in_canonical_form() {
    const SEGWIT: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    const LEGACY: &str = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
    let policy = Policy::parse(
        &format!(
            r#"{{"version": 1, "max_fee": "10000", "deny": ["{LEGACY}"],
               "rules": [{{"name": "out", "effect": "allow", "call": "transfer",
                           "to": "{}", "max_amount": "100000"}},
                          {{"name": "sweep", "effect": "allow", "call": "consolidate"}}]}}"#,
            SEGWIT.to_ascii_uppercase()
        ),
        None,
        0,
    )
    .unwrap();
    let btc = |to: &str, sat: u64| Intent {
        call: "transfer".into(),
        destination: Some(to.into()),
        contract: None,
        selector: None,
        asset: "native".into(),
        amount: U256::from(sat),
        fee: U256::from(500u64),
    };
    // Upper-case bech32 in the document matches the lowercase destination.
    assert_eq!(rule(&policy.evaluate(&btc(SEGWIT, 100_000), 0)), "out");
    assert_eq!(
        rule(&policy.evaluate(&btc(SEGWIT, 100_001), 0)),
        "default-deny"
    );
    // Base58 keeps its case: the deny list matches exactly.
    assert_eq!(rule(&policy.evaluate(&btc(LEGACY, 1), 0)), "deny-list");
    // A fee above max_fee is refused whatever the rule.
    let mut costly = btc(SEGWIT, 1);
    costly.fee = U256::from(10_001u64);
    assert_eq!(rule(&policy.evaluate(&costly, 0)), "max-fee");
    let sweep = Intent {
        call: "consolidate".into(),
        destination: None,
        ..btc(SEGWIT, 0)
    };
    assert_eq!(rule(&policy.evaluate(&sweep, 0)), "sweep");
    // A checksum typo is refused, not stored as an entry that never matches.
    for typo in [
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
    ] {
        let doc = format!(r#"{{"version": 1, "deny": ["{typo}"], "rules": []}}"#);
        assert!(Policy::parse(&doc, None, 0).is_err(), "{typo}");
    }
}
