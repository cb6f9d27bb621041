//! Where a change came from: git commit and repository details, and links
//! to evidence stored elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct GitCommitInfo {
    pub sha1: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `Name <email>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Commit time, seconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct RepoInfo {
    pub url: String,
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_path: Vec<String>,
}

/// A link to evidence kept elsewhere, optionally pinned by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalUrl {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

pub type ExternalUrls = BTreeMap<String, ExternalUrl>;
pub type Annotations = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    #[error("annotation key '{0}' is invalid: use letters, digits and '_'")]
    AnnotationKey(String),
    #[error("external URL label '{0}' is invalid: it must be non-empty and contain no '.' or '='")]
    UrlLabel(String),
    #[error("external URL '{0}' is not an http(s) URL")]
    Url(String),
    #[error("external fingerprint for '{0}': {1}")]
    Fingerprint(String, String),
}

pub fn validate_annotations(a: &Annotations) -> Result<(), ProvenanceError> {
    for k in a.keys() {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ProvenanceError::AnnotationKey(k.clone()));
        }
    }
    Ok(())
}

pub fn validate_external_urls(urls: &ExternalUrls) -> Result<(), ProvenanceError> {
    for (label, u) in urls {
        if label.is_empty() || label.contains('.') || label.contains('=') {
            return Err(ProvenanceError::UrlLabel(label.clone()));
        }
        if !(u.href.starts_with("https://") || u.href.starts_with("http://")) {
            return Err(ProvenanceError::Url(u.href.clone()));
        }
        if let Some(fp) = &u.fingerprint {
            crate::Fingerprint::parse(fp)
                .map_err(|e| ProvenanceError::Fingerprint(label.clone(), e.to_string()))?;
        }
    }
    Ok(())
}
