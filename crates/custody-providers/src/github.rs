//! GitHub and GitHub Enterprise Server, REST API v3: the pull requests
//! associated with a commit, and their reviews.
//!
//! <https://docs.github.com/en/rest/commits/commits#list-pull-requests-associated-with-a-commit>,
//! <https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request>

use std::collections::BTreeMap;

use custody_evidence::pull_request::{Approval, PrState, PullRequest, PullRequestSummary};
use serde::Deserialize;
use url::Url;

use crate::http::{Api, Auth, ProviderError, join, next_link};

pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

pub struct GitHub {
    api: Api,
    root: Url,
    owner: String,
    repo: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    #[serde(default)]
    title: String,
    state: String,
    user: Option<User>,
    created_at: Option<String>,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    head: Ref,
    base: Ref,
}

#[derive(Deserialize)]
struct Review {
    user: Option<User>,
    state: String,
    submitted_at: Option<String>,
    commit_id: Option<String>,
}

impl GitHub {
    /// `base_url` is the API root (`https://api.github.com`), or a GitHub
    /// Enterprise Server's address, with or without its `/api/v3`.
    pub fn new(
        base_url: &Url,
        token: &str,
        org: &str,
        repo: &str,
        client: reqwest::Client,
    ) -> Self {
        let mut root = base_url.clone();
        let is_cloud = root.host_str() == Some("api.github.com");
        if !is_cloud && !root.path().trim_end_matches('/').ends_with("/api/v3") {
            root = join(&root, &["api", "v3"]);
        }
        GitHub {
            api: Api::new("GitHub", Auth::Bearer(token.to_string()), client),
            root,
            owner: org.to_string(),
            repo: repo.to_string(),
        }
    }

    fn url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["repos", self.owner.as_str(), self.repo.as_str()];
        segments.extend_from_slice(rest);
        let mut u = join(&self.root, &segments);
        u.query_pairs_mut().append_pair("per_page", "100");
        u
    }

    async fn all<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
    ) -> Result<Vec<T>, ProviderError> {
        let mut out = vec![];
        let mut next = Some(first);
        while let Some(url) = next {
            let (page, headers): (Vec<T>, _) = self.api.get(&url).await?;
            out.extend(page);
            next = next_link(&headers);
        }
        Ok(out)
    }

    pub async fn pull_requests(&self, commit: &str) -> Result<PullRequestSummary, ProviderError> {
        let pulls: Vec<Pull> = self.all(self.url(&["commits", commit, "pulls"])).await?;
        let mut out = vec![];
        for p in pulls {
            let n = p.number.to_string();
            let reviews: Vec<Review> = self.all(self.url(&["pulls", &n, "reviews"])).await?;
            out.push(to_pull_request(p, reviews));
        }
        Ok(PullRequestSummary {
            provider: "github".into(),
            repository: format!("{}/{}", self.owner, self.repo),
            commit: commit.to_string(),
            pull_requests: out,
        })
    }
}

/// A deleted account shows as `null`; GitHub itself calls it `ghost`.
fn login(u: Option<User>) -> String {
    u.map(|u| u.login).unwrap_or_else(|| "ghost".into())
}

fn to_pull_request(p: Pull, reviews: Vec<Review>) -> PullRequest {
    // Reviews come oldest first; a reviewer's last approving or blocking
    // review is where they stand (comments change nothing; a dismissal
    // withdraws an approval).
    let mut standing: BTreeMap<String, Review> = BTreeMap::new();
    for r in reviews {
        if matches!(
            r.state.as_str(),
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
        ) {
            let who = r
                .user
                .as_ref()
                .map(|u| u.login.clone())
                .unwrap_or_else(|| "ghost".into());
            standing.insert(who, r);
        }
    }
    let approvals = standing
        .into_iter()
        .filter(|(_, r)| r.state == "APPROVED")
        .map(|(who, r)| Approval {
            username: who,
            at: r.submitted_at,
            commit: r.commit_id,
        })
        .collect();
    let state = match (p.state.as_str(), &p.merged_at) {
        (_, Some(_)) => PrState::Merged,
        ("open", None) => PrState::Open,
        _ => PrState::Closed,
    };
    PullRequest {
        number: p.number,
        url: p.html_url,
        title: p.title,
        state,
        author: login(p.user),
        created_at: p.created_at,
        merged_at: p.merged_at,
        merge_commit: p.merge_commit_sha.filter(|_| state == PrState::Merged),
        source_branch: p.head.name,
        target_branch: p.base.name,
        head_commit: Some(p.head.sha),
        approvals,
    }
}
