//! `snapshot ecs` and `snapshot lambda`: what runs on AWS, through the AWS
//! SDK for Rust with the standard credential chain (environment, profile,
//! SSO, web identity, ECS task role, instance metadata) and any endpoint
//! (`--aws-endpoint-url` or `AWS_ENDPOINT_URL`). AWS does not notify, so
//! `--watch` polls every `--interval`.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_sdk_ecs::types::DesiredStatus;
use base64::Engine;
use custody_api::{Instance, ObservedArtifact};
use custody_runtime::{EnvironmentKind, FilterLabels, NameFilter, Unobserved};

use super::{Observation, Source};
use crate::cli::{AwsArgs, EcsArgs, LambdaArgs};
use crate::fail::Environment;

/// The SDK configuration, and the endpoint `service` will use, for
/// messages: the flag, `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, or
/// AWS itself in the region.
pub async fn config(a: &AwsArgs, service: &str) -> (aws_config::SdkConfig, String) {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &a.aws_region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(e) = &a.aws_endpoint_url {
        loader = loader.endpoint_url(e.clone());
    }
    let conf = loader.load().await;
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoint = a
        .aws_endpoint_url
        .clone()
        .or_else(|| from_env(&format!("AWS_ENDPOINT_URL_{service}")))
        .or_else(|| conf.endpoint_url().map(str::to_string))
        .unwrap_or_else(|| {
            format!(
                "AWS {service} in {}",
                conf.region().map_or("no region".into(), |r| r.to_string())
            )
        });
    (conf, endpoint)
}

/// An SDK error as the user needs it: which endpoint, and why.
fn failed<E: std::error::Error + 'static>(what: &str, endpoint: &str, e: E) -> anyhow::Error {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    Environment(format!("cannot {what} at {endpoint}: {msg}")).into()
}

pub struct Ecs {
    environment: String,
    client: aws_sdk_ecs::Client,
    endpoint: String,
    clusters: NameFilter,
    services: NameFilter,
}

const CLUSTER_LABELS: FilterLabels = FilterLabels {
    include: "--clusters",
    include_regex: "--clusters-regex",
    exclude: "--exclude",
    exclude_regex: "--exclude-regex",
};

const SERVICE_LABELS: FilterLabels = FilterLabels {
    include: "--services",
    include_regex: "--services-regex",
    exclude: "--exclude-services",
    exclude_regex: "--exclude-services-regex",
};

/// The last part of an ARN (`arn:aws:ecs:...:cluster/prod` → `prod`).
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl Ecs {
    pub async fn connect(a: &EcsArgs) -> anyhow::Result<Ecs> {
        let clusters = NameFilter::new(
            CLUSTER_LABELS,
            a.clusters.clone(),
            a.clusters_regex.clone(),
            a.exclude.clone(),
            a.exclude_regex.clone(),
        )?;
        let services = NameFilter::new(
            SERVICE_LABELS,
            a.services.clone(),
            a.services_regex.clone(),
            a.exclude_services.clone(),
            a.exclude_services_regex.clone(),
        )?;
        let (conf, endpoint) = config(&a.aws, "ECS").await;
        Ok(Ecs {
            environment: a.environment.clone(),
            client: aws_sdk_ecs::Client::new(&conf),
            endpoint,
            clusters,
            services,
        })
    }
}

/// An ECS container's digest: its `imageDigest`, or the digest in an
/// `image@sha256:...` reference; none when the image is only tagged.
pub fn ecs_digest(image: Option<&str>, image_digest: Option<&str>) -> Option<String> {
    let hex = |s: &str| {
        let h = s.strip_prefix("sha256:").unwrap_or(s);
        (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
    };
    image_digest.and_then(hex).or_else(|| {
        image
            .and_then(|i| i.split_once('@'))
            .and_then(|(_, d)| hex(d))
    })
}

impl Source for Ecs {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::Ecs
    }

    fn environments(&self) -> Vec<String> {
        vec![self.environment.clone()]
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        let ep = self.endpoint.clone();
        let mut clusters = vec![];
        let mut pages = self.client.list_clusters().into_paginator().items().send();
        while let Some(arn) = pages.next().await {
            let arn = arn.map_err(|e| failed("list ECS clusters", &ep, e))?;
            if self.clusters.matches(short(&arn)) || self.clusters.matches(&arn) {
                clusters.push(arn);
            }
        }
        let mut artifacts = vec![];
        let warnings = vec![];
        let mut unobserved = vec![];
        for cluster in clusters {
            let mut arns = vec![];
            let mut pages = self
                .client
                .list_tasks()
                .cluster(&cluster)
                .desired_status(DesiredStatus::Running)
                .into_paginator()
                .items()
                .send();
            while let Some(t) = pages.next().await {
                arns.push(t.map_err(|e| failed("list ECS tasks", &ep, e))?);
            }
            for chunk in arns.chunks(100) {
                let out = self
                    .client
                    .describe_tasks()
                    .cluster(&cluster)
                    .set_tasks(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| failed("describe ECS tasks", &ep, e))?;
                for f in out.failures() {
                    unobserved.push(Unobserved {
                        scope: format!(
                            "task {} in cluster {}",
                            f.arn().unwrap_or("?"),
                            short(&cluster)
                        ),
                        reason: f.reason().unwrap_or("unreadable").to_string(),
                    });
                }
                for task in out.tasks() {
                    if task.last_status() != Some("RUNNING") {
                        continue;
                    }
                    let service = task.group().and_then(|g| g.strip_prefix("service:"));
                    let wanted = match service {
                        Some(s) => self.services.matches(s),
                        None => self.services.is_everything(),
                    };
                    if !wanted {
                        continue;
                    }
                    let arn = task.task_arn().unwrap_or_default().to_string();
                    for c in task.containers() {
                        let name = c.image().or(c.name()).unwrap_or("unnamed").to_string();
                        let mut attributes = BTreeMap::new();
                        attributes.insert("cluster".to_string(), short(&cluster).to_string());
                        if let Some(s) = service {
                            attributes.insert("service".to_string(), s.to_string());
                        }
                        if let Some(n) = c.name() {
                            attributes.insert("container".to_string(), n.to_string());
                        }
                        if let Some(d) = task.task_definition_arn() {
                            attributes.insert("task_definition".to_string(), short(d).to_string());
                        }
                        artifacts.push(ObservedArtifact {
                            name,
                            fingerprint: ecs_digest(c.image(), c.image_digest()),
                            instances: vec![Instance {
                                id: arn.clone(),
                                started_at: task.started_at().and_then(|t| t.to_millis().ok()),
                                attributes,
                            }],
                        });
                    }
                }
            }
        }
        Ok(vec![Observation {
            environment: self.environment.clone(),
            artifacts,
            warnings,
            unobserved,
        }])
    }

    async fn changed(&mut self) {
        std::future::pending().await
    }
}

