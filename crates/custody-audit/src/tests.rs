//! A small ledger made here, bundled, verified, then corrupted every way
//! the format can be, each time expecting the precise reason.

use custody_ledger::merkle::{ProofPlan, hashes_from_leaves};
use custody_ledger::note::{Checkpoint, Note, SignerKey, VerifierKey};
use custody_ledger::{Actor, EntryKind, Envelope};
use custody_runtime::{ArtifactKey, Counts};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::format::*;
use crate::verify::{Report, Trust, Unusable, verify};
use crate::write::BundleWriter;

const ORIGIN: &str = "custody.example/custody/acme";
const BLOB: &[u8] = b"<testsuites tests=\"1\"/>";

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn digest(pairs: &[(&str, &str, u32)]) -> String {
    Counts(
        pairs
            .iter()
            .map(|(n, f, c)| {
                (
                    ArtifactKey {
                        name: n.to_string(),
                        fingerprint: f.to_string(),
                    },
                    *c,
                )
            })
            .collect(),
    )
    .digest()
}

fn fp(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

const POLICY: &str = "_schema: https://kosli.com/schemas/policy/environment/v1\n";
const DOC: &str = "{\"status\":\"COMPLIANT\"}";

/// The records of a small history: an environment, a trail that built
/// `web`, a run of snapshots in which an unidentified `miner` comes and
/// goes, reports every minute, one judgement.
fn records() -> Vec<(EntryKind, i64, Value)> {
    let a = fp('a');
    vec![
        (
            EntryKind::Environment,
            0,
            json!({"name": "prod", "type": "K8S"}),
        ),
        (EntryKind::Trail, 10, json!({"flow": "web", "name": "t1"})),
        (
            EntryKind::Artifact,
            20,
            json!({"fingerprint": a, "flow": "web", "trail": "t1", "name": "web"}),
        ),
        (
            EntryKind::Attestation,
            30,
            json!({"id": "att-1", "flow": "web", "trail": "t1", "name": "tests"}),
        ),
        (
            EntryKind::Evidence,
            30,
            json!({"attestation_id": "att-1", "sha256": sha(BLOB), "filename": "junit.xml", "size": BLOB.len()}),
        ),
        (
            EntryKind::Snapshot,
            1_000,
            json!({"environment": "prod", "snapshot": 1, "counts_sha256": digest(&[("web", &a, 2)]),
            "changes": [{"name": "web", "fingerprint": a, "was": 0, "now": 2}], "interval_ms": 60_000, "unobserved": []}),
        ),
        (
            EntryKind::Heartbeat,
            50_000,
            json!({"environment": "prod", "snapshot": 1, "interval_ms": 60_000, "unobserved": []}),
        ),
        (
            EntryKind::Policy,
            60_000,
            json!({"name": "prov", "version": 1, "sha256": sha(POLICY.as_bytes()), "content": POLICY}),
        ),
        (
            EntryKind::Evaluation,
            60_000,
            json!({"environment": "prod", "evaluation": 8, "snapshot": 1, "status": "COMPLIANT",
            "policies": [{"name": "prov", "version": 1, "sha256": sha(POLICY.as_bytes())}], "doc_sha256": sha(DOC.as_bytes())}),
        ),
        (
            EntryKind::Snapshot,
            100_000,
            json!({"environment": "prod", "snapshot": 2,
            "counts_sha256": digest(&[("web", &a, 2), ("miner", "", 1)]),
            "changes": [{"name": "miner", "fingerprint": "", "was": 0, "now": 1}], "interval_ms": 60_000, "unobserved": []}),
        ),
        (
            EntryKind::Heartbeat,
            150_000,
            json!({"environment": "prod", "snapshot": 2, "interval_ms": 60_000, "unobserved": []}),
        ),
        (
            EntryKind::Snapshot,
            200_000,
            json!({"environment": "prod", "snapshot": 3, "counts_sha256": digest(&[("web", &a, 2)]),
            "changes": [{"name": "miner", "fingerprint": "", "was": 1, "now": 0}], "interval_ms": 60_000, "unobserved": []}),
        ),
        (
            EntryKind::Heartbeat,
            250_000,
            json!({"environment": "prod", "snapshot": 3, "interval_ms": 60_000, "unobserved": []}),
        ),
    ]
}

struct Log {
    entries: Vec<String>,
    key: SignerKey,
}

impl Log {
    fn new(records: Vec<(EntryKind, i64, Value)>) -> Log {
        let entries = records
            .into_iter()
            .enumerate()
            .map(|(i, (kind, ts, record))| {
                Envelope {
                    seq: i as i64,
                    org: "acme".into(),
                    kind,
                    ts,
                    actor: Actor::server("test"),
                    record,
                }
                .seal()
                .unwrap()
                .canonical
            })
            .collect();
        Log {
            entries,
            key: SignerKey::from_seed(ORIGIN, [7; 32]).unwrap(),
        }
    }

    fn checkpoint(&self, size: usize) -> (Checkpoint, String) {
        let leaves: Vec<_> = self.entries[..size]
            .iter()
            .map(|e| custody_ledger::leaf_hash(e.as_bytes()))
            .collect();
        let mut tree = custody_ledger::merkle::Frontier::new();
        for l in &leaves {
            tree.push(*l, |_, _| {});
        }
        let root = tree.root();
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: size as u64,
            root,
            extensions: vec![],
        };
        let mut note = Note::new(&cp.text()).unwrap();
        note.signatures.push(self.key.sign(&note.text));
        (cp, note.encode())
    }

    fn proof(&self, seq: u64, size: u64) -> Vec<String> {
        let leaves: Vec<_> = self.entries[..size as usize]
            .iter()
            .map(|e| custody_ledger::leaf_hash(e.as_bytes()))
            .collect();
        let h = hashes_from_leaves(&leaves);
        ProofPlan::inclusion(seq, size)
            .unwrap()
            .assemble(&h)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect()
    }
}

