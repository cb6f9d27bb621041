//! Pull requests (GitHub, Bitbucket, Azure DevOps) and merge requests
//! (GitLab) that contain a commit, with who approved them and at which
//! commit: the four-eyes evidence of a change.
//!
//! The client finds them through the provider's API and sends this summary;
//! the verdict is drawn here, on both sides, from the summary alone.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

pub const PROVIDERS: &[&str] = &["github", "gitlab", "bitbucket", "azure"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestSummary {
    /// `github`, `gitlab`, `bitbucket` or `azure`.
    pub provider: String,
    /// As the provider names it: `org/repo`, `group/sub/project`,
    /// `workspace/repo`, `project/repo`.
    pub repository: String,
    /// The commit the pull requests were looked up for.
    pub commit: String,
    pub pull_requests: Vec<PullRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The number (GitHub, Bitbucket, Azure) or iid (GitLab).
    pub number: u64,
    pub url: String,
    #[serde(default)]
    pub title: String,
    pub state: PrState,
    pub author: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub merge_commit: Option<String>,
    pub source_branch: String,
    pub target_branch: String,
    /// The pull request's last commit (its head), when the provider tells.
    #[serde(default)]
    pub head_commit: Option<String>,
    /// Approvals standing when it was read: a later review that withdrew
    /// one is already taken out.
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrState {
    Open,
    Merged,
    /// Closed without merging (declined, abandoned).
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub username: String,
    #[serde(default)]
    pub at: Option<String>,
    /// The commit the approval was given at, when the provider tells
    /// (GitHub). Providers that withdraw approvals on a push themselves
    /// (GitLab, Bitbucket, Azure DevOps, when so configured) do not.
    #[serde(default)]
    pub commit: Option<String>,
}

/// What makes a pull request count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrRules {
    /// Approvals needed from someone other than the author, on the pull
    /// request's last commit.
    pub require_approvals: u32,
    /// Whether an open pull request counts (for pipelines that run before
    /// the merge).
    pub allow_open: bool,
}

impl PrState {
    /// As people say it: `open`, `merged`, `closed without merging`.
    pub fn word(self) -> &'static str {
        match self {
            PrState::Open => "open",
            PrState::Merged => "merged",
            PrState::Closed => "closed without merging",
        }
    }
}

impl PullRequest {
    /// The approvals that count for four eyes: one per person, not the
    /// author's own, and not given before a later commit.
    /// Usernames are compared without case, as the providers do.
    pub fn valid_approvers(&self) -> BTreeSet<String> {
        self.approvals
            .iter()
            .filter(|a| !self.is_own(a) && !self.is_stale(a))
            .map(|a| a.username.to_lowercase())
            .collect()
    }

    fn is_own(&self, a: &Approval) -> bool {
        a.username.eq_ignore_ascii_case(&self.author)
    }

    fn is_stale(&self, a: &Approval) -> bool {
        match (&a.commit, &self.head_commit) {
            (Some(at), Some(head)) => !same_commit(at, head),
            _ => false,
        }
    }

    /// Why this pull request does not count, or `None` when it does.
    fn shortfall(&self, rules: &PrRules) -> Option<String> {
        let label = format!("pull request #{} ({})", self.number, self.url);
        match self.state {
            PrState::Merged => {}
            PrState::Open if rules.allow_open => {}
            PrState::Open => {
                return Some(format!(
                    "{label} is open, not merged (open ones count with --allow-open)"
                ));
            }
            PrState::Closed => return Some(format!("{label} was closed without merging")),
        }
        let valid = self.valid_approvers().len();
        let need = rules.require_approvals as usize;
        if valid >= need {
            return None;
        }
        let mut why = vec![];
        for a in &self.approvals {
            if self.is_own(a) {
                why.push(format!("{} approved their own change", a.username));
            } else if self.is_stale(a) {
                why.push(format!(
                    "{} approved at {}, before the last commit {}",
                    a.username,
                    short(a.commit.as_deref().unwrap_or_default()),
                    short(self.head_commit.as_deref().unwrap_or_default())
                ));
            }
        }
        let mut line = format!(
            "{label} has {valid} of {need} required approval{} by someone other than its author {}",
            if need == 1 { "" } else { "s" },
            self.author
        );
        if !why.is_empty() {
            line.push_str(&format!(" ({})", why.join("; ")));
        }
        Some(line)
    }
}

/// Providers give a commit in full or abbreviated (Bitbucket: 12 hex digits).
fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let n = a.len().min(b.len());
    n >= 7 && a[..n] == b[..n]
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

