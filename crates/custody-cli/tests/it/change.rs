//! Change-process evidence from the providers: pull requests on GitHub,
//! GitLab, Bitbucket and Azure DevOps, Jira issues and Sonar quality gates,
//! each provider a local server answering with its documented shapes.

use std::path::{Path, PathBuf};

use crate::common;
use common::provider::{FakeProvider, Reply, fixture};
use common::{Cli, Db, Server};

/// The commit the fixtures name; replaced by the test repository's.
const FIXTURE_HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

/// A repository with one commit on `branch`; returns its directory and SHA.
pub(crate) fn repo(dir: &Path, message: &str, branch: &str) -> (PathBuf, String) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q", "-b", branch]);
    std::fs::write(repo.join("f"), "x").unwrap();
    git(&["add", "f"]);
    git(&["commit", "-q", "-m", message]);
    let sha = git(&["rev-parse", "HEAD"]);
    (repo, sha)
}

/// A fixture with the test commit in place of the fixtures' own.
fn answer(name: &str, sha: &str) -> Reply {
    Reply::fixture(name)
        .replace(FIXTURE_HEAD, sha)
        .replace(&FIXTURE_HEAD[..12], &sha[..12])
}

/// GitHub Enterprise under a path prefix: two pages of pull requests (the
/// first asked for twice: a 429 with Retry-After comes first), two pages of
/// reviews on #1347, none on #1350.
pub(crate) fn github(sha: &str) -> FakeProvider {
    let gh = FakeProvider::start();
    let root = "/git/api/v3/repos/acme/shop";
    let pulls = format!("{root}/commits/{sha}/pulls?per_page=100");
    let next_pulls = format!("{root}/commits/{sha}/pulls?per_page=100&page=2");
    let reviews = format!("{root}/pulls/1347/reviews?per_page=100");
    let next_reviews = format!("{root}/pulls/1347/reviews?per_page=100&page=2");
    let link = |to: &str| {
        format!(
            "<{}{to}>; rel=\"next\", <{}{to}>; rel=\"last\"",
            gh.url, gh.url
        )
    };
    gh.get(
        &pulls,
        Reply::status(429, "github/error-403-secondary.json").header("Retry-After", "1"),
    )
    .get(
        &pulls,
        answer("github/pulls-page1.json", sha).header("Link", &link(&next_pulls)),
    )
    .get(&next_pulls, answer("github/pulls-page2.json", sha))
    .get(
        &reviews,
        answer("github/reviews-1347-page1.json", sha).header("Link", &link(&next_reviews)),
    )
    .get(&next_reviews, answer("github/reviews-1347-page2.json", sha))
    .get(
        &format!("{root}/pulls/1350/reviews?per_page=100"),
        Reply::fixture("github/reviews-empty.json"),
    );
    gh
}

fn offline(dir: &Path) -> Cli {
    // assert pullrequest asks the provider only: no Custody server.
    Cli::new("http://127.0.0.1:9", "unused", dir)
}

#[test]
fn github_pull_requests_four_eyes_pages_and_rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, sha) = repo(dir.path(), "Add the basket", "main");
    let gh = github(&sha);
    let base = format!("{}/git", gh.url);
    let c = offline(dir.path());
    let args = |n: &str| {
        vec![
            "assert".to_string(),
            "pullrequest".into(),
            "github".into(),
            "--github-token".into(),
            "ghp_test".into(),
            "--github-org".into(),
            "acme".into(),
            "--repository".into(),
            "shop".into(),
            "--github-base-url".into(),
            base.clone(),
            "--repo-root".into(),
            repo.to_str().unwrap().into(),
            "--require-approvals".into(),
            n.into(),
        ]
    };
    let run = |n: &str| c.run(&args(n).iter().map(String::as_str).collect::<Vec<_>>());

    // erin approved #1347's last commit: one approval that counts.
    let ok = run("1").ok();
    assert!(
        ok.stdout.contains(&format!(
            "found 2 pull request(s) for commit {sha}: #1347 merged (1 approval), #1350 open (0 approvals)"
        )),
        "{}",
        ok.stdout
    );
    let failed = run("2").fails(1, "assert failed: pull request #1347");
    for needle in [
        "has 1 of 2 required approvals by someone other than its author octocat",
        "octocat approved their own change",
        "bob approved at 2c8e3a1b0d9f, before the last commit",
        "pull request #1350 (https://github.com/acme/shop/pull/1350) is open, not merged",
    ] {
        assert!(
            failed.stderr.contains(needle),
            "{needle}: {}",
            failed.stderr
        );
    }
    // dave withdrew his approval by asking for changes; carol only commented.
    assert!(!failed.stderr.contains("dave"), "{}", failed.stderr);

    let seen = gh.requests();
    let pulls: Vec<_> = seen
        .iter()
        .filter(|r| r.target.ends_with("/pulls?per_page=100"))
        .collect();
    // Two runs, and the first request of the first run was rate limited.
    assert_eq!(pulls.len(), 3);
    assert!(
        seen.iter()
            .all(|r| r.headers["authorization"] == "Bearer ghp_test")
    );

    // --allow-open lets #1350 count on its own when no approval is needed.
    let mut open = args("0");
    open.push("--allow-open".into());
    let j = c
        .run(
            &[
                &["--output", "json"][..],
                &open.iter().map(String::as_str).collect::<Vec<_>>(),
            ]
            .concat(),
        )
        .ok()
        .json();
    assert_eq!(j["compliant"], true);
    assert_eq!(
        j["results"]["pull_requests"][0]["approvals"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        j["results"]["pull_requests"][0]["head_commit"],
        sha.as_str()
    );
}

