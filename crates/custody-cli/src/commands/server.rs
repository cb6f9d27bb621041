use std::process::ExitCode;

use anyhow::Context;
use custody_server::ServerConfig;

use crate::cli::ServerArgs;
use crate::fail::Environment;

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database: args.database,
        blob_store: args.blob_store,
        max_upload: args.max_upload,
        bootstrap_token: std::env::var("CUSTODY_BOOTSTRAP_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        delivery: custody_server::delivery::DeliveryConfig {
            public_url: args.public_url.unwrap_or_default(),
            retry_base: args.notify_retry_base,
            max_age: args.notify_max_age,
            timeout: args.notify_timeout,
            ..Default::default()
        },
    };
    custody_server::run(cfg, shutdown_signal())
        .await
        .map_err(|e| Environment(format!("{e:#}")))
        .context("custody server")?;
    Ok(ExitCode::SUCCESS)
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
