//! Reporter configuration files: the paths file of `snapshot paths` (YAML,
//! JSON or TOML, Kosli's schema) and the environments file of
//! `snapshot k8s` (Kosli's K8s reporter format). Both are checked whole,
//! every unknown key named, before a reporter connects anywhere.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::expression::validate_environment_name;
use crate::filter::{FilterLabels, NameFilter};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

fn fail(file: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        message: message.into(),
    }
}

/// Decodes YAML, JSON or TOML into one value shape, so that validation is
/// written once.
fn decode(file: &str, text: &str, format: Format) -> Result<Value, ConfigError> {
    match format {
        Format::Json => {
            serde_json::from_str(text).map_err(|e| fail(file, format!("invalid JSON: {e}")))
        }
        Format::Yaml => {
            let v: serde_norway::Value = serde_norway::from_str(text)
                .map_err(|e| fail(file, format!("invalid YAML: {e}")))?;
            serde_json::to_value(v).map_err(|e| fail(file, format!("invalid YAML: {e}")))
        }
        Format::Toml => {
            let v: toml::Value =
                toml::from_str(text).map_err(|e| fail(file, format!("invalid TOML: {e}")))?;
            serde_json::to_value(v).map_err(|e| fail(file, format!("invalid TOML: {e}")))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
    Toml,
}

fn format_of(file: &str) -> Result<Format, ConfigError> {
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("yml" | "yaml") => Ok(Format::Yaml),
        Some("json") => Ok(Format::Json),
        Some("toml") => Ok(Format::Toml),
        _ => Err(fail(
            file,
            "cannot tell the format: name the file .yml, .yaml, .json or .toml",
        )),
    }
}

/// Refuses keys outside `allowed`, naming all of them.
fn only_keys(
    file: &str,
    at: &str,
    m: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ConfigError> {
    let unknown: Vec<&str> = m
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(fail(
        file,
        format!(
            "{at} has invalid keys: {} (allowed: {})",
            unknown.join(", "),
            allowed.join(", ")
        ),
    ))
}

fn strings(file: &str, at: &str, v: Option<&Value>) -> Result<Vec<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                _ => Err(fail(file, format!("{at}[{i}] must be a string"))),
            })
            .collect(),
        Some(_) => Err(fail(file, format!("{at} must be a list of strings"))),
    }
}

// ---- Paths files -----------------------------------------------------

/// A paths file: artifact name → what to fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathsSpec {
    pub artifacts: BTreeMap<String, PathArtifact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathArtifact {
    /// A file or a directory, as written (relative paths are relative to
    /// where the reporter runs).
    pub path: String,
    /// Globs relative to `path`.
    pub exclude: Vec<String>,
}

/// Parses a paths file; the format follows the extension.
pub fn parse_paths_spec(file: &str, text: &str) -> Result<PathsSpec, ConfigError> {
    let v = decode(file, text, format_of(file)?)?;
    let Value::Object(top) = v else {
        return Err(fail(file, "expected a map with 'version' and 'artifacts'"));
    };
    only_keys(file, "the file", &top, &["version", "artifacts"])?;
    match top.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            return Err(fail(file, format!("version must be 1, not {other}")));
        }
        None => return Err(fail(file, "version is required (version: 1)")),
    }
    let Some(Value::Object(artifacts)) = top.get("artifacts") else {
        return Err(fail(
            file,
            "artifacts is required: a map of artifact name to {path, exclude}",
        ));
    };
    if artifacts.is_empty() {
        return Err(fail(file, "artifacts is empty: name at least one"));
    }
    let mut out = BTreeMap::new();
    for (name, spec) in artifacts {
        let at = format!("artifacts.{name}");
        if name.trim().is_empty() {
            return Err(fail(file, "an artifact name is empty"));
        }
        let Value::Object(spec) = spec else {
            return Err(fail(file, format!("{at} must be a map with 'path'")));
        };
        only_keys(file, &at, spec, &["path", "exclude"])?;
        let path = match spec.get("path") {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            Some(_) => return Err(fail(file, format!("{at}.path must be a non-empty string"))),
            None => return Err(fail(file, format!("{at}.path is required"))),
        };
        let exclude = strings(file, &format!("{at}.exclude"), spec.get("exclude"))?;
        out.insert(name.clone(), PathArtifact { path, exclude });
    }
    Ok(PathsSpec { artifacts: out })
}

// ---- K8s environments files ---------------------------------------------

/// One environment of a K8s reporter config, with its namespace filter.
#[derive(Debug, Clone)]
pub struct K8sEnvironment {
    pub name: String,
    pub namespaces: NameFilter,
}

pub const K8S_CONFIG_LABELS: FilterLabels = FilterLabels {
    include: "namespaces",
    include_regex: "namespacesRegex",
    exclude: "excludeNamespaces",
    exclude_regex: "excludeNamespacesRegex",
};