impl PullRequestSummary {
    /// Checks what a client could get wrong, for a 400.
    pub fn check(&self) -> Result<(), String> {
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(format!(
                "pull_request results: unknown provider '{}': expected one of {}",
                self.provider,
                PROVIDERS.join(", ")
            ));
        }
        if self.commit.trim().is_empty() {
            return Err("pull_request results: commit is empty".into());
        }
        for (i, pr) in self.pull_requests.iter().enumerate() {
            if pr.author.trim().is_empty() {
                return Err(format!(
                    "pull_request results: pull_requests[{i}] has an empty author"
                ));
            }
            if let Some(j) = pr
                .approvals
                .iter()
                .position(|a| a.username.trim().is_empty())
            {
                return Err(format!(
                    "pull_request results: pull_requests[{i}].approvals[{j}] has an empty username"
                ));
            }
        }
        Ok(())
    }

    /// Compliant iff at least one pull request that counts (merged, or
    /// open when allowed) has the approvals asked for.
    pub fn verdict(&self, rules: &PrRules) -> Verdict {
        if self.pull_requests.is_empty() {
            return Verdict::from_reasons(vec![format!(
                "no pull request in {} ({}) contains commit {}",
                self.repository, self.provider, self.commit
            )]);
        }
        let mut reasons = vec![];
        for pr in &self.pull_requests {
            match pr.shortfall(rules) {
                None => return Verdict::from_reasons(vec![]),
                Some(r) => reasons.push(r),
            }
        }
        Verdict::from_reasons(reasons)
    }

    /// A line for people: the pull requests and their states.
    pub fn headline(&self) -> String {
        if self.pull_requests.is_empty() {
            return format!("found no pull request for commit {}", self.commit);
        }
        let list: Vec<String> = self
            .pull_requests
            .iter()
            .map(|p| {
                let n = p.valid_approvers().len();
                format!(
                    "#{} {} ({n} approval{})",
                    p.number,
                    p.state.word(),
                    if n == 1 { "" } else { "s" }
                )
            })
            .collect();
        format!(
            "found {} pull request(s) for commit {}: {}",
            self.pull_requests.len(),
            self.commit,
            list.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "9f1c2e3d4b5a69788766554433221100ffeeddcc";
    const EARLIER: &str = "1111111111111111111111111111111111111111";

    fn pr(state: PrState, approvals: Vec<Approval>) -> PullRequest {
        PullRequest {
            number: 7,
            url: "https://github.com/acme/shop/pull/7".into(),
            title: "Add basket".into(),
            state,
            author: "alice".into(),
            created_at: None,
            merged_at: None,
            merge_commit: None,
            source_branch: "basket".into(),
            target_branch: "main".into(),
            head_commit: Some(HEAD.into()),
            approvals,
        }
    }

    fn approval(who: &str, commit: Option<&str>) -> Approval {
        Approval {
            username: who.into(),
            at: Some("2026-11-30T10:00:00Z".into()),
            commit: commit.map(String::from),
        }
    }

    fn summary(prs: Vec<PullRequest>) -> PullRequestSummary {
        PullRequestSummary {
            provider: "github".into(),
            repository: "acme/shop".into(),
            commit: HEAD.into(),
            pull_requests: prs,
        }
    }

    fn rules(n: u32) -> PrRules {
        PrRules {
            require_approvals: n,
            allow_open: false,
        }
    }

    #[test]
    fn no_pull_request_is_non_compliant() {
        let v = summary(vec![]).verdict(&rules(0));
        assert!(!v.compliant);
        assert!(v.reasons[0].contains("no pull request in acme/shop (github)"));
    }

    #[test]
    fn merged_counts_open_only_when_allowed_closed_never() {
        assert!(
            summary(vec![pr(PrState::Merged, vec![])])
                .verdict(&rules(0))
                .compliant
        );
        let open = summary(vec![pr(PrState::Open, vec![])]);
        let v = open.verdict(&rules(0));
        assert!(!v.compliant);
        assert!(v.reasons[0].contains("--allow-open"), "{v:?}");
        let allowed = PrRules {
            allow_open: true,
            ..rules(0)
        };
        assert!(open.verdict(&allowed).compliant);
        let closed = summary(vec![pr(PrState::Closed, vec![])]).verdict(&allowed);
        assert!(!closed.compliant);
        assert!(closed.reasons[0].contains("closed without merging"));
    }

    #[test]
    fn four_eyes_refuses_self_approval_and_stale_approval() {
        let s = summary(vec![pr(
            PrState::Merged,
            vec![
                approval("alice", Some(HEAD)),
                approval("bob", Some(EARLIER)),
            ],
        )]);
        let v = s.verdict(&rules(1));
        assert!(!v.compliant);
        let r = &v.reasons[0];
        assert!(r.contains("has 0 of 1 required approval"), "{r}");
        assert!(r.contains("alice approved their own change"), "{r}");
        assert!(
            r.contains("bob approved at 111111111111, before the last commit 9f1c2e3d4b5a"),
            "{r}"
        );
    }

    #[test]
    fn approvals_count_once_per_person_and_abbreviated_commits_match() {
        let s = summary(vec![pr(
            PrState::Merged,
            vec![
                approval("bob", Some(&HEAD[..12])),
                approval("BOB", None),
                approval("carol", None),
            ],
        )]);
        assert_eq!(s.pull_requests[0].valid_approvers().len(), 2);
        assert!(s.verdict(&rules(2)).compliant);
        assert!(!s.verdict(&rules(3)).compliant);
    }

    #[test]
    fn one_good_pull_request_is_enough() {
        let s = summary(vec![
            pr(PrState::Closed, vec![]),
            pr(PrState::Merged, vec![approval("bob", Some(HEAD))]),
        ]);
        assert!(s.verdict(&rules(1)).compliant);
        assert!(s.headline().contains("#7 merged (1 approval)"));
    }

    #[test]
    fn check_names_what_is_wrong() {
        let mut s = summary(vec![pr(PrState::Merged, vec![approval(" ", None)])]);
        assert!(s.check().unwrap_err().contains("approvals[0]"));
        s.provider = "svn".into();
        assert!(s.check().unwrap_err().contains("unknown provider 'svn'"));
    }
}
