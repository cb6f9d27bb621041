//! Flags of the change-process evidence: pull requests, Jira issues and
//! Sonar quality gates (`attest pullrequest|jira|sonar`, `assert pullrequest`).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};

use super::{EvidenceArgs, Target, parse_delay};

#[derive(Subcommand, Debug)]
pub enum AttestPrCmd {
    /// GitHub or GitHub Enterprise Server pull requests.
    Github {
        #[command(flatten)]
        provider: GithubFlags,
        #[command(flatten)]
        common: AttestPrCommon,
    },
    /// GitLab merge requests (gitlab.com or self-managed).
    Gitlab {
        #[command(flatten)]
        provider: GitlabFlags,
        #[command(flatten)]
        common: AttestPrCommon,
    },
    /// Bitbucket Cloud pull requests.
    Bitbucket {
        #[command(flatten)]
        provider: BitbucketFlags,
        #[command(flatten)]
        common: AttestPrCommon,
    },
    /// Azure DevOps pull requests (Services or Server).
    Azure {
        #[command(flatten)]
        provider: AzureFlags,
        #[command(flatten)]
        common: AttestPrCommon,
    },
}

#[derive(Subcommand, Debug)]
pub enum AssertPrCmd {
    /// GitHub or GitHub Enterprise Server pull requests.
    Github {
        #[command(flatten)]
        provider: GithubFlags,
        #[command(flatten)]
        common: AssertPrCommon,
    },
    /// GitLab merge requests.
    Gitlab {
        #[command(flatten)]
        provider: GitlabFlags,
        #[command(flatten)]
        common: AssertPrCommon,
    },
    /// Bitbucket Cloud pull requests.
    Bitbucket {
        #[command(flatten)]
        provider: BitbucketFlags,
        #[command(flatten)]
        common: AssertPrCommon,
    },
    /// Azure DevOps pull requests.
    Azure {
        #[command(flatten)]
        provider: AzureFlags,
        #[command(flatten)]
        common: AssertPrCommon,
    },
}

/// What makes a pull request count.
#[derive(Args, Debug, Clone)]
pub struct PrRulesArgs {
    /// Approvals needed by someone other than the author, on the last commit [default: the template's `approvals` for this name, else 0].
    #[arg(long, env = "CUSTODY_REQUIRE_APPROVALS")]
    pub require_approvals: Option<u32>,
    /// Count open pull requests too (for pipelines that run before the merge).
    #[arg(long, env = "CUSTODY_ALLOW_OPEN")]
    pub allow_open: bool,
}

