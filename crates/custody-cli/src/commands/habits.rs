//! What a command-line tool is expected to have: whether the server is
//! up, versions, shell completion and manual pages.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use custody_api::Health;
use custody_client::Client;
use serde::Serialize;

use crate::cli::{Cli, CompletionArgs, Global, ManArgs};
use crate::output;

/// The server's readiness as `/readyz` tells it, or why it could not be
/// asked.
async fn readiness(global: &Global) -> anyhow::Result<Result<(bool, Health), String>> {
    // No key needed: the probe is public, and a machine checking a server
    // it is about to use may hold none yet.
    let client = Client::with_transport(&global.host, None, global.timeout, &global.transport())?;
    match client.probe(client.url(&["readyz"])).await {
        Ok((status, body)) => match serde_json::from_slice::<Health>(&body) {
            Ok(h) => Ok(Ok((status.is_success(), h))),
            Err(_) => Ok(Err(format!(
                "{} answered {status}, not as a Custody server does",
                global.host
            ))),
        },
        Err(e) => Ok(Err(e.to_string())),
    }
}

#[derive(Serialize)]
struct Status {
    server: String,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    checks: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn status(global: &Global) -> anyhow::Result<ExitCode> {
    let s = match readiness(global).await? {
        Ok((ready, h)) => Status {
            server: global.host.clone(),
            ready,
            version: h.version,
            checks: h.checks,
            error: None,
        },
        Err(e) => Status {
            server: global.host.clone(),
            ready: false,
            version: None,
            checks: Default::default(),
            error: Some(e),
        },
    };
    output::either(global.output, &s, |s| {
        let mut rows = vec![(
            "server",
            format!(
                "{} is {}",
                s.server,
                match (&s.error, s.ready) {
                    (Some(_), _) => "down",
                    (None, true) => "ready",
                    (None, false) => "up but not ready",
                }
            ),
        )];
        if let Some(v) = &s.version {
            rows.push(("version", v.clone()));
        }
        for (k, v) in &s.checks {
            rows.push((k.as_str(), v.clone()));
        }
        if let Some(e) = &s.error {
            rows.push(("error", e.clone()));
        }
        output::fields(&rows)
    })?;
    Ok(if s.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Serialize)]
struct Versions {
    client: &'static str,
    /// None when the server did not answer.
    server: Option<String>,
}

pub async fn version(global: &Global) -> anyhow::Result<ExitCode> {
    let server = match readiness(global).await? {
        Ok((_, h)) => h.version,
        Err(_) => None,
    };
    let v = Versions {
        client: env!("CARGO_PKG_VERSION"),
        server,
    };
    output::either(global.output, &v, |v| {
        println!("custody {}", v.client);
        match &v.server {
            Some(s) => println!("server {s} at {}", global.host),
            None => println!("server at {}: not reachable", global.host),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn completion(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "custody", &mut buf);
    print_all(&buf)?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    match args.out_dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            print_all(&buf)?;
        }
        Some(dir) => {
            let dir = Path::new(&dir);
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = 0;
            write_pages(dir, cmd, "custody", &mut written)?;
            eprintln!("{written} manual pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a reader that stopped reading (`| head`) is not an
/// error.
fn print_all(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A page for `cmd` named `name`, then one for each of its subcommands
/// (`custody-create-flow`), as git's pages are named.
fn write_pages(
    dir: &Path,
    cmd: clap::Command,
    name: &str,
    written: &mut usize,
) -> anyhow::Result<()> {
    let cmd = cmd.name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(
            dir,
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            written,
        )?;
    }
    Ok(())
}
