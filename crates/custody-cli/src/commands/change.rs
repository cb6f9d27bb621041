//! Change-process evidence fetched from the providers: pull requests
//! (`attest|assert pullrequest`), Jira issues (`attest jira`) and Sonar
//! quality gates (`attest sonar`). The provider is asked first; nothing is
//! sent to Custody when it cannot answer.

use std::process::ExitCode;

use anyhow::{Context, bail};
use custody_evidence::jira::{self as jira_keys, JiraSummary};
use custody_evidence::pull_request::{PrRules, PullRequestSummary};
use custody_evidence::sonar::SonarSummary;
use custody_providers::{azure, bitbucket, github, gitlab, http, jira, sonar};
use serde_json::value::RawValue;

use super::Ctx;
use super::attest::{Extra, evidence};
use super::provenance::ci_var as ci;
use crate::cli::{
    AssertPrCmd, AttestJiraArgs, AttestPrCmd, AttestSonarArgs, AzureFlags, BitbucketFlags,
    GithubFlags, GitlabFlags, Global, Output, PrRulesArgs, ProvenanceArgs,
};
use crate::fail;

fn required(value: &Option<String>, flag: &str, ci_hint: &str) -> anyhow::Result<String> {
    value
        .clone()
        .with_context(|| format!("{flag} is required{ci_hint}"))
}

/// How the CLI reaches providers: the `--ca-cert` it trusts, and whether
/// a token may cross the network over plain http (`--insecure-http`).
struct Net {
    client: reqwest::Client,
    transport: custody_client::Transport,
}

impl Net {
    fn new(global: &Global) -> anyhow::Result<Net> {
        let transport = global.transport();
        let client = custody_client::http_client(&transport, std::time::Duration::from_secs(60))?;
        Ok(Net { client, transport })
    }

    /// A `--*-base-url`, checked: a token goes over plain http only to this
    /// machine, or with `--insecure-http`.
    fn base(&self, flag: &str, value: &str) -> anyhow::Result<url::Url> {
        let u = http::base_url(flag, value).map_err(anyhow::Error::msg)?;
        if u.scheme() == "http" && !custody_client::plain_http_allowed(&u, &self.transport) {
            bail!(
                "refusing plain http:// for {flag} {value}: the token would cross the network unencrypted; \
                 use https:// (with --ca-cert for a private CA), or --insecure-http if the network is yours"
            );
        }
        Ok(u)
    }
}

/// A provider, ready to ask.
enum Host {
    GitHub(github::GitHub),
    GitLab(gitlab::GitLab),
    Bitbucket(bitbucket::Bitbucket),
    Azure(azure::Azure),
}

impl Host {
    async fn pull_requests(
        &self,
        commit: &str,
    ) -> Result<PullRequestSummary, custody_providers::ProviderError> {
        match self {
            Host::GitHub(h) => h.pull_requests(commit).await,
            Host::GitLab(h) => h.pull_requests(commit).await,
            Host::Bitbucket(h) => h.pull_requests(commit).await,
            Host::Azure(h) => h.pull_requests(commit).await,
        }
    }
}

fn github_host(net: &Net, f: &GithubFlags) -> anyhow::Result<Host> {
    let token = required(
        &f.github_token,
        "--github-token",
        " (or CUSTODY_GITHUB_TOKEN)",
    )?;
    let from_ci = ci("GITHUB_REPOSITORY");
    let org = f
        .github_org
        .clone()
        .or_else(|| ci("GITHUB_REPOSITORY_OWNER"))
        .with_context(|| "--github-org is required outside GitHub Actions")?;
    let repo = f
        .repository
        .clone()
        .or_else(|| {
            from_ci
                .as_deref()
                .and_then(|r| r.split_once('/'))
                .map(|(_, n)| n.to_string())
        })
        .with_context(|| "--repository is required outside GitHub Actions")?;
    let url = f
        .github_base_url
        .clone()
        .or_else(|| ci("GITHUB_API_URL"))
        .unwrap_or_else(|| github::DEFAULT_BASE_URL.into());
    Ok(Host::GitHub(github::GitHub::new(
        &net.base("--github-base-url", &url)?,
        &token,
        &org,
        &repo,
        net.client.clone(),
    )))
}