#[derive(Args, Debug)]
pub struct AttestPrCommon {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub rules: PrRulesArgs,
    /// Exit 1 when the evidence is non-compliant (it is recorded either way).
    #[arg(long, env = "CUSTODY_ASSERT")]
    pub assert: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AssertPrCommon {
    /// The commit [default: the CI's commit, else HEAD of --repo-root].
    #[arg(long, short = 'g', env = "CUSTODY_COMMIT", value_parser = NonEmptyStringValueParser::new())]
    pub commit: Option<String>,
    /// The git repository to resolve --commit in.
    #[arg(long, env = "CUSTODY_REPO_ROOT", default_value = ".")]
    pub repo_root: PathBuf,
    #[command(flatten)]
    pub rules: PrRulesArgs,
}

#[derive(Args, Debug)]
pub struct GithubFlags {
    #[arg(long, env = "CUSTODY_GITHUB_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub github_token: Option<String>,
    /// The repository's owner [default in GitHub Actions: GITHUB_REPOSITORY_OWNER].
    #[arg(long, env = "CUSTODY_GITHUB_ORG", value_parser = NonEmptyStringValueParser::new())]
    pub github_org: Option<String>,
    /// The repository's name [default in GitHub Actions: from GITHUB_REPOSITORY].
    #[arg(long, env = "CUSTODY_REPOSITORY", value_parser = NonEmptyStringValueParser::new())]
    pub repository: Option<String>,
    /// GitHub Enterprise Server's address (its /api/v3 is added) [default: https://api.github.com, or GITHUB_API_URL in GitHub Actions].
    #[arg(long, env = "CUSTODY_GITHUB_BASE_URL", value_parser = NonEmptyStringValueParser::new())]
    pub github_base_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct GitlabFlags {
    #[arg(long, env = "CUSTODY_GITLAB_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub gitlab_token: Option<String>,
    /// The project's group, e.g. acme or acme/platform [default in GitLab CI: CI_PROJECT_NAMESPACE].
    #[arg(long, env = "CUSTODY_GITLAB_ORG", value_parser = NonEmptyStringValueParser::new())]
    pub gitlab_org: Option<String>,
    /// The project's path [default in GitLab CI: CI_PROJECT_NAME].
    #[arg(long, env = "CUSTODY_REPOSITORY", value_parser = NonEmptyStringValueParser::new())]
    pub repository: Option<String>,
    /// A self-managed instance, e.g. https://git.example.com or https://example.com/gitlab [default: https://gitlab.com, or CI_SERVER_URL in GitLab CI].
    #[arg(long, env = "CUSTODY_GITLAB_BASE_URL", value_parser = NonEmptyStringValueParser::new())]
    pub gitlab_base_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct BitbucketFlags {
    /// [default in Bitbucket Pipelines: BITBUCKET_WORKSPACE]
    #[arg(long, env = "CUSTODY_BITBUCKET_WORKSPACE", value_parser = NonEmptyStringValueParser::new())]
    pub bitbucket_workspace: Option<String>,
    /// The repository's slug [default in Bitbucket Pipelines: BITBUCKET_REPO_SLUG].
    #[arg(long, env = "CUSTODY_REPOSITORY", value_parser = NonEmptyStringValueParser::new())]
    pub repository: Option<String>,
    /// A repository, project or workspace access token.
    #[arg(long, env = "CUSTODY_BITBUCKET_ACCESS_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub bitbucket_access_token: Option<String>,
    /// With --bitbucket-password: the Atlassian account's email or username.
    #[arg(long, env = "CUSTODY_BITBUCKET_USERNAME", value_parser = NonEmptyStringValueParser::new())]
    pub bitbucket_username: Option<String>,
    /// An Atlassian API token (app passwords were retired).
    #[arg(long, env = "CUSTODY_BITBUCKET_PASSWORD", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub bitbucket_password: Option<String>,
    /// The API's address (a proxy in front of Bitbucket Cloud).
    #[arg(long, env = "CUSTODY_BITBUCKET_BASE_URL", default_value = custody_providers::bitbucket::DEFAULT_BASE_URL)]
    pub bitbucket_base_url: String,
}

#[derive(Args, Debug)]
pub struct AzureFlags {
    /// A personal access token with Code (read).
    #[arg(long, env = "CUSTODY_AZURE_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub azure_token: Option<String>,
    /// https://dev.azure.com/ORG, or a server's collection URL [default in Azure Pipelines: SYSTEM_COLLECTIONURI].
    #[arg(long, env = "CUSTODY_AZURE_ORG_URL", value_parser = NonEmptyStringValueParser::new())]
    pub azure_org_url: Option<String>,
    /// [default in Azure Pipelines: SYSTEM_TEAMPROJECT]
    #[arg(long, env = "CUSTODY_PROJECT", value_parser = NonEmptyStringValueParser::new())]
    pub project: Option<String>,
    /// [default in Azure Pipelines: BUILD_REPOSITORY_NAME]
    #[arg(long, env = "CUSTODY_REPOSITORY", value_parser = NonEmptyStringValueParser::new())]
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct AttestJiraArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The Jira site, e.g. https://acme.atlassian.net.
    #[arg(long, env = "CUSTODY_JIRA_BASE_URL", value_parser = NonEmptyStringValueParser::new())]
    pub jira_base_url: String,
    /// Jira Cloud: the account's email (with --jira-api-token).
    #[arg(long, env = "CUSTODY_JIRA_USERNAME", value_parser = NonEmptyStringValueParser::new())]
    pub jira_username: Option<String>,
    /// Jira Cloud: an API token (with --jira-username).
    #[arg(long, env = "CUSTODY_JIRA_API_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub jira_api_token: Option<String>,
    /// Jira Data Center: a personal access token.
    #[arg(long, env = "CUSTODY_JIRA_PAT", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub jira_pat: Option<String>,
    /// Only keys of these projects count (repeatable, or comma-separated).
    #[arg(long, env = "CUSTODY_JIRA_PROJECT_KEY", value_delimiter = ',')]
    pub jira_project_key: Vec<String>,
    /// Issue fields to keep as evidence besides summary, status and type (comma-separated, or *all).
    #[arg(long, env = "CUSTODY_JIRA_ISSUE_FIELDS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub jira_issue_fields: Vec<String>,
    /// More text to search for keys, e.g. a pull request's title.
    #[arg(long, env = "CUSTODY_JIRA_SECONDARY_SOURCE")]
    pub jira_secondary_source: Option<String>,
    /// Do not search the branch name.
    #[arg(long, env = "CUSTODY_IGNORE_BRANCH_MATCH")]
    pub ignore_branch_match: bool,
    /// Exit 1 when the evidence is non-compliant (it is recorded either way).
    #[arg(long, env = "CUSTODY_ASSERT")]
    pub assert: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestSonarArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    #[arg(long, env = "CUSTODY_SONAR_API_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub sonar_api_token: String,
    /// Where the scanner wrote report-task.txt.
    #[arg(
        long,
        env = "CUSTODY_SONAR_WORKING_DIR",
        default_value = ".scannerwork"
    )]
    pub sonar_working_dir: PathBuf,
    /// The analysis task (report-task.txt's ceTaskUrl), instead of the file.
    #[arg(long, env = "CUSTODY_SONAR_CE_TASK_URL", value_parser = NonEmptyStringValueParser::new())]
    pub sonar_ce_task_url: Option<String>,
    /// Find the analysis by project and --sonar-revision, instead of the file.
    #[arg(long, env = "CUSTODY_SONAR_PROJECT_KEY", value_parser = NonEmptyStringValueParser::new())]
    pub sonar_project_key: Option<String>,
    /// With --sonar-project-key.
    #[arg(long, env = "CUSTODY_SONAR_SERVER_URL", default_value = custody_providers::sonar::DEFAULT_SERVER_URL)]
    pub sonar_server_url: String,
    /// The analysed commit [default: --commit]; the analysis must be of it.
    #[arg(long, env = "CUSTODY_SONAR_REVISION", value_parser = NonEmptyStringValueParser::new())]
    pub sonar_revision: Option<String>,
    #[arg(long, env = "CUSTODY_SONAR_BRANCH", value_parser = NonEmptyStringValueParser::new())]
    pub sonar_branch: Option<String>,
    /// The pull request the analysis is of.
    #[arg(long, env = "CUSTODY_SONAR_PULL_REQUEST", value_parser = NonEmptyStringValueParser::new())]
    pub sonar_pull_request: Option<String>,
    /// How long to wait for the analysis to finish, e.g. 30s or 5m.
    #[arg(long, env = "CUSTODY_MAX_WAIT", default_value = "30s", value_parser = parse_delay)]
    pub max_wait: std::time::Duration,
    /// Exit 1 when the evidence is non-compliant (it is recorded either way).
    #[arg(long, env = "CUSTODY_ASSERT")]
    pub assert: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}