/// Parses and checks a K8s reporter environments file, in Kosli's order:
/// a non-empty list, a name for each entry, unique names, no include with
/// exclude, regexes that compile.
pub fn parse_k8s_environments(file: &str, text: &str) -> Result<Vec<K8sEnvironment>, ConfigError> {
    let v: serde_norway::Value = serde_norway::from_str(text)
        .map_err(|e| fail(file, format!("failed to parse config file: {e}")))?;
    let v = serde_json::to_value(v)
        .map_err(|e| fail(file, format!("failed to parse config file: {e}")))?;
    let Value::Object(top) = v else {
        return Err(fail(file, "expected a map with an 'environments' list"));
    };
    only_keys(file, "the file", &top, &["environments"])?;
    let entries = match top.get("environments") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(fail(
                file,
                "'environments' list must contain at least one entry",
            ));
        }
        Some(_) => return Err(fail(file, "'environments' must be a list")),
    };
    let keys = [
        "name",
        K8S_CONFIG_LABELS.include,
        K8S_CONFIG_LABELS.include_regex,
        K8S_CONFIG_LABELS.exclude,
        K8S_CONFIG_LABELS.exclude_regex,
    ];
    let mut seen = std::collections::BTreeSet::new();
    let mut out = vec![];
    for (i, e) in entries.iter().enumerate() {
        let n = i + 1;
        let Value::Object(e) = e else {
            return Err(fail(file, format!("environment entry {n} must be a map")));
        };
        let name = match e.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(fail(
                    file,
                    format!("environment entry {n} is missing required field 'name'"),
                ));
            }
        };
        only_keys(file, &format!("environment '{name}'"), e, &keys)?;
        validate_environment_name(&name)
            .map_err(|x| fail(file, format!("environment entry {n}: {x}")))?;
        if !seen.insert(name.clone()) {
            return Err(fail(file, format!("duplicate environment name '{name}'")));
        }
        let list = |k: &str| strings(file, &format!("environment '{name}'.{k}"), e.get(k));
        let filter = NameFilter::new(
            K8S_CONFIG_LABELS,
            list(K8S_CONFIG_LABELS.include)?,
            list(K8S_CONFIG_LABELS.include_regex)?,
            list(K8S_CONFIG_LABELS.exclude)?,
            list(K8S_CONFIG_LABELS.exclude_regex)?,
        )
        .map_err(|x| fail(file, format!("environment '{name}': {x}")))?;
        out.push(K8sEnvironment {
            name,
            namespaces: filter,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_files_in_three_formats() {
        let yaml = "version: 1\nartifacts:\n  differ:\n    path: testdata/server\n    exclude: [\"logs/*\"]\n";
        let json = r#"{"version":1,"artifacts":{"differ":{"path":"testdata/server","exclude":["app.app"]}}}"#;
        let toml = "version = 1\n[artifacts.differ]\npath = \"testdata/server\"\nexclude = [\"**/logs.txt\"]\n";
        let y = parse_paths_spec("p.yml", yaml).unwrap();
        assert_eq!(y.artifacts["differ"].exclude, vec!["logs/*"]);
        let j = parse_paths_spec("p.json", json).unwrap();
        assert_eq!(j.artifacts["differ"].exclude, vec!["app.app"]);
        let t = parse_paths_spec("p.toml", toml).unwrap();
        assert_eq!(t.artifacts["differ"].path, "testdata/server");
        assert_eq!(t.artifacts["differ"].exclude, vec!["**/logs.txt"]);
    }

    #[test]
    fn paths_file_errors() {
        let e = parse_paths_spec("p.yml", "versionnn: 1\nfoo: 2\nartifacts: {}\n").unwrap_err();
        assert_eq!(
            e.message,
            "the file has invalid keys: foo, versionnn (allowed: version, artifacts)"
        );
        let e = parse_paths_spec("p.yml", "version: 13\nartifacts: {a: {path: x}}\n").unwrap_err();
        assert_eq!(e.message, "version must be 1, not 13");
        let e = parse_paths_spec("p.yml", "version: 1\nartifacts: {a: {pth: x}}\n").unwrap_err();
        assert!(
            e.message.starts_with("artifacts.a has invalid keys: pth"),
            "{e}"
        );
        let e =
            parse_paths_spec("p.yml", "version: 1\nartifacts: {a: {exclude: []}}\n").unwrap_err();
        assert_eq!(e.message, "artifacts.a.path is required");
        let e = parse_paths_spec("p.txt", "").unwrap_err();
        assert!(e.message.contains("cannot tell the format"), "{e}");
        let e = parse_paths_spec("p.json", "{").unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{e}");
        assert!(e.to_string().starts_with("p.json: "), "{e}");
    }

    #[test]
    fn k8s_configs_validate_in_order() {
        let multi = "environments:\n  - name: prod-env\n    namespaces: [prod-ns1, prod-ns2]\n  - name: staging-env\n    namespacesRegex: [\"^staging-.*\"]\n  - name: infra-env\n    excludeNamespaces: [prod-ns1, prod-ns2, default]\n";
        let envs = parse_k8s_environments("c.yaml", multi).unwrap();
        assert_eq!(envs.len(), 3);
        assert!(envs[1].namespaces.matches("staging-eu"));
        assert!(!envs[2].namespaces.matches("default"));
        assert_eq!(
            envs[0].namespaces.exact_names_only().map(<[String]>::len),
            Some(2)
        );

        let cases = [
            (
                "environments: []\n",
                "'environments' list must contain at least one entry",
            ),
            (
                "environments:\n  - namespaces: [a]\n",
                "environment entry 1 is missing required field 'name'",
            ),
            (
                "environments:\n  - name: a\n  - name: a\n",
                "duplicate environment name 'a'",
            ),
            (
                "environments:\n  - name: a\n    namespaces: [x]\n    excludeNamespaces: [y]\n",
                "environment 'a': cannot combine 'namespaces' with 'excludeNamespaces'",
            ),
            (
                "environments:\n  - name: a\n    namespacesRegex: ['[invalid']\n",
                "environment 'a': invalid regex '[invalid' in 'namespacesRegex'",
            ),
            (
                "environments:\n  - name: a\n    namespace: [x]\n",
                "environment 'a' has invalid keys: namespace",
            ),
            ("environments: [\n", "failed to parse config file"),
        ];
        for (text, want) in cases {
            let e = parse_k8s_environments("c.yaml", text).unwrap_err();
            assert!(e.message.starts_with(want), "{text:?}: {e}");
        }
    }
}