fn gitlab_host(net: &Net, f: &GitlabFlags) -> anyhow::Result<Host> {
    let token = required(
        &f.gitlab_token,
        "--gitlab-token",
        " (or CUSTODY_GITLAB_TOKEN)",
    )?;
    let org = f
        .gitlab_org
        .clone()
        .or_else(|| ci("CI_PROJECT_NAMESPACE"))
        .with_context(|| "--gitlab-org is required outside GitLab CI")?;
    let repo = f
        .repository
        .clone()
        .or_else(|| ci("CI_PROJECT_NAME"))
        .with_context(|| "--repository is required outside GitLab CI")?;
    let url = f
        .gitlab_base_url
        .clone()
        .or_else(|| ci("CI_SERVER_URL"))
        .unwrap_or_else(|| gitlab::DEFAULT_BASE_URL.into());
    Ok(Host::GitLab(gitlab::GitLab::new(
        &net.base("--gitlab-base-url", &url)?,
        &token,
        &org,
        &repo,
        net.client.clone(),
    )))
}

fn bitbucket_host(net: &Net, f: &BitbucketFlags) -> anyhow::Result<Host> {
    let credentials = match (
        &f.bitbucket_access_token,
        &f.bitbucket_username,
        &f.bitbucket_password,
    ) {
        (Some(t), None, None) => bitbucket::Credentials::AccessToken(t.clone()),
        (None, Some(u), Some(p)) => bitbucket::Credentials::ApiToken {
            username: u.clone(),
            token: p.clone(),
        },
        (Some(_), _, _) => bail!(
            "give either --bitbucket-access-token or --bitbucket-username with --bitbucket-password, not both"
        ),
        _ => bail!(
            "--bitbucket-access-token, or --bitbucket-username with --bitbucket-password (an API token), is required"
        ),
    };
    let ws = f
        .bitbucket_workspace
        .clone()
        .or_else(|| ci("BITBUCKET_WORKSPACE"))
        .with_context(|| "--bitbucket-workspace is required outside Bitbucket Pipelines")?;
    let repo = f
        .repository
        .clone()
        .or_else(|| ci("BITBUCKET_REPO_SLUG"))
        .with_context(|| "--repository is required outside Bitbucket Pipelines")?;
    let url = net.base("--bitbucket-base-url", &f.bitbucket_base_url)?;
    Ok(Host::Bitbucket(bitbucket::Bitbucket::new(
        &url,
        credentials,
        &ws,
        &repo,
        net.client.clone(),
    )))
}

fn azure_host(net: &Net, f: &AzureFlags) -> anyhow::Result<Host> {
    let token = required(&f.azure_token, "--azure-token", " (or CUSTODY_AZURE_TOKEN)")?;
    let org = f
        .azure_org_url
        .clone()
        .or_else(|| ci("SYSTEM_COLLECTIONURI"))
        .with_context(|| "--azure-org-url is required outside Azure Pipelines")?;
    let project = f
        .project
        .clone()
        .or_else(|| ci("SYSTEM_TEAMPROJECT"))
        .with_context(|| "--project is required outside Azure Pipelines")?;
    let repo = f
        .repository
        .clone()
        .or_else(|| ci("BUILD_REPOSITORY_NAME"))
        .with_context(|| "--repository is required outside Azure Pipelines")?;
    Ok(Host::Azure(azure::Azure::new(
        &net.base("--azure-org-url", &org)?,
        &token,
        &project,
        &repo,
        net.client.clone(),
    )))
}

/// The full SHA of `--commit`, else of the CI's commit, else of HEAD.
fn commit(given: Option<&str>, repo_root: &std::path::Path) -> anyhow::Result<String> {
    let is_full_sha = |c: &str| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit());
    match given {
        Some(c) if is_full_sha(c) => Ok(c.to_ascii_lowercase()),
        Some(c) => Ok(crate::git::commit_info(repo_root, c)?.sha1),
        None => match super::provenance::ci_defaults().and_then(|c| c.commit) {
            Some(sha) => Ok(sha),
            None => crate::git::commit_info(repo_root, "HEAD")
                .map(|i| i.sha1)
                .context("no --commit given, no CI commit found, and no HEAD to use"),
        },
    }
}

fn rules(r: &PrRulesArgs) -> PrRules {
    PrRules {
        require_approvals: r.require_approvals.unwrap_or(0),
        allow_open: r.allow_open,
    }
}

fn raw(value: &impl serde::Serialize) -> anyhow::Result<Box<RawValue>> {
    Ok(RawValue::from_string(serde_json::to_string(value)?)?)
}

pub async fn attest_pr(ctx: Ctx, cmd: AttestPrCmd) -> anyhow::Result<ExitCode> {
    let net = Net::new(&ctx.global)?;
    let (host, common) = match cmd {
        AttestPrCmd::Github { provider, common } => (github_host(&net, &provider)?, common),
        AttestPrCmd::Gitlab { provider, common } => (gitlab_host(&net, &provider)?, common),
        AttestPrCmd::Bitbucket { provider, common } => (bitbucket_host(&net, &provider)?, common),
        AttestPrCmd::Azure { provider, common } => (azure_host(&net, &provider)?, common),
    };
    let p = &common.evidence.provenance;
    let sha = commit(p.commit.as_deref(), &p.repo_root)?;
    let summary = host.pull_requests(&sha).await?;
    eprintln!("{}", summary.headline());
    let extra = Extra {
        results: Some(raw(&summary)?),
        require_approvals: common.rules.require_approvals,
        allow_open: Some(common.rules.allow_open),
        assert: common.assert,
        ..Extra::new("pull_request")
    };
    evidence(ctx, common.path, common.target, common.evidence, extra).await
}

