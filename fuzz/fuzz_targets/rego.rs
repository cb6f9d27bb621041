#![no_main]
//! Any text as a Rego policy, accepted or refused as `create policy` does,
//! then judged on an artifact as an environment's judgement does, all in
//! the sandbox: the fuzzer's own process never runs the policy, never
//! crashes or hangs, and every answer comes within the budget.

#[path = "common/sandbox.rs"]
mod common;

use std::time::Instant;

use common::{budget, sandbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(policy) = std::str::from_utf8(input) else {
        return;
    };
    let (rt, sb) = sandbox();
    let budget = budget();
    let started = Instant::now();
    let checked = rt.block_on(sb.check_rego(1, "fuzz.rego", policy));
    assert!(
        started.elapsed() < budget,
        "check_rego overran: {:?}",
        started.elapsed()
    );
    if let Ok(Ok(())) = checked {
        let input = serde_json::json!({
            "environment": {"name": "prod"},
            "snapshot": {"index": 3},
            "artifact": {"name": "web", "fingerprint": "ab".repeat(32), "allowlisted": false, "provenance": true},
            "trail": null, "trails": [], "attestations": {},
        });
        let started = Instant::now();
        let program = custody_sandbox::RegoProgram {
            text: policy,
            file: "fuzz.rego",
            params: None,
        };
        let r = rt.block_on(sb.eval_rego(1, &program, &[input.clone(), input], budget));
        assert!(
            started.elapsed() < budget * 2,
            "eval_rego overran: {:?}",
            started.elapsed()
        );
        match r {
            Ok(answers) => assert_eq!(answers.len(), 2),
            Err(e) => panic!("the sandbox broke: {e}"),
        }
    }
});
