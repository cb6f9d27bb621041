//! Defaults for commit, build URL and repository details, read from the
//! environment of the CI system running the command (GitHub Actions,
//! GitLab CI, Bitbucket Pipelines, Azure DevOps, CircleCI, AWS CodeBuild,
//! Jenkins, TeamCity). Pure: it reads variables through a lookup function.

use custody_api::RepoInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiDefaults {
    pub provider: &'static str,
    pub commit: Option<String>,
    pub build_url: Option<String>,
    pub commit_url: Option<String>,
    pub repo_info: Option<RepoInfo>,
}

/// A CI variable, set and not empty; none at all when
/// `CUSTODY_NO_CI_DETECT` turns detection off.
pub fn variable(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let set = |k: &str| env(k).filter(|s| !s.is_empty());
    if set("CUSTODY_NO_CI_DETECT").is_some() {
        return None;
    }
    set(name)
}

/// Detects the CI from its marker variable (the first present wins) and
/// expands its defaults. `CUSTODY_NO_CI_DETECT` turns detection off.
pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Option<CiDefaults> {
    let v = |k: &str| variable(env, k);
    let join = |a: Option<String>, b: &str| a.map(|a| format!("{}{b}", a.trim_end_matches('/')));
    if v("BITBUCKET_BUILD_NUMBER").is_some() {
        let ws = v("BITBUCKET_WORKSPACE");
        let slug = v("BITBUCKET_REPO_SLUG");
        let sha = v("BITBUCKET_COMMIT");
        let base = ws
            .as_ref()
            .zip(slug.as_ref())
            .map(|(w, s)| format!("https://bitbucket.org/{w}/{s}"));
        return Some(CiDefaults {
            provider: "bitbucket",
            build_url: base
                .as_ref()
                .zip(v("BITBUCKET_BUILD_NUMBER"))
                .map(|(b, n)| format!("{b}/addon/pipelines/home#!/results/{n}")),
            commit_url: base
                .as_ref()
                .zip(sha.as_ref())
                .map(|(b, s)| format!("{b}/commits/{s}")),
            repo_info: repo(
                v("BITBUCKET_GIT_HTTP_ORIGIN"),
                v("BITBUCKET_REPO_FULL_NAME"),
                v("BITBUCKET_REPO_UUID"),
                "bitbucket_cloud",
                ws.into_iter().collect(),
            ),
            commit: sha,
        });
    }
    if v("GITHUB_RUN_NUMBER").is_some() {
        let server = v("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let repo_name = v("GITHUB_REPOSITORY");
        let sha = v("GITHUB_SHA");
        let repo_url = repo_name.as_ref().map(|r| format!("{server}/{r}"));
        return Some(CiDefaults {
            provider: "github",
            build_url: repo_url
                .as_ref()
                .zip(v("GITHUB_RUN_ID"))
                .map(|(u, id)| format!("{u}/actions/runs/{id}")),
            commit_url: repo_url
                .as_ref()
                .zip(sha.as_ref())
                .map(|(u, s)| format!("{u}/commit/{s}")),
            repo_info: repo(
                repo_url,
                repo_name,
                v("GITHUB_REPOSITORY_ID"),
                "github",
                vec![],
            ),
            commit: sha,
        });
    }
    if v("TEAMCITY_VERSION").is_some() {
        return Some(CiDefaults {
            provider: "teamcity",
            commit: v("BUILD_VCS_NUMBER"),
            ..Default::default()
        });
    }
    if v("GITLAB_CI").is_some() {
        let sha = v("CI_COMMIT_SHA");
        let ns: Vec<String> = v("CI_PROJECT_NAMESPACE")
            .map(|n| n.split('/').map(str::to_string).collect())
            .unwrap_or_default();
        return Some(CiDefaults {
            provider: "gitlab",
            build_url: v("CI_JOB_URL"),
            commit_url: v("CI_PROJECT_URL")
                .zip(sha.as_ref())
                .map(|(u, s)| format!("{u}/-/commit/{s}")),
            repo_info: repo(
                v("CI_PROJECT_URL"),
                v("CI_PROJECT_PATH"),
                v("CI_PROJECT_ID"),
                "gitlab",
                ns,
            ),
            commit: sha,
        });
    }
    if v("TF_BUILD").is_some() {
        let sha = v("BUILD_SOURCEVERSION");
        let coll = v("SYSTEM_COLLECTIONURI");
        let project = v("SYSTEM_TEAMPROJECT");
        let base = join(coll.clone(), "/")
            .zip(project.as_ref())
            .map(|(c, p)| format!("{c}{p}"));
        let provider = match v("BUILD_REPOSITORY_PROVIDER").as_deref() {
            Some("GitHub" | "GitHubEnterprise") => "github",
            Some("Bitbucket") => "bitbucket_cloud",
            Some("Git") => "git",
            Some("Svn") => "subversion",
            _ => azure_provider(coll.as_deref()),
        };
        return Some(CiDefaults {
            provider: "azure-devops",
            build_url: base
                .as_ref()
                .zip(v("BUILD_BUILDID"))
                .map(|(b, id)| format!("{b}/_build/results?buildId={id}")),
            commit_url: base
                .as_ref()
                .zip(v("BUILD_REPOSITORY_NAME"))
                .zip(sha.as_ref())
                .map(|((b, r), s)| format!("{b}/_git/{r}/commit/{s}")),
            repo_info: repo(
                v("BUILD_REPOSITORY_URI"),
                v("BUILD_REPOSITORY_NAME"),
                v("BUILD_REPOSITORY_ID"),
                provider,
                vec![],
            ),
            commit: sha,
        });
    }
    if v("CIRCLECI").is_some() {
        let sha = v("CIRCLE_SHA1");
        let repo_url = v("CIRCLE_REPOSITORY_URL").map(|u| normalise_remote(&u));
        return Some(CiDefaults {
            provider: "circleci",
            build_url: v("CIRCLE_BUILD_URL"),
            commit_url: repo_url
                .as_ref()
                .zip(sha.as_ref())
                .map(|(u, s)| commit_url(u, s)),
            repo_info: repo(
                repo_url,
                v("CIRCLE_PROJECT_REPONAME"),
                v("CIRCLE_PROJECT_REPONAME"),
                "circleci",
                vec![],
            ),
            commit: sha,
        });
    }
    if v("CODEBUILD_CI").is_some() {
        let sha = v("CODEBUILD_RESOLVED_SOURCE_VERSION");
        let repo_url = v("CODEBUILD_SOURCE_REPO_URL").map(|u| normalise_remote(&u));
        return Some(CiDefaults {
            provider: "codebuild",
            build_url: v("CODEBUILD_BUILD_URL"),
            commit_url: repo_url
                .as_ref()
                .zip(sha.as_ref())
                .map(|(u, s)| commit_url(u, s)),
            repo_info: None,
            commit: sha,
        });
    }
    if v("JENKINS_URL").is_some() {
        let sha = v("GIT_COMMIT");
        let repo_url = v("GIT_URL").map(|u| normalise_remote(&u));
        return Some(CiDefaults {
            provider: "jenkins",
            build_url: v("BUILD_URL"),
            commit_url: repo_url
                .as_ref()
                .zip(sha.as_ref())
                .map(|(u, s)| commit_url(u, s)),
            repo_info: None,
            commit: sha,
        });
    }
    None
}

fn repo(
    url: Option<String>,
    name: Option<String>,
    id: Option<String>,
    provider: &str,
    ns: Vec<String>,
) -> Option<RepoInfo> {
    Some(RepoInfo {
        url: url?,
        name: name?,
        id: id?,
        description: None,
        provider: Some(provider.to_string()),
        namespace_path: ns,
    })
}

fn azure_provider(collection_uri: Option<&str>) -> &'static str {
    let Some(host) = collection_uri
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return "azure-devops";
    };
    if host == "dev.azure.com"
        || host.ends_with(".dev.azure.com")
        || host.ends_with(".visualstudio.com")
    {
        "azure_devops_services"
    } else {
        "azure_devops_server"
    }
}

