#![no_main]
//! Any bytes as SARIF: never a panic; the verdict is drawable at every level.

use custody_evidence::Limits;
use custody_evidence::sarif::{Level, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse(data, Limits::default()) {
        for l in [Level::Error, Level::Warning, Level::Note] {
            let _ = s.verdict(l);
        }
        assert!(s.findings.len() <= 1000);
    }
});
