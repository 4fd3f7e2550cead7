//! Entry point for the policy fuzz target in `fuzz/` and the test that replays its corpus:
//! arbitrary bytes as a policy document must never panic, and a policy that parses must
//! survive storing and evaluate any intent.

use alloy_primitives::U256;

use crate::{Intent, Policy};

/// Parses `data` as a policy; if it parses, stores and reloads it and evaluates intents.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::parse(text, None, 0) else {
        return;
    };
    let reloaded = Policy::from_stored(&p.to_stored());
    assert_eq!(reloaded.as_ref().ok(), Some(&p));
    for call in ["transfer", "erc20.transfer", "contract", "message"] {
        let intent = Intent {
            call: call.into(),
            destination: Some("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".into()),
            contract: None,
            selector: Some("0xa9059cbb".into()),
            asset: "native".into(),
            amount: U256::MAX,
            fee: U256::from(21_000u64),
        };
        for now in [0, u64::MAX] {
            let _ = p.evaluate(&intent, now);
            let _ = p.cooling(now);
        }
    }
}
