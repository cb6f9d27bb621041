//! Verifying a bundle, offline, in one pass over the stream: nothing is
//! extracted and nothing is held but the checkpoint, the replay's state
//! and the set of referenced digests, so a bundle larger than memory
//! verifies in bounded memory.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_ledger::merkle::{Hash, verify_consistency, verify_inclusion};
use custody_ledger::note::{Checkpoint, Note, Signature, VerifierKey};
use custody_ledger::{Envelope, leaf_hash};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::format::{self, Claim, Consistency, Line, Manifest};
use crate::history::{Findings, History, Problem};

/// The bundle cannot be checked at all: not a bundle, or not one this
/// version reads.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Unusable(pub String);

fn unusable(what: impl Into<String>) -> Unusable {
    Unusable(what.into())
}

/// What the verifier trusts: the log's key (its name is the log's origin),
/// and the witnesses it accepts.
#[derive(Debug, Clone)]
pub struct Trust {
    pub log_key: VerifierKey,
    pub witness_keys: Vec<VerifierKey>,
    pub min_witnesses: usize,
    /// A checkpoint the verifier held before: the bundle must prove the
    /// log grew from it.
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSeen {
    pub origin: String,
    pub size: u64,
    /// Base64, as in the note.
    pub root: String,
    pub signed_by: String,
    /// Witnesses whose cosignature verified, with their timestamps.
    pub witnesses: Vec<(String, u64)>,
    /// Cosignatures by keys the verifier was not given.
    pub unknown_signers: Vec<String>,
}

/// The verdict and everything it rests on.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verified: bool,
    pub org: String,
    pub environment: String,
    pub names: Vec<String>,
    pub from: i64,
    pub to: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    pub claim: Claim,
    pub checkpoint: Option<CheckpointSeen>,
    /// The older checkpoint the log was proven to have grown from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<CheckpointSeen>,
    /// Entries read, each proven included in the checkpoint's tree.
    pub entries: u64,
    pub blobs_included: bool,
    /// Evidence files present and matching their digests.
    pub blobs_checked: u64,
    #[serde(flatten)]
    pub findings: Findings,
}

/// Reads a bundle and checks it against `trust`. `Err` only when the input
/// cannot be checked; a bundle that is readable but wrong is an `Ok`
/// report with `verified: false` and its problems.
pub fn verify(input: impl Read, trust: &Trust) -> Result<Report, Unusable> {
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 16, input));
    let mut archive = tar::Archive::new(gz);
    let members = archive
        .entries()
        .map_err(|e| unusable(format!("not a gzip'd tar: {e}")))?;
    let mut v = Verifier::new(trust);
    for member in members {
        let member = member.map_err(|e| unusable(format!("the bundle cannot be read: {e}")))?;
        v.member(member)?;
    }
    v.end()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Start,
    Manifest,
    Checkpoint,
    Since,
    Consistency,
    Entries,
    Blobs,
}

struct Verifier<'t> {
    trust: &'t Trust,
    stage: Stage,
    manifest: Option<Manifest>,
    checkpoint: Option<(Checkpoint, CheckpointSeen)>,
    since: Option<(Checkpoint, CheckpointSeen)>,
    findings: Option<Findings>,
    problems: Vec<Problem>,
    entries: u64,
    last_seq: Option<u64>,
    evidence: BTreeSet<String>,
    blobs_seen: BTreeSet<String>,
    blobs_checked: u64,
}

/// The member's name as the archive spells it, refused if it could point
/// anywhere but the bundle's own files.
fn member_name<R: Read>(m: &tar::Entry<R>) -> Result<String, Unusable> {
    let raw = m.path_bytes();
    let name = std::str::from_utf8(&raw)
        .map_err(|_| unusable("a bundle member's name is not UTF-8"))?
        .to_string();
    if name.starts_with('/')
        || name.contains('\\')
        || name
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(unusable(format!(
            "bundle member '{name}' has a path that escapes or aliases the bundle's root"
        )));
    }
    let kind = m.header().entry_type();
    if !kind.is_file() {
        return Err(unusable(format!(
            "bundle member '{name}' is not a regular file (a link or a directory)"
        )));
    }
    Ok(name)
}

