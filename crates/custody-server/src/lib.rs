//! Custody's HTTP server: the only crate that knows HTTP.
//!
//! `custody server` builds a [`ServerConfig`] from its flags and calls
//! [`run`]. The REST API lives under `/api/v1`, organisation-scoped
//! (`/api/v1/orgs/{org}/...`); its OpenAPI document, generated from the
//! handlers, is served at `/api/v1/openapi.json`.

mod access_log;
mod auth;
mod body;
pub mod checkpoints;
pub mod delivery;
pub mod egress;
mod error;
pub mod metrics;
mod programs;
mod ratelimit;
mod routes;
mod secrets;
mod serve;
mod state;
pub mod tls;
mod web;
pub mod witness;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use custody_store::{BlobStore, NewApiKey, Store};
use tokio::net::TcpListener;

pub use auth::{generate_key, hash_key};
pub use state::AppState;

/// Name of the file holding a generated bootstrap key, in the data dir.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default `sqlite://<data-dir>/custody.db`.
    pub database: Option<String>,
    /// `file://...` or `s3://bucket/prefix`; default `file://<data-dir>/blobs`.
    pub blob_store: Option<String>,
    /// Bytes one request may upload.
    pub max_upload: u64,
    /// The admin key to create on first start; random when absent.
    pub bootstrap_token: Option<String>,
    /// How notifications are delivered; `public_url` empty means the
    /// address listened on.
    pub delivery: delivery::DeliveryConfig,
    /// How users' programs are run.
    pub sandbox: custody_sandbox::SandboxConfig,
    /// How long one environment's judgement by one Rego policy may take.
    pub judgement_budget: std::time::Duration,
    /// What one request may cost.
    pub limits: Limits,
    /// The key secrets are sealed with at rest; default
    /// `<data-dir>/secret.key`, created at first start.
    pub secret_key_file: Option<PathBuf>,
    /// The key checkpoints are signed with; default
    /// `<data-dir>/ledger-signing.key`, created at first start.
    pub signing_key: Option<PathBuf>,
    /// How often checkpoints are issued, and who witnesses them.
    pub checkpoints: checkpoints::CheckpointConfig,
    /// Serve HTTPS with this certificate and key (reloaded on SIGHUP).
    pub tls: Option<tls::TlsFiles>,
}

/// Bounds on what one request, or one key, may make the server do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of a JSON request body (attestations aside).
    pub max_json_body: usize,
    /// Bytes of an attestation's JSON: most of it may be a tool's results
    /// (an SBOM's components); all its other fields together are held to
    /// `max_json_body`.
    pub max_evidence_json: usize,
    /// Bytes of each free-form JSON field (`user_data`, `attestation_data`).
    pub max_field: usize,
    /// How long a client may take to send a request's head.
    pub header_timeout: std::time::Duration,
    /// How long a request body may go without sending a byte.
    pub body_idle_timeout: std::time::Duration,
    /// How long a request may take in all (uploads aside).
    pub request_timeout: std::time::Duration,
    /// Requests handled at once; more wait their turn.
    pub max_concurrent: usize,
    /// Requests per second per API key; 0: no limit.
    pub rate_limit: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_body: 16 << 20,
            max_evidence_json: 128 << 20,
            max_field: 1 << 20,
            header_timeout: std::time::Duration::from_secs(10),
            body_idle_timeout: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(60),
            max_concurrent: 512,
            rate_limit: 0,
        }
    }
}

/// Builds the application: every route, with its state.
pub fn app(state: AppState) -> axum::Router {
    let (api, openapi) = routes::router(&state.limits);
    let body_idle = state.limits.body_idle_timeout;
    let openapi = Arc::new(openapi);
    api.merge(web::router())
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .layer(axum::Extension(body::JsonLimit(state.limits.max_json_body)))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_idle))
        // A bug that panics in a handler answers 500 (with a reference for
        // the log), and the connection and server carry on.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        // Outermost: every answer is logged, panics' included, under one id.
        .layer(axum::middleware::from_fn(access_log::log))
        .with_state(state)
}

/// The OpenAPI document, without starting a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router(&Limits::default()).1
}

