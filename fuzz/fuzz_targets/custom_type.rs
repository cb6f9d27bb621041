#![no_main]
//! Any custom attestation type (a JSON Schema and a jq rule) and any data,
//! through the sandbox the server uses: the fuzzer's own process never
//! runs them, never crashes or hangs, and every answer comes within the
//! budget (the time limit and the kill that backs it).
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
    let budget = LIMIT * 3 + Duration::from_secs(2);
    let started = Instant::now();
    let checked = rt.block_on(sb.check_type(1, &schema, &rules));
    assert!(started.elapsed() < budget, "check_type overran: {:?}", started.elapsed());
    if let Ok(Ok(())) = checked {
        let started = Instant::now();
        let r = rt.block_on(sb.eval_type(1, "fuzz", &schema, &rules, data));
        assert!(started.elapsed() < budget, "eval_type overran: {:?}", started.elapsed());
        if let Err(custody_sandbox::SandboxError::Unavailable(e)) = r {
            panic!("the sandbox broke: {e}");
        }
    }
});
