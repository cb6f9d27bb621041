//! Custody's HTTP server: the only crate that knows HTTP.
//!
//! `custody server` builds a [`ServerConfig`] from its flags and calls
//! [`run`]. The REST API lives under `/api/v1`, organisation-scoped
//! (`/api/v1/orgs/{org}/...`); its OpenAPI document, generated from the
//! handlers, is served at `/api/v1/openapi.json`.

mod auth;
pub mod delivery;
mod error;
mod routes;
mod state;

use std::io::Write;
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
}

/// Builds the application: every route, with its state.
pub fn app(state: AppState) -> axum::Router {
    let (api, openapi) = routes::router();
    let openapi = Arc::new(openapi);
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = openapi.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .with_state(state)
}

/// The OpenAPI document, without starting a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router().1
}

/// Opens the stores, bootstraps an empty one, and serves until `shutdown`
/// completes.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
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
    let store = Store::open(&database)
        .await
        .with_context(|| format!("cannot open database {}", redact(&database)))?;
    let blobs =
        BlobStore::open(&blob_url).with_context(|| format!("cannot open blob store {blob_url}"))?;
    bootstrap(&store, &data_dir, cfg.bootstrap_token.as_deref()).await?;

    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    // Tests and scripts read this line to find a port chosen by the OS.
    println!("custody server listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let state = AppState {
        store: store.clone(),
        blobs,
        max_upload: cfg.max_upload,
    };
    let mut delivery = cfg.delivery.clone();
    if delivery.public_url.is_empty() {
        delivery.public_url = format!("http://{addr}");
    }
    let worker = tokio::spawn(delivery::run(store.clone(), delivery));
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed");
    // Attempts cut short here are still pending in the outbox, and go out
    // on the next start.
    worker.abort();
    let _ = worker.await;
    served?;
    store.close().await;
    Ok(())
}

async fn bootstrap(store: &Store, data_dir: &Path, token: Option<&str>) -> anyhow::Result<()> {
    let (key, generated) = match token {
        Some(t) if t.len() >= 16 => (t.to_string(), false),
        Some(_) => anyhow::bail!("CUSTODY_BOOTSTRAP_TOKEN must be at least 16 characters"),
        None => (generate_key().0, true),
    };
    let created = store
        .bootstrap(NewApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            hash: hash_key(&key),
            description: Some("bootstrap key".into()),
            expires_at: None,
        })
        .await?;
    if created && generated {
        let path = data_dir.join(BOOTSTRAP_TOKEN_FILE);
        write_secret(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "created org 'default' with a server-admin API key (shown once; also in {}):\n{key}",
            path.display()
        );
    } else if created {
        println!("created org 'default' with the server-admin key from CUSTODY_BOOTSTRAP_TOKEN");
    }
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
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
