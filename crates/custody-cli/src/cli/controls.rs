//! Flags of the controls commands: policies, controls, the allowlist,
//! asserts, Rego evaluation and flow tags.

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand, ValueEnum};

use super::FingerprintOpts;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// Kosli's policy v1 YAML.
    Kosli,
    /// Rego: `package policy`, an `allow` rule, optional `violations`.
    Rego,
}

#[derive(Args, Debug)]
pub struct CreatePolicyArgs {
    pub name: String,
    /// The policy file.
    pub file: PathBuf,
    /// [default: rego for a .rego file or one that starts with `package`, else kosli]
    #[arg(long = "type", env = "CUSTODY_TYPE", value_enum)]
    pub kind: Option<PolicyType>,
    #[arg(long, env = "CUSTODY_DESCRIPTION")]
    pub description: Option<String>,
}

#[derive(Args, Debug)]
pub struct CreateControlArgs {
    /// The control's identifier, e.g. RCTL-043 (never changes).
    pub identifier: String,
    /// Its name (needed to create it; to change it, only what changes need be given).
    #[arg(long, env = "CUSTODY_NAME", value_parser = NonEmptyStringValueParser::new())]
    pub name: Option<String>,
    #[arg(long, env = "CUSTODY_DESCRIPTION")]
    pub description: Option<String>,
    /// A link to the control's definition (repeatable; replaces the links it had).
    #[arg(long, env = "CUSTODY_LINK", value_parser = NonEmptyStringValueParser::new())]
    pub link: Vec<String>,
    /// KEY=VALUE to set (repeatable; other tags are kept).
    #[arg(long, env = "CUSTODY_TAG", value_parser = NonEmptyStringValueParser::new())]
    pub tag: Vec<String>,
    /// KEY of a tag to remove (repeatable).
    #[arg(long, env = "CUSTODY_UNTAG", value_parser = NonEmptyStringValueParser::new())]
    pub untag: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachPolicyArgs {
    /// Policy names.
    #[arg(required = true)]
    pub policies: Vec<String>,
    /// Environments (repeatable, or comma-separated).
    #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", required = true, value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub environment: Vec<String>,
}

/// An artifact named by PATH (fingerprinted here) or by fingerprint.
#[derive(Args, Debug, Clone)]
pub struct ArtifactRef {
    /// File, directory, OCI layout or image to fingerprint (with --artifact-type).
    pub path: Option<String>,
    #[arg(long, short = 'F', env = "CUSTODY_FINGERPRINT", value_parser = NonEmptyStringValueParser::new())]
    pub fingerprint: Option<String>,
    #[command(flatten)]
    pub fp: FingerprintOpts,
}

#[derive(Subcommand, Debug)]
pub enum AllowCmd {
    /// Trust an artifact in one environment without provenance (a third-party image).
    Artifact(AllowArtifactArgs),
}

#[derive(Args, Debug)]
pub struct AllowArtifactArgs {
    #[command(flatten)]
    pub artifact: ArtifactRef,
    #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", value_parser = NonEmptyStringValueParser::new())]
    pub environment: String,
    /// Why it may run there.
    #[arg(long, env = "CUSTODY_REASON", value_parser = NonEmptyStringValueParser::new())]
    pub reason: String,
    /// The artifact's name, for people reading the allowlist.
    #[arg(long, env = "CUSTODY_ARTIFACT_NAME", value_parser = NonEmptyStringValueParser::new())]
    pub artifact_name: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AssertCmd {
    /// Exit 0 if the artifact is compliant (for an environment, policies, or its flows), 1 if not.
    Artifact(AssertArtifactArgs),
    /// Exit 0 if the snapshot (ENV or ENV#N) is compliant with its environment's policies, 1 if not.
    Snapshot { expression: String },
    /// Exit 0 if a pull request containing the commit counts (merged, or open with --allow-open, with the approvals asked for), 1 if not; nothing is recorded.
    #[command(subcommand, visible_aliases = ["pr", "pull_request", "mr", "mergerequest", "merge_request"])]
    Pullrequest(super::AssertPrCmd),
}

#[derive(Args, Debug)]
pub struct AssertArtifactArgs {
    #[command(flatten)]
    pub artifact: ArtifactRef,
    /// Judge by this environment's policies and allowlist.
    #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", value_parser = NonEmptyStringValueParser::new())]
    pub environment: Option<String>,
    /// Judge by these policies (repeatable).
    #[arg(long, env = "CUSTODY_POLICY", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub policy: Vec<String>,
    /// Judge by the artifact's trails in this flow.
    #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
    pub flow: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum EvaluateCmd {
    /// Evaluate a Rego policy against one trail (input = {"trail": ...}).
    Trail {
        name: String,
        #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
        flow: String,
        #[command(flatten)]
        rego: RegoArgs,
        /// Keep only these attestations: NAME (trail) or ARTIFACT.NAME (repeatable, or comma-separated).
        #[arg(long, env = "CUSTODY_ATTESTATIONS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
        attestations: Vec<String>,
    },
    /// Evaluate a Rego policy against several trails (input = {"trails": [...]}).
    Trails {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
        flow: String,
        #[command(flatten)]
        rego: RegoArgs,
        #[arg(long, env = "CUSTODY_ATTESTATIONS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
        attestations: Vec<String>,
    },
    /// Evaluate a Rego policy against any JSON (a file, or standard input).
    Input {
        /// The input JSON; standard input when absent or '-'.
        #[arg(long, env = "CUSTODY_INPUT_FILE")]
        input_file: Option<PathBuf>,
        #[command(flatten)]
        rego: RegoArgs,
    },
}

#[derive(Args, Debug)]
pub struct RegoArgs {
    /// The Rego file (`package policy`, an `allow` rule).
    #[arg(long, short = 'p', env = "CUSTODY_POLICY")]
    pub policy: PathBuf,
    /// Parameters at data.params: JSON, or @FILE.
    #[arg(long, env = "CUSTODY_PARAMS")]
    pub params: Option<String>,
    /// Print the input (and params) the policy saw.
    #[arg(long, env = "CUSTODY_SHOW_INPUT")]
    pub show_input: bool,
    /// Exit 0 even when denied.
    #[arg(long, env = "CUSTODY_NO_ASSERT")]
    pub no_assert: bool,
}

#[derive(Subcommand, Debug)]
pub enum TagCmd {
    /// Set or remove a flow's tags (read by policies as flow.tags.KEY).
    Flow {
        name: String,
        /// KEY=VALUE (repeatable).
        #[arg(long, env = "CUSTODY_SET", value_parser = NonEmptyStringValueParser::new())]
        set: Vec<String>,
        /// KEY to remove (repeatable).
        #[arg(long, env = "CUSTODY_UNSET", value_parser = NonEmptyStringValueParser::new())]
        unset: Vec<String>,
    },
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["webhook", "slack"])))]
pub struct CreateActionArgs {
    pub name: String,
    /// Environments it watches (repeatable, or comma-separated).
    #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", required = true, value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub environment: Vec<String>,
    /// non-compliant, compliant-again, unknown-artifact, artifact-started, artifact-stopped, reporter-silent (comma-separated or repeated).
    #[arg(long, env = "CUSTODY_ON", required = true, value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub on: Vec<String>,
    /// POST a JSON body here.
    #[arg(long, env = "CUSTODY_WEBHOOK", value_parser = NonEmptyStringValueParser::new())]
    pub webhook: Option<String>,
    /// Post a message to this Slack incoming-webhook URL.
    #[arg(long, env = "CUSTODY_SLACK", value_parser = NonEmptyStringValueParser::new())]
    pub slack: Option<String>,
    /// Sign webhook bodies with HMAC-SHA256 under this key (X-Custody-Signature).
    #[arg(long, env = "CUSTODY_SECRET", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub secret: Option<String>,
    /// For reporter-silent: how many reporting intervals may pass without a report.
    #[arg(long, env = "CUSTODY_SILENT_INTERVALS", value_parser = clap::value_parser!(u32).range(1..))]
    pub silent_intervals: Option<u32>,
}
