//! The time records are stamped with: the system's clock, read here and
//! nowhere else in the store and the server.
//!
//! `custody demo` alone replaces it with a simulated clock, to play a week
//! of a company's history through the real server in a minute. A server
//! never does; nothing it reads from a request or the environment can.

use std::sync::atomic::{AtomicI64, Ordering};

/// No simulation.
const REAL: i64 = i64::MIN;

static SIMULATED: AtomicI64 = AtomicI64::new(REAL);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    match SIMULATED.load(Ordering::Relaxed) {
        REAL => jiff::Timestamp::now().as_millisecond(),
        t => t,
    }
}

/// Makes [`now_ms`] answer `ms` in this process, until [`real`] is called.
/// For the demo's history player only.
pub fn simulate(ms: i64) {
    SIMULATED.store(ms, Ordering::Relaxed);
}

/// Back to the system's clock.
pub fn real() {
    SIMULATED.store(REAL, Ordering::Relaxed);
}