#[test]
fn github_refusals_name_provider_request_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, sha) = repo(dir.path(), "Add the basket", "main");
    let gh = FakeProvider::start();
    let c = offline(dir.path());
    let run = |repository: &str, token: Option<&str>| {
        let mut a = vec![
            "assert",
            "pr",
            "github",
            "--github-org",
            "acme",
            "--repository",
            repository,
            "--github-base-url",
            &gh.url,
            "--commit",
            &sha,
            "--repo-root",
            repo.to_str().unwrap(),
        ];
        if let Some(t) = token {
            a.extend(["--github-token", t]);
        }
        c.run(&a)
    };
    run("shop", None).fails(2, "--github-token is required");
    gh.get(
        &format!("/api/v3/repos/acme/shop/commits/{sha}/pulls?per_page=100"),
        Reply::status(401, "github/error-401.json"),
    );
    run("shop", Some("wrong")).fails(
        3,
        &format!(
            "GitHub: GET {}/api/v3/repos/acme/shop/commits/{sha}/pulls?per_page=100 answered 401 Unauthorized: Bad credentials (check the token)",
            gh.url
        ),
    );
    gh.get(
        &format!("/api/v3/repos/acme/nope/commits/{sha}/pulls?per_page=100"),
        Reply::status(404, "github/error-404.json"),
    );
    run("nope", Some("t")).fails(3, "answered 404 Not Found: Not Found");
    gh.get(
        &format!("/api/v3/repos/acme/empty/commits/{sha}/pulls?per_page=100"),
        Reply::fixture("github/reviews-empty.json"),
    );
    run("empty", Some("t")).fails(
        1,
        &format!("assert failed: no pull request in acme/empty (github) contains commit {sha}"),
    );
    gh.get(
        &format!("/api/v3/repos/acme/other/commits/{sha}/pulls?per_page=100"),
        Reply::status(422, "github/error-422.json").replace(FIXTURE_HEAD, &sha),
    );
    run("other", Some("t")).fails(
        3,
        &format!("answered 422 Unprocessable Entity: No commit found for SHA: {sha}"),
    );
    // A provider that is not there at all.
    let mut a = vec![
        "assert",
        "pr",
        "github",
        "--github-org",
        "acme",
        "--repository",
        "shop",
    ];
    a.extend([
        "--github-token",
        "t",
        "--github-base-url",
        "http://127.0.0.1:9",
        "--commit",
        &sha,
    ]);
    c.run(&a).fails(
        3,
        "GitHub: GET http://127.0.0.1:9/api/v3/repos/acme/shop/commits/",
    );
}

