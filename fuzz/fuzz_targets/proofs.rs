#![no_main]
//! The readers a witness, an auditor and `attest intoto` expose to
//! untrusted bytes: signed notes, checkpoints, tlog-witness requests, DSSE
//! envelopes, the Merkle verifiers, other tools' public keys and in-toto
//! statements. Never a panic; whatever parses prints back to the same
//! bytes; nothing verifies that was not signed.

use custody_ledger::dsse::Envelope;
use custody_ledger::foreign::{PublicKey, Statement};
use custody_ledger::merkle::{verify_consistency, verify_inclusion};
use custody_ledger::note::{AddCheckpoint, Checkpoint, Note, SignedCheckpoint, SignerKey};
use libfuzzer_sys::fuzz_target;

/// A valid P-256 point (the generator), so the ECDSA path is exercised.
const P256_POINT: [u8; 65] = [
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];

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
            // Another tool's envelope, checked with keys of both kinds:
            // fuzzed bytes verify with neither.
            for k in [
                PublicKey::Ed25519(key.public()),
                PublicKey::EcdsaP256(P256_POINT.to_vec()),
            ] {
                assert!(k.verify(&e).is_err());
            }
        }
        // A key given by a user, in any of the forms read.
        if let Ok(k) = PublicKey::parse(text) {
            assert_eq!(k.fingerprint().len(), 64);
        }
    }
    // A statement's payload, from any bytes.
    if let Ok(st) = Statement::parse(data) {
        assert!(!st.subjects.is_empty());
        assert!(st.subjects.iter().all(|(_, d)| d.len() == 64));
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
