#![no_main]
//! Any text as a Rego policy, accepted or refused as `create policy` does,
//! then judged on an artifact as an environment's judgement does, all in
//! the sandbox: the fuzzer's own process never runs the policy, never
//! crashes or hangs, and every answer comes within the budget.
//!
//! The sandbox's workers are the `custody` binary: build it first and
//! point CUSTODY_SANDBOX_WORKER at it (scripts/fuzz does both).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use custody_sandbox::{Sandbox, SandboxConfig};
use libfuzzer_sys::fuzz_target;

const LIMIT: Duration = Duration::from_millis(200);

fn sandbox() -> &'static (tokio::runtime::Runtime, Sandbox) {
    static S: OnceLock<(tokio::runtime::Runtime, Sandbox)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let worker = std::env::var("CUSTODY_SANDBOX_WORKER")
            .unwrap_or_else(|_| "../target/release/custody".into());
        let mut cfg = SandboxConfig::new(worker.into(), vec!["__sandbox".into()]);
        cfg.time_limit = LIMIT;
        cfg.memory_limit = 256 << 20;
        let s = rt.block_on(Sandbox::start(cfg)).expect("start the sandbox");
        (rt, s)
    })
}

fuzz_target!(|input: &[u8]| {
    let Ok(policy) = std::str::from_utf8(input) else {
        return;
    };
    let (rt, sb) = sandbox();
    let budget = LIMIT * 3 + Duration::from_secs(2);
    let started = Instant::now();
    let checked = rt.block_on(sb.check_rego(1, policy));
    assert!(started.elapsed() < budget, "check_rego overran: {:?}", started.elapsed());
    if let Ok(Ok(())) = checked {
        let input = serde_json::json!({
            "environment": {"name": "prod"},
            "snapshot": {"index": 3},
            "artifact": {"name": "web", "fingerprint": "ab".repeat(32), "allowlisted": false, "provenance": true},
            "trail": null, "trails": [], "attestations": {},
        });
        let started = Instant::now();
        let r = rt.block_on(sb.eval_rego(1, policy, &[input.clone(), input], budget));
        assert!(started.elapsed() < budget * 2, "eval_rego overran: {:?}", started.elapsed());
        match r {
            Ok(answers) => assert_eq!(answers.len(), 2),
            Err(e) => panic!("the sandbox broke: {e}"),
        }
    }
});