fn read_small(m: &mut impl Read, name: &str) -> Result<String, Unusable> {
    let mut buf = Vec::new();
    m.take(format::MAX_SMALL_MEMBER + 1)
        .read_to_end(&mut buf)
        .map_err(|e| unusable(format!("{name}: {e}")))?;
    if buf.len() as u64 > format::MAX_SMALL_MEMBER {
        return Err(unusable(format!("{name} is larger than the format allows")));
    }
    String::from_utf8(buf).map_err(|_| unusable(format!("{name} is not UTF-8")))
}

fn hashes(hex_list: &[String]) -> Option<Vec<Hash>> {
    hex_list
        .iter()
        .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect()
}

impl<'t> Verifier<'t> {
    fn new(trust: &'t Trust) -> Self {
        Verifier {
            trust,
            stage: Stage::Start,
            manifest: None,
            checkpoint: None,
            since: None,
            findings: None,
            problems: Vec::new(),
            entries: 0,
            last_seq: None,
            evidence: BTreeSet::new(),
            blobs_seen: BTreeSet::new(),
            blobs_checked: 0,
        }
    }

    fn problem(&mut self, seq: Option<u64>, what: String) {
        self.problems.push(Problem { seq, what });
    }

    fn advance(&mut self, to: Stage, name: &str) -> Result<(), Unusable> {
        if to < self.stage || (to == self.stage && to != Stage::Blobs) {
            return Err(unusable(format!(
                "bundle member '{name}' is out of place or repeated (the order is manifest.json, checkpoint, \
                 [since-checkpoint, consistency.json], entries.jsonl, blobs)"
            )));
        }
        let first_missing = match to {
            Stage::Start | Stage::Manifest => None,
            Stage::Checkpoint => self.manifest.is_none().then_some(format::MANIFEST),
            _ if self.manifest.is_none() => Some(format::MANIFEST),
            _ if self.checkpoint.is_none() => Some(format::CHECKPOINT),
            Stage::Consistency if self.since.is_none() => Some(format::SINCE_CHECKPOINT),
            Stage::Blobs if self.findings.is_none() => Some(format::ENTRIES),
            _ => None,
        };
        if let Some(missing) = first_missing {
            return Err(unusable(format!(
                "bundle member '{name}' comes before {missing}, which must precede it"
            )));
        }
        if self.stage == Stage::Since && to != Stage::Consistency {
            return Err(unusable(format!(
                "{} is not followed by {}",
                format::SINCE_CHECKPOINT,
                format::CONSISTENCY
            )));
        }
        self.stage = to;
        Ok(())
    }

    fn member<R: Read>(&mut self, mut m: tar::Entry<R>) -> Result<(), Unusable> {
        let name = member_name(&m)?;
        match name.as_str() {
            format::MANIFEST => {
                self.advance(Stage::Manifest, &name)?;
                let text = read_small(&mut m, &name)?;
                let manifest: Manifest =
                    serde_json::from_str(&text).map_err(|e| unusable(format!("{name}: {e}")))?;
                if manifest.format != format::FORMAT {
                    return Err(unusable(format!(
                        "{name}: format '{}' is not one this version reads ({})",
                        manifest.format,
                        format::FORMAT
                    )));
                }
                self.manifest = Some(manifest);
            }
            format::CHECKPOINT => {
                self.advance(Stage::Checkpoint, &name)?;
                let text = read_small(&mut m, &name)?;
                let seen = self.open_checkpoint(&text, &name, true)?;
                self.checkpoint = Some(seen);
            }
            format::SINCE_CHECKPOINT => {
                self.advance(Stage::Since, &name)?;
                let text = read_small(&mut m, &name)?;
                let seen = self.open_checkpoint(&text, &name, false)?;
                self.since = Some(seen);
            }
            format::CONSISTENCY => {
                self.advance(Stage::Consistency, &name)?;
                let text = read_small(&mut m, &name)?;
                let c: Consistency =
                    serde_json::from_str(&text).map_err(|e| unusable(format!("{name}: {e}")))?;
                self.consistency(&c);
            }
            format::ENTRIES => {
                self.advance(Stage::Entries, &name)?;
                self.entries_member(&mut m)?;
            }
            other => {
                let Some(digest) = format::blob_digest(other) else {
                    return Err(unusable(format!(
                        "bundle member '{other}' is not part of the format"
                    )));
                };
                let digest = digest.to_string();
                self.advance(Stage::Blobs, &name)?;
                self.blob(&mut m, &digest)?;
            }
        }
        Ok(())
    }

