//! An environment's history over a window, replayed from its ledger
//! entries: the one reading of a bundle's entries, used by the exporter
//! (to say what ran without provenance) and by the verifier (to hold the
//! bundle to its claims).
//!
//! Entries are fed in sequence order. The replay starts from the running
//! set the manifest states, proven by the digest in the starting
//! snapshot's entry, applies every snapshot's changes (checking each
//! change's "was" and each resulting digest), and so knows what ran at
//! every moment of the window. Snapshots are numbered per environment, and
//! heartbeats name the snapshot in force, so a snapshot left out shows as
//! a hole in the numbers or as a heartbeat naming a snapshot the bundle
//! does not have. Reports (snapshots and heartbeats) promise the next one
//! within their interval; time between two reports that is not covered by
//! such a promise, or that follows a partial report, is a coverage gap.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use custody_ledger::{EntryKind, Envelope};
use custody_runtime::coverage::in_time;
use custody_runtime::{ArtifactKey, Counts};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::format::{Claim, Manifest, RanArtifact};

/// Gaps listed one by one; more are counted.
const MAX_GAPS_LISTED: usize = 1_000;

/// Something the entries contradict or leave unproven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub what: String,
}

/// Time in the window when the environment was not (provably) observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from: i64,
    pub to: i64,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvaluationSeen {
    pub seq: u64,
    pub status: String,
    pub snapshot: i64,
}

/// Where an artifact that ran first appears running in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ran {
    pub name: String,
    pub fingerprint: String,
    /// The snapshot it was first seen running in (the starting one if it
    /// was running at `from`).
    pub snapshot: u64,
    pub at: i64,
    pub provenance: bool,
}

/// What the replay found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    pub problems: Vec<Problem>,
    pub gaps: Vec<Gap>,
    /// Gaps beyond those listed.
    pub gaps_unlisted: u64,
    /// Snapshots replayed in the window (the starting one not counted).
    pub snapshots: u64,
    pub first_snapshot: u64,
    pub last_snapshot: u64,
    pub observations: u64,
    pub ran: Vec<Ran>,
    pub unknown: Vec<RanArtifact>,
    pub trails: u64,
    pub attestations: u64,
    /// Evidence files the entries reference, by SHA-256.
    pub evidence: BTreeSet<String>,
    pub evaluations: u64,
    pub non_compliant_evaluations: u64,
    pub latest_evaluation: Option<EvaluationSeen>,
    pub policies: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// For an absence claim: where the artifact ran, if it did.
    pub absent_refuted: Option<String>,
}

#[derive(Clone)]
struct Observation {
    seq: u64,
    ts: i64,
    interval_ms: Option<i64>,
    /// Scopes a partial report could not observe.
    partial: Vec<String>,
}

/// The replay. Feed it every proven entry in sequence order, then
/// [`History::finish`].
pub struct History {
    names: Vec<String>,
    name_at: usize,
    from: i64,
    to: i64,
    flow: Option<String>,
    absent: Option<String>,
    start_snapshot: u64,
    start_digest: String,
    start_proven: bool,
    counts: Counts,
    /// Once the numbering is broken the replay cannot check counts any
    /// more; it still collects what ran.
    replay_broken: bool,
    last_snapshot: u64,
    closed: bool,
    prev: Option<Observation>,
    /// Everything before this time is accounted for (covered or a gap).
    cursor: i64,
    pending_why: Option<String>,
    ran: BTreeMap<RanArtifact, (u64, i64)>,
    provenance: HashSet<String>,
    trails_seen: HashSet<(String, String)>,
    trails_needed: BTreeMap<(String, String), u64>,
    attestations_seen: HashSet<String>,
    attestations_needed: BTreeMap<String, u64>,
    policies_seen: HashSet<(String, i64, String)>,
    policies_needed: BTreeMap<(String, i64, String), u64>,
    f: Findings,
}