#[test]
fn gitlab_merge_requests_under_a_path_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, sha) = repo(dir.path(), "Basket totals", "main");
    let gl = FakeProvider::start();
    let project = "/gitlab/api/v4/projects/acme%2Fplatform%2Fshop";
    let first = format!("{project}/repository/commits/{sha}/merge_requests?per_page=100");
    let second = format!("{first}&page=2");
    gl.get(
        &first,
        answer("gitlab/mrs-page1.json", &sha)
            .header("Link", &format!("<{}{second}>; rel=\"next\"", gl.url)),
    )
    .get(&second, answer("gitlab/mrs-page2.json", &sha))
    .get(
        &format!("{project}/merge_requests/42/approvals"),
        Reply::fixture("gitlab/approvals-42.json"),
    )
    .get(
        &format!("{project}/merge_requests/45/approvals"),
        Reply::fixture("gitlab/approvals-45.json"),
    );
    let c = offline(dir.path());
    let base = format!("{}/gitlab", gl.url);
    let run = |n: &str| {
        c.run(&[
            "assert",
            "mr",
            "gitlab",
            "--gitlab-token",
            "glpat-test",
            "--gitlab-org",
            "acme/platform",
            "--repository",
            "shop",
            "--gitlab-base-url",
            &base,
            "--repo-root",
            repo.to_str().unwrap(),
            "--require-approvals",
            n,
        ])
    };
    let ok = run("1").ok();
    assert!(
        ok.stdout
            .contains("#42 merged (1 approval), #45 closed without merging (0 approvals)"),
        "{}",
        ok.stdout
    );
    let failed = run("2").fails(1, "has 1 of 2 required approvals by someone other than its author sam (sam approved their own change)");
    assert!(failed.stderr.contains("pull request #45 (https://gitlab.example.com/gitlab/acme/platform/shop/-/merge_requests/45) was closed without merging"), "{}", failed.stderr);
    assert!(
        gl.requests()
            .iter()
            .all(|r| r.headers["private-token"] == "glpat-test")
    );
}

#[test]
fn bitbucket_pull_requests_follow_next_and_use_an_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, sha) = repo(dir.path(), "Basket totals", "main");
    let bb = FakeProvider::start();
    let listed = format!("/2.0/repositories/acme/shop/commit/{sha}/pullrequests?pagelen=50");
    let next = format!("{listed}&page=2");
    bb.get(
        &listed,
        answer("bitbucket/commit-pullrequests-page1.json", &sha)
            .replace("NEXT_PAGE_URL", &format!("{}{next}", bb.url)),
    )
    .get(
        &next,
        answer("bitbucket/commit-pullrequests-page2.json", &sha),
    )
    .get(
        "/2.0/repositories/acme/shop/pullrequests/17",
        answer("bitbucket/pullrequest-17.json", &sha),
    )
    .get(
        "/2.0/repositories/acme/shop/pullrequests/18",
        answer("bitbucket/pullrequest-18.json", &sha),
    )
    .get(
        &format!("/2.0/repositories/acme/nope/commit/{sha}/pullrequests?pagelen=50"),
        Reply::status(404, "bitbucket/error-404.json"),
    );
    let c = offline(dir.path());
    let base = format!("{}/2.0", bb.url);
    let run = |repository: &str, n: &str| {
        c.run(&[
            "assert",
            "pullrequest",
            "bitbucket",
            "--bitbucket-workspace",
            "acme",
            "--repository",
            repository,
            "--bitbucket-username",
            "ci@acme.example",
            "--bitbucket-password",
            "ATATT-test",
            "--bitbucket-base-url",
            &base,
            "--repo-root",
            repo.to_str().unwrap(),
            "--require-approvals",
            n,
        ])
    };
    let ok = run("shop", "1").ok();
    assert!(
        ok.stdout
            .contains("#17 merged (1 approval), #18 closed without merging"),
        "{}",
        ok.stdout
    );
    run("shop", "2").fails(1, "has 1 of 2 required approvals by someone other than its author priya (priya approved their own change)");
    run("nope", "0").fails(3, "Bitbucket: GET ");
    run("nope", "0").fails(3, "answered 404 Not Found: Repository acme/nope not found");
    // "ci@acme.example:ATATT-test"
    assert!(
        bb.requests()
            .iter()
            .all(|r| r.headers["authorization"] == "Basic Y2lAYWNtZS5leGFtcGxlOkFUQVRULXRlc3Q=")
    );
    c.run(&[
        "assert",
        "pr",
        "bitbucket",
        "--bitbucket-workspace",
        "acme",
        "--repository",
        "shop",
        "--bitbucket-access-token",
        "a",
        "--bitbucket-username",
        "u",
        "--bitbucket-password",
        "p",
    ])
    .fails(
        2,
        "give either --bitbucket-access-token or --bitbucket-username",
    );
}

