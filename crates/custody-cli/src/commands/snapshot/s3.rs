//! `snapshot s3`: a bucket's content as one artifact, as Kosli reports it.
//! The objects that pass the filters are downloaded (streamed) under their
//! keys into a temporary directory; a single file is the artifact itself
//! (its name and SHA-256), a tree is fingerprinted as a directory named
//! after the bucket.
//!
//! Credentials and region come from the AWS SDK's standard chain, as for
//! ECS and Lambda; the S3 requests themselves go through object_store,
//! which the evidence vault already uses: `aws-sdk-s3` alone would add ten
//! minutes to a release build for the two calls (list, get) needed here.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use custody_api::{Instance, ObservedArtifact};
use custody_fingerprint::DirAlgorithm as Algo;
use custody_runtime::EnvironmentKind;
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use regex::Regex;
use tokio::io::AsyncWriteExt;

use super::{Observation, Source};
use crate::cli::{DirAlgorithm, S3Args};
use crate::fail::Environment;

/// Hands the SDK's credential chain to object_store, which signs the S3
/// requests: one chain for every AWS reporter.
#[derive(Debug)]
struct SdkCredentials(aws_credential_types::provider::SharedCredentialsProvider);

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = object_store::aws::AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<Self::Credential>> {
        use aws_credential_types::provider::ProvideCredentials;
        let c = self
            .0
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(Arc::new(object_store::aws::AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        }))
    }
}

/// Prefixes or regexes over keys; includes cannot be combined with
/// excludes.
struct KeyFilter {
    include: Vec<String>,
    include_regex: Vec<Regex>,
    exclude: Vec<String>,
    exclude_regex: Vec<Regex>,
}

