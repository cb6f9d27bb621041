//! What a reporter sends: the workloads it saw running in one environment
//! at one moment, and how often it reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kind::EnvironmentKind;
use crate::running_set::{ArtifactKey, RunningSet};

/// Bounds on one report, so that a broken or hostile reporter cannot make
/// the server store or index without limit.
pub const MAX_ARTIFACTS: usize = 100_000;
pub const MAX_NAME: usize = 1024;
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE: usize = 1024;
pub const MAX_WARNINGS: usize = 1000;

/// One observation of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The type of environment the reporter observed; it must be the
    /// environment's type.
    #[serde(rename = "type")]
    pub kind: EnvironmentKind,
    /// Every workload running, each with its instances. An empty list is a
    /// report that nothing runs.
    pub artifacts: Vec<ObservedArtifact>,
    /// How often this reporter reports, in seconds: the environment counts
    /// as observed from this report until the next, if that comes in time.
    /// One-shot reports leave it out and cover only their own moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    /// What the reporter noticed (a container recorded without a
    /// fingerprint): kept with the report, never fatal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the reporter could not observe (a namespace it may not list,
    /// a cluster that did not answer). The report then says nothing of
    /// those parts: it is stored as a partial observation, and the
    /// environment counts as not observed until a complete report comes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unobserved: Vec<Unobserved>,
    /// Who reported: a host name, a pod name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
}

/// A part of the environment a reporter could not see, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unobserved {
    /// What could not be observed: `namespace staging-eu`, `cluster prod`.
    pub scope: String,
    /// Why: the platform's answer.
    pub reason: String,
}

/// A workload: what runs (name and fingerprint) and where (instances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservedArtifact {
    /// An image reference as started (`nginx:1.25`), a function, bucket or
    /// path artifact name.
    pub name: String,
    /// SHA-256 of the artifact, 64 lower-case hex. Absent only when the
    /// platform does not say (an ECS task whose image has no digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub instances: Vec<Instance>,
}

/// One running copy: a container, a pod, a task, a function, a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Container name, pod name, task ARN, function name or path.
    pub id: String,
    /// When it started, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Where it runs: `namespace`, `owner`, `cluster`, `service`, `node`...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the report has {0} artifacts; at most {MAX_ARTIFACTS} are accepted")]
    TooManyArtifacts(usize),
    #[error("artifacts[{index}]: {problem}")]
    Artifact { index: usize, problem: String },
    #[error("the report has {0} warnings; at most {MAX_WARNINGS} are accepted")]
    TooManyWarnings(usize),
    #[error("the report has {0} unobserved parts; at most {MAX_WARNINGS} are accepted")]
    TooManyUnobserved(usize),
    #[error("unobserved[{index}]: {problem}")]
    Unobserved { index: usize, problem: String },
    #[error("interval_s must be between 1 and 86400 seconds, not {0}")]
    Interval(u64),
}

