//! Environment policies: Kosli's policy v1 YAML, checked whole when it is
//! read (unknown keys, bad expressions, impossible rules refused with their
//! line), kept as typed rules.
//!
//! ```yaml
//! _schema: https://docs.kosli.com/schemas/policy/v1
//! artifacts:
//!   provenance:
//!     required: true
//!     exceptions:
//!       - if: ${{ matches(artifact.name, "^datadog:.*") }}
//!   trail-compliance:
//!     required: true
//!   attestations:
//!     - name: unit-tests
//!       type: junit
//!       if: ${{ flow.tags.risk-level == "high" }}
//!     - type: decision
//!       for_control: RCTL-043
//! ```

use std::fmt;

use custody_domain::names;
use custody_domain::template::{TemplateType, null_as_default};
use serde::{Deserialize, Deserializer};

use crate::expr::{Expr, parse_wrapped};

/// A condition: an expression that must be true or false.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub text: String,
    pub expr: Expr,
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let expr = parse_wrapped(&text).map_err(serde::de::Error::custom)?;
        Ok(Condition { text, expr })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "_schema", deserialize_with = "schema_v1")]
    pub schema: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: ArtifactRules,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRules {
    #[serde(default, deserialize_with = "null_as_default")]
    pub provenance: BooleanRule,
    #[serde(
        rename = "trail-compliance",
        default,
        deserialize_with = "null_as_default"
    )]
    pub trail_compliance: BooleanRule,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<AttestationRule>,
}

/// `required`, waived for artifacts that match an exception.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooleanRule {
    #[serde(default)]
    pub required: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    #[serde(rename = "if")]
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRule {
    /// `*` for any name.
    #[serde(default = "any_name", deserialize_with = "rule_name")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: TemplateType,
    #[serde(rename = "if", default)]
    pub condition: Option<Condition>,
    #[serde(default = "yes")]
    pub must_be_compliant: bool,
    /// With `type: decision`: the control the decision must be for.
    #[serde(default)]
    pub for_control: Option<String>,
}

fn any_name() -> String {
    "*".into()
}

fn yes() -> bool {
    true
}

fn rule_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s != "*" {
        names::validate("attestation name", &s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

/// Kosli publishes the schema under two URIs; only version 1 exists.
fn schema_v1<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let version = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if !(s.starts_with("https://") || s.starts_with("http://")) || !version.starts_with('v') {
        return Err(serde::de::Error::custom(format!(
            "_schema '{s}' is not a policy schema URI such as https://docs.kosli.com/schemas/policy/v1"
        )));
    }
    if version != "v1" {
        return Err(serde::de::Error::custom(format!(
            "_schema '{s}': policy schema {version} is not supported, only v1"
        )));
    }
    Ok(s)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(pub String);

impl fmt::Display for AttestationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (type: {})", self.name, self.kind)?;
        if let Some(c) = &self.for_control {
            write!(f, " for control {c}")?;
        }
        Ok(())
    }
}

impl Policy {
    /// Parses and checks a policy. Errors carry the line and column of what
    /// is wrong.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        if text.trim().is_empty() {
            return Err(PolicyError(
                "the policy is empty: it needs at least `_schema: https://docs.kosli.com/schemas/policy/v1`".into(),
            ));
        }
        let p: Policy = serde_norway::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        for (i, r) in p.artifacts.attestations.iter().enumerate() {
            let at = format!("artifacts.attestations[{i}]");
            if r.name == "*" && matches!(r.kind, TemplateType::Any) {
                return Err(PolicyError(format!(
                    "{at}: name and type cannot both be '*'"
                )));
            }
            let is_decision = r.kind.to_string() == "decision";
            match (&r.for_control, is_decision) {
                (Some(_), false) => {
                    return Err(PolicyError(format!(
                        "{at}: for_control goes only with type: decision"
                    )));
                }
                (Some(c), true) if c.trim().is_empty() => {
                    return Err(PolicyError(format!("{at}: for_control is empty")));
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The controls the policy names, which must exist.
    pub fn controls(&self) -> impl Iterator<Item = &str> {
        self.artifacts
            .attestations
            .iter()
            .filter_map(|r| r.for_control.as_deref())
    }

    /// Whether the policy asks for anything at all.
    pub fn is_empty(&self) -> bool {
        let a = &self.artifacts;
        !a.provenance.required && !a.trail_compliance.required && a.attestations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KOSLI_EXAMPLE: &str = r#"_schema: https://docs.kosli.com/schemas/policy/v1
artifacts:
  provenance:
    required: true
    exceptions:
      - if: ${{ matches(artifact.name, "^datadog:.*") }}
  trail-compliance:
    required: true
  attestations:
    - name: "*"
      type: pull_request
    - name: unit-tests
      type: junit
      if: ${{ flow.tags.risk-level == "high" }}
    - type: decision
      for_control: RCTL-043
"#;

    #[test]
    fn kosli_example_parses() {
        let p = Policy::from_yaml(KOSLI_EXAMPLE).unwrap();
        assert!(p.artifacts.provenance.required);
        assert_eq!(p.artifacts.provenance.exceptions.len(), 1);
        assert!(p.artifacts.trail_compliance.required);
        let a = &p.artifacts.attestations;
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].name, "*");
        assert!(a[1].condition.is_some() && a[1].must_be_compliant);
        assert_eq!(a[2].name, "*");
        assert_eq!(p.controls().collect::<Vec<_>>(), vec!["RCTL-043"]);
        // The older URI is in use too.
        let old = "_schema: https://kosli.com/schemas/policy/environment/v1\n";
        assert!(Policy::from_yaml(old).unwrap().is_empty());
    }

    #[test]
    fn bad_policies_are_refused_with_their_place() {
        let cases = [
            ("", "is empty"),
            ("artifacts: {}\n", "missing field `_schema`"),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v2\n",
                "only v1",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifact: {}\n",
                "unknown field `artifact`",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n    exeptions: []\n",
                "unknown field `exeptions`",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - name: '*'\n      type: '*'\n",
                "cannot both be '*'",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - type: junit\n      for_control: C-1\n",
                "for_control goes only with type: decision",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - type: nonsense\n",
                "unknown attestation type 'nonsense'",
            ),
            (
                "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    exceptions:\n      - if: ${{ flow.nme == 'x' }}\n",
                "unknown name 'flow.nme'",
            ),
        ];
        for (text, says) in cases {
            let e = Policy::from_yaml(text).unwrap_err();
            assert!(e.0.contains(says), "{text:?}: {e}");
        }
        // Errors in the document point at the line.
        let e = Policy::from_yaml(
            "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    exceptions:\n      - if: ${{ flow.nme == 'x' }}\n",
        )
        .unwrap_err();
        assert!(e.0.contains("line 5"), "{e}");
    }
}
