//! Attestation kinds and names.

use std::fmt;

use crate::names::{self, NameError};

/// The built-in evidence types, as named in templates, the CLI and the API.
pub const BUILT_IN_TYPES: &[&str] = &[
    "generic",
    "junit",
    "snyk",
    "sarif",
    "trivy",
    "grype",
    "sbom",
    "pull_request",
    "jira",
    "sonar",
    "decision",
    "intoto",
];

/// The type of a reported attestation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AttestationKind {
    /// One of [`BUILT_IN_TYPES`].
    BuiltIn(&'static str),
    /// A custom type created with `custody create attestation-type`.
    Custom(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error(
        "unknown attestation type '{0}': expected one of {types}, or custom:<type-name>",
        types = BUILT_IN_TYPES.join(", ")
    )]
    Unknown(String),
    #[error("invalid custom type: {0}")]
    BadCustom(NameError),
}

impl AttestationKind {
    pub fn parse(value: &str) -> Result<Self, KindError> {
        if let Some(name) = value.strip_prefix("custom:") {
            names::validate("attestation type name", name).map_err(KindError::BadCustom)?;
            return Ok(AttestationKind::Custom(name.to_string()));
        }
        BUILT_IN_TYPES
            .iter()
            .find(|t| **t == value)
            .map(|t| AttestationKind::BuiltIn(t))
            .ok_or_else(|| KindError::Unknown(value.to_string()))
    }

    pub fn generic() -> Self {
        AttestationKind::BuiltIn("generic")
    }
}

impl fmt::Display for AttestationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttestationKind::BuiltIn(t) => f.write_str(t),
            AttestationKind::Custom(n) => write!(f, "custom:{n}"),
        }
    }
}

impl fmt::Debug for AttestationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The `--name` of an attestation: `name` (on the trail, or on the artifact
/// given by fingerprint) or `artifact.name` (on the trail's artifact of that
/// template name, reported or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationName {
    pub artifact: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationNameError {
    #[error("attestation name '{0}' has more than one '.': use NAME or ARTIFACT.NAME")]
    TooManyDots(String),
    #[error("attestation name '{0}' has an empty side of '.': use NAME or ARTIFACT.NAME")]
    EmptySide(String),
    #[error(transparent)]
    Name(#[from] NameError),
}

impl AttestationName {
    pub fn parse(value: &str) -> Result<Self, AttestationNameError> {
        let parts: Vec<&str> = value.split('.').collect();
        match parts.as_slice() {
            [name] => {
                names::validate("attestation name", name)?;
                Ok(AttestationName {
                    artifact: None,
                    name: name.to_string(),
                })
            }
            [artifact, name] => {
                if artifact.is_empty() || name.is_empty() {
                    return Err(AttestationNameError::EmptySide(value.to_string()));
                }
                names::validate("artifact template name", artifact)?;
                names::validate("attestation name", name)?;
                Ok(AttestationName {
                    artifact: Some(artifact.to_string()),
                    name: name.to_string(),
                })
            }
            _ => Err(AttestationNameError::TooManyDots(value.to_string())),
        }
    }
}

impl fmt::Display for AttestationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.artifact {
            Some(a) => write!(f, "{a}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            AttestationKind::parse("generic").unwrap().to_string(),
            "generic"
        );
        assert_eq!(
            AttestationKind::parse("custom:coverage").unwrap(),
            AttestationKind::Custom("coverage".into())
        );
        assert!(AttestationKind::parse("not-supported").is_err());
        assert!(AttestationKind::parse("custom:").is_err());
        assert!(AttestationKind::parse("*").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(
            AttestationName::parse("unit-tests").unwrap(),
            AttestationName {
                artifact: None,
                name: "unit-tests".into()
            }
        );
        assert_eq!(
            AttestationName::parse("backend.unit-tests").unwrap(),
            AttestationName {
                artifact: Some("backend".into()),
                name: "unit-tests".into()
            }
        );
        assert!(matches!(
            AttestationName::parse("a.b.c"),
            Err(AttestationNameError::TooManyDots(_))
        ));
        assert!(matches!(
            AttestationName::parse(".b"),
            Err(AttestationNameError::EmptySide(_))
        ));
        assert!(AttestationName::parse("a b").is_err());
    }
}