/// A bundle's parts, to corrupt before they are framed.
struct Fixture {
    log: Log,
    manifest: Manifest,
    checkpoint: String,
    since: Option<(String, Consistency)>,
    lines: Vec<Line>,
    blobs: Vec<(String, Vec<u8>)>,
    extra: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::of(Log::new(records()))
    }

    fn of(log: Log) -> Fixture {
        let size = log.entries.len();
        let (_, checkpoint) = log.checkpoint(size);
        let lines: Vec<Line> = (0..size)
            .map(|i| Line {
                seq: i as u64,
                entry: log.entries[i].clone(),
                proof: log.proof(i as u64, size as u64),
                doc: log.entries[i]
                    .contains("\"kind\":\"evaluation\"")
                    .then(|| DOC.to_string()),
            })
            .collect();
        let manifest = Manifest {
            format: FORMAT.into(),
            org: "acme".into(),
            environment: "prod".into(),
            names: vec!["prod".into()],
            from: 20_000,
            to: 240_000,
            flow: None,
            claim: Claim::History,
            start: Start {
                snapshot: 1,
                running: vec![Running {
                    name: "web".into(),
                    fingerprint: fp('a'),
                    instances: 2,
                }],
            },
            blobs: true,
            unknown: vec![RanArtifact {
                name: "miner".into(),
                fingerprint: String::new(),
            }],
            entries: lines.len() as u64,
            created_at: 300_000,
        };
        Fixture {
            log,
            manifest,
            checkpoint,
            since: None,
            lines,
            blobs: vec![(sha(BLOB), BLOB.to_vec())],
            extra: vec![],
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = BundleWriter::new(Vec::new(), self.manifest.created_at);
        w.file(MANIFEST, &serde_json::to_vec(&self.manifest).unwrap())
            .unwrap();
        w.file(CHECKPOINT, self.checkpoint.as_bytes()).unwrap();
        if let Some((note, c)) = &self.since {
            w.file(SINCE_CHECKPOINT, note.as_bytes()).unwrap();
            w.file(CONSISTENCY, &serde_json::to_vec(c).unwrap())
                .unwrap();
        }
        let mut jsonl = Vec::new();
        for l in &self.lines {
            serde_json::to_writer(&mut jsonl, l).unwrap();
            jsonl.push(b'\n');
        }
        w.file(ENTRIES, &jsonl).unwrap();
        for (d, b) in &self.blobs {
            w.file(&blob_member(d), b).unwrap();
        }
        for (n, b) in &self.extra {
            w.file(n, b).unwrap();
        }
        w.finish().unwrap()
    }

    fn trust(&self) -> Trust {
        Trust {
            log_key: self.log.key.verifier(),
            witness_keys: vec![],
            min_witnesses: 0,
            since: None,
        }
    }

    fn verify(&self) -> Report {
        verify(self.bytes().as_slice(), &self.trust()).expect("usable")
    }

    fn line_of(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.iter().position(|l| pred(&l.entry)).unwrap()
    }
}

