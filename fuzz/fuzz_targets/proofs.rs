#![no_main]
//! The readers a witness and an auditor expose to untrusted bytes: signed
//! notes, checkpoints, tlog-witness requests, DSSE envelopes and the Merkle
//! verifiers. Never a panic; whatever parses prints back to the same bytes;
//! nothing verifies that was not signed.

use custody_ledger::dsse::Envelope;
use custody_ledger::merkle::{verify_consistency, verify_inclusion};
use custody_ledger::note::{AddCheckpoint, Checkpoint, Note, SignedCheckpoint, SignerKey};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let key = SignerKey::from_seed("log.example/custody/default", [7u8; 32]).unwrap();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(n) = Note::parse(text) {
            assert_eq!(n.encode(), text, "a parsed note prints back as it came");
            // Fuzzed bytes carry no valid signature by this key.
            assert!(SignedCheckpoint::open(text, &key.verifier(), &[key.cosigner()]).is_err());
        }
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(Checkpoint::parse(&c.text()).unwrap(), c);
        }
        if let Ok(r) = AddCheckpoint::parse(text) {
            assert_eq!(AddCheckpoint::parse(&r.encode()).unwrap(), r);
        }
        if let Ok(e) = serde_json::from_str::<Envelope>(text) {
            let public = [9u8; 32];
            let _ = e.verify(&public);
        }
    }
    // The verifiers on arbitrary sizes and proofs.
    let (index, size, old) = (u64_at(data, 0), u64_at(data, 8), u64_at(data, 16));
    let hashes: Vec<[u8; 32]> = data
        .get(24..)
        .unwrap_or_default()
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    if let Some((first, rest)) = hashes.split_first() {
        let _ = verify_inclusion(index, size, first, rest, first);
        let _ = verify_consistency(old, size, first, first, rest);
    }
});
