//! Flow templates: Kosli's flow-template v1 YAML, which says what evidence a
//! trail and each of its artifacts must carry.
//!
//! ```yaml
//! version: 1
//! trail:
//!   attestations:
//!   - name: jira-ticket
//!     type: jira
//!   artifacts:
//!   - name: backend
//!     attestations:
//!     - name: unit-tests
//!       type: junit
//! ```

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attestation::AttestationKind;
use crate::names;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FlowTemplate {
    #[serde(deserialize_with = "version_one")]
    pub version: u32,
    #[serde(default, deserialize_with = "null_as_default")]
    pub trail: TrailTemplate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrailTemplate {
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<Requirement>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: Vec<ArtifactTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactTemplate {
    #[serde(deserialize_with = "valid_name")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<Requirement>,
}

/// One required attestation: a name and the type it must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    #[serde(deserialize_with = "valid_name")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: TemplateType,
    /// For `pull_request`: approvals needed by someone other than the
    /// author, when the attestation does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
    /// An override of this attestation must be made by another account
    /// than the one that reported what it overrides.
    #[serde(
        default,
        rename = "four-eyes",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub four_eyes: bool,
}

/// The `type` of a requirement: a concrete kind, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateType {
    Any,
    Kind(AttestationKind),
}

impl TemplateType {
    pub fn matches(&self, kind: &AttestationKind) -> bool {
        match self {
            TemplateType::Any => true,
            TemplateType::Kind(k) => k == kind,
        }
    }
}

impl fmt::Display for TemplateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateType::Any => f.write_str("*"),
            TemplateType::Kind(k) => write!(f, "{k}"),
        }
    }
}

impl Serialize for TemplateType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TemplateType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "*" {
            return Ok(TemplateType::Any);
        }
        AttestationKind::parse(&s)
            .map(TemplateType::Kind)
            .map_err(serde::de::Error::custom)
    }
}

fn version_one<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 1 {
        Ok(1)
    } else {
        Err(serde::de::Error::custom(format!(
            "unsupported template version {v}: only version 1 exists"
        )))
    }
}

fn valid_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    names::validate("name", &s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// For YAML documents: a key written with no value (`attestations:`) is the
/// same as one left out. Policies read their YAML the same way.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty: it needs at least `version: 1`")]
    Empty,
    #[error("invalid template: {0}")]
    Yaml(String),
    #[error("invalid template: {0}")]
    Duplicate(String),
}

impl FlowTemplate {
    /// Parses and validates template YAML. Errors name the field and, for
    /// YAML-level problems, the line and column.
    pub fn from_yaml(text: &str) -> Result<Self, TemplateError> {
        let meaningful = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !meaningful {
            return Err(TemplateError::Empty);
        }
        let t: FlowTemplate =
            serde_norway::from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        t.check_duplicates()?;
        t.check_approvals()?;
        Ok(t)
    }

    /// `approvals` is said of pull requests only.
    fn check_approvals(&self) -> Result<(), TemplateError> {
        let pr = AttestationKind::BuiltIn("pull_request");
        for (r, at) in self.requirements() {
            if r.approvals.is_some() && !r.kind.matches(&pr) {
                return Err(TemplateError::Yaml(format!(
                    "{at}: 'approvals' is for type pull_request, not {}",
                    r.kind
                )));
            }
        }
        Ok(())
    }

    /// Every requirement, with where it is: `'tests'` or `'tests' on artifact 'app'`.
    pub fn requirements(&self) -> impl Iterator<Item = (&Requirement, String)> {
        let trail = self
            .trail
            .attestations
            .iter()
            .map(|r| (r, format!("'{}'", r.name)));
        let artifacts = self.trail.artifacts.iter().flat_map(|a| {
            a.attestations
                .iter()
                .map(move |r| (r, format!("'{}' on artifact '{}'", r.name, a.name)))
        });
        trail.chain(artifacts)
    }

    /// The requirement an attestation of this name answers: on the trail,
    /// or on the artifact of that template name.
    pub fn requirement(&self, artifact: Option<&str>, name: &str) -> Option<&Requirement> {
        let list = match artifact {
            None => &self.trail.attestations,
            Some(a) => &self.artifact(a)?.attestations,
        };
        list.iter().find(|r| r.name == name)
    }

    /// The template that requires nothing.
    pub fn empty() -> Self {
        FlowTemplate {
            version: 1,
            trail: TrailTemplate::default(),
        }
    }

