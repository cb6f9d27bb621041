//! Commands about the ledger's proofs.

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
    /// Show the latest signed checkpoint (tree size, root, signatures); with --public-key, check its signature.
    Checkpoint(CheckpointArgs),
    /// Print the verifier key of the organisation's checkpoints (c2sp.org/signed-note form).
    PublicKey,
    /// Prove that entry SEQ is in the ledger: fetch its inclusion proof and check it against a checkpoint.
    Prove(ProveArgs),
    /// Prove that the ledger at size OLD is a prefix of the ledger at size NEW (default: the latest checkpoint).
    Consistency(ConsistencyArgs),
    /// Print ledger entries FROM to TO (inclusive), each checked against its leaf hash.
    Entries(EntriesArgs),
    /// Audit the store against its ledger: entries, tree, checkpoints, records (admins, or straight from the database with --database); exit 1 when anything differs.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Read this database directly (sqlite://PATH or postgres://...) instead of asking the server.
    #[arg(long, env = "CUSTODY_DATABASE")]
    pub database: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// The checkpoints' verifier key (`custody ledger public-key`), kept apart from the server; without it signatures are not checked.
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub public_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// The checkpoint of exactly this tree size [default: the latest].
    #[arg(long, env = "CUSTODY_SIZE")]
    pub size: Option<u64>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// The entry's sequence number.
    pub seq: u64,
    /// Prove against the checkpoint of this tree size [default: the latest checkpoint].
    #[arg(long, env = "CUSTODY_TREE_SIZE")]
    pub tree_size: Option<u64>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    pub old: u64,
    pub new: Option<u64>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Args, Debug)]
pub struct EntriesArgs {
    #[arg(long, env = "CUSTODY_FROM", default_value_t = 0)]
    pub from: u64,
    /// The last entry [default: FROM + 99].
    #[arg(long, env = "CUSTODY_TO")]
    pub to: Option<u64>,
}

#[derive(Args, Debug)]
pub struct WitnessArgs {
    /// Address to listen on.
    #[arg(long, env = "CUSTODY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// How logs are written to standard error: lines for people, or one JSON object per line.
    #[arg(long, env = "CUSTODY_LOG_FORMAT", value_enum, default_value_t = crate::cli::LogFormat::Text)]
    pub log_format: crate::cli::LogFormat,
    /// A log to witness: its checkpoints' verifier key, from `custody ledger public-key` (repeatable).
    #[arg(
        long = "log-key",
        env = "CUSTODY_LOG_KEY",
        value_delimiter = ',',
        required_unless_present = "print_key"
    )]
    pub log_keys: Vec<String>,
    /// The witness's name, in its cosignatures (a schema-less URL by convention).
    #[arg(long, env = "CUSTODY_NAME", default_value = "custody-witness")]
    pub name: String,
    /// Where the witness keeps its key (created at first start) and what it cosigned.
    #[arg(long, env = "CUSTODY_DATA_DIR", default_value = "./custody-witness")]
    pub data_dir: std::path::PathBuf,
    /// Print the witness's cosigner key (for `custody server --witness URL=KEY`) and exit.
    #[arg(long, env = "CUSTODY_PRINT_KEY")]
    pub print_key: bool,
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// A trail's artifacts and attestations as in-toto Statement v1 documents in DSSE envelopes, signed with the server's key.
    Intoto(ExportIntotoArgs),
}

#[derive(Args, Debug)]
pub struct ExportIntotoArgs {
    #[arg(long, short = 'f', env = "CUSTODY_FLOW")]
    pub flow: String,
    #[arg(long, short = 't', env = "CUSTODY_TRAIL")]
    pub trail: String,
    /// Write one envelope per file here (`NN-<predicate>.intoto.json`) instead of all of them to standard output.
    #[arg(long, env = "CUSTODY_OUTPUT_DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
}