/// Opens the stores, bootstraps an empty one, and serves until `shutdown`
/// completes.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Everything the server writes — the database, evidence, keys — is for
    // its own eyes: files 0600, directories 0700, whatever the umask was.
    // SAFETY: umask(2) only sets this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    warn_if_open(&cfg.data_dir);
    let data_dir = std::fs::canonicalize(&cfg.data_dir)
        .with_context(|| format!("cannot resolve data directory {}", cfg.data_dir.display()))?;
    let database = cfg
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("custody.db").display()));
    let blob_url = cfg
        .blob_store
        .clone()
        .unwrap_or_else(|| format!("file://{}", data_dir.join("blobs").display()));
    // A certificate that cannot be used fails the start before anything
    // is created, as does an address that cannot be listened on.
    let tls = cfg.tls.clone().map(tls::Tls::load).transpose()?;
    #[cfg(unix)]
    let reloader = tls.as_ref().map(|t| t.reload_on_sighup()).transpose()?;
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    let sandbox = custody_sandbox::Sandbox::start(cfg.sandbox.clone())
        .await
        .context("cannot start the sandbox that runs users' programs")?;
    let store = Store::open(&database)
        .await
        .with_context(|| format!("cannot open database {}", redact(&database)))?
        .with_rego(Arc::new(programs::SandboxRego {
            sandbox: sandbox.clone(),
            budget: cfg.judgement_budget,
        }));
    let blobs =
        BlobStore::open(&blob_url).with_context(|| format!("cannot open blob store {blob_url}"))?;
    let secrets = Arc::new(match &cfg.secret_key_file {
        Some(f) => secrets::SecretBox::load(f, false)?,
        None => secrets::SecretBox::load(&data_dir.join("secret.key"), true)?,
    });
    bootstrap(&store, &data_dir, cfg.bootstrap_token.as_deref()).await?;

    // Tests and scripts read this line to find a port chosen by the OS.
    // Recording from the first request on.
    metrics::handle();
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("custody server listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();
    let mut delivery = cfg.delivery.clone();
    if delivery.public_url.is_empty() {
        delivery.public_url = format!("{scheme}://{addr}");
    }
    let public_url: Arc<str> = delivery.public_url.trim_end_matches('/').into();
    let signer = Arc::new(match &cfg.signing_key {
        Some(f) => checkpoints::LogSigner::load(f, false, &public_url)?,
        None => checkpoints::LogSigner::load(
            &data_dir.join(checkpoints::SIGNING_KEY_FILE),
            true,
            &public_url,
        )?,
    });
    let state = AppState {
        store: store.clone(),
        blobs,
        max_upload: cfg.max_upload,
        sandbox,
        egress: cfg.delivery.egress,
        limits: Arc::new(cfg.limits.clone()),
        rate: ratelimit::RateLimiter::new(cfg.limits.rate_limit).map(Arc::new),
        secrets: secrets.clone(),
        public_url,
        signer: signer.clone(),
    };
    let (stop_delivery, delivery_stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(delivery::run(
        store.clone(),
        delivery,
        secrets,
        delivery_stop,
    ));
    let judge = tokio::spawn(judge_leftovers(store.clone()));
    let publisher = tokio::spawn(checkpoints::run(
        store.clone(),
        signer.as_ref().clone(),
        cfg.checkpoints.clone(),
    ));
    serve::serve(
        listener,
        app(state),
        tls,
        cfg.limits.header_timeout,
        shutdown,
    )
    .await;
    #[cfg(unix)]
    if let Some(r) = reloader {
        r.abort();
    }
    // The notifications being sent finish and are recorded; the worker
    // bounds that by the receivers' timeout.
    let _ = stop_delivery.send(true);
    let mut worker = worker;
    if tokio::time::timeout(std::time::Duration::from_secs(60), &mut worker)
        .await
        .is_err()
    {
        worker.abort();
        let _ = worker.await;
    }
    judge.abort();
    publisher.abort();
    let _ = judge.await;
    let _ = publisher.await;
    store.close().await;
    Ok(())
}

/// Judges environments whose judgement was left undone: by a server that
/// stopped between a write and its judgement, or by a judgement that
/// failed. Writes judge their own consequences; this is the safety net.
async fn judge_leftovers(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = store.settle_pending(100).await {
            tracing::warn!(error = %e, "cannot look for environments to judge");
        }
    }
}

/// On an empty store: the `default` organisation and its server-admin key.
/// A generated key is written to `bootstrap-token` (0600) *before* the
/// store commits it, so a server that cannot write it has created nothing
/// and can be started again; a leftover file from an earlier data
/// directory is refused up front rather than after a commit that would
/// lock the operator out. The key is printed only to a terminal: on a
/// pipe (container logs) only the file's path is.
async fn bootstrap(store: &Store, data_dir: &Path, token: Option<&str>) -> anyhow::Result<()> {
    if !store.is_empty().await? {
        return Ok(());
    }
    let (key, generated) = match token {
        Some(t) => {
            check_bootstrap_token(t).map_err(|e| anyhow::anyhow!(e))?;
            (t.to_string(), false)
        }
        None => (generate_key().0, true),
    };
    let path = data_dir.join(BOOTSTRAP_TOKEN_FILE);
    if generated {
        secrets::write_new(&path, &key).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists but the database is empty: it belongs to another database; move it away and start again",
                path.display()
            ),
            _ => anyhow::anyhow!("cannot write {}: {e}", path.display()),
        })?;
    }
    let created = store
        .bootstrap(NewApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            hash: hash_key(&key),
            description: Some("bootstrap key".into()),
            expires_at: None,
        })
        .await;
    match created {
        Ok(true) => {}
        Ok(false) | Err(_) if generated => {
            // Nothing (or someone else's bootstrap) was committed: the key
            // written above is no key.
            let _ = std::fs::remove_file(&path);
        }
        _ => {}
    }
    if !created? {
        return Ok(());
    }
    if !generated {
        println!("created org 'default' with the server-admin key from CUSTODY_BOOTSTRAP_TOKEN");
    } else if std::io::stdout().is_terminal() {
        println!(
            "created org 'default' with a server-admin API key (shown once; also in {}):\n{key}",
            path.display()
        );
    } else {
        println!(
            "created org 'default' with a server-admin API key, written to {} (readable by this user only)",
            path.display()
        );
    }
    Ok(())
}

/// Whether a bootstrap token given by the operator can be a key: long
/// enough not to be guessed.
pub fn check_bootstrap_token(t: &str) -> Result<(), String> {
    if t.len() < 16 || t.chars().any(char::is_whitespace) {
        return Err(
            "CUSTODY_BOOTSTRAP_TOKEN must be at least 16 characters, without spaces".into(),
        );
    }
    Ok(())
}

/// Says so when the data directory can be read by others: it holds the
/// database, the evidence and the key secrets are sealed with.
fn warn_if_open(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(dir)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "data directory {} is open to other users (mode {:o}); chmod 700 it",
            dir.display(),
            m.permissions().mode() & 0o777
        );
    }
}

/// Hides a password in a database URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
