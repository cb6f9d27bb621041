//! Commit details from the local git repository.

use std::path::Path;

use anyhow::{Context, anyhow};
use custody_api::GitCommitInfo;

/// Reads `commit` (a full or abbreviated SHA, or any revision) from the
/// repository containing `repo_root`.
pub fn commit_info(repo_root: &Path, commit: &str) -> anyhow::Result<GitCommitInfo> {
    let repo = git2::Repository::discover(repo_root).with_context(|| {
        format!(
            "cannot open a git repository at {} (see --repo-root)",
            repo_root.display()
        )
    })?;
    let obj = repo.revparse_single(commit).with_context(|| {
        format!(
            "commit '{commit}' is not in the repository at {}",
            repo_root.display()
        )
    })?;
    let c = obj
        .peel_to_commit()
        .map_err(|e| anyhow!("'{commit}' is not a commit: {e}"))?;
    let sha1 = c.id().to_string();
    let author = c.author();
    let branch = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_string))
        .unwrap_or_default();
    let url = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(str::to_string))
        .map(|u| crate::ci::commit_url(&crate::ci::normalise_remote(&u), &sha1));
    Ok(GitCommitInfo {
        message: c.message().unwrap_or("").trim().to_string(),
        author: format!(
            "{} <{}>",
            author.name().unwrap_or(""),
            author.email().unwrap_or("")
        ),
        timestamp: c.time().seconds(),
        branch,
        url,
        sha1,
    })
}
