//! Bitbucket Cloud, REST API 2.0: the pull requests containing a commit,
//! and their participants' approvals.
//!
//! <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/#api-repositories-workspace-repo-slug-commit-commit-pullrequests-get>,
//! <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/#api-repositories-workspace-repo-slug-pullrequests-pull-request-id-get>
//!
//! Bitbucket withdraws approvals on a push itself when the repository is
//! set to; it does not say at which commit one was given.

use custody_evidence::pull_request::{Approval, PrState, PullRequest, PullRequestSummary};
use serde::Deserialize;
use url::Url;

use crate::http::{Api, Auth, ProviderError, join};

pub const DEFAULT_BASE_URL: &str = "https://api.bitbucket.org/2.0";

pub struct Bitbucket {
    api: Api,
    root: Url,
    workspace: String,
    repo: String,
}

#[derive(Deserialize)]
struct Paged<T> {
    values: Vec<T>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    id: u64,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

impl Account {
    fn name(self) -> String {
        self.nickname
            .or(self.display_name)
            .unwrap_or_else(|| "unknown".into())
    }
}

#[derive(Deserialize)]
struct Branch {
    name: String,
}

#[derive(Deserialize)]
struct Commit {
    hash: String,
}

#[derive(Deserialize)]
struct End {
    branch: Branch,
    commit: Option<Commit>,
}

#[derive(Deserialize)]
struct Link {
    href: String,
}

#[derive(Deserialize)]
struct Links {
    html: Link,
}

#[derive(Deserialize)]
struct Participant {
    user: Account,
    #[serde(default)]
    approved: bool,
    participated_on: Option<String>,
}

#[derive(Deserialize)]
struct Pull {
    id: u64,
    #[serde(default)]
    title: String,
    state: String,
    author: Account,
    created_on: Option<String>,
    updated_on: Option<String>,
    source: End,
    destination: End,
    merge_commit: Option<Commit>,
    links: Links,
    #[serde(default)]
    participants: Vec<Participant>,
}

pub enum Credentials {
    AccessToken(String),
    /// A username and an API token (app passwords were retired).
    ApiToken {
        username: String,
        token: String,
    },
}

impl Bitbucket {
    pub fn new(
        base_url: &Url,
        credentials: Credentials,
        workspace: &str,
        repo: &str,
        client: reqwest::Client,
    ) -> Self {
        let auth = match credentials {
            Credentials::AccessToken(t) => Auth::Bearer(t),
            Credentials::ApiToken { username, token } => Auth::Basic {
                user: username,
                password: token,
            },
        };
        Bitbucket {
            api: Api::new("Bitbucket", auth, client),
            root: base_url.clone(),
            workspace: workspace.to_string(),
            repo: repo.to_string(),
        }
    }

    fn url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["repositories", self.workspace.as_str(), self.repo.as_str()];
        segments.extend_from_slice(rest);
        join(&self.root, &segments)
    }

    pub async fn pull_requests(&self, commit: &str) -> Result<PullRequestSummary, ProviderError> {
        let mut first = self.url(&["commit", commit, "pullrequests"]);
        first.query_pairs_mut().append_pair("pagelen", "50");
        let mut ids = vec![];
        let mut next = Some(first);
        while let Some(url) = next {
            let (page, _): (Paged<Listed>, _) = self.api.get(&url).await?;
            ids.extend(page.values.into_iter().map(|p| p.id));
            next = match page.next {
                Some(n) => Some(Url::parse(&n).map_err(|e| {
                    self.api.error(
                        &reqwest::Method::GET,
                        &url,
                        Some(200),
                        format!("answered a `next` that is not a URL: {e}"),
                    )
                })?),
                None => None,
            };
        }
        let mut out = vec![];
        for id in ids {
            let (p, _): (Pull, _) = self
                .api
                .get(&self.url(&["pullrequests", &id.to_string()]))
                .await?;
            out.push(to_pull_request(p));
        }
        Ok(PullRequestSummary {
            provider: "bitbucket".into(),
            repository: format!("{}/{}", self.workspace, self.repo),
            commit: commit.to_string(),
            pull_requests: out,
        })
    }
}

fn to_pull_request(p: Pull) -> PullRequest {
    let state = match p.state.as_str() {
        "MERGED" => PrState::Merged,
        "OPEN" => PrState::Open,
        // DECLINED, SUPERSEDED
        _ => PrState::Closed,
    };
    PullRequest {
        number: p.id,
        url: p.links.html.href,
        title: p.title,
        state,
        author: p.author.name(),
        created_at: p.created_on,
        // Bitbucket has no merge time; its last update is the merge.
        merged_at: p.updated_on.filter(|_| state == PrState::Merged),
        merge_commit: p.merge_commit.map(|c| c.hash),
        source_branch: p.source.branch.name,
        target_branch: p.destination.branch.name,
        head_commit: p.source.commit.map(|c| c.hash),
        approvals: p
            .participants
            .into_iter()
            .filter(|x| x.approved)
            .map(|x| Approval {
                username: x.user.name(),
                at: x.participated_on,
                commit: None,
            })
            .collect(),
    }
}
