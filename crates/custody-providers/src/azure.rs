//! Azure DevOps Services and Server, Git REST API 7.1: the pull requests
//! that contain a commit or were merged as it, and their reviewers' votes.
//!
//! <https://learn.microsoft.com/en-us/rest/api/azure/devops/git/pull-request-query/get>,
//! <https://learn.microsoft.com/en-us/rest/api/azure/devops/git/pull-requests/get-pull-request-by-id>
//!
//! A vote of 10 is "approved", 5 "approved with suggestions": both count,
//! as they do for Azure's own minimum-reviewers policy. Azure resets votes
//! on a push itself when the branch policy says so; it does not say at
//! which commit a vote was cast.

use std::collections::BTreeSet;

use custody_evidence::pull_request::{Approval, PrState, PullRequest, PullRequestSummary};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::http::{Api, Auth, ProviderError, join};

const API_VERSION: &str = "7.1";

pub struct Azure {
    api: Api,
    org_url: Url,
    project: String,
    repo: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    #[serde(default)]
    unique_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

impl Identity {
    fn name(self) -> String {
        self.unique_name
            .or(self.display_name)
            .unwrap_or_else(|| "unknown".into())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reviewer {
    #[serde(flatten)]
    who: Identity,
    vote: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitRef {
    commit_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pull {
    pull_request_id: u64,
    status: String,
    #[serde(default)]
    title: String,
    created_by: Identity,
    creation_date: Option<String>,
    closed_date: Option<String>,
    source_ref_name: String,
    target_ref_name: String,
    last_merge_commit: Option<CommitRef>,
    last_merge_source_commit: Option<CommitRef>,
    #[serde(default)]
    reviewers: Vec<Reviewer>,
}

#[derive(Deserialize)]
struct QueryAnswer {
    /// One map per query, commit → pull requests.
    results: Vec<std::collections::BTreeMap<String, Vec<Value>>>,
}

impl Azure {
    /// `org_url` is `https://dev.azure.com/ORG`, or a server's collection
    /// (`https://tfs.example.com/tfs/DefaultCollection`).
    pub fn new(
        org_url: &Url,
        token: &str,
        project: &str,
        repo: &str,
        client: reqwest::Client,
    ) -> Self {
        // A personal access token goes as the password of basic auth.
        let auth = Auth::Basic {
            user: String::new(),
            password: token.to_string(),
        };
        Azure {
            api: Api::new("Azure DevOps", auth, client),
            org_url: org_url.clone(),
            project: project.to_string(),
            repo: repo.to_string(),
        }
    }

    fn url(&self, rest: &[&str]) -> Url {
        let mut segments = vec![
            self.project.as_str(),
            "_apis",
            "git",
            "repositories",
            self.repo.as_str(),
        ];
        segments.extend_from_slice(rest);
        let mut u = join(&self.org_url, &segments);
        u.query_pairs_mut().append_pair("api-version", API_VERSION);
        u
    }

    pub async fn pull_requests(&self, commit: &str) -> Result<PullRequestSummary, ProviderError> {
        let body = json!({"queries": [
            {"type": "commit", "items": [commit]},
            {"type": "lastMergeCommit", "items": [commit]},
        ]});
        let url = self.url(&["pullrequestquery"]);
        let (answer, _): (QueryAnswer, _) = self.api.post(&url, &body).await?;
        let mut ids = BTreeSet::new();
        for result in answer.results {
            for prs in result.into_values() {
                for pr in prs {
                    let id = pr["pullRequestId"].as_u64().ok_or_else(|| {
                        self.api.error(
                            &reqwest::Method::POST,
                            &url,
                            Some(200),
                            "answered a pull request without pullRequestId".into(),
                        )
                    })?;
                    ids.insert(id);
                }
            }
        }
        let mut out = vec![];
        for id in ids {
            let (p, _): (Pull, _) = self
                .api
                .get(&self.url(&["pullrequests", &id.to_string()]))
                .await?;
            out.push(self.to_pull_request(p));
        }
        Ok(PullRequestSummary {
            provider: "azure".into(),
            repository: format!("{}/{}", self.project, self.repo),
            commit: commit.to_string(),
            pull_requests: out,
        })
    }

    fn to_pull_request(&self, p: Pull) -> PullRequest {
        let state = match p.status.as_str() {
            "completed" => PrState::Merged,
            "active" => PrState::Open,
            _ => PrState::Closed,
        };
        let web = join(
            &self.org_url,
            &[
                &self.project,
                "_git",
                &self.repo,
                "pullrequest",
                &p.pull_request_id.to_string(),
            ],
        );
        let branch = |r: String| r.strip_prefix("refs/heads/").map(String::from).unwrap_or(r);
        PullRequest {
            number: p.pull_request_id,
            url: web.to_string(),
            title: p.title,
            state,
            author: p.created_by.name(),
            created_at: p.creation_date,
            merged_at: p.closed_date.filter(|_| state == PrState::Merged),
            merge_commit: p
                .last_merge_commit
                .map(|c| c.commit_id)
                .filter(|_| state == PrState::Merged),
            source_branch: branch(p.source_ref_name),
            target_branch: branch(p.target_ref_name),
            head_commit: p.last_merge_source_commit.map(|c| c.commit_id),
            approvals: p
                .reviewers
                .into_iter()
                .filter(|r| r.vote >= 5)
                .map(|r| Approval {
                    username: r.who.name(),
                    at: None,
                    commit: None,
                })
                .collect(),
        }
    }
}