impl KeyFilter {
    fn new(a: &S3Args) -> anyhow::Result<KeyFilter> {
        let includes = !a.include.is_empty() || !a.include_regex.is_empty();
        let excludes = !a.exclude.is_empty() || !a.exclude_regex.is_empty();
        if includes && excludes {
            anyhow::bail!(
                "cannot combine '{}' with '{}'",
                if a.include.is_empty() {
                    "--include-regex"
                } else {
                    "--include"
                },
                if a.exclude.is_empty() {
                    "--exclude-regex"
                } else {
                    "--exclude"
                }
            );
        }
        let compile = |flag: &str, v: &[String]| {
            v.iter()
                .map(|p| Regex::new(p).with_context(|| format!("invalid regex '{p}' in '{flag}'")))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let trim = |v: &[String]| {
            v.iter()
                .map(|p| p.trim_start_matches('/').to_string())
                .collect()
        };
        Ok(KeyFilter {
            include: trim(&a.include),
            include_regex: compile("--include-regex", &a.include_regex)?,
            exclude: trim(&a.exclude),
            exclude_regex: compile("--exclude-regex", &a.exclude_regex)?,
        })
    }

    fn matches(&self, key: &str) -> bool {
        if !self.exclude.is_empty() || !self.exclude_regex.is_empty() {
            return !(self.exclude.iter().any(|p| key.starts_with(p.as_str()))
                || self.exclude_regex.iter().any(|r| r.is_match(key)));
        }
        if !self.include.is_empty() || !self.include_regex.is_empty() {
            return self.include.iter().any(|p| key.starts_with(p.as_str()))
                || self.include_regex.iter().any(|r| r.is_match(key));
        }
        true
    }
}

pub struct S3 {
    environment: String,
    bucket: String,
    endpoint: String,
    store: Arc<dyn ObjectStore>,
    filter: KeyFilter,
    algorithm: Algo,
}

impl S3 {
    pub async fn connect(a: &S3Args) -> anyhow::Result<S3> {
        let filter = KeyFilter::new(a)?;
        let (conf, endpoint) = super::aws::config(&a.aws, "S3").await;
        let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(&a.bucket);
        if let Some(r) = conf.region() {
            b = b.with_region(r.to_string());
        }
        let custom = a
            .aws
            .aws_endpoint_url
            .clone()
            .or_else(|| {
                std::env::var("AWS_ENDPOINT_URL_S3")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .or_else(|| conf.endpoint_url().map(str::to_string));
        if let Some(e) = custom.as_deref() {
            // Custom endpoints (MinIO, moto, LocalStack) want path-style
            // requests, often over plain HTTP.
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(c) = conf.credentials_provider() {
            b = b.with_credentials(Arc::new(SdkCredentials(c)));
        }
        let store = b.build().map_err(|e| {
            Environment(format!(
                "cannot use S3 bucket {} at {endpoint}: {e}",
                a.bucket
            ))
        })?;
        Ok(S3 {
            environment: a.environment.clone(),
            bucket: a.bucket.clone(),
            endpoint,
            store: Arc::new(store),
            filter,
            algorithm: match a.dir_algorithm {
                DirAlgorithm::Dirhash => Algo::Dirhash,
                DirAlgorithm::Kosli => Algo::Kosli,
            },
        })
    }

    fn failed(&self, what: &str, e: object_store::Error) -> anyhow::Error {
        Environment(format!(
            "cannot {what} in S3 bucket {} at {}: {e}",
            self.bucket, self.endpoint
        ))
        .into()
    }
}

/// A key as a relative path with no way out of the download directory.
fn safe_path(key: &str) -> Option<PathBuf> {
    let p = Path::new(key);
    let ok = p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

/// Descends through directories that hold one entry: the single file at
/// the bottom, if that is what the tree is.
fn single_file(root: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut here = root.to_path_buf();
    loop {
        let entries: Vec<_> = std::fs::read_dir(&here)?.collect::<Result<_, _>>()?;
        if entries.len() != 1 {
            return Ok(None);
        }
        let e = &entries[0];
        if e.file_type()?.is_dir() {
            here = e.path();
        } else {
            return Ok(Some(e.path()));
        }
    }
}

impl Source for S3 {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::S3
    }

    fn environments(&self) -> Vec<String> {
        vec![self.environment.clone()]
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        let mut listed = vec![];
        let mut list = self.store.list(None);
        while let Some(o) = list.next().await {
            listed.push(o.map_err(|e| self.failed("list objects", e))?);
        }
        // A key that is the "folder" of other keys is a folder marker (the
        // console's `name/` objects, which object_store lists without the
        // slash), not a file.
        let keys: std::collections::BTreeSet<String> =
            listed.iter().map(|o| o.location.to_string()).collect();
        let is_folder = |k: &str| {
            keys.range(format!("{k}/")..)
                .next()
                .is_some_and(|n| n.starts_with(&format!("{k}/")))
        };
        let mut objects = vec![];
        let warnings = vec![];
        let mut unobserved = vec![];
        for o in listed {
            let key = o.location.to_string();
            if key.ends_with('/') || is_folder(&key) || !self.filter.matches(&key) {
                continue;
            }
            match safe_path(&key) {
                Some(p) => objects.push((o, p)),
                // Such an object cannot be placed in the directory the
                // bucket is fingerprinted as: the bucket is not fully
                // observed, and the report says so.
                None => unobserved.push(custody_runtime::Unobserved {
                    scope: format!("object '{key}' in bucket {}", self.bucket),
                    reason: "its key is not a safe relative path, so it cannot be fingerprinted"
                        .into(),
                }),
            }
        }
        if objects.is_empty() {
            anyhow::bail!("no matching file or dirs in bucket: [{}]", self.bucket);
        }
        let dir = tempfile::tempdir().context("cannot create a download directory")?;
        let root = dir.path().join(&self.bucket);
        let mut newest = None::<i64>;
        for (meta, rel) in &objects {
            let target = root.join(rel);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let mut file = tokio::fs::File::create(&target)
                .await
                .with_context(|| format!("cannot create {}", target.display()))?;
            let mut body = self
                .store
                .get(&meta.location)
                .await
                .map_err(|e| self.failed("download an object", e))?
                .into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| self.failed("download an object", e))?;
                file.write_all(&chunk)
                    .await
                    .with_context(|| format!("cannot write {}", target.display()))?;
            }
            file.flush().await?;
            let t = meta.last_modified.timestamp_millis();
            newest = Some(newest.map_or(t, |n: i64| n.max(t)));
        }
        let algorithm = self.algorithm;
        let bucket = self.bucket.clone();
        let (name, digest) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(String, String)> {
                match single_file(&root)? {
                    Some(f) => {
                        let name = f
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| bucket.clone());
                        Ok((name, custody_fingerprint::file::hash_file(&f)?.to_hex()))
                    }
                    None => Ok((
                        bucket,
                        custody_fingerprint::directory(&root, algorithm, &[])?.to_hex(),
                    )),
                }
            })
            .await
            .context("fingerprinting stopped")??;
        drop(dir);
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("bucket".to_string(), self.bucket.clone());
        attributes.insert("objects".to_string(), objects.len().to_string());
        Ok(vec![Observation {
            environment: self.environment.clone(),
            artifacts: vec![ObservedArtifact {
                name,
                fingerprint: Some(digest),
                instances: vec![Instance {
                    id: format!("s3://{}", self.bucket),
                    started_at: newest,
                    attributes,
                }],
            }],
            warnings,
            unobserved,
        }])
    }

    async fn changed(&mut self) {
        std::future::pending().await
    }
}
