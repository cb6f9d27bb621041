//! Commands about what runs: environments, snapshot reporters, snapshots,
//! their differences and the change log.

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Subcommand};

use super::{DirAlgorithm, PagingArgs};

#[derive(Args, Debug)]
pub struct CreateEnvironmentArgs {
    pub name: String,
    /// docker, k8s, ecs, lambda, s3, server or logical.
    #[arg(long = "type", short = 't', env = "CUSTODY_TYPE", value_parser = parse_kind)]
    pub kind: custody_runtime::EnvironmentKind,
    #[arg(long, short = 'd', env = "CUSTODY_DESCRIPTION")]
    pub description: Option<String>,
    /// For a logical environment: the physical environments it joins (comma-separated).
    #[arg(long, env = "CUSTODY_INCLUDED_ENVIRONMENTS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub included_environments: Vec<String>,
}

pub fn parse_kind(s: &str) -> Result<custody_runtime::EnvironmentKind, String> {
    custody_runtime::EnvironmentKind::parse(s).ok_or_else(|| {
        format!(
            "unknown environment type '{s}': use one of {}",
            custody_runtime::EnvironmentKind::names()
        )
    })
}

#[derive(Subcommand, Debug)]
pub enum RenameCmd {
    /// Rename an environment; its history goes with it.
    Environment { old: String, new: String },
    /// Rename a flow; its trails and their history go with it (policies and actions that name it are not rewritten).
    Flow { old: String, new: String },
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCmd {
    /// Hide an environment and refuse reports to it; its history stays.
    Environment { name: String },
    /// Hide a flow and refuse new trails, artifacts and attestations in it; its history stays.
    Flow { name: String },
    /// Refuse new attestations of a custom type until a new version of it is created; what was attested stays.
    AttestationType { name: String },
    /// Refuse decisions for a control until it is unarchived; its versions and decisions stay.
    Control { id: String },
}

#[derive(Subcommand, Debug)]
pub enum UnarchiveCmd {
    /// Take decisions for an archived control again.
    Control { id: String },
}

/// A physical environment and the logical one it joins or leaves.
#[derive(Args, Debug)]
pub struct MembershipArgs {
    #[arg(long, env = "CUSTODY_PHYSICAL", value_parser = NonEmptyStringValueParser::new())]
    pub physical: String,
    #[arg(long, env = "CUSTODY_LOGICAL", value_parser = NonEmptyStringValueParser::new())]
    pub logical: String,
}

#[derive(Subcommand, Debug)]
pub enum JoinCmd {
    /// Add a physical environment to a logical one.
    Environment(MembershipArgs),
}

#[derive(Subcommand, Debug)]
pub enum LeaveCmd {
    /// Take a physical environment out of a logical one.
    Environment(MembershipArgs),
}

#[derive(Subcommand, Debug)]
pub enum DiffCmd {
    /// Compare two snapshots (of one environment or of two).
    Snapshots {
        /// ENV, ENV#N, ENV~N, ENV@{2026-03-01T03:12:00} or ENV@{3.hours.ago}.
        first: String,
        second: String,
        /// Also list what runs unchanged in both.
        #[arg(long, short = 'u', env = "CUSTODY_SHOW_UNCHANGED")]
        show_unchanged: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LogCmd {
    /// Changes of what runs in an environment, newest first.
    Environment {
        name: String,
        /// From this time: RFC 3339, 2026-03-01T03:12:00 (UTC), NOW or N.unit.ago.
        #[arg(long, env = "CUSTODY_SINCE")]
        since: Option<String>,
        /// Up to this time.
        #[arg(long, env = "CUSTODY_UNTIL")]
        until: Option<String>,
        #[command(flatten)]
        paging: PagingArgs,
    },
}

/// What every reporter shares.
#[derive(Args, Debug, Clone)]
pub struct ReporterArgs {
    /// Create the environment (with this reporter's type) if it does not exist.
    #[arg(
        long,
        short = 'A',
        visible_alias = "auto-env",
        env = "CUSTODY_AUTO_ENVIRONMENT"
    )]
    pub auto_environment: bool,
    /// Description of an environment created by --auto-environment.
    #[arg(long, env = "CUSTODY_ENVIRONMENT_DESCRIPTION")]
    pub environment_description: Option<String>,
    /// Keep watching and report every change as it happens, with a heartbeat every --interval.
    #[arg(long, short = 'w', env = "CUSTODY_WATCH")]
    pub watch: bool,
    /// How often this reporter reports (e.g. 60s, 5m): a heartbeat period with --watch, the schedule of a one-shot job otherwise.
    #[arg(long, env = "CUSTODY_INTERVAL", value_parser = parse_duration)]
    pub interval: Option<std::time::Duration>,
    /// Names this reporter in the ledger [default: the host name].
    #[arg(long, env = "CUSTODY_REPORTER_NAME")]
    pub reporter_name: Option<String>,
}

/// `30s`, `5m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': use e.g. 30s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("invalid duration '{s}': use e.g. 30s, 5m or 1h")),
    };
    if secs == 0 || secs > 86_400 {
        return Err(format!("duration '{s}' must be between 1s and 24h"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// `250ms`, `30s`, `5m`, `1h`, `7d` or plain seconds: for the server's
/// delivery settings, where tests and tuning want sub-second values.
pub fn parse_delay(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid duration '{s}': use e.g. 250ms, 30s, 5m, 1h or 1d");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => return Err(bad()),
    };
    if ms == 0 {
        return Err(format!("duration '{s}' must be more than zero"));
    }
    Ok(std::time::Duration::from_millis(ms))
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Report the running containers of a Docker Engine (DOCKER_HOST honoured).
    Docker {
        environment: String,
        #[command(flatten)]
        reporter: ReporterArgs,
    },
    /// Report the pods of a Kubernetes cluster.
    #[command(visible_alias = "kubernetes")]
    K8s(K8sArgs),
    /// Report the running tasks of ECS clusters.
    Ecs(EcsArgs),
    /// Report Lambda functions.
    Lambda(LambdaArgs),
    /// Report the contents of an S3 bucket as one artifact.
    S3(S3Args),
    /// Report files and directories named in a paths file (YAML, JSON or TOML).
    Paths {
        environment: String,
        #[arg(long, env = "CUSTODY_PATHS_FILE")]
        paths_file: PathBuf,
        /// How directories are fingerprinted (as `attest artifact` did).
        #[arg(
            long,
            env = "CUSTODY_DIR_ALGORITHM",
            value_enum,
            default_value = "dirhash"
        )]
        dir_algorithm: DirAlgorithm,
        #[command(flatten)]
        reporter: ReporterArgs,
    },
    /// Report one file or directory.
    Path {
        environment: String,
        #[arg(long, env = "CUSTODY_PATH")]
        path: PathBuf,
        /// The artifact's name.
        #[arg(long, env = "CUSTODY_NAME", value_parser = NonEmptyStringValueParser::new())]
        name: String,
        /// Globs (relative to --path) to leave out (repeatable, or comma-separated).
        #[arg(long, short = 'x', env = "CUSTODY_EXCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
        exclude: Vec<String>,
        /// How a directory is fingerprinted (as `attest artifact` did).
        #[arg(
            long,
            env = "CUSTODY_DIR_ALGORITHM",
            value_enum,
            default_value = "dirhash"
        )]
        dir_algorithm: DirAlgorithm,
        #[command(flatten)]
        reporter: ReporterArgs,
    },
}

