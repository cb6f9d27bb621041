//! The sandbox the fuzz targets for users' programs share: the server's
//! own pool, with small limits so that a run stays fast.
//!
//! Its workers are the `custody` binary: build it first and point
//! CUSTODY_SANDBOX_WORKER at it (scripts/fuzz does both).

use std::sync::OnceLock;
use std::time::Duration;

use custody_sandbox::{Sandbox, SandboxConfig};

pub const LIMIT: Duration = Duration::from_millis(200);

/// The most one answer may take: the time limit, the pool's grace before
/// it kills, and room for starting a fresh worker.
pub fn budget() -> Duration {
    LIMIT * 3 + Duration::from_secs(2)
}

pub fn sandbox() -> &'static (tokio::runtime::Runtime, Sandbox) {
    static S: OnceLock<(tokio::runtime::Runtime, Sandbox)> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let worker = std::env::var("CUSTODY_SANDBOX_WORKER")
            .unwrap_or_else(|_| "../target/debug/custody".into());
        let mut cfg = SandboxConfig::new(worker.into(), vec!["__sandbox".into()]);
        cfg.time_limit = LIMIT;
        cfg.memory_limit = 256 << 20;
        let s = rt.block_on(Sandbox::start(cfg)).expect("start the sandbox");
        (rt, s)
    })
}
