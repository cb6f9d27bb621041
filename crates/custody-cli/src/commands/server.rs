use std::process::ExitCode;

use anyhow::Context;
use custody_server::ServerConfig;

use crate::cli::{LogFormat, ServerArgs, WitnessArgs};
use crate::fail::Environment;

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let bootstrap_token = std::env::var("CUSTODY_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    // An invalid setting is the operator's input: exit 2, before starting.
    if let Some(t) = &bootstrap_token {
        custody_server::check_bootstrap_token(t).map_err(anyhow::Error::msg)?;
    }
    init_logs("info,tower_http=warn,sqlx=warn", args.log_format);
    let cfg = config(args, bootstrap_token)?;
    custody_server::run(cfg, shutdown_signal())
        .await
        .map_err(|e| Environment(format!("{e:#}")))
        .context("custody server")?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to standard error, filtered by RUST_LOG or `default`: lines for
/// people, or one JSON object per line for a log pipeline.
pub fn init_logs(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours for a terminal only: not as escape codes in log files.
        LogFormat::Text => logs.with_ansi(colour_on_stderr()).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// The server's configuration from its flags.
pub fn config(args: ServerArgs, bootstrap_token: Option<String>) -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database: args.database,
        blob_store: args.blob_store,
        max_upload: args.max_upload,
        bootstrap_token,
        delivery: custody_server::delivery::DeliveryConfig {
            public_url: args.public_url.unwrap_or_default(),
            retry_base: args.notify_retry_base,
            max_age: args.notify_max_age,
            timeout: args.notify_timeout,
            egress: custody_server::egress::EgressPolicy {
                allow_private: args.notify_allow_private,
            },
            ..Default::default()
        },
        sandbox: {
            // The workers are this very binary, started again as
            // `custody __sandbox`.
            let program = std::env::current_exe()
                .context("cannot find this program's path to start sandbox workers")?;
            let mut s = custody_sandbox::SandboxConfig::new(
                program,
                vec![custody_sandbox::worker::ARG.into()],
            );
            s.memory_limit = args.sandbox_memory;
            s.time_limit = args.program_time_limit;
            if let Some(n) = args.sandbox_workers {
                s.workers = n.max(1);
            }
            s.per_tenant = args.sandbox_workers_per_org.max(1);
            s
        },
        judgement_budget: args.judgement_budget,
        secret_key_file: args.secret_key_file,
        signing_key: args.signing_key,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(custody_server::tls::TlsFiles { cert, key }),
            _ => None,
        },
        checkpoints: custody_server::checkpoints::CheckpointConfig {
            interval: args.checkpoint_interval,
            witnesses: args.witnesses,
        },
        limits: custody_server::Limits {
            max_json_body: usize::try_from(args.max_json_body).unwrap_or(usize::MAX),
            max_evidence_json: usize::try_from(args.max_evidence_json).unwrap_or(usize::MAX),
            max_field: usize::try_from(args.max_field).unwrap_or(usize::MAX),
            header_timeout: args.header_timeout,
            body_idle_timeout: args.body_timeout,
            request_timeout: args.request_timeout,
            max_concurrent: args.max_concurrent_requests.max(1),
            rate_limit: args.rate_limit,
        },
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

pub async fn witness(args: WitnessArgs) -> anyhow::Result<ExitCode> {
    if args.print_key {
        let key = custody_server::witness::cosigner_key(&args.data_dir, &args.name)?;
        println!("{key}");
        return Ok(ExitCode::SUCCESS);
    }
    let logs = args
        .log_keys
        .iter()
        .map(|k| {
            custody_ledger::note::VerifierKey::parse(k)
                .map_err(|e| anyhow::anyhow!("--log-key: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    init_logs("info", args.log_format);
    let cfg = custody_server::witness::WitnessConfig {
        listen: args.listen,
        name: args.name,
        data_dir: args.data_dir,
        logs,
    };
    custody_server::witness::run(cfg, shutdown_signal())
        .await
        .map_err(|e| Environment(format!("{e:#}")))
        .context("custody witness")?;
    Ok(ExitCode::SUCCESS)
}

/// Colours in logs only on a terminal, and never when `NO_COLOR` is set
/// to anything (no-color.org).
fn colour_on_stderr() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