/// Gates on the same rule as `attest pullrequest`, recording nothing.
pub async fn assert_pr(global: &Global, cmd: AssertPrCmd) -> anyhow::Result<ExitCode> {
    let net = Net::new(global)?;
    let (host, common) = match cmd {
        AssertPrCmd::Github { provider, common } => (github_host(&net, &provider)?, common),
        AssertPrCmd::Gitlab { provider, common } => (gitlab_host(&net, &provider)?, common),
        AssertPrCmd::Bitbucket { provider, common } => (bitbucket_host(&net, &provider)?, common),
        AssertPrCmd::Azure { provider, common } => (azure_host(&net, &provider)?, common),
    };
    let sha = commit(common.commit.as_deref(), &common.repo_root)?;
    let summary = host.pull_requests(&sha).await?;
    let verdict = summary.verdict(&rules(&common.rules));
    if global.output == Output::Json {
        crate::output::json(&serde_json::json!({
            "compliant": verdict.compliant,
            "reasons": verdict.reasons,
            "rules": rules(&common.rules),
            "results": summary,
        }))?;
    } else {
        println!("{}", summary.headline());
    }
    if verdict.compliant {
        return Ok(ExitCode::SUCCESS);
    }
    for r in &verdict.reasons {
        eprintln!("assert failed: {r}");
    }
    Ok(ExitCode::from(fail::NON_COMPLIANT))
}

pub async fn attest_jira(ctx: Ctx, a: AttestJiraArgs) -> anyhow::Result<ExitCode> {
    let net = Net::new(&ctx.global)?;
    let credentials = match (&a.jira_username, &a.jira_api_token, &a.jira_pat) {
        (Some(u), Some(t), None) => jira::Credentials::Cloud {
            username: u.clone(),
            api_token: t.clone(),
        },
        (None, None, Some(p)) => jira::Credentials::Pat(p.clone()),
        (_, _, Some(_)) => bail!(
            "give either --jira-pat (Data Center) or --jira-username with --jira-api-token (Cloud), not both"
        ),
        _ => bail!(
            "--jira-username with --jira-api-token (Jira Cloud), or --jira-pat (Data Center), is required"
        ),
    };
    let projects = jira_keys::project_keys(&a.jira_project_key)?;
    let base_url = net.base("--jira-base-url", &a.jira_base_url)?;
    let (searched, text) = jira_text(
        &a.evidence.provenance,
        a.ignore_branch_match,
        a.jira_secondary_source.as_deref(),
    )?;
    let keys = jira_keys::issue_keys(&text, &projects);
    let client = jira::Jira::new(&base_url, credentials, net.client.clone());
    let mut issues = vec![];
    for k in &keys {
        issues.push(client.issue(k, &a.jira_issue_fields).await?);
    }
    let summary = JiraSummary {
        base_url: base_url.to_string().trim_end_matches('/').to_string(),
        searched,
        issues,
    };
    eprintln!("{}", summary.headline());
    let extra = Extra {
        results: Some(raw(&summary)?),
        assert: a.assert,
        ..Extra::new("jira")
    };
    evidence(ctx, a.path, a.target, a.evidence, extra).await
}

/// The text keys are looked for in, and what it was made of.
fn jira_text(
    p: &ProvenanceArgs,
    ignore_branch: bool,
    secondary: Option<&str>,
) -> anyhow::Result<(Vec<String>, String)> {
    // The same commit `commit` resolves to, read once for its message.
    let rev = p
        .commit
        .clone()
        .or_else(|| super::provenance::ci_defaults().and_then(|c| c.commit))
        .unwrap_or_else(|| "HEAD".into());
    let info = crate::git::commit_info(&p.repo_root, &rev)
        .context("attest jira reads the commit's message from the repository")?;
    let mut searched = vec!["commit message".to_string()];
    let mut text = info.message.clone();
    if !ignore_branch {
        // CI checkouts are often detached: the CI names the branch.
        let branch = Some(info.branch.clone())
            .filter(|b| !b.is_empty() && b != "HEAD")
            .or_else(|| ci("GITHUB_HEAD_REF"))
            .or_else(|| ci("GITHUB_REF_NAME"))
            .or_else(|| ci("CI_COMMIT_REF_NAME"))
            .or_else(|| ci("BITBUCKET_BRANCH"))
            .or_else(|| ci("BUILD_SOURCEBRANCHNAME"));
        if let Some(b) = branch {
            searched.push("branch name".into());
            text.push('\n');
            text.push_str(&b);
        }
    }
    if let Some(s) = secondary {
        searched.push("secondary source".into());
        text.push('\n');
        text.push_str(s);
    }
    Ok((searched, text))
}

