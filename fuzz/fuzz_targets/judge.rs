#![no_main]
//! Any text as the summary a client sends for a tool's attestation, of any
//! kind, with any thresholds: never a panic, and a summary that is judged
//! adds up — the totals fit, and a clean verdict never hides a listed
//! failure or finding.

use custody_evidence::judge::{KINDS, Thresholds, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let levels = [
        None,
        Some("error"),
        Some("warning"),
        Some("note"),
        Some("bogus"),
    ];
    let severities = [
        None,
        Some("low"),
        Some("medium"),
        Some("high"),
        Some("critical"),
    ];
    let t = Thresholds {
        fail_on: levels[usize::from(pick >> 3) % levels.len()].map(str::to_string),
        severity_threshold: severities[usize::from(pick >> 5) % severities.len()]
            .map(str::to_string),
        // Pull requests: 0 to 3 approvals, open ones counted or not.
        require_approvals: Some(u32::from(pick >> 6)),
        allow_open: Some(pick & 0x20 != 0),
    };
    if let Ok(j) = judge(kind, text, &t) {
        // (A summary the typed reader took may still hold what a generic
        // reader refuses, such as an out-of-range number in a field
        // neither looks at.)
        if let (true, Ok(v)) = (
            j.verdict.compliant,
            serde_json::from_str::<serde_json::Value>(text),
        ) {
            if kind == "junit" {
                let failing = v["failures"].as_array().map_or(0, Vec::len);
                assert_eq!(failing, 0, "a clean JUnit verdict with failures listed");
            }
        }
    }
});