#[test]
fn azure_pull_requests_by_commit_on_a_server_collection() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, sha) = repo(dir.path(), "Basket totals", "main");
    let az = FakeProvider::start();
    let root = "/tfs/DefaultCollection/Retail/_apis/git/repositories/shop";
    az.on(
        "POST",
        &format!("{root}/pullrequestquery?api-version=7.1"),
        answer("azure/pullrequestquery.json", &sha),
    )
    .get(
        &format!("{root}/pullrequests/21?api-version=7.1"),
        answer("azure/pullrequest-21.json", &sha),
    );
    let c = offline(dir.path());
    let org = format!("{}/tfs/DefaultCollection", az.url);
    let run = |n: &str| {
        c.run(&[
            "--output",
            "json",
            "assert",
            "pullrequest",
            "azure",
            "--azure-token",
            "pat",
            "--azure-org-url",
            &org,
            "--project",
            "Retail",
            "--repository",
            "shop",
            "--repo-root",
            repo.to_str().unwrap(),
            "--require-approvals",
            n,
        ])
    };
    // omar (10) and pia (5, with suggestions) count; nina wrote it; the team
    // did not vote and ray rejected.
    let j = run("2").ok().json();
    let pr = &j["results"]["pull_requests"][0];
    assert_eq!(
        pr["url"],
        format!("{org}/Retail/_git/shop/pullrequest/21").as_str()
    );
    assert_eq!(pr["state"], "merged");
    assert_eq!(pr["source_branch"], "basket");
    assert_eq!(
        pr["merge_commit"],
        "b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
    );
    run("3").fails(1, "has 2 of 3 required approvals by someone other than its author nina@acme.example (nina@acme.example approved their own change)");
    // A commit no pull request contains or was merged as.
    let other = "2c8e3a1b0d9f4e5a6b7c8d9e0f1a2b3c4d5e6f70";
    az.on(
        "POST",
        &format!("{root}/pullrequestquery?api-version=7.1"),
        Reply::fixture("azure/pullrequestquery-none.json"),
    );
    c.run(&[
        "assert",
        "pr",
        "azure",
        "--azure-token",
        "pat",
        "--azure-org-url",
        &org,
        "--project",
        "Retail",
        "--repository",
        "shop",
        "--commit",
        other,
    ])
    .fails(
        1,
        &format!("no pull request in Retail/shop (azure) contains commit {other}"),
    );
    let seen = az.requests();
    let query: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        query["queries"][0],
        serde_json::json!({"type": "commit", "items": [sha]})
    );
    // ":pat"
    assert!(
        seen.iter()
            .all(|r| r.headers["authorization"] == "Basic OnBhdA==")
    );
}

const TEMPLATE: &str = "version: 1
trail:
  attestations:
  - name: pr
    type: pull_request
    approvals: 2
  - name: ticket
    type: jira
  - name: quality
    type: sonar
";

/// Flow `shop` (with `template`, if any) and its trail `t1`.
fn shop(s: &Server, template: Option<&str>) -> Cli {
    let c = s.custody();
    match template {
        Some(t) => {
            let tpl = s.write("template.yml", t);
            c.run(&[
                "create",
                "flow",
                "shop",
                "--template-file",
                tpl.to_str().unwrap(),
            ])
            .ok()
        }
        None => c.run(&["create", "flow", "shop"]).ok(),
    };
    c.run(&["begin", "trail", "t1", "--flow", "shop"]).ok();
    c
}

fn trail(c: &Cli) -> serde_json::Value {
    c.run(&["get", "trail", "t1", "--flow", "shop", "--output", "json"])
        .ok()
        .json()
}

fn slot<'a>(t: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    t["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no attestation {name} in {t}"))
}