/// `git@host:a/b.git` → `https://host/a/b`; credentials and the first
/// `.git` removed.
pub fn normalise_remote(remote: &str) -> String {
    let mut s = remote.trim().to_string();
    if let Some(rest) = s.strip_prefix("git@") {
        s = format!("https://{}", rest.replacen(':', "/", 1));
    } else if let Some(rest) = s.strip_prefix("ssh://git@") {
        s = format!("https://{rest}");
    }
    if let Ok(mut u) = url::Url::parse(&s) {
        let _ = u.set_username("");
        let _ = u.set_password(None);
        s = u.to_string();
    }
    if let Some(i) = s.find(".git") {
        s.replace_range(i..i + 4, "");
    }
    s.trim_end_matches('/').to_string()
}

/// The web URL of a commit, by the host's convention.
pub fn commit_url(repo_url: &str, sha: &str) -> String {
    if repo_url.contains("gitlab.com") {
        format!("{repo_url}/-/commit/{sha}")
    } else if repo_url.contains("bitbucket.org") {
        format!("{repo_url}/commits/{sha}")
    } else {
        format!("{repo_url}/commit/{sha}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn github() {
        let d = detect(&env(&[
            ("GITHUB_RUN_NUMBER", "7"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "99"),
            ("GITHUB_REPOSITORY_ID", "123"),
        ]))
        .unwrap();
        assert_eq!(d.commit.as_deref(), Some("abc"));
        assert_eq!(
            d.build_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/99")
        );
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://github.com/acme/app/commit/abc")
        );
        let r = d.repo_info.unwrap();
        assert_eq!(
            (r.name.as_str(), r.id.as_str(), r.provider.as_deref()),
            ("acme/app", "123", Some("github"))
        );
    }

    #[test]
    fn gitlab_bitbucket_azure_circle_jenkins() {
        let d = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "s"),
            ("CI_PROJECT_URL", "https://gitlab.com/g/p"),
            ("CI_JOB_URL", "https://gitlab.com/g/p/-/jobs/1"),
        ]))
        .unwrap();
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://gitlab.com/g/p/-/commit/s")
        );
        assert_eq!(
            d.build_url.as_deref(),
            Some("https://gitlab.com/g/p/-/jobs/1")
        );

        let d = detect(&env(&[
            ("BITBUCKET_BUILD_NUMBER", "5"),
            ("BITBUCKET_WORKSPACE", "w"),
            ("BITBUCKET_REPO_SLUG", "r"),
            ("BITBUCKET_COMMIT", "s"),
        ]))
        .unwrap();
        assert_eq!(
            d.build_url.as_deref(),
            Some("https://bitbucket.org/w/r/addon/pipelines/home#!/results/5")
        );
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://bitbucket.org/w/r/commits/s")
        );

        let d = detect(&env(&[
            ("TF_BUILD", "True"),
            ("BUILD_SOURCEVERSION", "s"),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/org/"),
            ("SYSTEM_TEAMPROJECT", "proj"),
            ("BUILD_BUILDID", "3"),
            ("BUILD_REPOSITORY_NAME", "repo"),
            (
                "BUILD_REPOSITORY_URI",
                "https://dev.azure.com/org/proj/_git/repo",
            ),
            ("BUILD_REPOSITORY_ID", "id1"),
        ]))
        .unwrap();
        assert_eq!(
            d.build_url.as_deref(),
            Some("https://dev.azure.com/org/proj/_build/results?buildId=3")
        );
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://dev.azure.com/org/proj/_git/repo/commit/s")
        );
        assert_eq!(
            d.repo_info.unwrap().provider.as_deref(),
            Some("azure_devops_services")
        );

        let d = detect(&env(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_SHA1", "s"),
            ("CIRCLE_REPOSITORY_URL", "git@github.com:acme/app.git"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/b/1"),
        ]))
        .unwrap();
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://github.com/acme/app/commit/s")
        );

        let d = detect(&env(&[
            ("JENKINS_URL", "http://j"),
            ("GIT_COMMIT", "s"),
            ("GIT_URL", "https://user:pw@bitbucket.org/w/r.git"),
            ("BUILD_URL", "http://j/1"),
        ]))
        .unwrap();
        assert_eq!(
            d.commit_url.as_deref(),
            Some("https://bitbucket.org/w/r/commits/s")
        );
        assert_eq!(d.build_url.as_deref(), Some("http://j/1"));
    }

    #[test]
    fn nothing_outside_ci_or_when_disabled() {
        assert!(detect(&env(&[])).is_none());
        assert!(
            detect(&env(&[
                ("GITHUB_RUN_NUMBER", "1"),
                ("CUSTODY_NO_CI_DETECT", "1")
            ]))
            .is_none()
        );
    }
}
