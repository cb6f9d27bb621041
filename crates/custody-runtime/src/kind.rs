//! Environment types: where a workload runs, and so which reporter may
//! report to it.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The type of an environment. Physical types are reported to by the
/// reporter of the same name; a logical environment is the union of
/// physical ones and is never reported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentKind {
    Docker,
    K8s,
    Ecs,
    Lambda,
    S3,
    /// Files and directories on a host (`snapshot path`, `snapshot paths`).
    Server,
    Logical,
}

impl EnvironmentKind {
    pub const ALL: [EnvironmentKind; 7] = [
        EnvironmentKind::Docker,
        EnvironmentKind::K8s,
        EnvironmentKind::Ecs,
        EnvironmentKind::Lambda,
        EnvironmentKind::S3,
        EnvironmentKind::Server,
        EnvironmentKind::Logical,
    ];

    /// Accepts Custody's names and Kosli's spellings (`K8S`, `ECS`, `S3`,
    /// `kubernetes`), case-insensitively, so that scripts move over.
    pub fn parse(value: &str) -> Option<EnvironmentKind> {
        Some(match value.to_ascii_lowercase().as_str() {
            "docker" => EnvironmentKind::Docker,
            "k8s" | "kubernetes" => EnvironmentKind::K8s,
            "ecs" => EnvironmentKind::Ecs,
            "lambda" => EnvironmentKind::Lambda,
            "s3" => EnvironmentKind::S3,
            "server" => EnvironmentKind::Server,
            "logical" => EnvironmentKind::Logical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentKind::Docker => "docker",
            EnvironmentKind::K8s => "k8s",
            EnvironmentKind::Ecs => "ecs",
            EnvironmentKind::Lambda => "lambda",
            EnvironmentKind::S3 => "s3",
            EnvironmentKind::Server => "server",
            EnvironmentKind::Logical => "logical",
        }
    }

    pub fn is_logical(self) -> bool {
        self == EnvironmentKind::Logical
    }

    /// What one running instance is called in messages.
    pub fn instance_noun(self) -> &'static str {
        match self {
            EnvironmentKind::Docker => "container",
            EnvironmentKind::K8s => "pod",
            EnvironmentKind::Ecs => "task",
            EnvironmentKind::Lambda => "function",
            EnvironmentKind::S3 => "bucket",
            EnvironmentKind::Server | EnvironmentKind::Logical => "artifact",
        }
    }

    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for EnvironmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kosli_spellings_are_accepted() {
        assert_eq!(EnvironmentKind::parse("K8S"), Some(EnvironmentKind::K8s));
        assert_eq!(
            EnvironmentKind::parse("kubernetes"),
            Some(EnvironmentKind::K8s)
        );
        assert_eq!(EnvironmentKind::parse("ECS"), Some(EnvironmentKind::Ecs));
        assert_eq!(EnvironmentKind::parse("S3"), Some(EnvironmentKind::S3));
        assert_eq!(EnvironmentKind::parse("azure-apps"), None);
        for k in EnvironmentKind::ALL {
            assert_eq!(EnvironmentKind::parse(k.as_str()), Some(k));
        }
    }
}
