#![no_main]
//! Any bytes, as one JUnit report among others: never a panic, a refused
//! file leaves the summary as it was, and reading the bytes in small,
//! oddly sized chunks (characters and tags cut anywhere) gives the same
//! answer, errors and their positions included, as reading them whole.

use std::io::BufReader;

use custody_evidence::junit::{JunitParser, JunitSummary};
use custody_evidence::{Limits, ParseError};
use libfuzzer_sys::fuzz_target;

const GOOD: &[u8] = b"<testsuite name=\"s\"><testcase name=\"a\"/></testsuite>";

fn read(data: impl std::io::BufRead) -> (Result<(), ParseError>, JunitSummary) {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 64,
    };
    let mut p = JunitParser::new(limits);
    p.add_file("good.xml", GOOD).unwrap();
    let r = p.add_file("fuzz.xml", data);
    (r, p.finish())
}

fuzz_target!(|input: &[u8]| {
    let Some((&chunk, data)) = input.split_first() else {
        return;
    };
    let (whole, s) = read(data);
    let t = &s.totals;
    assert_eq!(t.tests, t.passed + t.failed + t.errored + t.skipped);
    if whole.is_err() {
        assert_eq!(t.tests, 1, "a refused file must leave nothing behind");
    }
    let _ = s.verdict();

    let cut = BufReader::with_capacity(usize::from(chunk % 16) + 1, data);
    let (in_chunks, s2) = read(cut);
    assert_eq!(whole, in_chunks);
    if whole.is_ok() {
        assert_eq!(s, s2);
    }
});