fn reasons(r: &Report) -> String {
    let mut s: Vec<String> = r
        .findings
        .problems
        .iter()
        .map(|p| format!("{:?}: {}", p.seq, p.what))
        .collect();
    s.extend(r.findings.gaps.iter().map(|g| format!("gap: {}", g.why)));
    s.extend(
        r.findings
            .absent_refuted
            .iter()
            .map(|w| format!("ran: {w}")),
    );
    s.join("\n")
}

#[track_caller]
fn refused(f: &Fixture, expect: &str) {
    let r = f.verify();
    assert!(!r.verified, "verified, expected: {expect}");
    let why = reasons(&r);
    assert!(why.contains(expect), "expected '{expect}' in:\n{why}");
}

#[test]
fn an_intact_bundle_verifies_with_what_ran() {
    let f = Fixture::new();
    let r = f.verify();
    assert!(r.verified, "{}", reasons(&r));
    assert_eq!(r.entries, 13);
    assert_eq!(r.findings.snapshots, 2);
    assert_eq!(
        (r.findings.first_snapshot, r.findings.last_snapshot),
        (1, 3)
    );
    assert_eq!(r.findings.ran.len(), 2);
    assert_eq!(r.findings.unknown.len(), 1);
    assert_eq!(r.findings.unknown[0].name, "miner");
    assert!(
        r.findings
            .ran
            .iter()
            .any(|x| x.name == "web" && x.provenance)
    );
    assert_eq!(r.blobs_checked, 1);
    assert_eq!(r.findings.evaluations, 1);
}

#[test]
fn a_flipped_byte_in_a_record_is_caught_by_its_proof() {
    let mut f = Fixture::new();
    let i = f.line_of(|e| e.contains("\"snapshot\":2"));
    f.lines[i].entry = f.lines[i].entry.replace("\"was\":0", "\"was\":1");
    refused(&f, "not proven in the checkpoint's tree");
}

#[test]
fn a_flipped_byte_in_a_proof_is_caught() {
    let mut f = Fixture::new();
    let mut p = f.lines[3].proof[0].clone().into_bytes();
    p[5] = if p[5] == b'0' { b'1' } else { b'0' };
    f.lines[3].proof[0] = String::from_utf8(p).unwrap();
    refused(&f, "Some(3): not proven");
}

#[test]
fn a_flipped_byte_in_a_blob_is_caught() {
    let mut f = Fixture::new();
    f.blobs[0].1[3] ^= 1;
    refused(&f, "its content does not have that SHA-256");
}

#[test]
fn a_flipped_byte_in_the_checkpoint_or_its_signature_is_caught() {
    let mut f = Fixture::new();
    let size_line = format!("\n{}\n", f.lines.len());
    f.checkpoint = f
        .checkpoint
        .replacen(&size_line, &format!("\n{}\n", f.lines.len() + 1), 1);
    refused(&f, "checkpoint:");

    let mut f = Fixture::new();
    let sig_at = f.checkpoint.rfind(' ').unwrap() + 5;
    let mut b = f.checkpoint.clone().into_bytes();
    b[sig_at] = if b[sig_at] == b'A' { b'B' } else { b'A' };
    f.checkpoint = String::from_utf8(b).unwrap();
    refused(&f, "checkpoint:");
}

