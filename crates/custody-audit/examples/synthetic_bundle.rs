//! Writes a synthetic audit bundle of N entries, for the verify benchmark
//! (bench/audit-verify.sh): an environment reporting every minute for
//! months, a snapshot every 100th report, a trail behind every artifact.
//!   cargo run --release -p custody-audit --example synthetic_bundle -- N OUT.tar.gz KEY.txt

use custody_audit::format::*;
use custody_audit::{BundleWriter, Line};
use custody_ledger::merkle::{Frontier, ProofPlan, hashes_from_leaves};
use custody_ledger::note::{Checkpoint, Note, SignerKey};
use custody_ledger::{Actor, EntryKind, Envelope};
use custody_runtime::{ArtifactKey, Counts};
use serde_json::{Value, json};

const ORIGIN: &str = "bench.example/custody/acme";
const MINUTE: i64 = 60_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, n, out, key_out] = args.as_slice() else {
        return Err("usage: synthetic_bundle N OUT.tar.gz KEY.txt".into());
    };
    let n: usize = n.parse()?;
    let key = SignerKey::from_seed(ORIGIN, [42; 32])?;
    std::fs::write(key_out, key.verifier().encode())?;

    let mut records: Vec<(EntryKind, i64, Value)> = vec![(
        EntryKind::Environment,
        0,
        json!({"name": "prod", "type": "K8S"}),
    )];
    let mut counts = Counts::default();
    let mut idx = 0u64;
    let mut t = 1_700_000_000_000i64;
    let mut version = 0u64;
    while records.len() < n {
        t += MINUTE;
        let change = idx == 0 || records.len().is_multiple_of(100);
        if change && records.len() + 4 < n {
            version += 1;
            let fp = format!("{:064x}", version);
            records.push((
                EntryKind::Trail,
                t,
                json!({"flow": "web", "name": format!("v{version}")}),
            ));
            records.push((
                EntryKind::Artifact,
                t,
                json!({"fingerprint": fp, "flow": "web", "trail": format!("v{version}"), "name": "web"}),
            ));
            let mut changes = vec![];
            if let Some((old, c)) = counts.0.iter().next().map(|(k, c)| (k.clone(), *c)) {
                changes.push(
                    json!({"name": old.name, "fingerprint": old.fingerprint, "was": c, "now": 0}),
                );
                counts.0.remove(&old);
            }
            changes.push(json!({"name": "web", "fingerprint": fp, "was": 0, "now": 3}));
            counts.0.insert(
                ArtifactKey {
                    name: "web".into(),
                    fingerprint: fp,
                },
                3,
            );
            idx += 1;
            records.push((
                EntryKind::Snapshot,
                t,
                json!({"environment": "prod", "snapshot": idx, "counts_sha256": counts.digest(),
                       "changes": changes, "interval_ms": MINUTE, "unobserved": []}),
            ));
        } else {
            records.push((
                EntryKind::Heartbeat,
                t,
                json!({"environment": "prod", "snapshot": idx, "interval_ms": MINUTE, "unobserved": []}),
            ));
        }
    }
    records.truncate(n);

    let entries: Vec<String> = records
        .into_iter()
        .enumerate()
        .map(|(i, (kind, ts, record))| {
            Envelope {
                seq: i as i64,
                org: "acme".into(),
                kind,
                ts,
                actor: Actor::server("bench"),
                record,
            }
            .seal()
            .map(|s| s.canonical)
        })
        .collect::<Result<_, _>>()?;
    let leaves: Vec<_> = entries
        .iter()
        .map(|e| custody_ledger::leaf_hash(e.as_bytes()))
        .collect();
    let mut tree = Frontier::new();
    for l in &leaves {
        tree.push(*l, |_, _| {});
    }
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: n as u64,
        root: tree.root(),
        extensions: vec![],
    };
    let mut note = Note::new(&cp.text())?;
    note.signatures.push(key.sign(&note.text));
    let hashes = hashes_from_leaves(&leaves);

    let first_ts = 1_700_000_000_000 + MINUTE;
    let manifest = Manifest {
        format: FORMAT.into(),
        org: "acme".into(),
        environment: "prod".into(),
        names: vec!["prod".into()],
        from: first_ts,
        to: t,
        flow: None,
        claim: Claim::History,
        // The window opens with the first snapshot.
        start: Start {
            snapshot: 1,
            running: vec![Running {
                name: "web".into(),
                fingerprint: format!("{:064x}", 1),
                instances: 3,
            }],
        },
        blobs: false,
        unknown: vec![],
        entries: n as u64,
        created_at: t,
    };
    let mut jsonl = Vec::with_capacity(n * 1500);
    for (i, entry) in entries.into_iter().enumerate() {
        let proof = ProofPlan::inclusion(i as u64, n as u64)?.assemble(&hashes)?;
        serde_json::to_writer(
            &mut jsonl,
            &Line {
                seq: i as u64,
                entry,
                proof: proof.iter().map(hex::encode).collect(),
                doc: None,
            },
        )?;
        jsonl.push(b'\n');
    }
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut w = BundleWriter::new(file, t);
    w.file(MANIFEST, &serde_json::to_vec(&manifest)?)?;
    w.file(CHECKPOINT, note.encode().as_bytes())?;
    w.file(ENTRIES, &jsonl)?;
    w.finish()?;
    eprintln!(
        "{n} entries, {} snapshots, {} bytes of entries",
        idx,
        jsonl.len()
    );
    Ok(())
}
