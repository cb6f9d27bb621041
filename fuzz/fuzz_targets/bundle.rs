#![no_main]
//! What `custody audit verify` reads from a bundle an auditor was handed:
//! the gzip'd tar itself, and the replay of its entries. Never a panic,
//! whatever the bytes.
//!
//! The first byte picks what the rest is: 0, a whole bundle; 1, a
//! manifest, and 2, entries (newline-separated envelopes), both fed to the
//! replay directly, past the proofs a fuzzer cannot forge.

use custody_audit::format::{Claim, FORMAT, Manifest, Running, Start};
use custody_audit::{History, Trust};
use custody_ledger::Envelope;
use custody_ledger::note::SignerKey;
use libfuzzer_sys::fuzz_target;

fn manifest() -> Manifest {
    Manifest {
        format: FORMAT.into(),
        org: "acme".into(),
        environment: "prod".into(),
        names: vec!["old".into(), "prod".into()],
        from: 1_000,
        to: 100_000,
        flow: None,
        claim: Claim::Absent {
            fingerprint: "a".repeat(64),
        },
        start: Start {
            snapshot: 1,
            running: vec![Running {
                name: "web".into(),
                fingerprint: "b".repeat(64),
                instances: 2,
            }],
        },
        blobs: true,
        unknown: vec![],
        entries: 0,
        created_at: 0,
    }
}

fn replay(m: &Manifest, entries: &[u8]) {
    let mut h = History::new(m);
    for (i, line) in entries.split(|b| *b == b'\n').enumerate() {
        if let Ok(e) = serde_json::from_slice::<Envelope>(line) {
            h.feed(i as u64, &e, std::str::from_utf8(line).ok());
        }
    }
    let _ = h.finish();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let key = SignerKey::from_seed("bench.example/custody/acme", [42; 32]).unwrap();
            let trust = Trust {
                log_key: key.verifier(),
                witness_keys: vec![key.cosigner()],
                min_witnesses: 0,
                since: None,
            };
            let _ = custody_audit::verify(rest, &trust);
        }
        1 => {
            if let Ok(m) = serde_json::from_slice::<Manifest>(rest) {
                replay(&m, b"");
            }
        }
        _ => replay(&manifest(), rest),
    }
});