pub struct Lambda {
    environment: String,
    client: aws_sdk_lambda::Client,
    endpoint: String,
    functions: NameFilter,
}

const FUNCTION_LABELS: FilterLabels = FilterLabels {
    include: "--function-names",
    include_regex: "--function-names-regex",
    exclude: "--exclude",
    exclude_regex: "--exclude-regex",
};

impl Lambda {
    pub async fn connect(a: &LambdaArgs) -> anyhow::Result<Lambda> {
        let functions = NameFilter::new(
            FUNCTION_LABELS,
            a.function_names.clone(),
            a.function_names_regex.clone(),
            a.exclude.clone(),
            a.exclude_regex.clone(),
        )?;
        let (conf, endpoint) = config(&a.aws, "LAMBDA").await;
        Ok(Lambda {
            environment: a.environment.clone(),
            client: aws_sdk_lambda::Client::new(&conf),
            endpoint,
            functions,
        })
    }
}

/// A function's fingerprint: a zip's `CodeSha256` is base64 and becomes
/// hex; an image function's is already the image digest in hex.
pub fn lambda_digest(code_sha256: &str) -> Option<String> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex(code_sha256) {
        return Some(code_sha256.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(code_sha256)
        .ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

/// Lambda's `LastModified`, `2026-03-01T03:12:00.000+0000`, in ms.
fn last_modified(s: &str) -> Option<i64> {
    jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%z", s)
        .or_else(|_| s.parse::<jiff::Timestamp>())
        .ok()
        .map(|t| t.as_millisecond())
}

impl Source for Lambda {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::Lambda
    }

    fn environments(&self) -> Vec<String> {
        vec![self.environment.clone()]
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        let mut artifacts = vec![];
        let mut warnings = vec![];
        let mut pages = self.client.list_functions().into_paginator().items().send();
        while let Some(f) = pages.next().await {
            let f = f.map_err(|e| failed("list Lambda functions", &self.endpoint, e))?;
            let Some(name) = f.function_name() else {
                continue;
            };
            if !self.functions.matches(name) {
                continue;
            }
            // A function whose code has no usable digest still runs: it is
            // recorded without a fingerprint (unknown), not skipped.
            let fingerprint = f.code_sha256().and_then(lambda_digest);
            let mut attributes = BTreeMap::new();
            if fingerprint.is_none() {
                warnings.push(format!(
                    "function {name} has no usable CodeSha256 ({}): recorded without a fingerprint (unknown)",
                    f.code_sha256().unwrap_or("none")
                ));
                attributes.insert("digest_source".to_string(), "none".to_string());
            }
            if let Some(r) = f.runtime() {
                attributes.insert("runtime".to_string(), r.as_str().to_string());
            }
            if let Some(p) = f.package_type() {
                attributes.insert("package_type".to_string(), p.as_str().to_string());
            }
            if let Some(v) = f.version() {
                attributes.insert("version".to_string(), v.to_string());
            }
            artifacts.push(ObservedArtifact {
                name: name.to_string(),
                fingerprint,
                instances: vec![Instance {
                    id: f.function_arn().unwrap_or(name).to_string(),
                    started_at: f.last_modified().and_then(last_modified),
                    attributes,
                }],
            });
        }
        Ok(vec![Observation {
            environment: self.environment.clone(),
            artifacts,
            warnings,
            unobserved: vec![],
        }])
    }

    async fn changed(&mut self) {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            ecs_digest(None, Some(&format!("sha256:{hex}"))),
            Some(hex.clone())
        );
        assert_eq!(
            ecs_digest(Some(&format!("repo/app@sha256:{hex}")), None),
            Some(hex.clone())
        );
        assert_eq!(ecs_digest(Some("repo/app:1"), None), None);
        // A zip's CodeSha256 is the base64 of the digest.
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xab; 32]);
        assert_eq!(lambda_digest(&b64), Some("ab".repeat(32)));
        assert_eq!(lambda_digest(&hex), Some(hex));
        assert_eq!(lambda_digest("short"), None);
        assert_eq!(
            last_modified("2026-03-01T03:12:00.000+0000"),
            Some(1_772_334_720_000)
        );
    }
}
