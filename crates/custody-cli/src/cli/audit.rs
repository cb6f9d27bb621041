//! Audit bundles: an environment's proven history over a window, exported
//! from the server and verified anywhere, offline.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Export an audit bundle: what ran in ENVIRONMENT over a window, with its provenance, every ledger entry proven against the latest signed checkpoint.
    Export(AuditExportArgs),
    /// Prove that an artifact never ran in an environment over a window: a bundle whose complete, proven snapshot sequence shows it (exit 1 if it did run).
    ProveAbsent(ProveAbsentArgs),
    /// Verify an audit bundle offline, with no server: signatures, proofs, evidence digests, complete snapshots and coverage, provenance. Exit 0 verified, 1 not verified, 2 unusable input.
    Verify(AuditVerifyArgs),
}

#[derive(Args, Debug)]
pub struct WindowArgs {
    #[arg(long, short = 'e', env = "CUSTODY_ENVIRONMENT")]
    pub environment: String,
    /// Start of the window: a time (2026-03-01T03:12:00Z, a Unix time in seconds) or N.unit.ago.
    #[arg(long, env = "CUSTODY_FROM")]
    pub from: String,
    /// End of the window [default: now]. It ends earlier if the latest checkpoint does: at the last report it holds.
    #[arg(long, env = "CUSTODY_TO", default_value = "now")]
    pub to: String,
    /// Count provenance only from trails of this flow.
    #[arg(long, short = 'f', env = "CUSTODY_FLOW")]
    pub flow: Option<String>,
    /// A checkpoint you saved earlier (`custody ledger checkpoint --output json`'s note, or a bundle's): the bundle proves the log only grew since.
    #[arg(long, env = "CUSTODY_SINCE_CHECKPOINT")]
    pub since_checkpoint: Option<PathBuf>,
    /// The file to write (written whole or not at all).
    #[arg(long = "output-file", short = 'o', env = "CUSTODY_OUTPUT_FILE")]
    pub output_file: PathBuf,
    /// The checkpoints' verifier key (`custody ledger public-key`), kept apart from the server; the bundle is checked with it before it is written. Without it, the server's own key is used, and said so.
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub public_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct AuditExportArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Leave the evidence files out (their digests stay in the entries).
    #[arg(long, env = "CUSTODY_NO_BLOBS")]
    pub no_blobs: bool,
}

#[derive(Args, Debug)]
pub struct ProveAbsentArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// The artifact's SHA-256 fingerprint.
    #[arg(long, env = "CUSTODY_FINGERPRINT")]
    pub fingerprint: String,
}

#[derive(Args, Debug)]
pub struct AuditVerifyArgs {
    /// The bundle (`-` for standard input).
    pub bundle: PathBuf,
    /// The log's verifier key, or a file holding it (`custody ledger public-key`).
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub public_key: String,
    /// A witness's cosigner key, or a file holding it (repeatable).
    #[arg(
        long = "witness-key",
        env = "CUSTODY_WITNESS_KEY",
        value_delimiter = ','
    )]
    pub witness_keys: Vec<String>,
    /// How many of those witnesses must have cosigned the checkpoint.
    #[arg(long, env = "CUSTODY_MIN_WITNESSES", default_value_t = 0)]
    pub min_witnesses: usize,
    /// A checkpoint you saved earlier: the bundle must prove the log grew from exactly it.
    #[arg(long, env = "CUSTODY_SINCE_CHECKPOINT")]
    pub since_checkpoint: Option<PathBuf>,
}
