//! GitLab (gitlab.com or self-managed), REST API v4: the merge requests a
//! commit belongs to, and who approved them.
//!
//! <https://docs.gitlab.com/api/commits/#list-merge-requests-associated-with-a-commit>,
//! <https://docs.gitlab.com/api/merge_request_approvals/#retrieve-approval-state-for-a-merge-request>
//!
//! GitLab removes approvals itself when commits are pushed, if the project
//! is set to; it does not say at which commit an approval was given.

use custody_evidence::pull_request::{Approval, PrState, PullRequest, PullRequestSummary};
use reqwest::header::HeaderName;
use serde::Deserialize;
use url::Url;

use crate::http::{Api, Auth, ProviderError, join, next_link};

pub const DEFAULT_BASE_URL: &str = "https://gitlab.com";

pub struct GitLab {
    api: Api,
    root: Url,
    project: String,
}

#[derive(Deserialize)]
struct User {
    username: String,
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    web_url: String,
    #[serde(default)]
    title: String,
    state: String,
    author: Option<User>,
    created_at: Option<String>,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    squash_commit_sha: Option<String>,
    source_branch: String,
    target_branch: String,
    sha: Option<String>,
}

#[derive(Deserialize)]
struct Approvals {
    #[serde(default)]
    approved_by: Vec<Approver>,
}

#[derive(Deserialize)]
struct Approver {
    user: User,
    /// Given by GitLab 17 and later.
    #[serde(default)]
    approved_at: Option<String>,
}

impl GitLab {
    /// `base_url` is the instance (`https://gitlab.com`, or
    /// `https://git.example.com/gitlab` for one under a path).
    pub fn new(
        base_url: &Url,
        token: &str,
        org: &str,
        repo: &str,
        client: reqwest::Client,
    ) -> Self {
        let auth = Auth::Header(HeaderName::from_static("private-token"), token.to_string());
        GitLab {
            api: Api::new("GitLab", auth, client),
            root: join(base_url, &["api", "v4"]),
            project: format!("{org}/{repo}"),
        }
    }

    fn url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["projects", self.project.as_str()];
        segments.extend_from_slice(rest);
        join(&self.root, &segments)
    }

    pub async fn pull_requests(&self, commit: &str) -> Result<PullRequestSummary, ProviderError> {
        let mut first = self.url(&["repository", "commits", commit, "merge_requests"]);
        first.query_pairs_mut().append_pair("per_page", "100");
        let mut mrs: Vec<MergeRequest> = vec![];
        let mut next = Some(first);
        while let Some(url) = next {
            let (page, headers): (Vec<MergeRequest>, _) = self.api.get(&url).await?;
            mrs.extend(page);
            next = next_link(&headers);
        }
        let mut out = vec![];
        for mr in mrs {
            let iid = mr.iid.to_string();
            let (a, _): (Approvals, _) = self
                .api
                .get(&self.url(&["merge_requests", &iid, "approvals"]))
                .await?;
            out.push(to_pull_request(mr, a));
        }
        Ok(PullRequestSummary {
            provider: "gitlab".into(),
            repository: self.project.clone(),
            commit: commit.to_string(),
            pull_requests: out,
        })
    }
}

fn to_pull_request(mr: MergeRequest, a: Approvals) -> PullRequest {
    let state = match mr.state.as_str() {
        "merged" => PrState::Merged,
        // `locked` is an open merge request being merged.
        "opened" | "locked" => PrState::Open,
        _ => PrState::Closed,
    };
    PullRequest {
        number: mr.iid,
        url: mr.web_url,
        title: mr.title,
        state,
        author: mr
            .author
            .map(|u| u.username)
            .unwrap_or_else(|| "unknown".into()),
        created_at: mr.created_at,
        merged_at: mr.merged_at,
        merge_commit: mr.merge_commit_sha.or(mr.squash_commit_sha),
        source_branch: mr.source_branch,
        target_branch: mr.target_branch,
        head_commit: mr.sha,
        approvals: a
            .approved_by
            .into_iter()
            .map(|x| Approval {
                username: x.user.username,
                at: x.approved_at,
                commit: None,
            })
            .collect(),
    }
}
