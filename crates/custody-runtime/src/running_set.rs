//! The set of what runs in an environment, and how two such sets differ.
//!
//! What counts as a change is the set of artifacts (name and fingerprint)
//! and how many instances of each run. Which pod or container an instance
//! is does not: a pod replaced by its deployment is not a change of what
//! runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::report::Instance;

/// What identifies a running artifact in an environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ArtifactKey {
    pub name: String,
    /// Empty when the platform gave no digest.
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    pub instances: Vec<Instance>,
}

impl Running {
    pub fn count(&self) -> u32 {
        u32::try_from(self.instances.len()).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningSet(BTreeMap<ArtifactKey, Running>);

impl RunningSet {
    pub fn add(&mut self, key: ArtifactKey, instances: impl IntoIterator<Item = Instance>) {
        self.0.entry(key).or_default().instances.extend(instances);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &ArtifactKey) -> Option<&Running> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ArtifactKey, &Running)> {
        self.0.iter()
    }

    pub fn instance_count(&self) -> u64 {
        self.0.values().map(|r| u64::from(r.count())).sum()
    }

    /// Artifact → instance count: all that decides whether a report is a
    /// change.
    pub fn counts(&self) -> Counts {
        Counts(self.0.iter().map(|(k, r)| (k.clone(), r.count())).collect())
    }

    /// SHA-256 of the counts in a fixed order: equal iff the counts are.
    /// Stored with the environment, it tells an unchanged report without
    /// reading what ran before.
    pub fn digest(&self) -> String {
        self.counts().digest()
    }
}

/// Artifact → number of running instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<ArtifactKey, u32>);

impl Counts {
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (k, n) in &self.0 {
            // Lengths first: no name can be confused with another by
            // containing the separator.
            h.update((k.name.len() as u64).to_be_bytes());
            h.update(k.name.as_bytes());
            h.update((k.fingerprint.len() as u64).to_be_bytes());
            h.update(k.fingerprint.as_bytes());
            h.update(n.to_be_bytes());
        }
        hex::encode(h.finalize())
    }

    /// What changed from `self` to `next`, in artifact order.
    pub fn changes_to(&self, next: &Counts) -> Vec<Change> {
        let mut out = vec![];
        for (k, &was) in &self.0 {
            let now = next.0.get(k).copied().unwrap_or(0);
            if now != was {
                out.push(Change {
                    key: k.clone(),
                    was,
                    now,
                });
            }
        }
        for (k, &now) in &next.0 {
            if !self.0.contains_key(k) {
                out.push(Change {
                    key: k.clone(),
                    was: 0,
                    now,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// One artifact's instance count changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: ArtifactKey,
    pub was: u32,
    pub now: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Started,
    Stopped,
    Scaled,
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        change_kind(self.was, self.now)
    }

    pub fn describe(&self) -> String {
        describe(self.was, self.now)
    }
}

pub fn change_kind(was: u32, now: u32) -> ChangeKind {
    match (was, now) {
        (0, _) => ChangeKind::Started,
        (_, 0) => ChangeKind::Stopped,
        _ => ChangeKind::Scaled,
    }
}

/// "2 instances started running (from 0 to 2)", as Kosli words it.
pub fn describe(was: u32, now: u32) -> String {
    let n = was.abs_diff(now);
    let noun = if n == 1 { "instance" } else { "instances" };
    match change_kind(was, now) {
        ChangeKind::Started => format!("{n} {noun} started running (from 0 to {now})"),
        ChangeKind::Stopped => format!("{n} {noun} stopped running (from {was} to 0)"),
        ChangeKind::Scaled => format!("scaled from {was} to {now}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(name: &str) -> ArtifactKey {
        ArtifactKey {
            name: name.into(),
            fingerprint: "f".repeat(64),
        }
    }

    fn counts(pairs: &[(&str, u32)]) -> Counts {
        Counts(pairs.iter().map(|(n, c)| (key(n), *c)).collect())
    }

    #[test]
    fn changes_are_started_stopped_and_scaled() {
        let a = counts(&[("web", 2), ("db", 1), ("cache", 1)]);
        let b = counts(&[("web", 3), ("cache", 1), ("worker", 1)]);
        let got: Vec<_> = a
            .changes_to(&b)
            .iter()
            .map(|c| (c.key.name.clone(), c.kind(), c.was, c.now))
            .collect();
        assert_eq!(
            got,
            vec![
                ("db".into(), ChangeKind::Stopped, 1, 0),
                ("web".into(), ChangeKind::Scaled, 2, 3),
                ("worker".into(), ChangeKind::Started, 0, 1),
            ]
        );
        assert_eq!(describe(0, 1), "1 instance started running (from 0 to 1)");
        assert_eq!(describe(3, 0), "3 instances stopped running (from 3 to 0)");
    }

    #[test]
    fn digests_separate_names_that_would_run_together() {
        let a = Counts(
            [(
                ArtifactKey {
                    name: "ab".into(),
                    fingerprint: "c".into(),
                },
                1,
            )]
            .into(),
        );
        let b = Counts(
            [(
                ArtifactKey {
                    name: "a".into(),
                    fingerprint: "bc".into(),
                },
                1,
            )]
            .into(),
        );
        assert_ne!(a.digest(), b.digest());
    }

    proptest! {
        #[test]
        fn digest_is_equal_iff_counts_are(
            a in prop::collection::btree_map("[a-c]{1,2}", 1u32..4, 0..5),
            b in prop::collection::btree_map("[a-c]{1,2}", 1u32..4, 0..5),
        ) {
            let ca = Counts(a.iter().map(|(n, c)| (key(n), *c)).collect());
            let cb = Counts(b.iter().map(|(n, c)| (key(n), *c)).collect());
            prop_assert_eq!(ca.digest() == cb.digest(), ca == cb);
            prop_assert_eq!(ca.changes_to(&cb).is_empty(), ca == cb);
        }
    }
}