impl Report {
    /// Checks the report: sizes, fingerprints, names, instances.
    pub fn validate(&self) -> Result<(), ReportError> {
        if self.artifacts.len() > MAX_ARTIFACTS {
            return Err(ReportError::TooManyArtifacts(self.artifacts.len()));
        }
        if self.warnings.len() > MAX_WARNINGS {
            return Err(ReportError::TooManyWarnings(self.warnings.len()));
        }
        if self.unobserved.len() > MAX_WARNINGS {
            return Err(ReportError::TooManyUnobserved(self.unobserved.len()));
        }
        for (index, u) in self.unobserved.iter().enumerate() {
            let bad = |problem: String| ReportError::Unobserved { index, problem };
            check_text("scope", &u.scope).map_err(bad)?;
            if u.reason.len() > MAX_ATTRIBUTE {
                return Err(bad(format!("reason is longer than {MAX_ATTRIBUTE} bytes")));
            }
        }
        if let Some(i) = self.interval_s
            && !(1..=86_400).contains(&i)
        {
            return Err(ReportError::Interval(i));
        }
        for (index, a) in self.artifacts.iter().enumerate() {
            let bad = |problem: String| ReportError::Artifact { index, problem };
            check_text("name", &a.name).map_err(bad)?;
            if let Some(f) = &a.fingerprint
                && custody_domain::Fingerprint::parse(f).is_err()
            {
                return Err(bad(format!(
                    "fingerprint '{f}' of '{}' is not 64 lower-case hex characters",
                    a.name
                )));
            }
            if a.instances.is_empty() {
                return Err(bad(format!("'{}' has no instances", a.name)));
            }
            for inst in &a.instances {
                check_text("instance id", &inst.id).map_err(bad)?;
                if inst.attributes.len() > MAX_ATTRIBUTES {
                    return Err(bad(format!(
                        "instance '{}' has more than {MAX_ATTRIBUTES} attributes",
                        inst.id
                    )));
                }
                for (k, v) in &inst.attributes {
                    check_text("attribute name", k).map_err(bad)?;
                    if v.len() > MAX_ATTRIBUTE {
                        return Err(bad(format!(
                            "attribute '{k}' of instance '{}' is longer than {MAX_ATTRIBUTE} bytes",
                            inst.id
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the report and folds its workloads into the set of what runs,
    /// moving them (a large report is not copied). The same workload listed
    /// twice (two containers of one image) is one artifact with both
    /// instances.
    pub fn into_running_set(self) -> Result<RunningSet, ReportError> {
        self.validate()?;
        let mut set = RunningSet::default();
        for a in self.artifacts {
            set.add(
                ArtifactKey {
                    name: a.name,
                    fingerprint: a.fingerprint.unwrap_or_default(),
                },
                a.instances,
            );
        }
        Ok(set)
    }
}

fn check_text(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > MAX_NAME {
        return Err(format!("{what} is longer than {MAX_NAME} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{what} '{}' contains control characters",
            value.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn artifact(name: &str, f: Option<String>, ids: &[&str]) -> ObservedArtifact {
        ObservedArtifact {
            name: name.into(),
            fingerprint: f,
            instances: ids
                .iter()
                .map(|id| Instance {
                    id: id.to_string(),
                    started_at: None,
                    attributes: BTreeMap::new(),
                })
                .collect(),
        }
    }

    fn report(artifacts: Vec<ObservedArtifact>) -> Report {
        Report {
            kind: EnvironmentKind::Docker,
            artifacts,
            interval_s: None,
            warnings: vec![],
            unobserved: vec![],
            reporter: None,
        }
    }

    #[test]
    fn duplicates_fold_into_one_artifact_with_every_instance() {
        let r = report(vec![
            artifact("web:1", Some(fp('a')), &["c1"]),
            artifact("db:2", Some(fp('b')), &["c2"]),
            artifact("web:1", Some(fp('a')), &["c3", "c4"]),
        ]);
        let set = r.into_running_set().unwrap();
        assert_eq!(set.len(), 2);
        let web = set
            .get(&ArtifactKey {
                name: "web:1".into(),
                fingerprint: fp('a'),
            })
            .unwrap();
        assert_eq!(web.instances.len(), 3);
    }

    #[test]
    fn bad_entries_are_named_by_position() {
        let e = report(vec![
            artifact("ok", Some(fp('a')), &["x"]),
            artifact("web", Some("ABC".into()), &["x"]),
        ])
        .into_running_set()
        .unwrap_err();
        assert!(
            e.to_string().starts_with("artifacts[1]: fingerprint 'ABC'"),
            "{e}"
        );
        let e = report(vec![artifact("web", None, &[])])
            .into_running_set()
            .unwrap_err();
        assert!(e.to_string().contains("no instances"), "{e}");
        let e = report(vec![artifact("", None, &["x"])])
            .into_running_set()
            .unwrap_err();
        assert!(e.to_string().contains("name is empty"), "{e}");
        let mut r = report(vec![]);
        r.interval_s = Some(0);
        assert!(r.into_running_set().is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Report>(r#"{"type":"docker","artifacts":[],"colour":1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