#[derive(Args, Debug)]
pub struct K8sArgs {
    /// The environment (or use --environments-file for several).
    pub environment: Option<String>,
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account].
    #[arg(long, short = 'k', env = "CUSTODY_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Only these namespaces (comma-separated).
    #[arg(long, short = 'n', env = "CUSTODY_NAMESPACES", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub namespaces: Vec<String>,
    /// Only namespaces matching these regexes.
    #[arg(long, env = "CUSTODY_NAMESPACES_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub namespaces_regex: Vec<String>,
    /// All namespaces but these.
    #[arg(long, short = 'x', env = "CUSTODY_EXCLUDE_NAMESPACES", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_namespaces: Vec<String>,
    /// All namespaces but those matching these regexes.
    #[arg(long, env = "CUSTODY_EXCLUDE_NAMESPACES_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_namespaces_regex: Vec<String>,
    /// Several environments, each with its namespaces (Kosli's K8s reporter format).
    #[arg(long, env = "CUSTODY_ENVIRONMENTS_FILE", conflicts_with_all = ["environment", "namespaces", "namespaces_regex", "exclude_namespaces", "exclude_namespaces_regex"])]
    pub environments_file: Option<PathBuf>,
    #[command(flatten)]
    pub reporter: ReporterArgs,
}

