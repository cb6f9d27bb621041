#![no_main]
//! Any bytes, as one JUnit report among others: never a panic, and a
//! refused file leaves the summary as it was.

use custody_evidence::Limits;
use custody_evidence::junit::JunitParser;
use libfuzzer_sys::fuzz_target;

const GOOD: &[u8] = b"<testsuite name=\"s\"><testcase name=\"a\"/></testsuite>";

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 64,
    };
    let mut p = JunitParser::new(limits);
    p.add_file("good.xml", GOOD).unwrap();
    let ok = p.add_file("fuzz.xml", data).is_ok();
    let s = p.finish();
    let t = &s.totals;
    assert_eq!(t.tests, t.passed + t.failed + t.errored + t.skipped);
    if !ok {
        assert_eq!(t.tests, 1, "a refused file must leave nothing behind");
    }
    let _ = s.verdict();
});
