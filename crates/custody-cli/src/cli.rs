//! The command line, in Kosli's vocabulary. Every flag can also be set as
//! `CUSTODY_<FLAG>` or in the config file (see `config`).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod audit;
mod change;
mod controls;
mod ledger;
mod runtime;
pub use audit::*;
pub use change::*;
pub use controls::*;
pub use ledger::*;
pub use runtime::*;

#[derive(Parser, Debug)]
#[command(
    name = "custody",
    version,
    about = "Prove what runs in production and how it got there."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `custody server` on its own: the client's flags (--host, --api-token,
/// --org...) mean nothing to the server, so its help shows only its own.
#[derive(Parser, Debug)]
#[command(
    name = "custody server",
    version,
    about = "Run the API server (embedded SQLite and blob directory by default).",
    after_help = SERVER_ENVIRONMENT
)]
pub struct ServerCli {
    #[command(flatten)]
    pub args: ServerArgs,
    /// TOML file of flag values (keys are flag names).
    #[arg(long, env = "CUSTODY_CONFIG_FILE", value_parser = NonEmptyStringValueParser::new())]
    pub config_file: Option<String>,
}

const SERVER_ENVIRONMENT: &str = "\
Environment:
  CUSTODY_BOOTSTRAP_TOKEN  The server-admin key the first start creates (at least 16
                           characters); without it, a random one is written to
                           <data-dir>/bootstrap-token.
  RUST_LOG                 Log filter, e.g. debug or info,custody_server=debug
                           [default: info: one line per request, probes at debug].
  CUSTODY_<FLAG>           Any flag above, e.g. CUSTODY_LISTEN=0.0.0.0:8080.";

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The Custody server.
    #[arg(long, global = true, env = "CUSTODY_HOST", default_value = "http://127.0.0.1:8080", value_parser = NonEmptyStringValueParser::new())]
    pub host: String,
    /// PEM file of the CA that signed the server's certificate, trusted besides the system's roots.
    #[arg(long, global = true, env = "CUSTODY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a server on another machine (the API key then crosses the network unencrypted).
    #[arg(long, global = true, env = "CUSTODY_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// API key (`Authorization: Bearer`).
    #[arg(long, global = true, env = "CUSTODY_API_TOKEN", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub api_token: Option<String>,
    /// Organisation [default: the one the API key belongs to].
    #[arg(long, global = true, env = "CUSTODY_ORG", value_parser = NonEmptyStringValueParser::new())]
    pub org: Option<String>,
    /// Output format.
    #[arg(
        long,
        global = true,
        env = "CUSTODY_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub output: Output,
    /// Print what would be sent, and send nothing.
    #[arg(long, global = true, env = "CUSTODY_DRY_RUN")]
    pub dry_run: bool,
    /// How long a request may wait for the server, e.g. 60s (uploads may take longer, but not stall this long).
    #[arg(long, global = true, env = "CUSTODY_TIMEOUT", default_value = "60s", value_parser = parse_delay)]
    pub timeout: std::time::Duration,
    /// TOML file of flag values (keys are flag names).
    #[arg(long, global = true, env = "CUSTODY_CONFIG_FILE", value_parser = NonEmptyStringValueParser::new())]
    pub config_file: Option<String>,
}