    fn check_duplicates(&self) -> Result<(), TemplateError> {
        unique(
            self.trail.attestations.iter().map(|r| r.name.as_str()),
            "trail.attestations",
        )?;
        unique(
            self.trail.artifacts.iter().map(|a| a.name.as_str()),
            "trail.artifacts",
        )?;
        for a in &self.trail.artifacts {
            unique(
                a.attestations.iter().map(|r| r.name.as_str()),
                &format!("trail.artifacts[{}].attestations", a.name),
            )?;
        }
        Ok(())
    }

    pub fn artifact(&self, name: &str) -> Option<&ArtifactTemplate> {
        self.trail.artifacts.iter().find(|a| a.name == name)
    }

    /// Every custom type the template requires, with where: the custom
    /// type's name and `'tests'` or `'tests' on artifact 'app'`.
    pub fn custom_types(&self) -> Vec<(&str, String)> {
        self.requirements()
            .filter_map(|(r, at)| match &r.kind {
                TemplateType::Kind(AttestationKind::Custom(t)) => Some((t.as_str(), at)),
                _ => None,
            })
            .collect()
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, at: &str) -> Result<(), TemplateError> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(TemplateError::Duplicate(format!(
                "{at}: name '{n}' appears more than once"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
# yaml-language-server: $schema=https://docs.kosli.com/schemas/flow-template/v1.json
version: 1
trail:
  attestations:
  - name: jira-ticket
    type: jira
  - name: review
    type: decision
  artifacts:
  - name: backend
    attestations:
    - name: unit-tests
      type: junit
    - name: anything
      type: "*"
  - name: frontend
    attestations:
    - name: coverage-metrics
      type: custom:coverage-metrics
"#;

    #[test]
    fn parses_the_documented_example() {
        let t = FlowTemplate::from_yaml(EXAMPLE).unwrap();
        assert_eq!(t.trail.attestations.len(), 2);
        assert_eq!(t.trail.artifacts[0].attestations[1].kind, TemplateType::Any);
        assert_eq!(
            t.trail.artifacts[1].attestations[0].kind,
            TemplateType::Kind(AttestationKind::Custom("coverage-metrics".into()))
        );
        // Round trip through the JSON form the store keeps.
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<FlowTemplate>(&json).unwrap(), t);
    }

    #[test]
    fn minimal_and_null_trail() {
        assert_eq!(
            FlowTemplate::from_yaml("version: 1").unwrap(),
            FlowTemplate::empty()
        );
        assert_eq!(
            FlowTemplate::from_yaml("version: 1\ntrail:\n").unwrap(),
            FlowTemplate::empty()
        );
    }

    #[test]
    fn rejects_with_location() {
        let e = FlowTemplate::from_yaml(
            "version: 1\ntrail:\n  attestations:\n  - name: x\n    type: not-supported\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown attestation type 'not-supported'"),
            "{e}"
        );
        assert!(e.contains("line 4"), "{e}");

        let e = FlowTemplate::from_yaml("version: 1\ntrail:\n  atestations: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `atestations`"), "{e}");
        assert!(e.contains("line 3"), "{e}");

        let e = FlowTemplate::from_yaml("version: 2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported template version 2"), "{e}");
        assert!(FlowTemplate::from_yaml("trail: {}").is_err());
        assert!(FlowTemplate::from_yaml("").is_err());
        assert!(FlowTemplate::from_yaml("version: 1\n  bad: [").is_err());
    }

    #[test]
    fn rejects_duplicates() {
        let e =
            FlowTemplate::from_yaml("version: 1\ntrail:\n  artifacts:\n  - name: a\n  - name: a\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("trail.artifacts: name 'a' appears more than once"),
            "{e}"
        );
    }

    #[test]
    fn approvals_and_four_eyes() {
        let t = FlowTemplate::from_yaml(
            "version: 1\ntrail:\n  attestations:\n  - name: pr\n    type: pull_request\n    approvals: 2\n    four-eyes: true\n  artifacts:\n  - name: app\n    attestations:\n    - name: tests\n      type: junit\n",
        )
        .unwrap();
        let pr = t.requirement(None, "pr").unwrap();
        assert_eq!((pr.approvals, pr.four_eyes), (Some(2), true));
        let tests = t.requirement(Some("app"), "tests").unwrap();
        assert_eq!((tests.approvals, tests.four_eyes), (None, false));
        assert!(t.requirement(None, "tests").is_none());
        let e = FlowTemplate::from_yaml(
            "version: 1\ntrail:\n  artifacts:\n  - name: app\n    attestations:\n    - name: tests\n      type: junit\n      approvals: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "'tests' on artifact 'app': 'approvals' is for type pull_request, not junit"
            ),
            "{e}"
        );
    }
}