both!(a_trail_needs_review_ticket_and_quality_gate);
fn a_trail_needs_review_ticket_and_quality_gate(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let (repo, sha) = repo(
        s.path("").as_path(),
        "SHOP-12: basket totals with vouchers",
        "feature/SHOP-7-checkout",
    );
    let root = repo.to_str().unwrap();
    let c = shop(&s, Some(TEMPLATE));
    let target = [
        "--flow",
        "shop",
        "--trail",
        "t1",
        "--repo-root",
        root,
        "--commit",
        &sha,
    ];

    // Pull request: the template asks for 2 approvals, #1347 has 1.
    let gh = github(&sha);
    let base = format!("{}/git", gh.url);
    let pr = |extra: &[&str]| {
        let mut a = vec![
            "attest",
            "pullrequest",
            "github",
            "--name",
            "pr",
            "--github-token",
            "t",
            "--github-org",
            "acme",
            "--repository",
            "shop",
            "--github-base-url",
            &base,
        ];
        a.extend(target);
        a.extend(extra);
        c.run(&a)
    };
    let out = pr(&["--assert"]).fails(
        1,
        "assert failed: pull_request attestation 'pr' is non-compliant",
    );
    assert!(
        out.stdout.contains("has 1 of 2 required approvals"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("found 2 pull request(s)"),
        "{}",
        out.stderr
    );
    let t = trail(&c);
    assert_eq!(slot(&t, "pr")["compliant"], false);
    assert_eq!(t["compliant"], false);
    // Said on the command line, the bar is the pipeline's.
    pr(&["--require-approvals", "1"]).ok();
    let t = trail(&c);
    let a = slot(&t, "pr");
    assert_eq!(a["compliant"], true);
    assert_eq!(a["data"]["rules"]["require_approvals"], 1);
    assert_eq!(a["data"]["results"]["pull_requests"][0]["number"], 1347);
    assert_eq!(t["compliant"], false, "jira and sonar are still missing");

    // Jira Cloud: SHOP-12 in the message exists, SHOP-7 in the branch does not.
    let jira = FakeProvider::start();
    let fields = "fields=summary%2Cstatus%2Cissuetype%2Cpriority";
    jira.get(
        &format!("/rest/api/3/issue/SHOP-12?{fields}"),
        Reply::fixture("jira/issue-SHOP-12.json"),
    )
    .get(
        &format!("/rest/api/3/issue/SHOP-7?{fields}"),
        Reply::status(404, "jira/error-404.json"),
    );
    let attest_jira = |extra: &[&str]| {
        let mut a = vec![
            "attest",
            "jira",
            "--name",
            "ticket",
            "--jira-base-url",
            &jira.url,
            "--jira-username",
            "ci@acme.example",
            "--jira-api-token",
            "tok",
            "--jira-issue-fields",
            "priority",
        ];
        a.extend(target);
        a.extend(extra);
        c.run(&a)
    };
    let out = attest_jira(&[]).ok();
    assert!(
        out.stdout.contains(&format!(
            "Jira issue SHOP-7 does not exist ({}/browse/SHOP-7)",
            jira.url
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("found Jira issue(s): SHOP-12 (Done), SHOP-7 (does not exist)"),
        "{}",
        out.stderr
    );
    attest_jira(&["--ignore-branch-match"]).ok();
    let t = trail(&c);
    let j = &slot(&t, "ticket")["data"]["results"];
    assert_eq!(slot(&t, "ticket")["compliant"], true);
    assert_eq!(j["searched"], serde_json::json!(["commit message"]));
    assert_eq!(
        j["issues"][0]["summary"],
        "Basket totals are wrong with vouchers"
    );
    assert_eq!(j["issues"][0]["fields"]["priority"]["name"], "Medium");
    // A refusal records nothing.
    let before = trail(&c)["attestations"].as_array().unwrap().len();
    jira.get(
        "/rest/api/3/issue/SHOP-12?fields=summary%2Cstatus%2Cissuetype",
        Reply::status(401, "jira/error-401.json"),
    );
    c.run(
        &[
            &[
                "attest",
                "jira",
                "--name",
                "ticket",
                "--jira-base-url",
                &jira.url,
                "--jira-username",
                "x",
                "--jira-api-token",
                "bad",
                "--ignore-branch-match",
            ][..],
            &target[..],
        ]
        .concat(),
    )
    .fails(3, "Jira: GET ");
    let t = trail(&c);
    assert_eq!(t["attestations"].as_array().unwrap().len(), before);
    assert_eq!(slot(&t, "ticket")["compliant"], true);

    // Sonar: the task is pending, then in progress, then done; the gate
    // fails first, and passes on the next analysis.
    let sonar = FakeProvider::start();
    let task = "/api/ce/task?id=AVAn5RKqYwETbXvgas-I";
    sonar
        .get(task, Reply::fixture("sonar/ce-task-pending.json"))
        .get(task, Reply::fixture("sonar/ce-task-in-progress.json"))
        .get(task, Reply::fixture("sonar/ce-task-success.json"))
        .get(
            "/api/project_analyses/search?project=acme_shop&ps=100&p=1&branch=main",
            answer("sonar/analyses-page1.json", &sha),
        )
        .get(
            "/api/qualitygates/project_status?analysisId=AY9f2c1Qk3xR7t",
            Reply::fixture("sonar/project-status-error.json"),
        )
        .get(
            "/api/qualitygates/project_status?analysisId=AY9f2c1Qk3xR7t",
            Reply::fixture("sonar/project-status-ok.json"),
        );
    let work = s.path(".scannerwork");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("report-task.txt"),
        fixture("sonar/report-task.txt").replace("SERVER_URL", &sonar.url),
    )
    .unwrap();
    let attest_sonar = || {
        c.run(
            &[
                &[
                    "attest",
                    "sonar",
                    "--name",
                    "quality",
                    "--sonar-api-token",
                    "squ_test",
                    "--sonar-working-dir",
                    work.to_str().unwrap(),
                    "--max-wait",
                    "10s",
                ][..],
                &target[..],
            ]
            .concat(),
        )
    };
    let out = attest_sonar().ok();
    assert!(
        out.stdout
            .contains("quality gate condition new_coverage is 61.5, fails below 80"),
        "{}",
        out.stdout
    );
    assert_eq!(trail(&c)["compliant"], false);
    attest_sonar().ok();
    let t = trail(&c);
    let q = &slot(&t, "quality")["data"]["results"];
    assert_eq!(q["revision"], sha.as_str());
    assert_eq!(q["quality_gate"]["status"], "OK");
    assert_eq!(t["compliant"], true, "{t}");
    assert!(
        sonar
            .requests()
            .iter()
            .all(|r| r.headers["authorization"] == "Bearer squ_test")
    );

    // A task that never finishes within --max-wait: nothing recorded.
    let stuck = FakeProvider::start();
    stuck.get(
        "/api/ce/task?id=STUCK",
        Reply::fixture("sonar/ce-task-pending.json").replace("AVAn5RKqYwETbXvgas-I", "STUCK"),
    );
    let url = format!("{}/api/ce/task?id=STUCK", stuck.url);
    let before = trail(&c)["attestations"].as_array().unwrap().len();
    c.run(
        &[
            &[
                "attest",
                "sonar",
                "--name",
                "quality",
                "--sonar-api-token",
                "t",
                "--sonar-ce-task-url",
                &url,
                "--max-wait",
                "2s",
            ][..],
            &target[..],
        ]
        .concat(),
    )
    .fails(3, "Sonar: GET ");
    let t = trail(&c);
    assert_eq!(t["attestations"].as_array().unwrap().len(), before);
    assert_eq!(t["compliant"], true);
}

const OVERRIDE_TEMPLATE: &str = "version: 1
trail:
  attestations:
  - name: scan
    type: generic
  - name: signoff
    type: generic
    four-eyes: true
";

both!(an_override_changes_compliance_and_keeps_both);
fn an_override_changes_compliance_and_keeps_both(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = shop(&s, Some(OVERRIDE_TEMPLATE));
    let target = ["--flow", "shop", "--trail", "t1"];
    let attest = |c: &Cli, name: &str, ok: &str| {
        c.run(
            &[
                &["attest", "generic", "--name", name, "--compliant", ok][..],
                &target[..],
            ]
            .concat(),
        )
    };
    let over = |c: &Cli, name: &str, status: &str, reason: &str| {
        c.run(
            &[
                &[
                    "attest",
                    "override",
                    "--name",
                    name,
                    "--new-compliance-status",
                    status,
                    "--reason",
                    reason,
                ][..],
                &target[..],
            ]
            .concat(),
        )
    };
    let ci = c.with_token(&crate::security::key_for(&s, "pipeline", "ci"));
    let alice = c.with_token(&crate::security::key_for(&s, "alice", "member"));
    let bob = c.with_token(&crate::security::key_for(&s, "bob", "member"));

    attest(&ci, "scan", "false").ok();
    attest(&alice, "signoff", "true").ok();
    assert_eq!(trail(&c)["compliant"], false);
    // A pipeline reports evidence; it does not overrule it.
    over(&ci, "scan", "true", "x").fails(
        3,
        "the role 'ci' of service account 'pipeline' does not allow this",
    );
    over(&alice, "nope", "true", "x").fails(2, "trail 't1' has no attestation 'nope' to override");
    over(&alice, "scan", "true", " ").fails(2, "an override needs a reason");

    let out = over(
        &alice,
        "scan",
        "true",
        "CVE-2026-1 is not reachable: the parser is not built in",
    )
    .ok();
    assert!(
        out.stdout
            .contains("'scan' overridden to compliant by default/alice"),
        "{}",
        out.stdout
    );
    let t = trail(&c);
    assert_eq!(t["compliant"], true, "{t}");
    let scan = slot(&t, "scan");
    assert_eq!(scan["type"], "generic");
    assert_eq!(scan["data"]["override"]["was_compliant"], false);
    assert_eq!(
        scan["data"]["override"]["reason"],
        "CVE-2026-1 is not reachable: the parser is not built in"
    );
    // Both are kept: the original is the earlier version.
    let versions = c
        .run(
            &[
                &["get", "attestation", "scan", "--output", "json"][..],
                &target[..],
            ]
            .concat(),
        )
        .ok()
        .json();
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(
        scan["data"]["override"]["of"],
        versions.iter().find(|v| v["compliant"] == false).unwrap()["id"]
    );
    let table = c
        .run(&[&["get", "trail", "t1"][..], &target[..2]].concat())
        .ok()
        .stdout;
    assert!(
        table.contains(
            "): CVE-2026-1 is not reachable: the parser is not built in (it was non-compliant)"
        ),
        "{table}"
    );
    let md = c
        .run(
            &[
                &["get", "trail", "t1", "--output", "markdown"][..],
                &target[..2],
            ]
            .concat(),
        )
        .ok()
        .stdout;
    assert!(md.contains("### Overrides"), "{md}");

    // Four eyes: whoever reported the sign-off may not overrule it.
    over(&alice, "signoff", "false", "wrong build signed off").fails(
        3,
        "four eyes: 'signoff' was reported by service account 'alice'",
    );
    let out = over(&bob, "signoff", "false", "wrong build signed off").ok();
    assert!(
        out.stdout
            .contains("overridden to non-compliant by default/bob"),
        "{}",
        out.stdout
    );
    let t = trail(&c);
    assert_eq!(t["compliant"], false);
    assert!(
        t["reasons"]
            .to_string()
            .contains("overridden as non-compliant: wrong build signed off"),
        "{t}"
    );
}

// Data Center takes a personal access token on REST v2; project keys
// narrow what counts as a reference.
both!(jira_data_center_and_project_keys);
fn jira_data_center_and_project_keys(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let (repo, sha) = repo(
        s.path("").as_path(),
        "SHOP-7: checkout times out (see CVE-2026-41284, OPS-3)",
        "main",
    );
    let c = shop(&s, None);
    let jira = FakeProvider::start();
    let base = format!("{}/jira", jira.url);
    jira.get(
        "/jira/rest/api/2/issue/SHOP-7?fields=summary%2Cstatus%2Cissuetype",
        Reply::fixture("jira/issue-SHOP-7-v2.json"),
    );
    let run = |extra: &[&str]| {
        c.run(
            &[
                &[
                    "attest",
                    "jira",
                    "--name",
                    "ticket",
                    "--flow",
                    "shop",
                    "--trail",
                    "t1",
                    "--jira-base-url",
                    &base,
                    "--repo-root",
                    repo.to_str().unwrap(),
                    "--commit",
                    &sha,
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    run(&[
        "--jira-pat",
        "pat",
        "--jira-username",
        "x",
        "--jira-api-token",
        "y",
    ])
    .fails(2, "give either --jira-pat (Data Center) or --jira-username");
    run(&[]).fails(
        2,
        "--jira-username with --jira-api-token (Jira Cloud), or --jira-pat",
    );
    run(&["--jira-pat", "pat", "--jira-project-key", "SHOP(X"])
        .fails(2, "invalid Jira project key 'SHOP(X'");
    let out = run(&["--jira-pat", "pat", "--jira-project-key", "shop"]).ok();
    assert!(
        out.stderr
            .contains("found Jira issue(s): SHOP-7 (In Progress)"),
        "{}",
        out.stderr
    );
    let t = trail_of(&c, "shop");
    let issues = &slot(&t, "ticket")["data"]["results"]["issues"];
    assert_eq!(
        issues.as_array().unwrap().len(),
        1,
        "OPS-3 is not of project SHOP"
    );
    assert_eq!(issues[0]["issue_type"], "Bug");
    assert_eq!(issues[0]["url"], format!("{base}/browse/SHOP-7").as_str());
    assert!(
        jira.requests()
            .iter()
            .all(|r| r.headers["authorization"] == "Bearer pat")
    );
    // No key at all: recorded, non-compliant, and --assert says so.
    let (_, other) = self::repo(s.path("other").as_path(), "tidy up", "main");
    let none = c.run(&[
        "attest",
        "jira",
        "--name",
        "ticket",
        "--flow",
        "shop",
        "--trail",
        "t1",
        "--jira-base-url",
        &base,
        "--jira-pat",
        "pat",
        "--repo-root",
        s.path("other/repo").to_str().unwrap(),
        "--commit",
        &other,
        "--ignore-branch-match",
        "--assert",
    ]);
    let none = none.fails(
        1,
        "assert failed: jira attestation 'ticket' is non-compliant",
    );
    assert!(
        none.stdout
            .contains("no Jira issue key found in the commit message"),
        "{}",
        none.stdout
    );
}

fn trail_of(c: &Cli, flow: &str) -> serde_json::Value {
    c.run(&["get", "trail", "t1", "--flow", flow, "--output", "json"])
        .ok()
        .json()
}

// Found by project and revision on SonarQube Server under a path; a task
// that failed is refused with Sonar's own message.
both!(sonar_by_project_and_revision_and_a_failed_task);
fn sonar_by_project_and_revision_and_a_failed_task(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let (repo, sha) = repo(s.path("").as_path(), "Basket totals", "main");
    let c = shop(&s, None);
    let sonar = FakeProvider::start();
    let server = format!("{}/sonarqube", sonar.url);
    sonar
        .get(
            "/sonarqube/api/project_analyses/search?project=acme_shop&ps=100&p=1",
            answer("sonar/analyses-page1.json", &sha),
        )
        .get(
            "/sonarqube/api/qualitygates/project_status?analysisId=AY9f2c1Qk3xR7t",
            Reply::fixture("sonar/project-status-ok.json"),
        )
        .get(
            "/sonarqube/api/ce/task?id=AVAn5RKqYwETbXvgas-I",
            Reply::fixture("sonar/ce-task-failed.json"),
        );
    let attest = |extra: &[&str]| {
        c.run(
            &[
                &[
                    "attest",
                    "sonar",
                    "--name",
                    "quality",
                    "--flow",
                    "shop",
                    "--trail",
                    "t1",
                    "--sonar-api-token",
                    "t",
                    "--repo-root",
                    repo.to_str().unwrap(),
                    "--commit",
                    &sha,
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let by_project = [
        "--sonar-project-key",
        "acme_shop",
        "--sonar-server-url",
        &server,
    ];
    attest(&by_project).ok();
    let t = trail_of(&c, "shop");
    let q = &slot(&t, "quality")["data"]["results"];
    assert_eq!(q["analysis_id"], "AY9f2c1Qk3xR7t");
    assert_eq!(q["revision"], sha.as_str());
    assert_eq!(slot(&t, "quality")["compliant"], true);
    // Another commit has no analysis.
    attest(
        &[
            &by_project[..],
            &[
                "--sonar-revision",
                "2c8e3a1b0d9f4e5a6b7c8d9e0f1a2b3c4d5e6f71",
            ],
        ]
        .concat(),
    )
    .fails(
        3,
        "has no analysis of project acme_shop at revision 2c8e3a1b0d9f4e5a6b7c8d9e0f1a2b3c4d5e6f71",
    );
    let task = format!("{server}/api/ce/task?id=AVAn5RKqYwETbXvgas-I");
    attest(&["--sonar-ce-task-url", &task]).fails(
        3,
        "task AVAn5RKqYwETbXvgas-I ended FAILED: Fail to extract report AVaXuGAi_te3Ldc_YItm from database",
    );
    attest(&["--sonar-working-dir", s.path("nowhere").to_str().unwrap()]).fails(
        2,
        "report-task.txt (give --sonar-working-dir, --sonar-ce-task-url or --sonar-project-key)",
    );
    assert_eq!(
        trail_of(&c, "shop")["attestations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// In GitHub Actions the organisation, repository, commit and API address
/// come from the job's variables.
#[test]
fn github_actions_fills_repository_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sha) = repo(dir.path(), "Add the basket", "main");
    let gh = github(&sha);
    let out = offline(dir.path())
        .command()
        .args([
            "assert",
            "pullrequest",
            "github",
            "--github-token",
            "t",
            "--require-approvals",
            "1",
        ])
        .env_remove("CUSTODY_NO_CI_DETECT")
        .env("GITHUB_RUN_NUMBER", "3")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_REPOSITORY_OWNER", "acme")
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_API_URL", format!("{}/git/api/v3", gh.url))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("#1347 merged (1 approval)"), "{stdout}");
}