fn key(name: &str, fingerprint: &str) -> ArtifactKey {
    ArtifactKey {
        name: name.to_string(),
        fingerprint: fingerprint.to_string(),
    }
}

fn str_of<'a>(record: &'a Value, field: &str) -> Option<&'a str> {
    record.get(field).and_then(Value::as_str)
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}.{:03}s", s, ms % 1000)
    }
}

impl History {
    /// Starts the replay from the manifest's claims; problems with the
    /// claims themselves are reported by [`History::finish`].
    pub fn new(m: &Manifest) -> History {
        let mut f = Findings {
            first_snapshot: m.start.snapshot,
            last_snapshot: m.start.snapshot,
            ..Findings::default()
        };
        let mut counts = Counts::default();
        let mut ran = BTreeMap::new();
        for r in &m.start.running {
            if r.instances == 0 {
                f.problems.push(Problem {
                    seq: None,
                    what: format!(
                        "the manifest's starting state lists '{}' with no instance",
                        r.name
                    ),
                });
            }
            if counts
                .0
                .insert(key(&r.name, &r.fingerprint), r.instances)
                .is_some()
            {
                f.problems.push(Problem {
                    seq: None,
                    what: format!(
                        "the manifest's starting state lists '{}' ({}) twice",
                        r.name, r.fingerprint
                    ),
                });
            }
            ran.insert(
                RanArtifact {
                    name: r.name.clone(),
                    fingerprint: r.fingerprint.clone(),
                },
                (m.start.snapshot, m.from),
            );
        }
        if m.start.snapshot == 0 && !m.start.running.is_empty() {
            f.problems.push(Problem {
                seq: None,
                what: "the manifest says nothing was reported before the window, yet lists a running state"
                    .into(),
            });
        }
        if m.names.last() != Some(&m.environment) {
            f.problems.push(Problem {
                seq: None,
                what: format!(
                    "the manifest's names {:?} do not end with the environment '{}'",
                    m.names, m.environment
                ),
            });
        }
        if m.from > m.to {
            f.problems.push(Problem {
                seq: None,
                what: format!(
                    "the window starts ({}) after it ends ({})",
                    time(m.from),
                    time(m.to)
                ),
            });
        }
        History {
            names: if m.names.is_empty() {
                vec![m.environment.clone()]
            } else {
                m.names.clone()
            },
            name_at: 0,
            from: m.from,
            to: m.to,
            flow: m.flow.clone(),
            absent: match &m.claim {
                Claim::Absent { fingerprint } => Some(fingerprint.clone()),
                Claim::History => None,
            },
            start_snapshot: m.start.snapshot,
            start_digest: counts.digest(),
            start_proven: m.start.snapshot == 0,
            counts,
            replay_broken: false,
            last_snapshot: m.start.snapshot,
            closed: false,
            prev: None,
            cursor: m.from,
            pending_why: None,
            ran,
            provenance: HashSet::new(),
            trails_seen: HashSet::new(),
            trails_needed: BTreeMap::new(),
            attestations_seen: HashSet::new(),
            attestations_needed: BTreeMap::new(),
            policies_seen: HashSet::new(),
            policies_needed: BTreeMap::new(),
            f,
        }
    }

    fn problem(&mut self, seq: u64, what: String) {
        self.f.problems.push(Problem {
            seq: Some(seq),
            what,
        });
    }

    fn current_name(&self) -> &str {
        &self.names[self.name_at.min(self.names.len() - 1)]
    }

    /// Whether an environment-scoped record is about this environment
    /// (under the name it had then); a problem if not.
    fn ours(&mut self, seq: u64, record: &Value) -> bool {
        let name = str_of(record, "environment")
            .unwrap_or_default()
            .to_string();
        if name == self.current_name() {
            return true;
        }
        let want = self.current_name().to_string();
        self.problem(
            seq,
            format!(
                "the entry is about environment '{name}', not '{want}' (its name at that point)"
            ),
        );
        false
    }

