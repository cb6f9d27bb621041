//! `custody witness`: a c2sp.org/tlog-witness that cosigns a log's
//! checkpoints only once it has checked they extend the last one it
//! cosigned, so an operator who rewrites history is caught by anyone
//! holding an older cosigned checkpoint.
//!
//! Its state — per log origin, the size and root it last cosigned — is a
//! JSON file replaced atomically; the check and the update happen under
//! one lock, so two requests cannot both move the log (the spec's race).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_ledger::merkle::{Hash, empty_root, verify_consistency};
use custody_ledger::note::{AddCheckpoint, Checkpoint, Note, SignerKey, VerifierKey};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub listen: String,
    /// The witness's name (its key's name in cosignatures).
    pub name: String,
    /// Holds the key (created at first start) and the state.
    pub data_dir: PathBuf,
    /// The logs it witnesses: their verifier keys, named by their origins.
    pub logs: Vec<VerifierKey>,
}

/// Requests are a few hundred bytes; this leaves room for 63 proof lines
/// and many signatures.
const MAX_REQUEST: usize = 64 << 10;

#[derive(Debug, Default, Serialize, Deserialize)]
struct WitnessState {
    logs: BTreeMap<String, LogState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogState {
    size: u64,
    /// Base64.
    root: String,
}

struct Shared {
    key: SignerKey,
    logs: BTreeMap<String, VerifierKey>,
    state_file: PathBuf,
    state: Mutex<WitnessState>,
}

/// Loads or creates the witness's key (hex seed, 0600).
fn load_key(path: &Path, name: &str) -> anyhow::Result<SignerKey> {
    let seed = crate::secrets::load_or_create_key(path, true, "the witness key")?;
    SignerKey::from_seed(name, seed).map_err(|e| anyhow::anyhow!("--name: {e}"))
}

/// The witness's cosigner key, as `custody server --witness URL=KEY` wants it.
pub fn cosigner_key(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    create_private_dir(data_dir)?;
    Ok(load_key(&data_dir.join("witness.key"), name)?
        .cosigner()
        .encode())
}

/// The data directory, readable by this user only: it holds the key.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

pub async fn run(
    cfg: WitnessConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // SAFETY: umask(2) only sets this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    if cfg.logs.is_empty() {
        bail!("give at least one --log-key: the witness cosigns only logs it knows");
    }
    let mut logs = BTreeMap::new();
    for k in &cfg.logs {
        if k.kind() != custody_ledger::note::ED25519 {
            bail!(
                "--log-key '{}' is not a log's Ed25519 note key (type 0x01)",
                k.encode()
            );
        }
        logs.insert(k.name().to_string(), k.clone());
    }
    create_private_dir(&cfg.data_dir)?;
    let key = load_key(&cfg.data_dir.join("witness.key"), &cfg.name)?;
    let state_file = cfg.data_dir.join("witness-state.json");
    let state = match std::fs::read_to_string(&state_file) {
        Ok(t) => serde_json::from_str(&t)
            .with_context(|| format!("{} is not a witness state", state_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => WitnessState::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", state_file.display())),
    };
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    println!(
        "custody witness listening on http://{addr}\ncosigner key: {}",
        key.cosigner().encode()
    );
    let _ = std::io::stdout().flush();
    let shared = Arc::new(Shared {
        key,
        logs,
        state_file,
        state: Mutex::new(state),
    });
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the witness stopped")?;
    Ok(())
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

async fn add_checkpoint(State(w): State<Arc<Shared>>, body: String) -> Response {
    match check_and_cosign(&w, &body).await {
        Ok(line) => answer(StatusCode::OK, line),
        Err(Refusal::Conflict(size)) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{size}\n"),
        )
            .into_response(),
        Err(Refusal::Status(status, why)) => {
            tracing::warn!(status = %status, reason = %why, "refused a checkpoint");
            answer(status, format!("{why}\n"))
        }
    }
}

enum Refusal {
    Conflict(u64),
    Status(StatusCode, String),
}

fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Refusal {
    Refusal::Status(status, why.to_string())
}

async fn check_and_cosign(w: &Shared, body: &str) -> Result<String, Refusal> {
    let req = AddCheckpoint::parse(body).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))?;
    let note = Note::parse(&req.checkpoint).map_err(|e| refuse(StatusCode::FORBIDDEN, e))?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| refuse(StatusCode::FORBIDDEN, e))?;
    let log_key = w.logs.get(&cp.origin).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            format!("unknown log '{}'", cp.origin),
        )
    })?;
    note.verify(&[], log_key)
        .map_err(|e| refuse(StatusCode::FORBIDDEN, e))?;
    if req.old > cp.size {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("old size {} is above the checkpoint's {}", req.old, cp.size),
        ));
    }
    let mut state = w.state.lock().await;
    let (last_size, last_root) = match state.logs.get(&cp.origin) {
        Some(l) => {
            let root: Hash = B64
                .decode(&l.root)
                .ok()
                .and_then(|r| r.try_into().ok())
                .ok_or_else(|| {
                    refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the witness's state is corrupt",
                    )
                })?;
            (l.size, root)
        }
        None => (0, empty_root()),
    };
    if req.old != last_size {
        return Err(Refusal::Conflict(last_size));
    }
    if cp.size == 0 && cp.root != empty_root() {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a checkpoint of size 0 must have the empty tree's root",
        ));
    }
    if req.old == 0 {
        if !req.proof.is_empty() {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "a proof from size 0 must be empty",
            ));
        }
    } else {
        verify_consistency(req.old, cp.size, &last_root, &cp.root, &req.proof).map_err(|e| {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the checkpoint of size {} is not consistent with the one of size {} cosigned before: {e}",
                    cp.size, req.old
                ),
            )
        })?;
    }
    let mut next = WitnessState {
        logs: state.logs.clone(),
    };
    next.logs.insert(
        cp.origin.clone(),
        LogState {
            size: cp.size,
            root: B64.encode(cp.root),
        },
    );
    persist(&w.state_file, &next)
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    *state = next;
    let now = jiff::Timestamp::now().as_second().max(1) as u64;
    Ok(w.key.cosign(&note.text, now).line())
}

/// Writes the state to a new file, syncs it, and renames it over the old
/// one: a crash leaves the old state or the new, never half of one.
fn persist(path: &Path, state: &WitnessState) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.new");
    let text = serde_json::to_string_pretty(state)?;
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
