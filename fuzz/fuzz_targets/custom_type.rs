#![no_main]
//! Any custom attestation type (a JSON Schema and a jq rule) and any data,
//! through the sandbox the server uses: the fuzzer's own process never
//! runs them, never crashes or hangs, and every answer comes within the
//! budget (the time limit and the kill that backs it).

#[path = "common/sandbox.rs"]
mod common;

use std::time::Instant;

use common::{budget, sandbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // schema \0 rule \0 data
    let mut parts = text.splitn(3, '\0');
    let (Some(schema), Some(rule), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema) else {
        return;
    };
    if serde_json::from_str::<serde_json::Value>(data).is_err() {
        return;
    }
    let (rt, sb) = sandbox();
    let rules = vec![rule.to_string()];
    let budget = budget();
    let started = Instant::now();
    let checked = rt.block_on(sb.check_type(1, &schema, &rules));
    assert!(
        started.elapsed() < budget,
        "check_type overran: {:?}",
        started.elapsed()
    );
    if let Ok(Ok(())) = checked {
        let started = Instant::now();
        let r = rt.block_on(sb.eval_type(1, "fuzz", &schema, &rules, data));
        assert!(
            started.elapsed() < budget,
            "eval_type overran: {:?}",
            started.elapsed()
        );
        if let Err(custody_sandbox::SandboxError::Unavailable(e)) = r {
            panic!("the sandbox broke: {e}");
        }
    }
});