    /// Feeds one entry whose inclusion in the log is proven. `doc` is the
    /// document an evaluation entry commits to, when the bundle has it.
    pub fn feed(&mut self, seq: u64, e: &Envelope, doc: Option<&str>) {
        *self
            .f
            .by_kind
            .entry(e.kind.as_str().to_string())
            .or_default() += 1;
        let r = &e.record;
        match e.kind {
            EntryKind::Environment => self.environment(seq, r),
            EntryKind::Snapshot if self.ours(seq, r) => self.snapshot(seq, e.ts, r),
            EntryKind::Heartbeat if self.ours(seq, r) => self.heartbeat(seq, e.ts, r),
            EntryKind::Evaluation if self.ours(seq, r) => self.evaluation(seq, r, doc),
            EntryKind::PolicyAttachment | EntryKind::Allowlist => {
                self.ours(seq, r);
            }
            EntryKind::Policy => self.policy(seq, r),
            EntryKind::Trail => {
                self.f.trails += 1;
                if let (Some(flow), Some(name)) = (str_of(r, "flow"), str_of(r, "name")) {
                    self.trails_seen.insert((flow.into(), name.into()));
                }
            }
            EntryKind::Artifact => self.artifact(seq, r),
            EntryKind::Attestation => {
                self.f.attestations += 1;
                if let Some(id) = str_of(r, "id") {
                    self.attestations_seen.insert(id.into());
                }
                self.need_trail(seq, r);
            }
            EntryKind::Evidence => match (str_of(r, "attestation_id"), str_of(r, "sha256")) {
                (Some(att), Some(sha)) => {
                    self.attestations_needed.entry(att.into()).or_insert(seq);
                    self.f.evidence.insert(sha.to_string());
                }
                _ => self.problem(
                    seq,
                    "an evidence entry without its attestation or digest".into(),
                ),
            },
            _ => {}
        }
    }

    fn need_trail(&mut self, seq: u64, r: &Value) {
        if let (Some(flow), Some(trail)) = (str_of(r, "flow"), str_of(r, "trail")) {
            self.trails_needed
                .entry((flow.into(), trail.into()))
                .or_insert(seq);
        }
    }

    fn environment(&mut self, seq: u64, r: &Value) {
        let name = str_of(r, "name").unwrap_or_default();
        if name != self.current_name() {
            let want = self.current_name().to_string();
            self.problem(
                seq,
                format!(
                    "the entry is about environment '{name}', not '{want}' (its name at that point)"
                ),
            );
            return;
        }
        if let Some(new) = str_of(r, "renamed_to") {
            match self.names.get(self.name_at + 1) {
                Some(next) if next == new => self.name_at += 1,
                _ => {
                    let new = new.to_string();
                    self.problem(
                        seq,
                        format!("'{name}' was renamed to '{new}', which the manifest's names do not say next"),
                    );
                }
            }
        }
    }