impl Global {
    /// How to reach the server: the CA to trust, whether plain HTTP may
    /// cross a network.
    pub fn transport(&self) -> custody_client::Transport {
        custody_client::Transport {
            ca_cert: self.ca_cert.clone(),
            insecure_http: self.insecure_http,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    /// GitHub-flavoured Markdown (`get trail` only), for change tickets
    /// and CI job summaries.
    Markdown,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API server (embedded SQLite and blob directory by default).
    #[command(after_help = SERVER_ENVIRONMENT)]
    Server(ServerArgs),
    /// Fill a new data directory with a made-up week of a small company's history (20 services, daily deploys, a failing scan, an unauthorised container), to look around.
    Demo(DemoArgs),
    /// Print the SHA-256 fingerprint of a file, directory or image.
    Fingerprint(FingerprintArgs),
    /// Create organisations, service accounts, API keys, flows, environments, policies, controls, notification actions and attestation types.
    #[command(subcommand)]
    Create(CreateCmd),
    /// Begin a trail.
    #[command(subcommand)]
    Begin(BeginCmd),
    /// Report an artifact or evidence into a trail.
    #[command(subcommand)]
    Attest(Box<AttestCmd>),
    /// Show one thing.
    #[command(subcommand)]
    Get(GetCmd),
    /// List things.
    #[command(subcommand)]
    List(ListCmd),
    /// Find artifacts by (partial) fingerprint or git commit.
    Search(SearchArgs),
    /// Read a tool's report locally and show what Custody makes of it (no server needed); exit 1 when non-compliant.
    #[command(subcommand)]
    Parse(ParseCmd),
    /// Report what runs in an environment (once, or continuously with --watch).
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Compare snapshots.
    #[command(subcommand)]
    Diff(DiffCmd),
    /// Show an environment's change log.
    #[command(subcommand)]
    Log(LogCmd),
    /// Rename an environment or a flow.
    #[command(subcommand)]
    Rename(RenameCmd),
    /// Archive an environment, a flow, a custom attestation type or a control: hidden, taking nothing new, history kept.
    #[command(subcommand)]
    Archive(ArchiveCmd),
    /// Restore an archived control.
    #[command(subcommand)]
    Unarchive(UnarchiveCmd),
    /// Add a physical environment to a logical one.
    #[command(subcommand)]
    Join(JoinCmd),
    /// Take a physical environment out of a logical one.
    #[command(subcommand)]
    Leave(LeaveCmd),
    /// Attach policies to environments (they are judged again at once).
    AttachPolicy(AttachPolicyArgs),
    /// Detach policies from environments (with none left, compliance is UNKNOWN).
    DetachPolicy(AttachPolicyArgs),
    /// Allowlist an artifact in an environment.
    #[command(subcommand)]
    Allow(AllowCmd),
    /// Gate a deployment: exit 0 when compliant, 1 when not.
    #[command(subcommand)]
    Assert(AssertCmd),
    /// Evaluate a Rego policy against trails or any JSON, here.
    #[command(subcommand)]
    Evaluate(EvaluateCmd),
    /// Set or remove tags.
    #[command(subcommand)]
    Tag(TagCmd),
    /// Show the organisation, account and role of the API key.
    Whoami,
    /// Revoke an API key: the next request made with it is refused.
    #[command(subcommand)]
    Revoke(RevokeCmd),
    /// Replace an API key with a new one.
    #[command(subcommand)]
    Rotate(RotateCmd),
    /// Delete a service account (its keys are revoked).
    #[command(subcommand)]
    Delete(DeleteCmd),
    /// Change a service account's role, a control, or the organisation's settings.
    #[command(subcommand)]
    Update(UpdateCmd),
    /// The ledger's proofs: signed checkpoints, inclusion and consistency proofs, entries.
    #[command(subcommand)]
    Ledger(LedgerCmd),
    /// Run a witness (c2sp.org/tlog-witness): cosign a log's checkpoints once each is proven to extend the last.
    Witness(WitnessArgs),
    /// Export records in other formats (in-toto).
    #[command(subcommand)]
    Export(ExportCmd),
    /// Audit bundles: export an environment's proven history, prove an artifact never ran, verify a bundle offline.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Back up a server's data while it runs, or make a new data directory from a backup.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Whether the server answers and is ready: exit 0 when it is, 1 when it is down or not ready.
    Status,
    /// Print this client's version, and the server's when it answers.
    Version,
    /// Print a shell completion script, e.g. `source <(custody completion bash)`.
    Completion(CompletionArgs),
    /// Print the manual page custody(1), or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Copy the embedded database (a consistent snapshot, taken while the server runs), the evidence files and the server's keys into a new directory.
    Backup(BackupArgs),
    /// Make a new data directory from a backup, checking every file against the backup's manifest.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The server's data directory (its database, blobs and keys).
    #[arg(long, env = "CUSTODY_DATA_DIR", default_value = "./custody-data")]
    pub data_dir: PathBuf,
    /// The database, when not <data-dir>/custody.db (`sqlite://PATH`).
    #[arg(long, env = "CUSTODY_DATABASE", value_parser = NonEmptyStringValueParser::new())]
    pub database: Option<String>,
    /// A new directory for the backup.
    #[arg(long, env = "CUSTODY_TO")]
    pub to: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup, as `admin backup` wrote it.
    #[arg(long, env = "CUSTODY_FROM")]
    pub from: PathBuf,
    /// The new data directory (it must not exist, or be empty).
    #[arg(long, env = "CUSTODY_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write custody.1 and a page for each command (custody-create-flow.1, ...) here instead.
    #[arg(long, env = "CUSTODY_OUT_DIR", value_parser = NonEmptyStringValueParser::new())]
    pub out_dir: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RevokeCmd {
    /// Revoke an API key by its id (see list api-keys).
    ApiKey { id: String },
}

#[derive(Subcommand, Debug)]
pub enum RotateCmd {
    /// Issue a new key for the same account; prints it once.
    ApiKey {
        id: String,
        /// How long the old key keeps working, e.g. 24h; 0 revokes it at once.
        #[arg(long, env = "CUSTODY_GRACE_PERIOD", default_value = "0", value_parser = parse_delay_or_zero)]
        grace_period: std::time::Duration,
        /// Lifetime of the new key, e.g. 90d [default: the organisation's maximum, if it sets one].
        #[arg(long, env = "CUSTODY_EXPIRES_IN", value_parser = parse_delay)]
        expires_in: Option<std::time::Duration>,
        #[arg(long, env = "CUSTODY_DESCRIPTION")]
        description: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeleteCmd {
    /// Delete a service account and revoke its keys.
    ServiceAccount { name: String },
}

#[derive(Subcommand, Debug)]
pub enum UpdateCmd {
    /// Change a service account's role.
    ServiceAccount {
        name: String,
        /// The new role.
        #[arg(long, env = "CUSTODY_ROLE")]
        role: custody_domain::Role,
    },
    /// A control: only what is given changes (a new version).
    Control(CreateControlArgs),
    /// The organisation's settings (admins).
    Org {
        /// The longest a new API key may live, e.g. 90d; `none` for no limit.
        #[arg(long, env = "CUSTODY_MAX_KEY_LIFETIME", value_parser = parse_lifetime)]
        max_key_lifetime: Option<Lifetime>,
    },
}

/// A limit, or explicitly none.
#[derive(Debug, Clone, Copy)]
pub enum Lifetime {
    Unlimited,
    Limited(std::time::Duration),
}

fn parse_lifetime(s: &str) -> Result<Lifetime, String> {
    if s == "none" {
        Ok(Lifetime::Unlimited)
    } else {
        parse_delay(s).map(Lifetime::Limited)
    }
}

/// A duration that may be zero.
fn parse_delay_or_zero(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_delay(s)
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// A new (or empty) directory; then `custody server --data-dir DIR`.
    #[arg(long, env = "CUSTODY_DATA_DIR", default_value = "./custody-demo")]
    pub data_dir: PathBuf,
    /// How many days of history, ending now.
    #[arg(long, env = "CUSTODY_DAYS", default_value_t = 7)]
    pub days: u32,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "CUSTODY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where the embedded database, blobs and bootstrap key live.
    #[arg(long, env = "CUSTODY_DATA_DIR", default_value = "./custody-data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...` [default: sqlite://<data-dir>/custody.db]
    #[arg(long, env = "CUSTODY_DATABASE", value_parser = NonEmptyStringValueParser::new())]
    pub database: Option<String>,
    /// How logs are written to standard error: lines for people, or one JSON object per line.
    #[arg(long, env = "CUSTODY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve HTTPS with this certificate chain (PEM); with --tls-key. Sending the server SIGHUP reads both again.
    #[arg(long, env = "CUSTODY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "CUSTODY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// `file://PATH` or `s3://BUCKET[/PREFIX]` (with the usual AWS_* variables) [default: file://<data-dir>/blobs]
    #[arg(long, env = "CUSTODY_BLOB_STORE", value_parser = NonEmptyStringValueParser::new())]
    pub blob_store: Option<String>,
    /// Largest upload one request may make, e.g. 1GiB, 500MB, 1048576.
    #[arg(long, env = "CUSTODY_MAX_UPLOAD", default_value = "1GiB", value_parser = parse_size)]
    pub max_upload: u64,
    /// The server's address as users reach it, for links in notifications [default: http://<listen>]
    #[arg(long, env = "CUSTODY_PUBLIC_URL", value_parser = NonEmptyStringValueParser::new())]
    pub public_url: Option<String>,
    /// Delay before a failed notification's first retry; each next one doubles (up to 1h), with jitter.
    #[arg(long, env = "CUSTODY_NOTIFY_RETRY_BASE", default_value = "1s", value_parser = parse_delay)]
    pub notify_retry_base: std::time::Duration,
    /// How long a notification is retried before it is given up.
    #[arg(long, env = "CUSTODY_NOTIFY_MAX_AGE", default_value = "24h", value_parser = parse_delay)]
    pub notify_max_age: std::time::Duration,
    /// How long one delivery attempt may take.
    #[arg(long, env = "CUSTODY_NOTIFY_TIMEOUT", default_value = "10s", value_parser = parse_delay)]
    pub notify_timeout: std::time::Duration,
    /// Largest JSON request body, e.g. 16MiB (attestations: their fields other than a tool's results).
    #[arg(long, env = "CUSTODY_MAX_JSON_BODY", default_value = "16MiB", value_parser = parse_size)]
    pub max_json_body: u64,
    /// Largest attestation JSON with a tool's results (an SBOM's components), e.g. 128MiB.
    #[arg(long, env = "CUSTODY_MAX_EVIDENCE_JSON", default_value = "128MiB", value_parser = parse_size)]
    pub max_evidence_json: u64,
    /// Largest free-form JSON field (user_data, attestation_data), e.g. 1MiB.
    #[arg(long, env = "CUSTODY_MAX_FIELD", default_value = "1MiB", value_parser = parse_size)]
    pub max_field: u64,
    /// How long a client may take to send a request's head.
    #[arg(long, env = "CUSTODY_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_delay)]
    pub header_timeout: std::time::Duration,
    /// How long a request body may go without a byte arriving.
    #[arg(long, env = "CUSTODY_BODY_TIMEOUT", default_value = "30s", value_parser = parse_delay)]
    pub body_timeout: std::time::Duration,
    /// How long a request may take in all (uploads of evidence files aside).
    #[arg(long, env = "CUSTODY_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_delay)]
    pub request_timeout: std::time::Duration,
    /// Requests handled at once; more wait their turn.
    #[arg(long, env = "CUSTODY_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Requests per second one API key may make (0: no limit); over it, 429 with Retry-After.
    #[arg(long, env = "CUSTODY_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// File holding the 256-bit key (64 hex characters) that seals secrets at rest; replicas share one [default: <data-dir>/secret.key, created at first start].
    #[arg(long, env = "CUSTODY_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Let notifications go to private, loopback and link-local addresses (for receivers inside your network).
    #[arg(long, env = "CUSTODY_NOTIFY_ALLOW_PRIVATE")]
    pub notify_allow_private: bool,
    /// Memory one sandbox worker may use (it runs users' jq rules, JSON Schemas and Rego policies).
    #[arg(long, env = "CUSTODY_SANDBOX_MEMORY", default_value = "512MiB", value_parser = parse_size)]
    pub sandbox_memory: u64,
    /// How long one user program may run: a type's rules on one attestation, a Rego policy on one artifact.
    #[arg(long, env = "CUSTODY_PROGRAM_TIME_LIMIT", default_value = "500ms", value_parser = parse_delay)]
    pub program_time_limit: std::time::Duration,
    /// Sandbox workers running at once [default: the number of CPUs].
    #[arg(long, env = "CUSTODY_SANDBOX_WORKERS")]
    pub sandbox_workers: Option<usize>,
    /// Sandbox workers one organisation may use at once.
    #[arg(long, env = "CUSTODY_SANDBOX_WORKERS_PER_ORG", default_value_t = 1)]
    pub sandbox_workers_per_org: usize,
    /// How long judging one environment by one Rego policy may take in all; artifacts left are judged non-compliant.
    #[arg(long, env = "CUSTODY_JUDGEMENT_BUDGET", default_value = "10s", value_parser = parse_delay)]
    pub judgement_budget: std::time::Duration,
    /// File holding the Ed25519 key (64 hex characters) that signs the ledger's checkpoints; replicas share one [default: <data-dir>/ledger-signing.key, created at first start].
    #[arg(long, env = "CUSTODY_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// How often a checkpoint is issued for a ledger that grew.
    #[arg(long, env = "CUSTODY_CHECKPOINT_INTERVAL", default_value = "10s", value_parser = parse_delay)]
    pub checkpoint_interval: std::time::Duration,
    /// A witness that cosigns checkpoints (c2sp.org/tlog-witness): its URL and its cosigner key, `URL=NAME+ID+KEY` (repeatable).
    #[arg(long = "witness", env = "CUSTODY_WITNESS", value_delimiter = ',', value_parser = parse_witness)]
    pub witnesses: Vec<custody_server::checkpoints::Witness>,
}

fn parse_witness(s: &str) -> Result<custody_server::checkpoints::Witness, String> {
    custody_server::checkpoints::Witness::parse(s)
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactType {
    File,
    Dir,
    Oci,
    Docker,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAlgorithm {
    /// The Dirhash Standard (sha256, name+data): same as `dirhash -a sha256`.
    Dirhash,
    /// Kosli's directory algorithm, bit-exact.
    Kosli,
}

/// How to fingerprint a path.
#[derive(Args, Debug, Clone)]
pub struct FingerprintOpts {
    /// What PATH is.
    #[arg(long, short = 't', env = "CUSTODY_ARTIFACT_TYPE", value_enum)]
    pub artifact_type: Option<ArtifactType>,
    /// Directory algorithm.
    #[arg(
        long,
        env = "CUSTODY_DIR_ALGORITHM",
        value_enum,
        default_value = "dirhash"
    )]
    pub dir_algorithm: DirAlgorithm,
    /// Glob of paths to leave out of a directory fingerprint (repeatable, or comma-separated).
    #[arg(long, short = 'x', env = "CUSTODY_EXCLUDE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub exclude: Vec<String>,
    /// For an OCI layout holding several images: the ref name to choose.
    #[arg(long, env = "CUSTODY_IMAGE_REF", value_parser = NonEmptyStringValueParser::new())]
    pub image_ref: Option<String>,
}

#[derive(Args, Debug)]
pub struct FingerprintArgs {
    /// File, directory, OCI layout, or Docker image name.
    pub path: String,
    #[command(flatten)]
    pub opts: FingerprintOpts,
}

#[derive(Subcommand, Debug)]
pub enum CreateCmd {
    /// Create an organisation (needs a server-admin key); prints its first admin key.
    Org { name: String },
    /// Create a service account.
    ServiceAccount {
        name: String,
        /// reader, snapshotter, ci, member, policy-admin or admin (docs/security.md).
        #[arg(long, env = "CUSTODY_ROLE")]
        role: custody_domain::Role,
        #[arg(long, env = "CUSTODY_DESCRIPTION")]
        description: Option<String>,
    },
    /// Create an API key for a service account; prints it once.
    ApiKey {
        /// The service account (or --service-account).
        #[arg(value_name = "SERVICE_ACCOUNT", value_parser = NonEmptyStringValueParser::new())]
        account: Option<String>,
        /// The service account, as a flag.
        #[arg(long, env = "CUSTODY_SERVICE_ACCOUNT", value_parser = NonEmptyStringValueParser::new(), required_unless_present = "account")]
        service_account: Option<String>,
        #[arg(long, env = "CUSTODY_DESCRIPTION")]
        description: Option<String>,
        /// Expiry: RFC 3339 time, YYYY-MM-DD, or seconds since the epoch.
        #[arg(long, env = "CUSTODY_EXPIRES_AT", conflicts_with = "expires_in")]
        expires_at: Option<String>,
        /// Lifetime from now, e.g. 90d or 12h [default: the organisation's maximum, if it sets one].
        #[arg(long, env = "CUSTODY_EXPIRES_IN", value_parser = parse_delay)]
        expires_in: Option<std::time::Duration>,
    },
    /// Create or update a flow.
    Flow {
        name: String,
        /// Flow-template YAML.
        #[arg(long, short = 'f', env = "CUSTODY_TEMPLATE_FILE")]
        template_file: Option<PathBuf>,
        #[arg(long, env = "CUSTODY_DESCRIPTION")]
        description: Option<String>,
    },
    /// Create or update an environment.
    Environment(CreateEnvironmentArgs),
    /// Create a policy, or its next version (policy v1 YAML or Rego).
    Policy(CreatePolicyArgs),
    /// Create a control, or its next version.
    Control(CreateControlArgs),
    /// Create or replace a notification action (webhook or Slack).
    Action(CreateActionArgs),
    /// Create a custom attestation type (or its next version).
    AttestationType {
        name: String,
        /// JSON Schema file the data must satisfy.
        #[arg(long, short = 's', env = "CUSTODY_SCHEMA")]
        schema: PathBuf,
        /// jq rule that must yield true (repeatable).
        #[arg(long = "jq", env = "CUSTODY_JQ", value_parser = NonEmptyStringValueParser::new())]
        jq: Vec<String>,
        #[arg(long, env = "CUSTODY_DESCRIPTION")]
        description: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BeginCmd {
    /// Begin a trail (or update it).
    Trail(BeginTrailArgs),
}

#[derive(Args, Debug)]
pub struct BeginTrailArgs {
    pub name: String,
    #[arg(long, env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
    pub flow: String,
    /// Overrides the flow's template for this trail.
    #[arg(long, short = 'f', env = "CUSTODY_TEMPLATE_FILE")]
    pub template_file: Option<PathBuf>,
    #[arg(long, env = "CUSTODY_DESCRIPTION")]
    pub description: Option<String>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

/// Evidence and provenance flags shared by `begin trail` and `attest`.
#[derive(Args, Debug, Clone)]
pub struct ProvenanceArgs {
    /// Git commit (read from the repository at --repo-root); defaults to the CI's commit.
    #[arg(long, short = 'g', env = "CUSTODY_COMMIT", value_parser = NonEmptyStringValueParser::new())]
    pub commit: Option<String>,
    /// The git repository to read --commit from.
    #[arg(long, env = "CUSTODY_REPO_ROOT", default_value = ".")]
    pub repo_root: PathBuf,
    /// JSON file of arbitrary user data.
    #[arg(long, short = 'u', env = "CUSTODY_USER_DATA")]
    pub user_data: Option<PathBuf>,
    /// Where this came from (defaults to the CI build URL).
    #[arg(long, env = "CUSTODY_ORIGIN_URL", value_parser = NonEmptyStringValueParser::new())]
    pub origin_url: Option<String>,
    /// LABEL=URL of evidence kept elsewhere (repeatable).
    #[arg(long, env = "CUSTODY_EXTERNAL_URL", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub external_url: Vec<String>,
    /// LABEL=SHA256 pinning an --external-url (repeatable).
    #[arg(long, env = "CUSTODY_EXTERNAL_FINGERPRINT", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub external_fingerprint: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum AttestCmd {
    /// Report an artifact (by path or fingerprint) into a trail.
    Artifact(AttestArtifactArgs),
    /// Report pass/fail evidence.
    Generic(AttestGenericArgs),
    /// Report data checked against a custom attestation type.
    Custom(AttestCustomArgs),
    /// Report JUnit XML test results: compliant iff tests ran and none failed.
    Junit(AttestJunitArgs),
    /// Report a SARIF 2.1.0 scan from any tool: compliant iff nothing at or above --fail-on.
    Sarif(AttestSarifArgs),
    /// Report a Snyk scan (SARIF or `snyk ... --json`).
    Snyk(AttestSeverityArgs),
    /// Report a Trivy JSON scan (vulnerabilities, misconfigurations, secrets).
    Trivy(AttestSeverityArgs),
    /// Report a Grype JSON scan.
    Grype(AttestSeverityArgs),
    /// Report an SBOM (CycloneDX JSON/XML or SPDX JSON/tag-value).
    Sbom(AttestSbomArgs),
    /// Report a decision, optionally for a control.
    Decision(AttestDecisionArgs),
    /// Import an in-toto statement another tool signed (a DSSE envelope): verified with --public-key, bound to the artifact its subject names, the envelope kept in the vault.
    Intoto(AttestIntotoArgs),
    /// Report the pull requests that contain the commit and who approved them: compliant iff one is merged (or open, with --allow-open) with the approvals asked for.
    #[command(subcommand, visible_aliases = ["pr", "pull_request", "mr", "mergerequest", "merge_request"])]
    Pullrequest(AttestPrCmd),
    /// Report the Jira issues the commit message and branch refer to: compliant iff there is one and each exists.
    Jira(AttestJiraArgs),
    /// Report a SonarQube / SonarQube Cloud quality gate: compliant iff it passed.
    Sonar(AttestSonarArgs),
    /// Change the compliance of an attestation already reported (the latest of --name), with a reason; the original stays in the trail's history.
    Override(AttestOverrideArgs),
}

#[derive(Args, Debug)]
pub struct AttestOverrideArgs {
    /// The artifact the attestation is bound to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// Why the verdict is changed: shown with it wherever it is shown.
    #[arg(long, env = "CUSTODY_REASON", value_parser = NonEmptyStringValueParser::new())]
    pub reason: String,
    /// The compliance it has from now on.
    #[arg(long, env = "CUSTODY_NEW_COMPLIANCE_STATUS", action = clap::ArgAction::Set, required = true)]
    pub new_compliance_status: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestIntotoArgs {
    #[command(flatten)]
    pub target: Target,
    /// The DSSE envelope (JSON) holding the statement.
    #[arg(long, env = "CUSTODY_ENVELOPE")]
    pub envelope: PathBuf,
    /// The signer's public key, or a file holding it: PEM (Ed25519 or ECDSA P-256), a securesystemslib key, 64 hex digits (Ed25519) or a verifier key.
    #[arg(long, env = "CUSTODY_PUBLIC_KEY", value_parser = NonEmptyStringValueParser::new())]
    pub public_key: String,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestDecisionArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The control the decision is for (it must exist).
    #[arg(long, env = "CUSTODY_CONTROL", value_parser = NonEmptyStringValueParser::new())]
    pub control: Option<String>,
    /// The verdict: --compliant=false for a rejection.
    #[arg(long, short = 'C', env = "CUSTODY_COMPLIANT", num_args = 0..=1, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub compliant: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// Where an attestation goes.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// NAME (trail, or the artifact given by fingerprint/path) or ARTIFACT.NAME.
    #[arg(long, short = 'n', env = "CUSTODY_NAME", value_parser = NonEmptyStringValueParser::new())]
    pub name: String,
    #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
    pub flow: String,
    #[arg(long, short = 'T', env = "CUSTODY_TRAIL", value_parser = NonEmptyStringValueParser::new())]
    pub trail: String,
    /// The artifact's fingerprint (instead of PATH with --artifact-type).
    #[arg(long, short = 'F', env = "CUSTODY_FINGERPRINT", value_parser = NonEmptyStringValueParser::new())]
    pub fingerprint: Option<String>,
    #[command(flatten)]
    pub fp: FingerprintOpts,
}

#[derive(Args, Debug, Clone)]
pub struct EvidenceArgs {
    /// Files or directories to keep in the evidence vault (comma-separated or repeated).
    #[arg(long, env = "CUSTODY_ATTACHMENTS", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub attachments: Vec<String>,
    /// KEY=VALUE label (repeatable).
    #[arg(long, env = "CUSTODY_ANNOTATE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub annotate: Vec<String>,
    #[arg(long, env = "CUSTODY_DESCRIPTION")]
    pub description: Option<String>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Args, Debug)]
pub struct AttestArtifactArgs {
    /// File, directory, OCI layout or image to fingerprint.
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// Name shown for the artifact (default: the path or image).
    #[arg(long, short = 'N', env = "CUSTODY_DISPLAY_NAME")]
    pub display_name: Option<String>,
    #[arg(long, short = 'b', env = "CUSTODY_BUILD_URL", value_parser = NonEmptyStringValueParser::new())]
    pub build_url: Option<String>,
    #[arg(long, short = 'U', env = "CUSTODY_COMMIT_URL", value_parser = NonEmptyStringValueParser::new())]
    pub commit_url: Option<String>,
    /// KEY=VALUE label (repeatable).
    #[arg(long, env = "CUSTODY_ANNOTATE", value_delimiter = ',', value_parser = NonEmptyStringValueParser::new())]
    pub annotate: Vec<String>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Args, Debug)]
pub struct AttestGenericArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The verdict: --compliant=false for a failure.
    #[arg(long, short = 'C', env = "CUSTODY_COMPLIANT", num_args = 0..=1, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub compliant: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestCustomArgs {
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The custom attestation type: NAME or NAME@vN.
    #[arg(long = "type", env = "CUSTODY_TYPE", value_parser = NonEmptyStringValueParser::new())]
    pub type_name: String,
    /// JSON file of the data.
    #[arg(long, env = "CUSTODY_ATTESTATION_DATA")]
    pub attestation_data: PathBuf,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// Whether the tool's report files go to the evidence vault.
#[derive(Args, Debug, Clone)]
pub struct UploadArgs {
    /// Keep the report files in the evidence vault (--upload-results=false to send only the summary).
    #[arg(long, env = "CUSTODY_UPLOAD_RESULTS", num_args = 0..=1, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub upload_results: bool,
}

#[derive(Args, Debug)]
pub struct AttestJunitArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// Directory searched recursively for *.xml reports.
    #[arg(long, short = 'R', env = "CUSTODY_RESULTS_DIR", default_value = ".")]
    pub results_dir: PathBuf,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestSarifArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The SARIF file.
    #[arg(long, short = 'R', env = "CUSTODY_SCAN_RESULTS")]
    pub scan_results: PathBuf,
    /// The lowest level that makes the attestation non-compliant.
    #[arg(long, env = "CUSTODY_FAIL_ON", default_value = "error",
          value_parser = ["error", "warning", "note"])]
    pub fail_on: String,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestSeverityArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The scanner's report.
    #[arg(long, short = 'R', env = "CUSTODY_SCAN_RESULTS")]
    pub scan_results: PathBuf,
    /// The lowest severity that makes the attestation non-compliant (default: low for snyk, high for trivy and grype).
    #[arg(long, env = "CUSTODY_SEVERITY_THRESHOLD",
          value_parser = ["low", "medium", "high", "critical"])]
    pub severity_threshold: Option<String>,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Args, Debug)]
pub struct AttestSbomArgs {
    /// Artifact to fingerprint and bind to (with --artifact-type).
    pub path: Option<String>,
    #[command(flatten)]
    pub target: Target,
    /// The SBOM document.
    #[arg(long, env = "CUSTODY_FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

#[derive(Subcommand, Debug)]
pub enum ParseCmd {
    /// JUnit XML reports below a directory.
    Junit {
        #[arg(long, short = 'R', env = "CUSTODY_RESULTS_DIR", default_value = ".")]
        results_dir: PathBuf,
    },
    /// A SARIF 2.1.0 log.
    Sarif {
        #[arg(long, short = 'R', env = "CUSTODY_SCAN_RESULTS")]
        scan_results: PathBuf,
        #[arg(long, env = "CUSTODY_FAIL_ON", default_value = "error",
              value_parser = ["error", "warning", "note"])]
        fail_on: String,
    },
    /// A Snyk report (SARIF or JSON).
    Snyk(ParseSeverityArgs),
    /// A Trivy JSON report.
    Trivy(ParseSeverityArgs),
    /// A Grype JSON report.
    Grype(ParseSeverityArgs),
    /// An SBOM (CycloneDX or SPDX).
    Sbom {
        #[arg(long, env = "CUSTODY_FILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ParseSeverityArgs {
    #[arg(long, short = 'R', env = "CUSTODY_SCAN_RESULTS")]
    pub scan_results: PathBuf,
    #[arg(long, env = "CUSTODY_SEVERITY_THRESHOLD",
          value_parser = ["low", "medium", "high", "critical"])]
    pub severity_threshold: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum GetCmd {
    /// A flow: its description, tags and template.
    Flow { name: String },
    /// A source repository by name (e.g. acme/shop): its flows and latest trails.
    Repo { name: String },
    /// A trail with its evidence and compliance.
    Trail {
        name: String,
        #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
        flow: String,
    },
    /// FLOW@FINGERPRINT or FLOW:COMMIT (either may be a prefix).
    Artifact { expression: String },
    /// An attestation by name in a trail (NAME or ARTIFACT.NAME), or by --id.
    Attestation {
        name: Option<String>,
        #[arg(long, short = 'f', env = "CUSTODY_FLOW")]
        flow: Option<String>,
        #[arg(long, short = 'T', env = "CUSTODY_TRAIL")]
        trail: Option<String>,
        #[arg(long, env = "CUSTODY_ID")]
        id: Option<String>,
    },
    /// A custom attestation type: NAME or NAME@vN.
    AttestationType { name: String },
    /// An environment, with its coverage (when it was observed) and gaps.
    Environment { name: String },
    /// What ran: ENV, ENV#N, ENV~N, ENV@{2026-03-01T03:12:00} or ENV@{3.hours.ago}.
    Snapshot { expression: String },
    /// A policy, at its latest version or --version.
    Policy {
        name: String,
        #[arg(long, env = "CUSTODY_VERSION")]
        version: Option<i64>,
    },
    /// A control and its versions.
    Control { identifier: String },
    /// An environment's latest evaluation against its policies.
    Compliance { environment: String },
    /// DORA's four key metrics of an environment, from what was observed
    /// running there: deployment frequency, lead time, change failure rate
    /// and time to restore.
    Dora {
        #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", value_parser = NonEmptyStringValueParser::new())]
        environment: String,
        /// The window's start: a time, or N.unit.ago.
        #[arg(long, env = "CUSTODY_SINCE", default_value = "30.days.ago")]
        since: String,
        /// The window's end [default: now].
        #[arg(long, env = "CUSTODY_UNTIL")]
        until: Option<String>,
        /// How long after a deployment a rollback or a non-compliant state
        /// counts against it, in hours.
        #[arg(long, env = "CUSTODY_FAILURE_WINDOW_HOURS", default_value_t = 24)]
        failure_window_hours: u32,
    },
    /// Download an evidence file, checking its SHA-256.
    Evidence {
        sha256: String,
        /// Where to write it.
        #[arg(long = "output-file", short = 'o', env = "CUSTODY_OUTPUT_FILE")]
        output_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ListCmd {
    /// The organisation's flows.
    Flows {
        /// Archived ones too.
        #[arg(long, env = "CUSTODY_ARCHIVED")]
        archived: bool,
    },
    /// A flow's trails, newest first.
    Trails {
        #[arg(long, short = 'f', env = "CUSTODY_FLOW", value_parser = NonEmptyStringValueParser::new())]
        flow: String,
        #[command(flatten)]
        paging: PagingArgs,
    },
    /// Artifacts, newest first: a flow's, or every flow's.
    Artifacts {
        #[arg(long, short = 'f', env = "CUSTODY_FLOW")]
        flow: Option<String>,
        #[command(flatten)]
        paging: PagingArgs,
    },
    /// The organisation's service accounts and their roles.
    ServiceAccounts,
    /// API keys (never their secrets): all of the organisation's for an admin, one's own otherwise.
    ApiKeys {
        /// Only this account's.
        #[arg(long, env = "CUSTODY_SERVICE_ACCOUNT")]
        service_account: Option<String>,
    },
    /// Custom attestation types, at their latest versions.
    AttestationTypes {
        /// Archived ones too.
        #[arg(long, env = "CUSTODY_ARCHIVED")]
        archived: bool,
    },
    /// Policies, at their latest versions.
    Policies,
    /// Controls, at their latest versions.
    Controls {
        /// Archived ones too.
        #[arg(long, env = "CUSTODY_ARCHIVED")]
        archived: bool,
    },
    /// Source repositories the trails came from (their repo info), with their flows and trail counts.
    Repos,
    /// Notification actions (webhooks and Slack) and what triggers them.
    Actions,
    /// Notification deliveries, newest first, with every attempt.
    Deliveries {
        /// Only this action's.
        #[arg(long, env = "CUSTODY_ACTION")]
        action: Option<String>,
        /// At most this many (up to 1000).
        #[arg(long, env = "CUSTODY_LIMIT", default_value_t = 50)]
        limit: u32,
    },
    /// The artifacts allowlisted in an environment.
    Allowlist {
        /// The environment (or --environment).
        #[arg(value_name = "ENVIRONMENT", value_parser = NonEmptyStringValueParser::new())]
        env: Option<String>,
        /// The environment, as a flag.
        #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT", value_parser = NonEmptyStringValueParser::new(), required_unless_present = "env")]
        environment: Option<String>,
    },
    /// Environments, with their type and last report.
    Environments {
        /// Include archived environments.
        #[arg(long, env = "CUSTODY_ARCHIVED")]
        archived: bool,
    },
    /// An environment's snapshots, newest first.
    Snapshots {
        environment: String,
        /// A range of snapshots: A..B with N, ~N or NOW at each end.
        #[arg(long, short = 'i', env = "CUSTODY_INTERVAL")]
        interval: Option<String>,
        #[command(flatten)]
        paging: PagingArgs,
    },
    /// Packages in reported SBOMs, by name or purl, with where they were reported.
    Components {
        /// Exact component name.
        #[arg(long, env = "CUSTODY_NAME", required_unless_present = "purl")]
        name: Option<String>,
        /// A purl: with @version, that package; without, any version of it.
        #[arg(long, env = "CUSTODY_PURL")]
        purl: Option<String>,
        /// Exact component version.
        #[arg(long, env = "CUSTODY_COMPONENT_VERSION")]
        component_version: Option<String>,
        /// At most this many (up to 1000).
        #[arg(long, env = "CUSTODY_LIMIT", default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub struct PagingArgs {
    #[arg(long, env = "CUSTODY_PAGE", default_value_t = 1)]
    pub page: u32,
    #[arg(long, short = 'n', env = "CUSTODY_PAGE_LIMIT", default_value_t = 15)]
    pub page_limit: u32,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// A full or partial fingerprint or git commit.
    pub sha: String,
}

/// A name given as a positional argument or as a flag (the CLI accepts
/// both so that no one has to remember which style a command uses); the
/// positional one wins, as the flag may come from the environment.
pub fn either_form(
    positional: Option<String>,
    flag: Option<String>,
    what: &str,
) -> anyhow::Result<String> {
    positional
        .or(flag)
        .ok_or_else(|| anyhow::anyhow!("which {what}? Give it as an argument or with --{what}"))
}

/// Sizes such as `1GiB`, `500MB`, `64KiB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size '{s}'"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("unknown size unit '{other}' in '{s}'")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_can_come_from_the_environment() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_positional() || id == "help" || id == "version" {
                    continue;
                }
                match a.get_env() {
                    Some(env) => {
                        let want = crate::config::env_name(a.get_long().unwrap_or(id));
                        assert_eq!(env.to_string_lossy(), want, "{path} --{id}");
                    }
                    None => missing.push(format!("{path} --{id}")),
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "custody", &mut missing);
        assert!(
            missing.is_empty(),
            "flags without CUSTODY_<FLAG>: {missing:?}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("42").unwrap(), 42);
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("GiB").is_err());
    }

    /// Every command and subcommand has a one-line description in `--help`.
    #[test]
    fn every_command_says_what_it_does() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for s in c.get_subcommands() {
                if s.get_name() == "help" {
                    continue;
                }
                let here = format!("{path} {}", s.get_name());
                if s.get_about()
                    .is_none_or(|a| a.to_string().trim().is_empty())
                {
                    missing.push(here.clone());
                }
                walk(s, &here, missing);
            }
        }
        let mut missing = vec![];
        walk(
            &<super::Cli as clap::CommandFactory>::command(),
            "custody",
            &mut missing,
        );
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }
}
