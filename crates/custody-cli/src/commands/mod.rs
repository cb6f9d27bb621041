mod admin;
mod attest;
mod audit;
mod backup;
mod change;
mod controls;
mod demo;
mod environments;
mod evaluate;
mod fingerprint;
mod flows;
pub use flows::override_note;
mod habits;
mod keys;
mod ledger;
mod lifecycle;
mod notifications;
mod parse;
mod provenance;
pub mod server;
mod snapshot;

use std::process::ExitCode;

use anyhow::bail;
use custody_client::Client;
use serde::Serialize;

use crate::cli::{Cli, Command, Global};

/// What every client command needs.
pub struct Ctx {
    pub global: Global,
    pub client: Client,
    /// The organisation acted on: `--org`, or the one the key belongs to.
    pub org: String,
}

impl Ctx {
    pub async fn new(global: Global) -> anyhow::Result<Ctx> {
        if global.api_token.is_none() && !global.dry_run {
            bail!("--api-token is not set (or CUSTODY_API_TOKEN, or api-token in the config file)");
        }
        let client = Client::with_transport(
            &global.host,
            global.api_token.clone(),
            global.timeout,
            &global.transport(),
        )?;
        let org = match (&global.org, &global.api_token) {
            (Some(org), _) => org.clone(),
            // Without --org, the key says which organisation it is of.
            (None, Some(_)) => {
                let who: custody_api::WhoAmI =
                    client.get(client.url(&["api", "v1", "whoami"])).await?;
                who.org
            }
            // A dry run without a key: the organisation a first start makes.
            (None, None) => "default".to_string(),
        };
        Ok(Ctx {
            global,
            client,
            org,
        })
    }

    pub fn org_url(&self, rest: &[&str]) -> url::Url {
        self.client.org_url(&self.org, rest)
    }

    /// In dry-run mode, prints the request that would be sent and returns
    /// true: the caller then sends nothing.
    pub fn dry_run(
        &self,
        method: &str,
        url: &url::Url,
        body: &impl Serialize,
        attachments: &[custody_client::Attachment],
    ) -> anyhow::Result<bool> {
        if !self.global.dry_run {
            return Ok(false);
        }
        println!("DRY RUN: {method} {url}");
        println!("{}", serde_json::to_string_pretty(body)?);
        for a in attachments {
            println!(
                "attachment: {} ({} bytes, from {})",
                a.name,
                a.size,
                a.path.display()
            );
        }
        Ok(true)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => server::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Fingerprint(args) => fingerprint::run(&cli.global, args).await,
        Command::Create(c) => admin::create(Ctx::new(cli.global).await?, c).await,
        Command::Begin(crate::cli::BeginCmd::Trail(args)) => {
            flows::begin_trail(Ctx::new(cli.global).await?, args).await
        }
        Command::Attest(c) => attest::run(Ctx::new(cli.global).await?, *c).await,
        Command::Get(c) => flows::get(Ctx::new(cli.global).await?, c).await,
        Command::List(c) => flows::list(Ctx::new(cli.global).await?, c).await,
        Command::Search(args) => flows::search(Ctx::new(cli.global).await?, args).await,
        Command::Whoami => admin::whoami(Ctx::new(cli.global).await?).await,
        Command::Admin(crate::cli::AdminCmd::Backup(args)) => backup::backup(args).await,
        Command::Admin(crate::cli::AdminCmd::Restore(args)) => backup::restore(args).await,
        Command::Status => habits::status(&cli.global).await,
        Command::Version => habits::version(&cli.global).await,
        Command::Completion(args) => habits::completion(args),
        Command::Man(args) => habits::man(args),
        Command::Parse(c) => parse::run(cli.global.output, c),
        Command::Snapshot(c) => snapshot::run(Ctx::new(cli.global).await?, c).await,
        Command::Diff(c) => environments::diff(Ctx::new(cli.global).await?, c).await,
        Command::Log(c) => environments::log(Ctx::new(cli.global).await?, c).await,
        Command::Rename(c) => lifecycle::rename(Ctx::new(cli.global).await?, c).await,
        Command::Archive(c) => lifecycle::archive(Ctx::new(cli.global).await?, c).await,
        Command::Unarchive(c) => lifecycle::unarchive(Ctx::new(cli.global).await?, c).await,
        Command::Join(c) => lifecycle::join(Ctx::new(cli.global).await?, c).await,
        Command::Leave(c) => lifecycle::leave(Ctx::new(cli.global).await?, c).await,
        Command::AttachPolicy(a) => controls::attach(Ctx::new(cli.global).await?, a, true).await,
        Command::DetachPolicy(a) => controls::attach(Ctx::new(cli.global).await?, a, false).await,
        Command::Allow(crate::cli::AllowCmd::Artifact(a)) => {
            controls::allow(Ctx::new(cli.global).await?, a).await
        }
        Command::Assert(crate::cli::AssertCmd::Artifact(a)) => {
            controls::assert_artifact(Ctx::new(cli.global).await?, a).await
        }
        // The provider alone: no Custody server.
        Command::Assert(crate::cli::AssertCmd::Pullrequest(c)) => {
            change::assert_pr(&cli.global, c).await
        }
        Command::Assert(crate::cli::AssertCmd::Snapshot { expression }) => {
            controls::assert_snapshot(Ctx::new(cli.global).await?, &expression).await
        }
        Command::Evaluate(c) => evaluate::run(cli.global, c).await,
        Command::Tag(crate::cli::TagCmd::Flow { name, set, unset }) => {
            controls::tag_flow(Ctx::new(cli.global).await?, name, set, unset).await
        }
        Command::Revoke(c) => keys::revoke(Ctx::new(cli.global).await?, c).await,
        Command::Rotate(c) => keys::rotate(Ctx::new(cli.global).await?, c).await,
        Command::Delete(c) => keys::delete(Ctx::new(cli.global).await?, c).await,
        Command::Update(c) => keys::update(Ctx::new(cli.global).await?, c).await,
        // Straight from a database: no server, no key.
        Command::Ledger(crate::cli::LedgerCmd::Verify(a)) if a.database.is_some() => {
            ledger::verify_database(&cli.global, a).await
        }
        Command::Ledger(c) => ledger::run(Ctx::new(cli.global).await?, c).await,
        Command::Witness(args) => server::witness(args).await,
        Command::Export(crate::cli::ExportCmd::Intoto(a)) => {
            ledger::export_intoto(&Ctx::new(cli.global).await?, a).await
        }
        Command::Audit(c) => audit::run(cli.global, c).await,
    }
}

/// Reads a JSON file, naming the file and position on error.
pub fn read_json_file(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))
}

/// Reads a JSON file as checked text, to be sent as it is.
pub fn read_raw_json_file(
    path: &std::path::Path,
) -> anyhow::Result<Box<serde_json::value::RawValue>> {
    let text = read_text_file(path)?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))
}

pub fn read_text_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}