    fn snapshot(&mut self, seq: u64, ts: i64, r: &Value) {
        let Some(idx) = r.get("snapshot").and_then(Value::as_u64) else {
            self.problem(seq, "a snapshot entry without its number".into());
            return;
        };
        let digest = str_of(r, "counts_sha256").unwrap_or_default().to_string();
        if ts <= self.from {
            if idx != self.start_snapshot {
                self.problem(
                    seq,
                    format!(
                        "snapshot #{idx} is before the window, but the bundle starts from #{}",
                        self.start_snapshot
                    ),
                );
            } else if digest != self.start_digest {
                self.problem(
                    seq,
                    format!(
                        "the manifest's starting state is not what snapshot #{idx} recorded (its counts' digest differs)"
                    ),
                );
            } else {
                self.start_proven = true;
            }
            self.observe(seq, ts, r);
            return;
        }
        if self.closed {
            return;
        }
        if !self.start_proven {
            self.start_proven = true;
            self.replay_broken = true;
            let k = self.start_snapshot;
            self.problem(
                seq,
                format!("the starting state (snapshot #{k}) is not proven: its entry is not in the bundle"),
            );
        }
        let in_window = ts <= self.to;
        if idx != self.last_snapshot + 1 {
            self.replay_broken = true;
            let last = self.last_snapshot;
            let what = if idx > last + 1 {
                if idx == last + 2 {
                    format!(
                        "snapshot #{} is missing (the bundle goes from #{last} to #{idx})",
                        last + 1
                    )
                } else {
                    format!(
                        "snapshots #{}..#{} are missing (the bundle goes from #{last} to #{idx})",
                        last + 1,
                        idx - 1
                    )
                }
            } else {
                format!("snapshot #{idx} comes after #{last}: snapshots must follow one another")
            };
            self.problem(seq, what);
        }
        let changes = r.get("changes").and_then(Value::as_array);
        for ch in changes.into_iter().flatten() {
            let name = str_of(ch, "name").unwrap_or_default();
            let fp = str_of(ch, "fingerprint").unwrap_or_default();
            let was = ch.get("was").and_then(Value::as_u64).unwrap_or(0) as u32;
            let now = ch.get("now").and_then(Value::as_u64).unwrap_or(0) as u32;
            let k = key(name, fp);
            let had = self.counts.0.get(&k).copied().unwrap_or(0);
            if !self.replay_broken && had != was {
                self.replay_broken = true;
                self.problem(
                    seq,
                    format!(
                        "snapshot #{idx} says '{name}' had {was} instance(s) before it, the replay has {had}"
                    ),
                );
            }
            if now == 0 {
                self.counts.0.remove(&k);
            } else {
                self.counts.0.insert(k, now);
                if in_window {
                    let ra = RanArtifact {
                        name: name.to_string(),
                        fingerprint: fp.to_string(),
                    };
                    self.ran.entry(ra).or_insert((idx, ts));
                    if self.absent.as_deref() == Some(fp) && self.f.absent_refuted.is_none() {
                        self.f.absent_refuted = Some(format!(
                            "it ran as '{name}' from {} (snapshot #{idx}, entry {seq})",
                            time(ts)
                        ));
                    }
                }
            }
        }
        if !self.replay_broken && self.counts.digest() != digest {
            self.replay_broken = true;
            self.problem(
                seq,
                format!(
                    "what runs after snapshot #{idx}, replayed, is not what its entry's digest says"
                ),
            );
        }
        self.last_snapshot = self.last_snapshot.max(idx);
        if in_window {
            self.f.snapshots += 1;
            self.f.last_snapshot = self.last_snapshot;
        }
        self.observe(seq, ts, r);
    }

    fn heartbeat(&mut self, seq: u64, ts: i64, r: &Value) {
        if self.closed {
            return;
        }
        let idx = r.get("snapshot").and_then(Value::as_u64).unwrap_or(0);
        if idx != self.last_snapshot {
            self.replay_broken = true;
            let last = self.last_snapshot;
            self.problem(
                seq,
                format!(
                    "a report at {} found snapshot #{idx} in force, but the bundle's last snapshot is #{last}{}",
                    time(ts),
                    if idx > last { ": a snapshot is missing" } else { "" }
                ),
            );
            self.last_snapshot = self.last_snapshot.max(idx);
        }
        self.observe(seq, ts, r);
    }

