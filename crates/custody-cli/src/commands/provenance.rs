//! Commit, repository, origin, links and user data: read from flags, the
//! local repository and the CI environment.

use anyhow::{Context, bail};
use custody_api::{ExternalUrl, ExternalUrls, GitCommitInfo, RepoInfo};
use custody_domain::Fingerprint;

use crate::ci::{self, CiDefaults};
use crate::cli::ProvenanceArgs;

pub struct Provenance {
    pub git_commit_info: Option<GitCommitInfo>,
    pub repo_info: Option<RepoInfo>,
    pub origin_url: Option<String>,
    pub external_urls: ExternalUrls,
    pub user_data: Option<Box<serde_json::value::RawValue>>,
    pub ci: Option<CiDefaults>,
}

pub fn ci_defaults() -> Option<CiDefaults> {
    ci::detect(&|k| std::env::var(k).ok())
}

/// One of the CI's own variables, as `ci_defaults` reads them.
pub fn ci_var(name: &str) -> Option<String> {
    ci::variable(&|k| std::env::var(k).ok(), name)
}

pub fn gather(args: &ProvenanceArgs) -> anyhow::Result<Provenance> {
    let ci = ci_defaults();
    let git_commit_info = match (&args.commit, ci.as_ref().and_then(|c| c.commit.clone())) {
        // Given explicitly: it must be readable.
        (Some(commit), _) => Some(crate::git::commit_info(&args.repo_root, commit)?),
        // From the CI: use what the checkout has, or at least the SHA.
        (None, Some(sha)) => Some(
            crate::git::commit_info(&args.repo_root, &sha).unwrap_or_else(|e| {
                eprintln!("warning: {e:#}; recording commit {sha} without details");
                GitCommitInfo {
                    sha1: sha.clone(),
                    ..Default::default()
                }
            }),
        ),
        (None, None) => None,
    };
    let user_data = match &args.user_data {
        Some(p) => Some(super::read_raw_json_file(p)?),
        None => None,
    };
    Ok(Provenance {
        git_commit_info,
        repo_info: ci.as_ref().and_then(|c| c.repo_info.clone()),
        origin_url: args
            .origin_url
            .clone()
            .or_else(|| ci.as_ref().and_then(|c| c.build_url.clone())),
        external_urls: external_urls(&args.external_url, &args.external_fingerprint)?,
        user_data,
        ci,
    })
}

fn external_urls(urls: &[String], fingerprints: &[String]) -> anyhow::Result<ExternalUrls> {
    let mut out = ExternalUrls::new();
    for u in urls {
        let (label, href) = u
            .split_once('=')
            .with_context(|| format!("--external-url '{u}' must be LABEL=URL"))?;
        out.insert(
            label.to_string(),
            ExternalUrl {
                href: href.to_string(),
                fingerprint: None,
            },
        );
    }
    for f in fingerprints {
        let (label, sha) = f
            .split_once('=')
            .with_context(|| format!("--external-fingerprint '{f}' must be LABEL=SHA256"))?;
        Fingerprint::parse(sha)?;
        match out.get_mut(label) {
            Some(u) => u.fingerprint = Some(sha.to_string()),
            None => bail!("--external-fingerprint '{label}' has no matching --external-url"),
        }
    }
    custody_domain::provenance::validate_external_urls(&out)?;
    Ok(out)
}

pub fn annotations(pairs: &[String]) -> anyhow::Result<custody_api::Annotations> {
    let mut out = custody_api::Annotations::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--annotate '{p}' must be KEY=VALUE"))?;
        out.insert(k.to_string(), v.to_string());
    }
    custody_domain::provenance::validate_annotations(&out)?;
    Ok(out)
}