/// Where AWS is: the standard credential chain, and an endpoint for
/// AWS-compatible services.
#[derive(Args, Debug, Clone)]
pub struct AwsArgs {
    /// AWS region [default: from the environment or profile].
    #[arg(long, env = "CUSTODY_AWS_REGION")]
    pub aws_region: Option<String>,
    /// Another endpoint for the AWS APIs (also AWS_ENDPOINT_URL).
    #[arg(long, env = "CUSTODY_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct EcsArgs {
    pub environment: String,
    /// Only these clusters (names or ARNs, comma-separated).
    #[arg(long, env = "CUSTODY_CLUSTERS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub clusters: Vec<String>,
    #[arg(long, env = "CUSTODY_CLUSTERS_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub clusters_regex: Vec<String>,
    /// All clusters but these.
    #[arg(long, env = "CUSTODY_EXCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude: Vec<String>,
    #[arg(long, env = "CUSTODY_EXCLUDE_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_regex: Vec<String>,
    /// Only these services.
    #[arg(long, env = "CUSTODY_SERVICES", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub services: Vec<String>,
    #[arg(long, env = "CUSTODY_SERVICES_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub services_regex: Vec<String>,
    #[arg(long, env = "CUSTODY_EXCLUDE_SERVICES", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_services: Vec<String>,
    #[arg(long, env = "CUSTODY_EXCLUDE_SERVICES_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_services_regex: Vec<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub reporter: ReporterArgs,
}

#[derive(Args, Debug)]
pub struct LambdaArgs {
    pub environment: String,
    /// Only these functions.
    #[arg(long, env = "CUSTODY_FUNCTION_NAMES", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub function_names: Vec<String>,
    #[arg(long, env = "CUSTODY_FUNCTION_NAMES_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub function_names_regex: Vec<String>,
    /// All functions but these.
    #[arg(long, env = "CUSTODY_EXCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude: Vec<String>,
    #[arg(long, env = "CUSTODY_EXCLUDE_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_regex: Vec<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub reporter: ReporterArgs,
}

#[derive(Args, Debug)]
pub struct S3Args {
    pub environment: String,
    #[arg(long, env = "CUSTODY_BUCKET", value_parser = NonEmptyStringValueParser::new())]
    pub bucket: String,
    /// Only keys under these prefixes (leading '/' ignored).
    #[arg(long, short = 'i', env = "CUSTODY_INCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub include: Vec<String>,
    /// Only keys matching these regexes.
    #[arg(long, env = "CUSTODY_INCLUDE_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub include_regex: Vec<String>,
    /// All keys but those under these prefixes.
    #[arg(long, short = 'x', env = "CUSTODY_EXCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude: Vec<String>,
    #[arg(long, env = "CUSTODY_EXCLUDE_REGEX", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude_regex: Vec<String>,
    /// How a tree of objects is fingerprinted (as `attest artifact` did).
    #[arg(
        long,
        env = "CUSTODY_DIR_ALGORITHM",
        value_enum,
        default_value = "dirhash"
    )]
    pub dir_algorithm: DirAlgorithm,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub reporter: ReporterArgs,
}