pub async fn attest_sonar(ctx: Ctx, a: AttestSonarArgs) -> anyhow::Result<ExitCode> {
    let net = Net::new(&ctx.global)?;
    let scope = sonar::Scope {
        branch: a.sonar_branch.clone(),
        pull_request: a.sonar_pull_request.clone(),
    };
    let (server, find) = if let Some(task_url) = &a.sonar_ce_task_url {
        let u = base_task_url(&net, task_url)?;
        (u.0, sonar::Find::Task(u.1))
    } else if let Some(project_key) = &a.sonar_project_key {
        let revision = match &a.sonar_revision {
            Some(r) => r.clone(),
            None => commit(
                a.evidence.provenance.commit.as_deref(),
                &a.evidence.provenance.repo_root,
            )
            .context("--sonar-project-key needs --sonar-revision or --commit")?,
        };
        (
            net.base("--sonar-server-url", &a.sonar_server_url)?,
            sonar::Find::Revision {
                project_key: project_key.clone(),
                revision,
            },
        )
    } else {
        let path = a.sonar_working_dir.join("report-task.txt");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {} (give --sonar-working-dir, --sonar-ce-task-url or --sonar-project-key)", path.display())
        })?;
        let task = custody_evidence::sonar::report_task(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        (
            net.base(&format!("{}'s serverUrl", path.display()), &task.server_url)?,
            sonar::Find::Task(task.ce_task_id),
        )
    };
    let client = sonar::Sonar::new(&server, &a.sonar_api_token, net.client.clone());
    let summary: SonarSummary = client.quality_gate(find, scope, a.max_wait).await?;
    if let (Some(wanted), Some(got)) = (&a.sonar_revision, &summary.revision)
        && !got.eq_ignore_ascii_case(wanted)
    {
        bail!(
            "the Sonar analysis {} is of revision {got}, not --sonar-revision {wanted}",
            summary.analysis_id
        );
    }
    eprintln!("{}", summary.headline());
    let extra = Extra {
        results: Some(raw(&summary)?),
        assert: a.assert,
        ..Extra::new("sonar")
    };
    evidence(ctx, a.path, a.target, a.evidence, extra).await
}

/// `https://sonar.example.com/api/ce/task?id=X` → the server and X.
fn base_task_url(net: &Net, u: &str) -> anyhow::Result<(url::Url, String)> {
    let bad =
        || format!("--sonar-ce-task-url '{u}' is not a Sonar task URL (SERVER/api/ce/task?id=ID)");
    let parsed = url::Url::parse(u).with_context(bad)?;
    let id = parsed
        .query_pairs()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .with_context(bad)?;
    let path = parsed.path();
    let Some(prefix) = path.strip_suffix("/api/ce/task") else {
        bail!(bad());
    };
    let mut server = parsed.clone();
    server.set_query(None);
    server.set_path(prefix);
    Ok((net.base("--sonar-ce-task-url", server.as_str())?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(insecure_http: bool) -> Net {
        Net {
            client: reqwest::Client::new(),
            transport: custody_client::Transport {
                ca_cert: None,
                insecure_http,
            },
        }
    }

    #[test]
    fn task_urls() {
        let net = net(false);
        let (s, id) =
            base_task_url(&net, "https://sonar.example.com/sq/api/ce/task?id=AVAn5").unwrap();
        assert_eq!(
            (s.as_str(), id.as_str()),
            ("https://sonar.example.com/sq", "AVAn5")
        );
        assert!(base_task_url(&net, "https://sonar.example.com/api/ce/task").is_err());
        assert!(base_task_url(&net, "https://sonar.example.com/dashboard?id=x").is_err());
    }

    #[test]
    fn tokens_cross_networks_encrypted_only() {
        let e = net(false)
            .base("--gitlab-base-url", "http://git.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing plain http:// for --gitlab-base-url"),
            "{e}"
        );
        assert!(
            net(false)
                .base("--gitlab-base-url", "http://127.0.0.1:8929")
                .is_ok()
        );
        assert!(
            net(true)
                .base("--gitlab-base-url", "http://git.example.com")
                .is_ok()
        );
        assert!(
            net(false)
                .base("--gitlab-base-url", "https://git.example.com")
                .is_ok()
        );
    }
}