    /// Opens a signed checkpoint. The bundle's own must name the
    /// manifest's organisation and carry the witnesses asked for.
    fn open_checkpoint(
        &mut self,
        text: &str,
        name: &str,
        main: bool,
    ) -> Result<(Checkpoint, CheckpointSeen), Unusable> {
        let note = Note::parse(text).map_err(|e| unusable(format!("{name}: {e}")))?;
        let cp = Checkpoint::parse(&note.text).map_err(|e| unusable(format!("{name}: {e}")))?;
        let key = &self.trust.log_key;
        let mut seen = CheckpointSeen {
            origin: cp.origin.clone(),
            size: cp.size,
            root: B64.encode(cp.root),
            signed_by: String::new(),
            witnesses: Vec::new(),
            unknown_signers: Vec::new(),
        };
        if cp.origin != key.name() {
            self.problem(
                None,
                format!(
                    "{name}: the log '{}' is not the one the key given is for ('{}')",
                    cp.origin,
                    key.name()
                ),
            );
            return Ok((cp, seen));
        }
        match note.verify(&self.trust.witness_keys, key) {
            Ok(v) => {
                seen.signed_by = key.encode();
                seen.witnesses = v.cosigners;
            }
            Err(e) => self.problem(None, format!("{name}: {e}")),
        }
        let known = |s: &Signature| {
            std::iter::once(key)
                .chain(&self.trust.witness_keys)
                .any(|k| k.matches(s))
        };
        seen.unknown_signers = note
            .signatures
            .iter()
            .filter(|s| !known(s))
            .map(|s| s.name.clone())
            .collect();
        if main {
            if let Some(m) = &self.manifest {
                let want = format!("/custody/{}", m.org);
                if !cp.origin.ends_with(&want) {
                    let org = m.org.clone();
                    self.problem(
                        None,
                        format!(
                            "{name}: the log '{}' is not organisation '{org}''s",
                            cp.origin
                        ),
                    );
                }
            }
            let have = seen.witnesses.len();
            let need = self.trust.min_witnesses;
            if have < need {
                let unknown = if seen.unknown_signers.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (cosignatures by keys not given: {})",
                        seen.unknown_signers.join(", ")
                    )
                };
                self.problem(
                    None,
                    format!(
                        "{name}: {have} known witness cosignature(s), {need} required{unknown}"
                    ),
                );
            }
        }
        Ok((cp, seen))
    }

    fn consistency(&mut self, c: &Consistency) {
        let (Some((old, _)), Some((new, _))) = (&self.since, &self.checkpoint) else {
            return;
        };
        let (old, new) = (old.clone(), new.clone());
        if c.old_size != old.size || c.new_size != new.size {
            self.problem(
                None,
                format!(
                    "{}: the proof is from {} to {}, the checkpoints are of {} and {} entries",
                    format::CONSISTENCY,
                    c.old_size,
                    c.new_size,
                    old.size,
                    new.size
                ),
            );
            return;
        }
        let Some(proof) = hashes(&c.proof) else {
            self.problem(
                None,
                format!("{}: a hash is not hex SHA-256", format::CONSISTENCY),
            );
            return;
        };
        if let Err(e) = verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
            self.problem(
                None,
                format!(
                    "the log did not only grow from the older checkpoint ({} entries) to this one ({}): {e}",
                    old.size, new.size
                ),
            );
        }
    }

    fn entries_member(&mut self, m: &mut impl Read) -> Result<(), Unusable> {
        let Some(manifest) = self.manifest.clone() else {
            return Err(unusable("entries.jsonl without a manifest"));
        };
        let Some((cp, _)) = self.checkpoint.clone() else {
            return Err(unusable("entries.jsonl without a checkpoint"));
        };
        let mut history = History::new(&manifest);
        let mut reader = BufReader::with_capacity(1 << 16, m);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(format::MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| unusable(format!("entries.jsonl: {e}")))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if buf.len() > format::MAX_LINE {
                return Err(unusable(format!(
                    "entries.jsonl line {line_no} is longer than the format allows"
                )));
            }
            if buf.last() != Some(&b'\n') {
                return Err(unusable(format!(
                    "entries.jsonl line {line_no} does not end with a newline (truncated?)"
                )));
            }
            let line: Line = serde_json::from_slice(&buf[..buf.len() - 1])
                .map_err(|e| unusable(format!("entries.jsonl line {line_no}: {e}")))?;
            self.entry(&line, &cp, &manifest, &mut history);
        }
        if line_no != manifest.entries {
            self.problem(
                None,
                format!(
                    "the manifest announces {} entries, entries.jsonl holds {line_no}",
                    manifest.entries
                ),
            );
        }
        self.entries = line_no;
        let findings = history.finish();
        self.evidence = findings.evidence.clone();
        self.findings = Some(findings);
        Ok(())
    }

    fn entry(&mut self, line: &Line, cp: &Checkpoint, manifest: &Manifest, history: &mut History) {
        let seq = line.seq;
        if let Some(last) = self.last_seq {
            if seq == last {
                self.problem(Some(seq), format!("entry {seq} appears twice"));
                return;
            }
            if seq < last {
                self.problem(
                    Some(seq),
                    format!(
                        "entry {seq} comes after entry {last}: entries must be in increasing order"
                    ),
                );
                return;
            }
        }
        self.last_seq = Some(seq);
        let Some(proof) = hashes(&line.proof) else {
            self.problem(
                Some(seq),
                "its inclusion proof has a hash that is not hex SHA-256".into(),
            );
            return;
        };
        let leaf = leaf_hash(line.entry.as_bytes());
        if let Err(e) = verify_inclusion(seq, cp.size, &leaf, &proof, &cp.root) {
            self.problem(
                Some(seq),
                format!("not proven in the checkpoint's tree of {} entries: {e} (the entry or its proof was altered)", cp.size),
            );
            return;
        }
        let envelope: Envelope = match serde_json::from_str(&line.entry) {
            Ok(e) => e,
            Err(e) => {
                self.problem(
                    Some(seq),
                    format!("the entry is not a ledger envelope: {e}"),
                );
                return;
            }
        };
        if envelope.seq < 0 || envelope.seq as u64 != seq {
            self.problem(
                Some(seq),
                format!(
                    "the line says entry {seq}, the entry itself says {}",
                    envelope.seq
                ),
            );
            return;
        }
        if envelope.org != manifest.org {
            self.problem(
                Some(seq),
                format!(
                    "the entry belongs to organisation '{}', not '{}'",
                    envelope.org, manifest.org
                ),
            );
            return;
        }
        history.feed(seq, &envelope, line.doc.as_deref());
    }

    fn blob(&mut self, m: &mut impl Read, digest: &str) -> Result<(), Unusable> {
        if !self.blobs_seen.insert(digest.to_string()) {
            self.problem(None, format!("evidence file {digest} appears twice"));
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = m
                .read(&mut buf)
                .map_err(|e| unusable(format!("blobs/sha256/{digest}: {e}")))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        if hex::encode(h.finalize()) != digest {
            self.problem(
                None,
                format!("evidence file {digest}: its content does not have that SHA-256 (altered)"),
            );
        } else if !self.evidence.contains(digest) {
            self.problem(
                None,
                format!("evidence file {digest} is referenced by no entry of the bundle"),
            );
        } else {
            self.blobs_checked += 1;
        }
        Ok(())
    }

    fn end(mut self) -> Result<Report, Unusable> {
        let Some(manifest) = self.manifest.take() else {
            return Err(unusable("the bundle has no manifest.json"));
        };
        let Some((_, seen)) = self.checkpoint.take() else {
            return Err(unusable("the bundle has no checkpoint"));
        };
        if self.stage == Stage::Since {
            return Err(unusable(
                "since-checkpoint is not followed by consistency.json",
            ));
        }
        let Some(mut findings) = self.findings.take() else {
            return Err(unusable("the bundle has no entries.jsonl"));
        };
        if let Some(trusted) = &self.trust.since {
            let bundled = self.since.as_ref().map(|(c, _)| c.clone());
            match (Note::parse(trusted).and_then(|n| Checkpoint::parse(&n.text)), bundled) {
                (Err(e), _) => return Err(unusable(format!("the checkpoint given: {e}"))),
                (Ok(_), None) => self.problem(
                    None,
                    "a checkpoint was given, but the bundle holds no proof that the log grew from it".into(),
                ),
                (Ok(t), Some(b)) if t != b => self.problem(
                    None,
                    format!(
                        "the bundle proves growth from a checkpoint of {} entries, not from the one given ({} entries{})",
                        b.size,
                        t.size,
                        if t.size == b.size { ", another root" } else { "" }
                    ),
                ),
                _ => {}
            }
        }
        if manifest.blobs {
            for d in &findings.evidence {
                if !self.blobs_seen.contains(d) {
                    self.problems.push(Problem {
                        seq: None,
                        what: format!("evidence file {d} is referenced but not in the bundle"),
                    });
                }
            }
        } else if !self.blobs_seen.is_empty() {
            self.problem(
                None,
                "the manifest says the bundle has no evidence files, yet it has some".into(),
            );
        }
        let unknown: BTreeSet<_> = findings.unknown.iter().cloned().collect();
        let claimed: BTreeSet<_> = manifest.unknown.iter().cloned().collect();
        for u in unknown.difference(&claimed) {
            self.problems.push(Problem {
                seq: None,
                what: format!(
                    "'{}' ({}) ran without provenance in the bundle, and the manifest does not list it as unknown",
                    u.name,
                    if u.fingerprint.is_empty() { "no fingerprint" } else { &u.fingerprint }
                ),
            });
        }
        for u in claimed.difference(&unknown) {
            self.problems.push(Problem {
                seq: None,
                what: format!(
                    "the manifest lists '{}' ({}) as unknown, but the replay does not find it so",
                    u.name, u.fingerprint
                ),
            });
        }
        let mut problems = std::mem::take(&mut self.problems);
        problems.append(&mut findings.problems);
        findings.problems = problems;
        // Absence is refuted by a bundle that is otherwise sound: not a
        // problem with the bundle, but not verified either.
        let verified = findings.problems.is_empty()
            && findings.gaps.is_empty()
            && findings.absent_refuted.is_none();
        Ok(Report {
            verified,
            org: manifest.org,
            environment: manifest.environment,
            names: manifest.names,
            from: manifest.from,
            to: manifest.to,
            flow: manifest.flow,
            claim: manifest.claim,
            checkpoint: Some(seen),
            since: self.since.map(|(_, s)| s),
            entries: self.entries,
            blobs_included: manifest.blobs,
            blobs_checked: self.blobs_checked,
            findings,
        })
    }
}
