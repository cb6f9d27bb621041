#![no_main]
//! Any bytes as a Snyk, Trivy or Grype report: never a panic, and the
//! totals always add up to the targets' counts.

use custody_evidence::scan::{ScanSummary, Severity};
use custody_evidence::{Limits, grype, snyk, trivy};
use libfuzzer_sys::fuzz_target;

fn check(s: ScanSummary) {
    let by_target: u64 = s.targets.iter().map(|t| t.counts.total()).sum();
    if !s.targets.is_empty() {
        assert_eq!(by_target, s.totals.total());
    }
    for t in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        let _ = s.verdict(t);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(s) = snyk::parse(data, limits) {
        check(s);
    }
    if let Ok(s) = trivy::parse(data, limits) {
        check(s);
    }
    if let Ok(s) = grype::parse(data, limits) {
        check(s);
    }
});