#[test]
fn removed_duplicated_and_reordered_entries_are_named() {
    let mut f = Fixture::new();
    f.lines.retain(|l| {
        !l.entry.contains("\"snapshot\":2") || l.entry.contains("\"kind\":\"evaluation\"")
    });
    f.manifest.entries = f.lines.len() as u64;
    refused(&f, "snapshot #2 is missing (the bundle goes from #1 to #3)");

    let mut f = Fixture::new();
    let l = f.lines[4].clone();
    f.lines.insert(5, l);
    refused(&f, "entry 4 appears twice");

    let mut f = Fixture::new();
    f.lines.swap(6, 7);
    refused(&f, "entry 6 comes after entry 7");

    // Without its count fixed, the manifest already says so.
    let mut f = Fixture::new();
    f.lines.remove(7);
    refused(
        &f,
        "the manifest announces 13 entries, entries.jsonl holds 12",
    );
}

#[test]
fn a_snapshot_left_out_at_the_end_leaves_a_named_gap() {
    let mut f = Fixture::new();
    // Snapshot #3 and the report after the window are dropped: the record
    // stops before the window's end, and nothing proves that no snapshot
    // followed.
    f.lines.truncate(11);
    f.manifest.entries = 11;
    let r = f.verify();
    assert!(!r.verified);
    assert!(
        r.findings.gaps[0]
            .why
            .contains("the record ends with the report at"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn a_heartbeat_naming_a_snapshot_not_in_the_bundle_is_caught() {
    let mut f = Fixture::new();
    let i = f.line_of(|e| e.contains("\"snapshot\":2") && e.contains("snapshot\",\""));
    f.lines.remove(i);
    f.lines.retain(|l| !l.entry.contains("\"snapshot\":3"));
    f.manifest.entries = f.lines.len() as u64;
    refused(
        &f,
        "found snapshot #2 in force, but the bundle's last snapshot is #1: a snapshot is missing",
    );
}

#[test]
fn a_bundle_signed_by_another_key_is_refused() {
    let f = Fixture::new();
    let other = SignerKey::from_seed(ORIGIN, [9; 32]).unwrap();
    let mut t = f.trust();
    t.log_key = other.verifier();
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(!r.verified);
    assert!(
        reasons(&r).contains("checkpoint: no signature by"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn witnesses_count_only_when_known() {
    let mut f = Fixture::new();
    let w = SignerKey::from_seed("witness.example", [3; 32]).unwrap();
    let stranger = SignerKey::from_seed("stranger.example", [4; 32]).unwrap();
    let (cp, _) = f.log.checkpoint(f.lines.len());
    let mut note = Note::parse(&f.checkpoint).unwrap();
    note.signatures.push(w.cosign(&cp.text(), 1_700_000_000));
    note.signatures
        .push(stranger.cosign(&cp.text(), 1_700_000_000));
    f.checkpoint = note.encode();
    let mut t = f.trust();
    t.witness_keys = vec![w.cosigner()];
    t.min_witnesses = 1;
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(r.verified, "{}", reasons(&r));
    let seen = r.checkpoint.unwrap();
    assert_eq!(seen.witnesses.len(), 1);
    assert_eq!(seen.unknown_signers, vec!["stranger.example".to_string()]);

    // Only the stranger's cosignature: not enough, and it says whose.
    t.witness_keys = vec![];
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(!r.verified);
    let why = reasons(&r);
    assert!(
        why.contains("0 known witness cosignature(s), 1 required"),
        "{why}"
    );
    assert!(why.contains("stranger.example"), "{why}");
}

#[test]
fn a_changed_starting_state_or_unknown_list_is_caught() {
    let mut f = Fixture::new();
    f.manifest.start.running[0].instances = 3;
    refused(
        &f,
        "the manifest's starting state is not what snapshot #1 recorded",
    );

    let mut f = Fixture::new();
    f.manifest.unknown.clear();
    refused(&f, "'miner' (no fingerprint) ran without provenance");

    // The artifact's record removed: web now ran without provenance.
    let mut f = Fixture::new();
    let i = f.line_of(|e| e.contains("\"kind\":\"artifact\""));
    f.lines.remove(i);
    f.manifest.entries -= 1;
    refused(&f, "'web' (aaaa");
}

#[test]
fn evidence_and_evaluation_documents_are_held_to_their_entries() {
    let mut f = Fixture::new();
    f.blobs.clear();
    refused(&f, "is referenced but not in the bundle");

    let mut f = Fixture::new();
    let i = f.line_of(|e| e.contains("\"kind\":\"evaluation\""));
    f.lines[i].doc = Some("{\"status\":\"NON-COMPLIANT\"}".into());
    refused(&f, "not the one its entry commits to");

    let mut f = Fixture::new();
    let i = f.line_of(|e| e.contains("\"kind\":\"policy\""));
    f.lines.remove(i);
    f.manifest.entries -= 1;
    refused(&f, "policy 'prov' v1, whose entry is not in the bundle");

    let mut f = Fixture::new();
    f.blobs.push((sha(b"other"), b"other".to_vec()));
    refused(&f, "is referenced by no entry");
}

#[test]
fn absence_is_proven_or_refuted() {
    let mut f = Fixture::new();
    f.manifest.claim = Claim::Absent {
        fingerprint: fp('b'),
    };
    let r = f.verify();
    assert!(r.verified, "{}", reasons(&r));

    f.manifest.claim = Claim::Absent {
        fingerprint: fp('a'),
    };
    refused(&f, "was running as 'web' when the window began");
}

#[test]
fn a_late_report_is_a_gap_with_its_reason() {
    let mut recs = records();
    // The reporter goes quiet: the heartbeat at 150 s comes at 190 s,
    // and the next after 300 s.
    recs[10].1 = 190_000;
    recs[11].1 = 500_000;
    recs[12].1 = 510_000;
    let mut f = Fixture::of(Log::new(recs));
    f.manifest.to = 400_000;
    f.manifest.unknown = vec![RanArtifact {
        name: "miner".into(),
        fingerprint: String::new(),
    }];
    let r = f.verify();
    assert!(!r.verified);
    assert_eq!(r.findings.gaps.len(), 1, "{}", reasons(&r));
    assert_eq!(r.findings.gaps[0].from, 190_000);
    assert_eq!(r.findings.gaps[0].to, 400_000);
    assert!(r.findings.gaps[0].why.contains("promised one every 1m00s"));
}

#[test]
fn a_partial_report_is_a_gap_that_says_what_was_missed() {
    let mut recs = records();
    recs[10].2["unobserved"] = json!([{"scope": "namespace kube-system", "reason": "forbidden"}]);
    let f = Fixture::of(Log::new(recs));
    let r = f.verify();
    assert!(!r.verified);
    assert!(
        reasons(&r).contains("namespace kube-system not observed"),
        "{}",
        reasons(&r)
    );
}

#[test]
fn growth_from_an_older_checkpoint_is_proven() {
    let mut f = Fixture::new();
    let (_, old_note) = f.log.checkpoint(5);
    let leaves: Vec<_> = f
        .log
        .entries
        .iter()
        .map(|e| custody_ledger::leaf_hash(e.as_bytes()))
        .collect();
    let proof = ProofPlan::consistency(5, 13)
        .unwrap()
        .assemble(&hashes_from_leaves(&leaves))
        .unwrap();
    f.since = Some((
        old_note.clone(),
        Consistency {
            old_size: 5,
            new_size: 13,
            proof: proof.iter().map(hex::encode).collect(),
        },
    ));
    let mut t = f.trust();
    t.since = Some(old_note);
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(r.verified, "{}", reasons(&r));
    assert_eq!(r.since.unwrap().size, 5);

    // A proof from another history of the first five entries.
    let mut other = Log::new(records());
    other.entries[2] = other.entries[2].replace("\"web\"", "\"wob\"");
    let (_, forged) = other.checkpoint(5);
    t.since = Some(forged.clone());
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(
        reasons(&r).contains("not from the one given"),
        "{}",
        reasons(&r)
    );
    f.since.as_mut().unwrap().0 = forged;
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(reasons(&r).contains("did not only grow"), "{}", reasons(&r));
}

#[track_caller]
fn unusable(bytes: &[u8], trust: &Trust, expect: &str) {
    match verify(bytes, trust) {
        Err(Unusable(why)) => assert!(why.contains(expect), "expected '{expect}' in '{why}'"),
        Ok(r) => panic!("read as a bundle (verified: {})", r.verified),
    }
}

#[test]
fn malformed_bundles_are_unusable_with_a_reason() {
    let f = Fixture::new();
    let t = f.trust();
    unusable(b"not a bundle at all", &t, "cannot be read");
    let good = f.bytes();
    unusable(&good[..good.len() / 2], &t, "");

    // The tar crate will not write such a name; written by hand, as an
    // attacker would.
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_old();
    let evil = b"../../etc/cron.d/x";
    h.as_old_mut().name[..evil.len()].copy_from_slice(evil);
    h.set_size(3);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).unwrap();
    unusable(&b.into_inner().unwrap().finish().unwrap(), &t, "escapes");

    let mut f3 = Fixture::new();
    f3.extra.push(("notes.txt".into(), b"hello".to_vec()));
    unusable(&f3.bytes(), &t, "not part of the format");

    let mut f4 = Fixture::new();
    f4.manifest.format = "custody-audit-bundle/v9".into();
    unusable(&f4.bytes(), &t, "not one this version reads");

    // A member out of order: the checkpoint before the manifest.
    let mut w = BundleWriter::new(Vec::new(), 0);
    w.file(CHECKPOINT, f.checkpoint.as_bytes()).unwrap();
    unusable(&w.finish().unwrap(), &t, "comes before manifest.json");
}

#[test]
fn a_symlink_member_is_unusable() {
    let f = Fixture::new();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, MANIFEST, "/etc/passwd").unwrap();
    let bytes = b.into_inner().unwrap().finish().unwrap();
    unusable(&bytes, &f.trust(), "not a regular file");
}

#[test]
fn every_corruption_of_a_single_byte_is_refused_or_unusable() {
    // Flip each byte of the uncompressed members' content in turn would
    // be thousands of cases; every 7th byte of the entries is enough to
    // cross records, proofs and sequence numbers.
    let f = Fixture::new();
    let mut jsonl = Vec::new();
    for l in &f.lines {
        serde_json::to_writer(&mut jsonl, l).unwrap();
        jsonl.push(b'\n');
    }
    let t = f.trust();
    for at in (0..jsonl.len()).step_by(7) {
        if jsonl[at] == b'\n' {
            continue;
        }
        let mut bad = jsonl.clone();
        bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
        let mut w = BundleWriter::new(Vec::new(), 0);
        w.file(MANIFEST, &serde_json::to_vec(&f.manifest).unwrap())
            .unwrap();
        w.file(CHECKPOINT, f.checkpoint.as_bytes()).unwrap();
        w.file(ENTRIES, &bad).unwrap();
        w.file(&blob_member(&sha(BLOB)), BLOB).unwrap();
        let bytes = w.finish().unwrap();
        if let Ok(r) = verify(bytes.as_slice(), &t) {
            // A flip inside the JSON's insignificant parts could leave
            // the bundle meaning the same; none exist in this encoding.
            assert!(!r.verified, "byte {at} flipped, still verified");
        }
    }
}

#[test]
fn verifier_key_names_the_log() {
    let f = Fixture::new();
    let other = SignerKey::from_seed("another.example/custody/acme", [7; 32]).unwrap();
    let mut t = f.trust();
    t.log_key = VerifierKey::parse(&other.verifier().encode()).unwrap();
    let r = verify(f.bytes().as_slice(), &t).unwrap();
    assert!(reasons(&r).contains("is not the one the key given is for"));
}