    /// Coverage: the time from one report to the next is covered when
    /// both were complete and the next came within the first's promise.
    fn observe(&mut self, seq: u64, ts: i64, r: &Value) {
        if self.closed {
            return;
        }
        self.f.observations += 1;
        let partial: Vec<String> = r
            .get("unobserved")
            .and_then(Value::as_array)
            .map(|u| {
                u.iter()
                    .filter_map(|x| str_of(x, "scope").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let now = Observation {
            seq,
            ts,
            interval_ms: r.get("interval_ms").and_then(Value::as_i64),
            partial,
        };
        if let Some(prev) = self.prev.take() {
            let late = now.ts - prev.ts;
            let promised = prev.interval_ms.unwrap_or(0);
            if !prev.partial.is_empty() {
                self.pending_why = Some(format!(
                    "the report at {} (entry {}) was partial: {} not observed",
                    time(prev.ts),
                    prev.seq,
                    prev.partial.join(", ")
                ));
            } else if !now.partial.is_empty() {
                // A partial report covers nothing, not even its own moment.
            } else if !in_time(prev.ts, promised, now.ts) {
                self.pending_why = Some(match prev.interval_ms {
                    Some(i) if i > 0 => format!(
                        "no report for {} after the one at {} (entry {}), which promised one every {}",
                        duration(late),
                        time(prev.ts),
                        prev.seq,
                        duration(i)
                    ),
                    _ => format!(
                        "no report for {} after the one at {} (entry {}), which promised no next one",
                        duration(late),
                        time(prev.ts),
                        prev.seq
                    ),
                });
            } else {
                self.covered(prev.ts, now.ts);
            }
        } else if ts > self.from {
            self.pending_why = Some(format!("no report before {} (entry {seq})", time(ts)));
        }
        if ts >= self.to {
            self.closed = true;
        }
        self.prev = Some(now);
    }

    fn covered(&mut self, start: i64, end: i64) {
        let (start, end) = (start.max(self.from), end.min(self.to));
        if end < start {
            return;
        }
        if start > self.cursor {
            let why = self
                .pending_why
                .take()
                .unwrap_or_else(|| "no report".to_string());
            self.gap(self.cursor, start, why);
        }
        self.pending_why = None;
        self.cursor = self.cursor.max(end);
    }

    fn gap(&mut self, from: i64, to: i64, why: String) {
        if self.f.gaps.len() < MAX_GAPS_LISTED {
            self.f.gaps.push(Gap { from, to, why });
        } else {
            self.f.gaps_unlisted += 1;
        }
    }

    fn evaluation(&mut self, seq: u64, r: &Value, doc: Option<&str>) {
        self.f.evaluations += 1;
        let status = str_of(r, "status").unwrap_or_default().to_string();
        if status != "COMPLIANT" {
            self.f.non_compliant_evaluations += 1;
        }
        self.f.latest_evaluation = Some(EvaluationSeen {
            seq,
            status,
            snapshot: r.get("snapshot").and_then(Value::as_i64).unwrap_or(0),
        });
        match doc {
            None => self.problem(seq, "the evaluation's document is not in the bundle".into()),
            Some(d) => {
                if str_of(r, "doc_sha256")
                    != Some(hex::encode(Sha256::digest(d.as_bytes())).as_str())
                {
                    self.problem(
                        seq,
                        "the evaluation's document is not the one its entry commits to (SHA-256 differs)"
                            .into(),
                    );
                }
            }
        }
        for p in r
            .get("policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(name), Some(version), Some(sha)) = (
                str_of(p, "name"),
                p.get("version").and_then(Value::as_i64),
                str_of(p, "sha256"),
            ) {
                self.policies_needed
                    .entry((name.into(), version, sha.into()))
                    .or_insert(seq);
            }
        }
    }

    fn policy(&mut self, seq: u64, r: &Value) {
        self.f.policies += 1;
        let (Some(name), Some(version), Some(sha), Some(content)) = (
            str_of(r, "name"),
            r.get("version").and_then(Value::as_i64),
            str_of(r, "sha256"),
            str_of(r, "content"),
        ) else {
            self.problem(
                seq,
                "a policy entry without its name, version, digest or text".into(),
            );
            return;
        };
        if hex::encode(Sha256::digest(content.as_bytes())) != sha {
            self.problem(
                seq,
                format!(
                    "policy '{name}' v{version}: its text does not have the digest its entry says"
                ),
            );
        }
        self.policies_seen
            .insert((name.into(), version, sha.into()));
    }

    fn artifact(&mut self, seq: u64, r: &Value) {
        let fp = str_of(r, "fingerprint").unwrap_or_default();
        let flow = str_of(r, "flow").unwrap_or_default();
        if !fp.is_empty() && self.flow.as_deref().is_none_or(|f| f == flow) {
            self.provenance.insert(fp.to_string());
        }
        self.need_trail(seq, r);
    }

    /// Ends the replay.
    pub fn finish(mut self) -> Findings {
        if !self.start_proven {
            let k = self.start_snapshot;
            self.f.problems.push(Problem {
                seq: None,
                what: format!(
                    "the starting state (snapshot #{k}) is not proven: its entry is not in the bundle"
                ),
            });
        }
        if self.name_at + 1 < self.names.len() {
            let missing = self.names[self.name_at + 1].clone();
            let at = self.current_name().to_string();
            self.f.problems.push(Problem {
                seq: None,
                what: format!(
                    "the manifest says '{at}' became '{missing}', but no entry of the bundle renames it"
                ),
            });
        }
        // The tail: only a report at or after the window's end proves that
        // no snapshot came after the bundle's last one (the exporter ends
        // the window at the last report its checkpoint holds).
        if let Some(last) = self.prev.take() {
            if last.partial.is_empty() {
                self.covered(last.ts, last.ts);
            } else {
                self.pending_why = Some(format!(
                    "the report at {} (entry {}) was partial: {} not observed",
                    time(last.ts),
                    last.seq,
                    last.partial.join(", ")
                ));
            }
            if self.cursor < self.to {
                let why = self.pending_why.take().unwrap_or_else(|| {
                    format!(
                        "the record ends with the report at {} (entry {}): nothing in the bundle shows what ran after it",
                        time(last.ts),
                        last.seq
                    )
                });
                self.gap(self.cursor, self.to, why);
            }
        } else {
            self.gap(
                self.from,
                self.to,
                "no report of the environment is in the bundle".into(),
            );
        }
        for ((flow, trail), seq) in std::mem::take(&mut self.trails_needed) {
            if !self.trails_seen.contains(&(flow.clone(), trail.clone())) {
                self.problem(
                    seq,
                    format!("the entry names trail '{trail}' of flow '{flow}', whose entry is not in the bundle"),
                );
            }
        }
        for (att, seq) in std::mem::take(&mut self.attestations_needed) {
            if !self.attestations_seen.contains(&att) {
                self.problem(
                    seq,
                    format!("evidence of attestation {att}, whose entry is not in the bundle"),
                );
            }
        }
        for ((name, version, _), seq) in std::mem::take(&mut self.policies_needed) {
            if !self
                .policies_seen
                .iter()
                .any(|(n, v, _)| *n == name && *v == version)
            {
                self.problem(
                    seq,
                    format!("the evaluation used policy '{name}' v{version}, whose entry is not in the bundle"),
                );
            }
        }
        for (ra, (snapshot, at)) in std::mem::take(&mut self.ran) {
            let provenance =
                !ra.fingerprint.is_empty() && self.provenance.contains(&ra.fingerprint);
            if !provenance {
                self.f.unknown.push(ra.clone());
            }
            self.f.ran.push(Ran {
                name: ra.name,
                fingerprint: ra.fingerprint,
                snapshot,
                at,
                provenance,
            });
        }
        if let Some(fp) = &self.absent
            && self.f.absent_refuted.is_none()
            && let Some(r) = self.f.ran.iter().find(|r| &r.fingerprint == fp)
        {
            self.f.absent_refuted = Some(format!(
                "it was running as '{}' when the window began (snapshot #{})",
                r.name, r.snapshot
            ));
        }
        self.f
    }
}
